"""The symbolic machine state of one path: a register file and region-based memory over claripy.

Memory is not a flat address space. Every address the code uses must be `base + offset` for
exactly one region whose base is a *symbol* (an array's address, the entry stack pointer),
so a pointer-keyed trigger stays visible: nothing is ever pinned to one concrete address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import claripy

from .names import machine

BV = claripy.ast.BV
Bool = claripy.ast.Bool


@dataclass(frozen=True)
class Region:
    name: str          # array parameter name, or STACK
    base: BV           # symbolic base address (stack: the entry stack pointer)
    size: int          # bytes (stack: unused, bounds are dynamic)
    writable: bool
    elem_bits: int = 8
    length: BV | None = None   # bytes that exist (symbolic for T p[n]); None: all `size` bytes


# The stack's region key: not a C identifier, so no array parameter can take its place.
STACK = "$stack"


class Unplaceable(Exception):
    """An access the model cannot place in one region; the path ends UNKNOWN."""


def bv(name: str, bits: int) -> BV:
    return claripy.BVS(name, bits, explicit_name=True)


def const(value: int, bits: int) -> BV:
    return claripy.BVV(value, bits)


class RegisterFile:
    """VEX guest-state bytes, stored as non-overlapping slots keyed by offset."""

    def __init__(self, slots: dict[int, BV] | None = None):
        self.slots: dict[int, BV] = dict(slots or {})

    def copy(self) -> RegisterFile:
        return RegisterFile(self.slots)

    def put(self, offset: int, value: BV) -> None:
        n = value.size() // 8
        self._carve(offset, n)
        self.slots[offset] = value

    def get(self, offset: int, nbytes: int) -> BV:
        s = self.slots.get(offset)
        if s is not None and s.size() == nbytes * 8:
            return s
        pieces = []
        pos, end = offset, offset + nbytes
        while pos < end:
            start, val = self._slot_at(pos)
            lo = pos - start
            take = min(end - pos, val.size() // 8 - lo)
            pieces.append(claripy.Extract((lo + take) * 8 - 1, lo * 8, val))
            pos += take
        return pieces[0] if len(pieces) == 1 else claripy.Concat(*reversed(pieces))

    def _slot_at(self, pos: int) -> tuple[int, BV]:
        for start, val in self.slots.items():
            if start <= pos < start + val.size() // 8:
                return start, val
        # Guest-state bytes archinfo does not name (VEX padding and scratch) are arbitrary, like
        # every register the model does not fix: one symbol per byte, kept once read.
        val = bv(machine(f"guest{pos}"), 8)
        self.slots[pos] = val
        return pos, val

    def _carve(self, offset: int, n: int) -> None:
        end = offset + n
        for start, val in list(self.slots.items()):
            size = val.size() // 8
            if start + size <= offset or start >= end:
                continue
            del self.slots[start]
            if start < offset:
                self.slots[start] = claripy.Extract((offset - start) * 8 - 1, 0, val)
            if start + size > end:
                self.slots[end] = claripy.Extract(size * 8 - 1, (end - start) * 8, val)


@dataclass
class Memory:
    """Per-region byte maps. Bytes never written read as the region's initial contents."""

    regions: dict[str, Region]
    initial: dict[str, object]           # region name -> callable(offset) -> 8-bit BV
    bytes: dict[str, dict[int, BV]] = field(default_factory=dict)

    def copy(self) -> Memory:
        return Memory(self.regions, self.initial, {k: dict(v) for k, v in self.bytes.items()})

    def byte(self, region: str, off: int) -> BV:
        got = self.bytes.get(region, {}).get(off)
        if got is None:
            got = self.initial[region](off)  # type: ignore[operator]
        return got

    def read(self, region: str, off: int, n: int) -> BV:
        parts = [self.byte(region, off + i) for i in range(n)]
        return parts[0] if n == 1 else claripy.Concat(*reversed(parts))

    def write(self, region: str, off: int, value: BV) -> None:
        m = self.bytes.setdefault(region, {})
        for i in range(value.size() // 8):
            m[off + i] = claripy.Extract(i * 8 + 7, i * 8, value)

    def read_symbolic(self, region: str, off: BV, n: int, candidates: range) -> BV:
        """A read at a symbolic offset: an if-then-else over every offset it may take."""
        result = None
        for c in candidates:
            v = self.read(region, c, n)
            result = v if result is None else claripy.If(off == c, v, result)
        if result is None:
            raise Unplaceable("no offset is possible for this access")
        return result

    def write_symbolic(self, region: str, off: BV, value: BV, candidates: range) -> None:
        n = value.size() // 8
        m = self.bytes.setdefault(region, {})
        for c in candidates:
            for i in range(n):
                old = self.byte(region, c + i)
                m[c + i] = claripy.If(off == c, claripy.Extract(i * 8 + 7, i * 8, value), old)


def split_base(addr: BV, bases: dict[str, str]) -> tuple[str, BV] | None:
    """Write `addr` as `base + offset` for one region base symbol, or None.

    `bases` maps a base symbol's name to its region. The decomposition is syntactic over
    sums (claripy does not cancel `(b + 8) - b`), with a z3 simplification as fallback; the
    result never contains the base symbol, so it holds for every value the base may take.
    """
    names = addr.variables & bases.keys()
    if len(names) != 1:
        return None
    (name,) = names
    terms = _sum_terms(addr, 1)
    if terms is not None:
        hits = [(s, t) for s, t in terms if name in t.variables]
        if len(hits) == 1 and hits[0][0] == 1 and hits[0][1].op == "BVS" and hits[0][1].args[0] == name:
            rest = [t if s == 1 else -t for s, t in terms if t is not hits[0][1]]
            off = rest[0] if len(rest) == 1 else (claripy.BVV(0, 64) if not rest else sum(rest[1:], rest[0]))
            return bases[name], off
    base = cast(BV, next(leaf for leaf in addr.leaf_asts() if leaf.op == "BVS" and leaf.args[0] == name))
    off = cast(BV, claripy.simplify(addr - base))
    if name in off.variables:
        from .smt_bridge import z3_simplify  # local: z3 round trip only on the slow path
        slow = z3_simplify(addr - base)
        if slow is None or name in slow.variables:
            return None
        off = slow
    return bases[name], off


def _sum_terms(e: BV, sign: int) -> list[tuple[int, BV]] | None:
    if e.op == "__add__":
        out: list[tuple[int, BV]] = []
        for a in e.args:
            sub = _sum_terms(cast(BV, a), sign)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if e.op == "__sub__" and len(e.args) == 2:
        left, right = _sum_terms(cast(BV, e.args[0]), sign), _sum_terms(cast(BV, e.args[1]), -sign)
        if left is None or right is None:
            return None
        return left + right
    return [(sign, e)]

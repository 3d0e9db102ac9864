"""An indirect jump's target -> the offsets from `$code` it can take, case by case (a jump table).

The target of a jump through a table is an if-then-else over the index, built by the memory
model (a load at a symbolic offset, verifier/machine.py), with arithmetic around it. `cases`
pushes that arithmetic into the branches, so each case is one condition and one plain term,
and `offset` reads a plain term as `$code + constant` by cancelling terms of a sum. Two facts
the model guarantees are used and nothing else:

- a table entry relative to itself (`.long .L3-.L4`, rodata.Link) is a 32-bit field the linker
  fills only when the full difference fits (entry.build assumes so on every path), so its
  sign extension is the difference itself: `SignExt(32, V[31:0]) = V` for those V;
- `x + y - y = x` in modular arithmetic.

A case whose term does not reduce so is left to the caller (the solver, or a refusal).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import cast

import claripy

from .machine import BV, _sum_terms

Bool = claripy.ast.Bool
MAX_CASES = 4096
# operations the arithmetic of a table jump uses; an if-then-else under any other stays whole
_DISTRIBUTE = frozenset({"__add__", "__sub__", "SignExt", "ZeroExt", "Extract", "Concat", "__lshift__",
                         "__rshift__", "LShR", "__mul__", "__and__", "__or__", "__xor__"})


def cases(e: BV, fits: Iterable[BV] = ()) -> list[tuple[Bool, BV]] | None:
    """[(condition, term)] covering every value of `e`, the terms free of top-level if-then-else;
    None beyond MAX_CASES. `fits`: the self-relative entries V whose SignExt(32, V[31:0]) is V."""
    known = {v.hash(): v for v in fits}
    out = _cases(e, known)
    return out if out is None or len(out) <= MAX_CASES else None


def _fitted(e, known: dict):
    """SignExt(32, V[31:0]) -> V for a self-relative entry V (see the module's docstring)."""
    if e.op == "SignExt" and e.args[0] == 32:
        inner = e.args[1]
        if inner.op == "Extract" and inner.args[:2] == (31, 0) and inner.args[2].hash() in known:
            return inner.args[2]
    return None


def _cases(e, known: dict) -> list[tuple[Bool, BV]] | None:
    if not isinstance(e, claripy.ast.BV) or e.concrete:
        return [(claripy.true(), e)]
    v = _fitted(e, known)
    if v is not None:
        return _cases(v, known)
    if e.op == "If":
        cond, a, b = e.args
        left, right = _cases(a, known), _cases(b, known)
        if left is None or right is None:
            return None
        return [(claripy.And(cond, c), t) for c, t in left] + [(claripy.And(claripy.Not(cond), c), t) for c, t in right]
    if e.op not in _DISTRIBUTE:
        return [(claripy.true(), e)]
    parts = [_cases(a, known) if isinstance(a, claripy.ast.BV) else [(claripy.true(), a)] for a in e.args]
    if any(p is None for p in parts):
        return None
    total = 1
    for p in parts:
        total *= len(cast(list, p))
    if total > MAX_CASES:
        return None
    if total == 1:
        return [(claripy.true(), e.make_like(e.op, tuple(p[0][1] for p in parts)))]   # type: ignore[index]
    out = []
    for combo in itertools.product(*cast(list, parts)):
        cond = claripy.And(*[c for c, _ in combo]) if len(combo) > 1 else combo[0][0]
        term = e.make_like(e.op, tuple(t for _, t in combo))
        fitted = _fitted(term, known)
        out.append((cond, term if fitted is None else fitted))
    return out


def offset(term: BV, code: BV) -> int | None:
    """`term - code` as a number, when the sum cancels to one: else None."""
    terms = _sum_terms(term, 1)
    if terms is None:
        return None
    pos = [t for s, t in terms if s == 1]
    neg = [t for s, t in terms if s == -1]
    const = sum((t.concrete_value if s == 1 else -t.concrete_value) for s, t in terms if t.concrete)
    pos = [t for t in pos if not t.concrete]
    neg = [t for t in neg if not t.concrete]
    neg.append(code)
    left = list(neg)
    for t in neg:
        i = next((k for k, p in enumerate(pos) if p.identical(t)), None)
        if i is not None:
            del pos[i]
            left = [x for x in left if x is not t]
    if pos or left:
        return None
    return const % (1 << 64)

"""A function's parts in other sections (gcc's `.text.unlikely`, `foo.cold`; with
-ffunction-sections, the static helpers it calls or tail-jumps to in `.text.<helper>`) -> one code
layout for the unit: the parts placed after the function, and the branch relocations between them
as fixups (rodata.Fixup with region CODE) that `rodata.link` fills for any layout.

Why a fixed layout is sound: the linker places the part anywhere, but the only way between the
function and its part is a direct jump or call whose displacement the linker computes for where
they are; a direct branch means the same wherever its target lies. What could observe the layout
is a code address as a value, so a part may hold no instruction that makes one (a call, which
leaves a return address; `lea r, [rip+d]`; `adr`), nothing may jump into it from a table, and its
model location is never taken as real (entry.build keeps data apart from the function's own span
only). A call *from the function* to a part leaves a return address in the function's own span:
`$code + offset` (isa.internal_call makes the code's address a symbol), true wherever the part lies.
Only local functions are parts: a global one may be interposed (a shared library's caller binds
to the program's definition of the name), a weak one replaced by another object's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import rodata
from .errors import UnsupportedError
from .relocs import Reloc

CODE = -1                       # Fixup.region of a branch to code of the unit
# branch relocations by ISA (relocated.Relocated checks each is the displacement of a direct branch)
JUMPS = {"x86_64": frozenset({rodata.X86_PC32, rodata.X86_PLT32}),   # on call/jmp/jcc rel32
         "aarch64": frozenset({283, 282, 280, 279})}                 # CALL26, JUMP26, CONDBR19, TSTBR14
PAD = {"x86_64": b"\xcc", "aarch64": b"\x00\x00\x00\x00"}            # int3 / udf #0 between the parts


@dataclass(frozen=True)
class Part:
    section: Any         # symbols.Section
    start: int
    end: int
    name: str


def parts(path: str, fn: str, arch: str, relocations: list[Reloc], space: int, lo: int, hi: int,
          part_of) -> list[Part]:
    """The parts of the function [lo, hi) in other executable sections it jumps to: `part_of(sym,
    offset)` gives the extent (start, end, name) of the function symbol there, or None."""
    found: dict[tuple[int, int], Part] = {}
    for r in relocations:
        sec = getattr(r.to, "section", None)
        if r.space != space or not lo <= r.at < hi or r.rtype not in JUMPS[arch] or sec is None:
            continue
        if not sec.executable or sec.key == space or r.to.binding != "local" or getattr(sec, "grouped", True):
            continue
        if not getattr(sec, "plain_code", False) or _ifunc(r):
            continue        # left to be refused: see symbols.Section.plain_code; an IFUNC is reached
                            # through the PLT, at what its resolver returns
        assert r.addend is not None
        at = part_of(sec, r.to.value - sec.start + r.addend + (4 if arch == "x86_64" else 0))
        if at is None:
            raise UnsupportedError(f"{path}: {fn} jumps to {r.target}, which is no function's part")
        found.setdefault((sec.key, at[0]), Part(sec, at[0], at[1], at[2]))
    return list(found.values())


def _ifunc(r: Reloc) -> bool:
    return getattr(r.to, "kind", "") == "ifunc"


def layout(arch: str, code: bytes, ps: list[Part]) -> tuple[bytes, list[int]]:
    """The unit's bytes: the function's, then each part at a 16-byte boundary; the part offsets."""
    out, where = bytearray(code), []
    for p in ps:
        gap = -(len(out) + 16) % 16 + 16
        out += (PAD[arch] * gap)[:gap]
        where.append(len(out))
        out += p.section.content[p.start - p.section.start: p.end - p.section.start]
    return bytes(out), where


def fixups(arch: str, relocations: list[Reloc], space: int, lo: int, hi: int, ps: list[Part],
           where: list[int]) -> tuple[list[rodata.Fixup], list[Reloc]]:
    """The jumps between the function and its parts, as fixups in unit coordinates; the
    relocations of the parts' bytes that are not such jumps (left to be refused)."""
    out: list[rodata.Fixup] = []
    rest: list[Reloc] = []

    def unit_offset(sec_key: int, off: int) -> int | None:
        if sec_key == space and lo <= off < hi:
            return off - lo
        for p, w in zip(ps, where, strict=True):
            if p.section.key == sec_key and p.start <= off < p.end:
                return w + off - p.start
        return None

    spans = [(space, lo, hi, 0), *((p.section.key, p.start, p.end, w) for p, w in zip(ps, where, strict=True))]
    for r in relocations:
        home = next(((s, a, b, w) for s, a, b, w in spans if r.space == s and a <= r.at < b), None)
        sec = getattr(r.to, "section", None)
        if home is None or r.rtype not in JUMPS[arch] or sec is None or r.addend is None \
                or r.to.binding != "local" or _ifunc(r):
            rest.append(r)
            continue
        adjust = 4 if arch == "x86_64" else 0       # x86: A = target - 4 (the field ends the jump)
        target = unit_offset(sec.key, r.to.value - sec.start + r.addend + adjust)
        if target is None:
            rest.append(r)
            continue
        out.append(rodata.Fixup(home[3] + r.at - home[1], r.rtype, r.kind, CODE, target - adjust))
    return out, rest

"""Relocations from a function to read-only data of its own object -> the unit's read-only regions
and the fixups that link them (`RoData`, `Fixup`), and the linker's arithmetic for one layout.

Why this is sound (docs/machine-model.md, "The verified unit"):

- The linker places each section (each entity of a constant-merging section) where it likes, so
  each becomes a region of the machine model with a *symbolic* base `$ro.<n>` (verifier/entry.py),
  aligned as the section asks, disjoint from everything else. A result that depends on where the
  data lies then cannot be proven equal to anything.
- The lifter needs bytes, so the function is lifted linked for a placeholder layout
  (`RoData.placeholder`), computed exactly as the linker computes fields (`link`). The executor
  (verifier/symexec.py) then maps every value the relocated field feeds back to `$ro.<n>`: for
  the PC-relative forms (x86 `disp32` of a rip-relative operand, AArch64 `adr` and `ldr` literal)
  and the absolute displacement of an x86 memory operand (R_X86_64_32/32S, `T(,%rax,4)`) the
  address is linear in the field, so `value - placeholder + $ro.<n>` is exactly the value of
  the linked code (for the absolute types, wherever the linker can place the data at all).
- AArch64 `adrp` yields `($ro.<n> + target) & ~0xfff` exactly, and the `:lo12:` `add`/load/store
  that completes it adds `($ro.<n> + target) & 0xfff`, which with the page of the same target is
  `$ro.<n> + target` exactly; anything else stays the exact sum, which no region's base plus an
  offset matches (an access through it is a violation; a value of it proves nothing). The
  placeholder's page offset is not 0, so no page-relative value passes for the address itself.
- Only the types in SUPPORTED are resolved, and each only in the instruction form it belongs to
  (symexec checks the form); every other relocation is refused as before (verifier/relocs.py).
  Mach-O relocations arrive already read as these ELF forms when they mean exactly that, each to
  one atom of its section (`Section.atom`, verifier/macho_relocs.py); every other keeps type -1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import UnsupportedError
from .relocs import Reloc

X86_PC32, X86_PLT32, X86_32, X86_32S = 2, 4, 10, 11
A64_LD_PREL_LO19, A64_ADR_PREL_LO21, A64_ADR_PAGE, A64_ADR_PAGE_NC, A64_ADD_LO12 = 273, 274, 275, 276, 277
A64_LDST_SCALE = {278: 0, 284: 1, 285: 2, 286: 3, 299: 4}     # LDST{8,16,32,64,128}_ABS_LO12_NC
A64_BRANCH = {282: (26, 0), 283: (26, 0), 280: (19, 5), 279: (14, 5)}   # JUMP26, CALL26, CONDBR19, TSTBR14
# Not R_X86_64_32: the linker fills it with any address below 4 GiB, but the CPU sign-extends a
# memory operand's displacement, so data the linker places at or above 2 GiB (`--section-start`)
# is read at 0xffffffff8... (a crash), not at `$ro.<n> + offset`. 32S is filled only when the
# sign extension is the address. (Under an address-size prefix the sum wraps at 32 bits: not
# linear either.)
SUPPORTED = {"x86_64": frozenset({X86_PC32, X86_32S}),
             # not ADR_PREL_PG_HI21_NC: the linker fills it without checking that the page fits
             # 21 bits, so data 4 GiB or more from the code is reached at a wrapped page, not at
             # `($ro.<n> + offset) & ~0xfff` (the fields the proof relies on must be range-checked)
             "aarch64": frozenset({A64_LD_PREL_LO19, A64_ADR_PREL_LO21, A64_ADR_PAGE,
                                   A64_ADD_LO12, *A64_LDST_SCALE})}
# How the executor treats the instruction a fixup sits in (symexec._Fixups).
# value = an address the field feeds with coefficient 1 (x86: the displacement of the memory operand)
LINEAR = frozenset({X86_PC32, X86_32, X86_32S, A64_LD_PREL_LO19, A64_ADR_PREL_LO21})
PAGE = frozenset({A64_ADR_PAGE, A64_ADR_PAGE_NC})                      # adrp
LO12 = frozenset({A64_ADD_LO12, *A64_LDST_SCALE})                      # the :lo12: half of an adrp pair

GAP = 0x20000          # between the code and the first region, and between regions
WINDOW = 0x8000        # co-simulation places a region within this of its placeholder


# Relocations *inside* read-only data that the unit resolves: entries of a jump table, each the
# address of code in the function's own section (absolute, or relative to the entry itself).
# type -> (width, relative to the entry's address)
CODE_LINKS = {"x86_64": {1: (8, False), X86_PC32: (4, True)},           # R_X86_64_64, R_X86_64_PC32
              "aarch64": {257: (8, False), 261: (4, True)}}               # ABS64, PREL32


@dataclass(frozen=True)
class Link:
    """An entry of read-only data that holds a code address: the linker writes `$code + target`
    (the function's address plus `target`), minus the entry's own address if `relative`."""
    at: int              # offset of the entry in its region
    rtype: int
    width: int
    relative: bool
    target: int          # offset from the function's first byte


@dataclass(frozen=True)
class RoData:
    name: str            # the section, or section+offset for one entity of a merging section
    data: bytes
    align: int
    placeholder: int     # where the proof's lifting places it (never where it is linked)
    links: tuple[Link, ...] = ()

    def window(self) -> tuple[int, int]:
        """Addresses co-simulation may place it at: near the code, so every field still reaches."""
        return self.placeholder - WINDOW, self.placeholder + WINDOW


@dataclass(frozen=True)
class Fixup:
    at: int              # where its field starts, from the function's first byte
    rtype: int
    kind: str            # the type's name, for messages
    region: int          # index into the unit's regions
    target: int          # S + A = the region's address + target


def digest(code: bytes, regions: Sequence[RoData], fixups: Sequence[Fixup], entry: int = 0,
           place: tuple[int, int] = (1, 0), span: int = 0, parts: Sequence[tuple[int, int]] = ()) -> str:
    """sha256 of the whole unit: the code's bytes as the object holds them, where in them the
    function starts, each region's bytes, alignment and code links, each fixup linking the
    code to them (what `link` needs, nothing else), and which of the code's bytes lie together
    when linked (`span` and `parts`: the function's own span and its parts in other sections,
    verifier/pieces.py): the same bytes cut into other pieces are another program, since an
    unrelocated jump may cross from one byte to the next only within a piece."""
    h = hashlib.sha256(b"nverify unit v1\0")
    h.update(len(code).to_bytes(8, "little") + code + entry.to_bytes(8, "little"))
    for r in regions:
        h.update(len(r.data).to_bytes(8, "little") + r.data + r.align.to_bytes(8, "little"))
        for k in r.links:
            h.update(b"".join(v.to_bytes(8, "little", signed=True)
                              for v in (k.at, k.rtype, k.width, k.relative, k.target)))
    for f in fixups:
        h.update(b"".join(v.to_bytes(8, "little", signed=True) for v in (f.at, f.rtype, f.region, f.target)))
    if place != (1, 0):     # the alignment the proof assumed of the code (Blob.place)
        h.update(b"place" + b"".join(v.to_bytes(8, "little") for v in place))
    if parts:               # which bytes lie together once linked (verifier/pieces.py): the same code
        # with the function's span one byte longer (a jcc's rel8 in it, not in the padding) is
        # another unit
        h.update(b"parts" + b"".join(v.to_bytes(8, "little") for v in (span, *(x for p in parts for x in p))))
    return h.hexdigest()


def collect(path: str, fn: str, arch: str, code: bytes, relocations: list[Reloc], space: int | None,
            lo: int, hi: int, base: int) -> tuple[tuple[RoData, ...], tuple[Fixup, ...], list[Reloc]]:
    """The read-only data the function at [lo, hi) of section `space` references, the fixups to it,
    and the relocations left (refused by the caller). `base`: the function's address in the model."""
    regions: dict[tuple[int, int], tuple[str, bytes, int, tuple[Link, ...]]] = {}
    found: list[tuple[Reloc, tuple[int, int], int]] = []
    rest: list[Reloc] = []
    for r in relocations:
        sec = _target_section(r, arch)
        if r.space != space or not r.reaches(lo, hi) or sec is None or r.at < lo or r.at + r.width > hi:
            rest.append(r)
            continue
        inner = [q for q in relocations if q.space == sec.key]
        links = _code_links(path, fn, arch, sec, inner, space, lo)
        sym_off = r.to.value - sec.start
        assert r.addend is not None
        target = sym_off + r.addend
        start, size = 0, len(sec.content)
        if sec.piece or sec.atom:
            where = target + (_pc_adjust(path, fn, arch, code, r.at - lo) if r.rtype == X86_PC32 else 0)
        if sec.atom and not 0 <= where < size:
            # A Mach-O atom (verifier/macho_relocs.py): the linker places it apart from the rest of
            # its section, so what lies past it is not known
            raise UnsupportedError(f"{path}: {fn} reads {sec.name} at {where:+#x} through its reference to "
                                   f"{r.target}, outside that atom ({size} bytes): the linker places the atom "
                                   "apart from the rest of its section")
        if sec.piece:
            # One entity of a constant-merging section: the linker may deduplicate each entity
            # apart, so only the one the reference lands in is known to follow it.
            start, size = where - where % sec.piece, sec.piece
            # Which entity the linker keeps the reference to is not where the operand points: ld
            # and lld place the entity holding the symbol's own value (a section symbol: its value
            # plus the raw addend, -4 of a rip-relative operand included) and add the rest of the
            # addend linearly from the entity's *new* place. `[rip + .LC0 + 4]` with .LC0 the first
            # entity thus reads whatever follows that entity once merged (its neighbour may be
            # deduplicated away), not the second entity. Only a reference whose operand lands in
            # the entity the linker keeps it to is modelled.
            held = sym_off + (r.addend if getattr(r.to, "kind", "") == "section" else 0)
            if held - held % sec.piece != start:
                raise UnsupportedError(
                    f"{path}: {fn} reads {sec.name} at +{where:#x} through a reference the linker keeps to "
                    f"its entity at +{held - held % sec.piece:#x}: once the linker merges equal constants, "
                    "what lies there is not known")
        key = (sec.key, start)
        name = sec.name if not sec.piece else f"{sec.name}+{start:#x}"
        # an entity is known aligned only as far as both its section and its size say
        align = min(sec.align, sec.piece & -sec.piece) if sec.piece else sec.align
        if links and sec.piece:
            raise UnsupportedError(f"{path}: {fn} reads {sec.name}, a merging section holding relocations")
        regions.setdefault(key, (name, sec.content[start:start + size], align, links))
        found.append((r, key, target - start))
    if not found:
        return (), (), rest
    keys = list(regions)
    places = _placeholders(base, hi - lo, [regions[k] for k in keys])
    out = tuple(RoData(n, d, a, p, k) for (n, d, a, k), p in zip((regions[k] for k in keys), places, strict=True))
    fixups = tuple(Fixup(r.at - lo, r.rtype, r.kind, keys.index(key), target) for r, key, target in found)
    return out, fixups, rest


def _code_links(path: str, fn: str, arch: str, sec, inner: list[Reloc], space: int | None,
                lo: int) -> tuple[Link, ...]:
    """The relocations inside a read-only section, as entries holding the function's own code
    addresses (a jump table); any other is refused."""
    out = []
    for q in inner:
        kind = CODE_LINKS[arch].get(q.rtype)
        to = getattr(q.to, "section", None)
        # Only a local symbol (or a section): a global one, even defined right here, is bound
        # by the dynamic linker when the object goes into a shared library (`R_X86_64_64 case0`
        # becomes a dynamic relocation against the name), so a program or LD_PRELOAD defining
        # the same name sends the jump into its own code.
        if kind is None or q.addend is None or to is None or to.key != space or q.to.binding != "local":
            raise UnsupportedError(
                f"{path}: {fn} reads {sec.name}, which holds a relocation itself ({q.kind} at "
                f"+{q.at - sec.start:#x}, to {q.target}): only entries holding addresses of the function's "
                "own code (a jump table) are part of the verified model")
        out.append(Link(q.at - sec.start, q.rtype, kind[0], kind[1], q.to.value - to.start + q.addend - lo))
    return tuple(sorted(out, key=lambda k: k.at))


def link_data(ro: RoData, at: int, code: int) -> bytes:
    """A region's bytes linked for a layout: the region at `at`, the function at `code`."""
    out = bytearray(ro.data)
    for k in ro.links:
        v = code + k.target - (at + k.at if k.relative else 0)
        if k.relative and not -(1 << 31) <= v < 1 << 31:
            raise LinkError(f"an entry of {ro.name} at +{k.at:#x}: {v:#x} does not fit its 32-bit field")
        out[k.at:k.at + k.width] = (v % (1 << (8 * k.width))).to_bytes(k.width, "little")
    return bytes(out)


def _target_section(r: Reloc, arch: str):
    """The read-only section a relocation resolvable here refers to, else None."""
    if r.rtype not in SUPPORTED[arch] or r.pre or r.addend is None:
        return None
    s = r.to
    sec = getattr(s, "section", None)
    # a weak definition may be overridden by another object's: then the reference binds there
    if sec is None or not getattr(sec, "rodata", False) or not s.defined or s.binding == "weak":
        return None
    return sec


def _pc_adjust(path: str, fn: str, arch: str, code: bytes, at: int) -> int:
    """x86 PC32 in a rip-relative operand: the operand's address is S + A + (end of insn - field)."""
    from .isa import decode

    for insn in decode.disassemble(arch, code, 0):
        if insn.addr <= at < insn.addr + insn.size:
            return insn.addr + insn.size - at
    raise UnsupportedError(f"{path}: {fn} has a relocation at +{at:#x} in no instruction")


def _placeholders(base: int, size: int, regions: list[tuple[str, bytes, int, tuple[Link, ...]]]) -> list[int]:
    """Addresses for the lifting layout, above the code: each in a 64 KiB slot of its own, at a
    page offset that is not 0 (so no page-relative value can pass for the region's own address)."""
    out = []
    cursor = base + size + GAP
    for _name, data, align, _links in regions:
        slot = -(-cursor // 0x10000) * 0x10000 + WINDOW + 0x340
        at = -(-slot // align) * align
        out.append(at)
        cursor = at + len(data) + GAP
    return out


# --- the linker's arithmetic -----------------------------------------------------------------

class LinkError(ValueError):
    """A field cannot hold its value for this layout (the linker would refuse it too)."""


def link(arch: str, code: bytes, base: int, fixups: Sequence[Fixup], addresses: Sequence[int]) -> bytes:
    """The function's bytes linked for a layout: code at `base`, region i at `addresses[i]`."""
    out = bytearray(code)
    for f in fixups:
        p = base + f.at
        x = (base if f.region < 0 else addresses[f.region]) + f.target     # < 0: code of the unit
        if arch == "x86_64" and f.rtype == X86_32:
            if not 0 <= x < 1 << 32:
                raise LinkError(f"{f.kind} at +{f.at:#x}: {x:#x} does not fit its 32-bit field")
            _put(out, f.at, 4, x, signed=False)
        elif arch == "x86_64":
            _put(out, f.at, 4, _fits(x - p if f.rtype in (X86_PC32, X86_PLT32) else x, 32, f), signed=True)
        else:
            _a64(out, f, p, x)
    return bytes(out)


def _a64(out: bytearray, f: Fixup, p: int, x: int) -> None:
    word = int.from_bytes(out[f.at:f.at + 4], "little")
    if f.rtype == A64_ADR_PREL_LO21:
        word = _adr(word, _fits(x - p, 21, f))
    elif f.rtype in PAGE:
        delta = ((x & ~0xFFF) - (p & ~0xFFF)) >> 12
        word = _adr(word, _fits(delta, 21, f) if f.rtype == A64_ADR_PAGE else delta & 0x1FFFFF)
    elif f.rtype == A64_ADD_LO12:
        word = (word & ~(0xFFF << 10)) | ((x & 0xFFF) << 10)
    elif f.rtype in A64_LDST_SCALE:
        scale = A64_LDST_SCALE[f.rtype]
        if x & ((1 << scale) - 1):
            raise LinkError(f"{f.kind} at +{f.at:#x}: {x:#x} is not {1 << scale}-byte aligned")
        word = (word & ~(0xFFF << 10)) | (((x & 0xFFF) >> scale) << 10)
    elif f.rtype in A64_BRANCH:     # a jump to a part of the function in another section
        bits, shift = A64_BRANCH[f.rtype]
        imm = _fits(x - p, bits + 2, f) >> 2
        word = (word & ~(((1 << bits) - 1) << shift)) | ((imm & ((1 << bits) - 1)) << shift)
    else:   # LD_PREL_LO19
        if (x - p) % 4:
            raise LinkError(f"{f.kind} at +{f.at:#x}: the target is not 4-byte aligned")
        word = (word & ~(0x7FFFF << 5)) | (((_fits(x - p, 21, f) >> 2) & 0x7FFFF) << 5)
    out[f.at:f.at + 4] = word.to_bytes(4, "little")


def _adr(word: int, imm: int) -> int:
    imm &= 0x1FFFFF
    return (word & ~((3 << 29) | (0x7FFFF << 5))) | ((imm & 3) << 29) | ((imm >> 2) << 5)


def _fits(v: int, bits: int, f: Fixup) -> int:
    if not -(1 << (bits - 1)) <= v < 1 << (bits - 1):
        raise LinkError(f"{f.kind} at +{f.at:#x}: {v:#x} does not fit its {bits}-bit field")
    return v


def _put(out: bytearray, at: int, n: int, v: int, signed: bool) -> None:
    out[at:at + n] = v.to_bytes(n, "little", signed=signed)

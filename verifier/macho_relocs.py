"""A Mach-O object's relocation entries and linker optimisation hints -> `relocs.Reloc`s, each one
that means exactly an ELF form verifier/rodata.py resolves normalised to it, every other refused.

What the linker does with a Mach-O object, and why the normalised form is the same arithmetic
(ld64 and lld/MachO agree on each point used here; docs/machine-model.md, "The verified unit"):

- **Atoms.** clang marks every object MH_SUBSECTIONS_VIA_SYMBOLS: the linker cuts each section at
  its symbols into atoms it may reorder, fold or dead-strip one by one, and cuts literal sections
  (`__literal4/8/16`) into entries it deduplicates. A reference thus reaches the atom holding its
  symbol (extern), or the atom holding the address the instruction computes in the object
  (section-relative), and the rest of the section may lie anywhere. Each such atom is handed to
  rodata.py as a section of its own (`Section.atom`), cut at *every* symbol: ld64 makes no atom at
  an `l`-prefixed label where lld does, and a finer cut only ever names bytes that move together
  in both. An operand that leaves its atom is refused (rodata.collect). The atom's alignment is
  the least either linker keeps: the section's, and that of the atom's own offset and of every
  symbol before it (lld keeps `MinAlign(section, offset)` of the atom it makes).
- **x86-64 `X86_64_RELOC_SIGNED{,_1,_2,_4}`** (pc-relative, 4 bytes): both linkers write
  `S + A - (P + 4 + N)` with `A = field + N` (N = 0, 1, 2, 4), i.e. `S + field - 4 - P`: an ELF
  `R_X86_64_PC32` with addend `field - 4`. Section-relative (r_extern = 0), the field holds the
  target's object address minus `P + 4 + N`: the target `T = P + 4 + N + field` lies in the atom
  holding it, and `S + A - P` with S that atom and `A = T - S - 4 - N` is what the linker writes.
- **arm64 `ARM64_RELOC_PAGE21` / `PAGEOFF12`**, extern only, each with the addend of an
  `ARM64_RELOC_ADDEND` before it (r_symbolnum, 24 bits signed) or 0: the page difference on an
  `adrp` (ELF `ADR_PREL_PG_HI21`), and the low 12 bits on a 64-bit `add` (`ADD_ABS_LO12_NC`) or
  scaled as a load/store's size says (`LDST{8..128}_ABS_LO12_NC`, the size read from the
  instruction as both linkers read it). ld64 replaces the immediate field, lld ORs into it: they
  agree only when the object leaves it zero, so a non-zero field is refused.
- **Linker optimisation hints** (LC_LINKER_OPTIMIZATION_HINT, arm64): ld64 and newer lld rewrite
  the instructions a hint names (`adrp`+`add` into `adr`+`nop`, `adrp`+`ldr` into a literal
  `ldr`) trusting the object's claim that they form one sequence; a hint that lies changes what
  runs. Each named instruction is a range the linker may rewrite: refused in the unit.
- Only a symbol that binds here is resolved: a local one or a private extern (N_PEXT), not a
  global one (another image or a flat-namespace lookup may supply it) nor a weak definition (the
  linker keeps one of several); a section holding a weak definition is refused whole.

Everything else keeps rtype -1, which matches no ELF type, so relocs.check_relocations refuses it
where it meets the unit, saying why (`Reloc.why`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from . import relocs, rodata, symbols
from .errors import BlobError, UnsupportedError

N_EXT, N_PEXT, N_WEAK_DEF = 0x01, 0x10, 0x0080
X86_SIGNED = {1: 0, 6: 1, 7: 2, 8: 4}             # SIGNED, SIGNED_1, SIGNED_2, SIGNED_4 -> N
A64_PAGE21, A64_PAGEOFF12, A64_ADDEND = 3, 4, 10
LC_LINKER_OPTIMIZATION_HINT = 0x2E
LOH_NAMES = {1: "AdrpAdrp", 2: "AdrpLdr", 3: "AdrpAddLdr", 4: "AdrpLdrGotLdr", 5: "AdrpAddStr",
             6: "AdrpLdrGotStr", 7: "AdrpAdd", 8: "AdrpLdrGot"}
# __TEXT sections the linker places as plain read-only data: (name, section type) -> entry size
# (0: cut at symbols only). __cstring (S_CSTRING_LITERALS) is cut at NULs and merged by string;
# __DATA,__const is written by dyld; anything with an attribute or another type means more.
RODATA = {("__const", 0x0): 0, ("__literal4", 0x3): 4, ("__literal8", 0x4): 8, ("__literal16", 0xE): 16}
_ENTRY = struct.Struct("<iI")


def rodata_kind(segment: str, name: str, kind: int, attributes: int, size: int) -> int | None:
    """The entry size of a read-only data section of an object (0: whole), None if it is not one."""
    piece = RODATA.get((name, kind))
    if segment != "__TEXT" or attributes or piece is None or (piece and size % piece):
        return None
    return piece


@dataclass(frozen=True)
class SymbolInfo:
    symbol: symbols.Symbol | None     # None: a debugging entry (N_STAB)
    n_type: int
    n_desc: int


@dataclass(frozen=True)
class _Entry:
    sec: symbols.Section
    address: int                      # r_address: from the section's start
    n: int
    pcrel: bool
    length: int
    extern: bool
    rtype: int
    addend: int | None                # from an ARM64_RELOC_ADDEND before it


def read(path: str, data: bytes, fat_offset: int, arch: str, sections: list[symbols.Section],
         headers: list[Any], table: list[SymbolInfo], pieces: dict[int, int]) -> list[relocs.Reloc]:
    """Every relocation entry of the object and every instruction a hint names, as `Reloc`s.
    `headers`: LIEF's sections (for the relocation tables); `pieces`: rodata sections' entry sizes."""
    entries = _entries(path, data, fat_offset, arch, sections, headers)
    spans = [(e.space, e.at - e.pre, e.at + e.width) if isinstance(e, relocs.Reloc) else
             (e.sec.key, e.sec.start + e.address - relocs.macho(arch, e.rtype, e.length)[1],
              e.sec.start + e.address + relocs.macho(arch, e.rtype, e.length)[2]) for e in entries]
    atoms = _Atoms(sections, table, pieces, [(k, a, b) for k, a, b in spans if k is not None])
    out = [_normalise(arch, e, sections, table, atoms) for e in entries]
    out += _hints(path, data, fat_offset, sections)
    return out


def _entries(path: str, data: bytes, fat_offset: int, arch: str, sections: list[symbols.Section],
             headers: list[Any]) -> list[_Entry | relocs.Reloc]:
    out: list[_Entry | relocs.Reloc] = []
    for sec, s in zip(sections, headers, strict=True):
        at = fat_offset + s.relocation_offset
        raw = data[at: at + _ENTRY.size * s.numberof_relocations]
        if len(raw) != _ENTRY.size * s.numberof_relocations:
            raise BlobError(f"{path}: the relocations of {sec.name} lie past the end of the file: truncated file?")
        addend: int | None = None
        for address, info in _ENTRY.iter_unpack(raw):
            if address < 0:                 # a scattered relocation (not used on x86-64 or arm64)
                kind, pre, width = relocs.macho(arch, 99, 0)
                out.append(relocs.Reloc(sec.key, sec.start + (address & 0xFFFFFF), kind, pre, width, "an address",
                                        why="a scattered relocation, which x86-64 and arm64 objects do not use"))
                addend = None
                continue
            n, length, extern, rtype = info & 0xFFFFFF, (info >> 25) & 3, bool((info >> 27) & 1), info >> 28
            if arch == "aarch64" and rtype == A64_ADDEND:
                if addend is not None:          # two in a row: the first pairs with nothing
                    out.append(_unpaired(arch, sec, address))
                addend = n - (1 << 24) if n & (1 << 23) else n
                continue
            if addend is not None and rtype not in (A64_PAGE21, A64_PAGEOFF12):
                # ld64 takes an addend only for these two; another linker may add it to anything
                out.append(_unpaired(arch, sec, address))
            out.append(_Entry(sec, address, n, bool((info >> 24) & 1), length, extern, rtype, addend))
            addend = None
        if addend is not None:
            out.append(_unpaired(arch, sec, max(0, len(sec.content) - 4)))
    return out


def _unpaired(arch: str, sec: symbols.Section, address: int) -> relocs.Reloc:
    kind, pre, width = relocs.macho(arch, A64_ADDEND, 2)
    return relocs.Reloc(sec.key, sec.start + address, kind, pre, width, "no PAGE21 or PAGEOFF12 relocation",
                        why="an ARM64_RELOC_ADDEND not followed by the PAGE21 or PAGEOFF12 it belongs to")


class _Atoms:
    """The atoms of the object's read-only data sections, each as a `symbols.Section` of its own."""

    def __init__(self, sections: list[symbols.Section], table: list[SymbolInfo], pieces: dict[int, int],
                 spans: list[tuple[int, int, int]]):
        self.sections = sections
        self.pieces = pieces
        self.weak: set[int] = set()
        self.made: dict[tuple[int, int], symbols.Section] = {}
        self.held: dict[int, list[tuple[int, int]]] = {}     # bytes of a section relocations rewrite
        cuts: dict[int, set[int]] = {}
        for sec in sections:
            if sec.rodata:
                piece = pieces.get(sec.key, 0)
                cuts[sec.key] = {sec.start, sec.end, *(range(sec.start, sec.end, piece) if piece else ())}
        for info in table:
            s = info.symbol
            if s is None or s.section is None or s.section.key not in cuts:
                continue
            if s.section.start <= s.value < s.section.end:
                cuts[s.section.key].add(s.value)
            if info.n_desc & N_WEAK_DEF:
                self.weak.add(s.section.key)
        self.cuts = {k: sorted(v) for k, v in cuts.items()}
        for key, lo, hi in spans:
            self.held.setdefault(key, []).append((lo, hi))

    def of(self, sec: symbols.Section, at: int) -> symbols.Section | None:
        """The atom of `sec` holding the object address `at`, None when no atom of it does, or when
        another section claims the address too (lld finds the atom by section and offset, ld64 by
        address: in a well-formed object they agree)."""
        cuts = self.cuts.get(sec.key)
        if cuts is None or sum(s.start <= at < s.end for s in self.sections) != 1 or not sec.start <= at < sec.end:
            return None
        i = max(k for k, c in enumerate(cuts) if c <= at)
        lo, hi = cuts[i], cuts[i + 1]
        made = self.made.get((sec.key, lo))
        if made is None:
            align = sec.align
            if self.pieces.get(sec.key):
                # a literal entry: a deduplicating linker pools it with every object's literals and
                # keeps it aligned only to its size (lld's WordLiteralSection), whatever its section claims
                align = min(align, self.pieces[sec.key])
            for c in cuts[1:i + 1]:        # lld aligns an atom only as far as its offset allows
                off = c - sec.start
                align = min(align, off & -off)
            if sec.start:                  # (ld64 keeps an atom aligned as its address in the object is)
                align = min(align, sec.start & -sec.start, lo & -lo if lo else align)
            whole = lo == sec.start and hi == sec.end
            made = symbols.Section((sec.key << 32) | (lo - sec.start), sec.name if whole else
                                   f"{sec.name}+{lo - sec.start:#x}", lo, sec.content[lo - sec.start:hi - sec.start],
                                   False, False, True, align, 0, False, atom=True)
            self.made[sec.key, lo] = made
        return made

    def relocated(self, sec: symbols.Section, atom: symbols.Section) -> bool:
        return any(a < atom.end and atom.start < b for a, b in self.held.get(sec.key, []))


def _normalise(arch: str, e: _Entry | relocs.Reloc, sections: list[symbols.Section], table: list[SymbolInfo],
               atoms: _Atoms) -> relocs.Reloc:
    if isinstance(e, relocs.Reloc):
        return e
    kind, pre, width = relocs.macho(arch, e.rtype, e.length)
    info: SymbolInfo | None = None
    if e.extern:
        info = table[e.n] if e.n < len(table) else None
        sym = info.symbol if info is not None else None
        target = relocs.target(sym.name if sym is not None and sym.name else f"symbol #{e.n}", None)
        dest: Any = sym
    else:
        dest = sections[e.n - 1] if 0 < e.n <= len(sections) else None
        target = relocs.target(None, dest.name if dest is not None else f"section #{e.n}")
    base = relocs.Reloc(e.sec.key, e.sec.start + e.address, kind, pre, width, target, -1, None, dest)
    form = _form(arch, e)
    if form is None:
        return base
    elf_type, n = form
    if e.extern and (info is None or info.symbol is None):
        return _why(base, f"its symbol index {e.n} is not in the symbol table")
    if not e.extern and dest is None:
        return _why(base, f"its section ordinal {e.n} names no section of the object")
    if e.extern:
        assert info is not None and info.symbol is not None
        return _extern(base, e, elf_type, info, atoms)
    return _section_relative(base, e, elf_type, n, dest, atoms)


def _form(arch: str, e: _Entry) -> tuple[int, int] | None:
    """(ELF type, N) of an entry this module may normalise, by type, pc-relativity and length;
    the ELF type of an arm64 PAGEOFF12 is read from its instruction (None: refused)."""
    word = int.from_bytes(e.sec.content[e.address:e.address + 4], "little") \
        if 0 <= e.address and e.address + 4 <= len(e.sec.content) else None
    if e.length != 2 or word is None:
        return None
    if arch == "x86_64":
        return (rodata.X86_PC32, X86_SIGNED[e.rtype]) if e.rtype in X86_SIGNED and e.pcrel else None
    if not e.extern:
        return None            # arm64 has no section-relative PAGE21/PAGEOFF12 from any assembler
    if e.rtype == A64_PAGE21 and e.pcrel and (word >> 24) & 0x9F == 0x90 and not word & 0x60FFFFE0:
        return rodata.A64_ADR_PAGE, 0          # adrp with a zero immediate
    if e.rtype != A64_PAGEOFF12 or e.pcrel or word & (0xFFF << 10):
        return None
    if word & 0xFFC00000 == 0x91000000:         # add xd, xn, #0 (no shift)
        return rodata.A64_ADD_LO12, 0
    if word & 0x3B000000 == 0x39000000:         # a load or store [xn, #imm], unsigned offset
        scale = word >> 30
        if scale == 0 and word & 0x04800000 == 0x04800000:
            scale = 4                           # a 128-bit (q) access
        return next(t for t, s in rodata.A64_LDST_SCALE.items() if s == scale), 0
    return None


def _extern(base: relocs.Reloc, e: _Entry, elf_type: int, info: SymbolInfo, atoms: _Atoms) -> relocs.Reloc:
    sym = info.symbol
    assert sym is not None
    name = sym.name or base.target
    sec = sym.section
    if sec is None or not sym.defined:
        return base
    if not sec.rodata:
        return _why(base, _not_rodata(sec))
    if info.n_desc & N_WEAK_DEF or sec.key in atoms.weak:
        return _why(base, f"{name} is in {sec.name}, which holds a weak definition: the linker keeps one of "
                          "several, maybe another object's")
    if info.n_type & N_EXT and not info.n_type & N_PEXT:
        return _why(base, f"{name} is a global symbol: another definition of it (another image, a flat "
                          "namespace lookup) may be the one bound; make it static or private extern")
    atom = atoms.of(sec, sym.value)
    if atom is None:
        return _why(base, f"{name} lies outside {sec.name}, or also in another section")
    if atoms.relocated(sec, atom):
        return _why(base, f"{atom.name} holds a relocation itself")
    size = 1 << rodata.A64_LDST_SCALE.get(elf_type, 0)
    if atom.align < size:
        # lld writes a scaled page offset as (address & 0xfff) >> scale without checking the low
        # bits: an atom it places misaligned is read at the address rounded down
        return _why(base, f"{atom.name} is known aligned only to {atom.align} bytes, and the {size}-byte "
                          "access scales its page offset: the linker may place it misaligned and truncate it")
    if elf_type == rodata.X86_PC32:
        addend = _field(e) - 4
    else:
        addend = e.addend or 0
    to = symbols.Symbol(name, atom, sym.value, 0, "local", symbols.DATA)
    return relocs.Reloc(base.space, base.at, base.kind, base.pre, base.width, base.target, elf_type, addend, to)


def _section_relative(base: relocs.Reloc, e: _Entry, elf_type: int, n: int, sec: symbols.Section,
                      atoms: _Atoms) -> relocs.Reloc:
    if not sec.rodata:
        return _why(base, _not_rodata(sec))
    if sec.key in atoms.weak:
        return _why(base, f"{sec.name} holds a weak definition: the linker keeps one of several, maybe "
                          "another object's")
    at = e.sec.start + e.address + 4 + n + _field(e)    # the address the instruction computes, in the object
    atom = atoms.of(sec, at)
    if atom is None:
        return _why(base, f"its target {at:#x} lies outside {sec.name}, or also in another section")
    if atoms.relocated(sec, atom):
        return _why(base, f"{atom.name} holds a relocation itself")
    to = symbols.Symbol(atom.name, atom, atom.start, 0, "local", symbols.DATA)
    return relocs.Reloc(base.space, base.at, base.kind, base.pre, base.width,
                        relocs.target(None, sec.name, at - sec.start), elf_type, at - atom.start - 4 - n, to)


def _field(e: _Entry) -> int:
    return int.from_bytes(e.sec.content[e.address:e.address + 4], "little", signed=True)


def _not_rodata(sec: symbols.Section) -> str:
    return (f"{sec.name} is not read-only data nverify models (only __TEXT,__const and __TEXT,__literal4/8/16 "
            "without attributes: strings are merged, __DATA is written by dyld)")


def _why(r: relocs.Reloc, why: str) -> relocs.Reloc:
    return relocs.Reloc(r.space, r.at, r.kind, r.pre, r.width, r.target, -1, None, r.to, why)


# --- linker optimisation hints ------------------------------------------------------------------

def _hints(path: str, data: bytes, fat_offset: int, sections: list[symbols.Section]) -> list[relocs.Reloc]:
    """Each instruction a hint names, as a 4-byte range the linker may rewrite."""
    found = _hint_data(path, data, fat_offset)
    if found is None:
        return []
    out = []
    pos = 0

    def uleb() -> int:
        nonlocal pos
        v = shift = 0
        while True:
            if pos >= len(found):
                raise BlobError(f"{path}: its linker optimization hints run past their end: truncated file?")
            b = found[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while any(found[pos:]):      # zeros pad the table to 8 bytes
        kind, count = uleb(), uleb()
        addresses = [uleb() for _ in range(count)]
        name = LOH_NAMES.get(kind, f"kind {kind}")
        for a in addresses:
            sec = next((s for s in sections if s.start <= a < s.end), None)
            if sec is None:
                continue
            where = ", ".join(f"{x:#x}" for x in addresses)
            out.append(relocs.Reloc(
                sec.key, a, f"linker optimization hint {name}", 0, 4, f"the instructions at {where}",
                why="ld64 rewrites the instructions a hint names (adrp+add into adr+nop, adrp+ldr into a literal "
                    "ldr) trusting the object that they form one sequence, which nverify does not check; build "
                    "without hints (clang -mllvm -aarch64-enable-collect-loh=false)"))
    return out


def _hint_data(path: str, data: bytes, fat_offset: int) -> bytes | None:
    """The bytes of LC_LINKER_OPTIMIZATION_HINT, None without one. Two are refused: which one a
    linker reads is not known (LIEF and lld read the first)."""
    if len(data) < fat_offset + 32:
        return None
    ncmds, size = struct.unpack_from("<II", data, fat_offset + 16)
    at, end = fat_offset + 32, fat_offset + 32 + size
    found: bytes | None = None
    for _ in range(ncmds):
        if at + 8 > min(end, len(data)):
            raise BlobError(f"{path}: its load commands run past their end: truncated file?")
        cmd, cmdsize = struct.unpack_from("<II", data, at)
        if cmd == LC_LINKER_OPTIMIZATION_HINT:
            if cmdsize < 16 or at + 16 > len(data):
                raise BlobError(f"{path}: a malformed LC_LINKER_OPTIMIZATION_HINT")
            off, n = struct.unpack_from("<II", data, at + 8)
            if fat_offset + off + n > len(data):
                raise BlobError(f"{path}: its linker optimization hints lie past the end of the file: truncated file?")
            if found is not None:
                raise UnsupportedError(f"{path}: two LC_LINKER_OPTIMIZATION_HINT commands: which the linker reads "
                                       "is not known")
            found = data[fat_offset + off: fat_offset + off + n]
        if cmdsize < 8:
            raise BlobError(f"{path}: a load command of {cmdsize} bytes: malformed Mach-O")
        at += cmdsize
    return found

"""A reader for relocatable ELF64 objects (what `gcc -c` and `as` write), without LIEF.

Importing LIEF takes 0.3-0.5 s, a third of a small proof, and an object file needs only its
section headers, its symbol table and its relocation sections. `parse` reads those for a
little-endian ELF64 object for x86-64 or AArch64 and returns its sections, symbols (binding and
type included) and relocations (type and addend included), which verifier/elfload.py turns into a
`symbols.ObjectFile` as it does LIEF's reading of any other ELF file; or None for anything else:
other ELF types (executables, shared objects), other machines, extended section numbering, or
any header, table or offset that does not fit the file. LIEF then reads the file as before, and
decides what is damaged and how to say so. A test reads every ELF object the test suite builds
with both and compares what they give.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ET_REL = 1
MACHINES = {62: "x86_64", 183: "aarch64"}
SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHT_DYNSYM = 2, 4, 8, 9, 11
STT_FUNC = 2
_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
_REL = {SHT_REL: struct.Struct("<QQ"), SHT_RELA: struct.Struct("<QQq")}


@dataclass
class Section:
    name: str | bytes
    type: int
    content: bytes
    link: int
    info: int
    entsize: int
    flags: int = 0
    align: int = 1


@dataclass
class Symbol:
    name: str | bytes
    is_function: bool
    value: int
    size: int
    shndx: int
    binding: int = 0      # STB_LOCAL, STB_GLOBAL, STB_WEAK...
    type: int = 0         # STT_NOTYPE, STT_OBJECT, STT_FUNC...


@dataclass
class Relocation:
    address: int
    section: Section | None
    symbol: Symbol | None
    type: int = 0
    addend: int = 0
    table: Section | None = None      # the SHT_REL or SHT_RELA section it came from

    @property
    def has_section(self) -> bool:
        return self.section is not None

    @property
    def has_symbol(self) -> bool:
        return self.symbol is not None


@dataclass
class Object:
    arch: str
    sections: list[Section]
    symbols: list[Symbol] = field(default_factory=list)
    relocations: list[Relocation] = field(default_factory=list)


class _Unread(Exception):
    """Not a file this reader takes: LIEF reads it."""


def parse(data: bytes) -> Object | None:
    try:
        return _parse(data)
    except (_Unread, struct.error, IndexError):
        return None


def _name(table: bytes, at: int) -> str | bytes:
    if at >= len(table):
        raise _Unread
    end = table.find(b"\0", at)
    raw = table[at:] if end < 0 else table[at:end]
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw        # as LIEF gives a name that is not UTF-8


def _slice(data: bytes, offset: int, size: int) -> bytes:
    if offset + size > len(data):
        raise _Unread
    return data[offset:offset + size]


def _parse(data: bytes) -> Object:
    if len(data) < _HEADER.size or data[4] != 2 or data[5] != 1:        # ELFCLASS64, little-endian
        raise _Unread
    (_ident, e_type, machine, _version, _entry, _phoff, shoff, _flags, _ehsize, _phentsize, _phnum,
     shentsize, shnum, shstrndx) = _HEADER.unpack_from(data)
    if e_type != ET_REL or machine not in MACHINES or shentsize != _SECTION.size or shnum == 0 \
            or shstrndx >= shnum:
        raise _Unread
    headers = [_SECTION.unpack(_slice(data, shoff + i * shentsize, shentsize)) for i in range(shnum)]
    contents = [b"" if h[1] == SHT_NOBITS else _slice(data, h[4], h[5]) for h in headers]
    names = contents[shstrndx]
    sections = [Section(_name(names, h[0]), h[1], c, h[6], h[7], h[9], h[2], max(h[8], 1))
                for h, c in zip(headers, contents, strict=True)]
    if any(s.type == SHT_DYNSYM for s in sections):
        raise _Unread
    obj = Object(MACHINES[machine], sections)
    tables: dict[int, list[Symbol]] = {}
    for i, s in enumerate(sections):
        if s.type == SHT_SYMTAB:
            if s.entsize != _SYMBOL.size or s.link >= len(sections):
                raise _Unread
            strings = sections[s.link].content
            tables[i] = [Symbol(_name(strings, n), info & 0xF == STT_FUNC, value, size, shndx, info >> 4, info & 0xF)
                         for n, info, _other, shndx, value, size in _SYMBOL.iter_unpack(s.content)]
            obj.symbols += tables[i]
    for s in sections:
        if s.type in _REL:
            layout = _REL[s.type]
            if s.entsize != layout.size or len(s.content) % layout.size or s.link not in tables:
                raise _Unread
            target = sections[s.info] if s.info else None
            for offset, info, *addend in layout.iter_unpack(s.content):
                k = info >> 32
                obj.relocations.append(Relocation(offset, target, tables[s.link][k] if k else None,
                                                  info & 0xFFFFFFFF, addend[0] if addend else 0, s))
    return obj

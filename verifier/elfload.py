"""ELF files (objects through verifier/elf.py, anything else through LIEF) -> `symbols.ObjectFile` -> `Blob`."""

from __future__ import annotations

import re
from typing import Any

from . import relocs, symbols
from .arch import canonical_arch
from .blob import DEFAULT_BASE, Blob, text
from .errors import BlobError, UnsupportedError, UsageError

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_MERGE = 0x1, 0x2, 0x4, 0x10
SHF_STRINGS, SHF_GROUP, SHF_TLS, SHF_EXCLUDE = 0x20, 0x200, 0x400, 0x80000000
SHT_PROGBITS = 1
# Code is a section a program loads and may execute: SHF_EXECINSTR without SHF_ALLOC (".section .foo,
# \"x\"") is left out of every segment by the static linker, which still binds the function's name to
# its offset from address 0, so a call to it faults (tests/test_adversarial.py, test_elf_unloaded_code).
CODE = SHF_ALLOC | SHF_EXECINSTR
PF_X = 0x1
PAGE_SIZES = {"x86_64": (0x1000,), "aarch64": (0x1000, 0x4000, 0x10000)}   # Linux's page sizes per ISA
SHN_LORESERVE = 0xFF00
BINDINGS = {0: "local", 1: "global", 2: "weak", 10: "global"}     # 10: STB_GNU_UNIQUE
KINDS = {0: symbols.NOTYPE, 1: symbols.DATA, 2: symbols.FUNCTION, 3: symbols.SECTION, 5: symbols.DATA,
         6: symbols.DATA, 10: symbols.IFUNC}
MAPPING = re.compile(r"\$[xdat](\..*)?")   # AArch64/Arm mapping symbols: markers, not names


def load_elf(path: str, data: bytes, arch: str | None, base: int | None, symbol: str | None,
             explicit_symbol: bool) -> Blob:
    obj = read(path, data)
    if arch is not None and canonical_arch(arch) != obj.arch:
        raise UsageError(f"{path}: --arch {arch} conflicts with the ELF header, which says {obj.arch}; "
                         "drop --arch or pass the right file")
    if base is not None:
        raise UsageError(f"{path}: --base applies to raw blobs only; an ELF file places its code itself")
    if symbol is None:
        raise UsageError(f"{path}: say which function to verify with --symbol NAME")
    return symbols.unit(path, obj, [symbol], explicit_symbol)


def read(path: str, data: bytes) -> symbols.ObjectFile:
    """Every section, symbol and relocation of an ELF file, as the linker sees them."""
    from . import elf

    fast = elf.parse(data)       # an object file, read without importing LIEF (verifier/elf.py)
    if fast is not None:
        _relocations_read(path, [s.type for s in fast.sections])
        return _from_fast(fast)
    return _from_lief(path, data)


# Relocation sections in formats nverify does not decode: CREL (lld 19, GNU ld 2.45 apply it in
# objects), Android's packed REL/RELA/RELR, and RELR. Read as unknown sections, their relocations
# would go unseen while the linker rewrites the function's bytes (tests/test_adversarial.py,
# test_elf_crel_relocation): such an object is refused whole.
UNREAD_RELOCS = {0x40000014: "SHT_CREL", 0x60000001: "SHT_ANDROID_REL", 0x60000002: "SHT_ANDROID_RELA",
                 19: "SHT_RELR", 0x6FFFFF00: "SHT_ANDROID_RELR"}


def _relocations_read(path: str, types: list[int]) -> None:
    unread = sorted({UNREAD_RELOCS[t] for t in types if t in UNREAD_RELOCS})
    if unread:
        raise UnsupportedError(f"{path}: relocations in {', '.join(unread)} sections, a format nverify does "
                               "not read; the linker would rewrite bytes nverify cannot see")


def _symbol(name, binding: int, kind: int, shndx: int, value: int, size: int,
            sections: list[symbols.Section | None]) -> symbols.Symbol | None:
    name = text(name)
    bind = BINDINGS.get(binding, "global")        # an unknown binding is not taken for a local
    if bind == "local" and MAPPING.fullmatch(name):
        return None
    section = sections[shndx] if 0 < shndx < min(SHN_LORESERVE, len(sections)) else None
    return symbols.Symbol(name, section, value, size, bind, KINDS.get(kind, symbols.OTHER), defined=shndx != 0)


def _target(s: Any, addend: int, sections: list[symbols.Section | None]) -> str:
    """A relocation's target for messages: its symbol's name, else (a section symbol, or a symbol
    with no name) its section plus the offset."""
    name = text(s.name) if s.name else ""
    section = sections[s.shndx] if 0 < s.shndx < len(sections) else None
    if section is not None and (int(s.type) == 3 or not name):          # 3: STT_SECTION
        return relocs.target(None, section.name, s.value - section.start + addend)
    return relocs.target(name or None, None, addend)


def _from_fast(fast: Any) -> symbols.ObjectFile:
    from . import elf

    sections: list[symbols.Section | None] = [
        symbols.Section(i, text(s.name), 0, s.content, s.flags & CODE == CODE, bool(s.flags & SHF_WRITE),
                        _rodata(text(s.name), s.type, s.flags), s.align, s.entsize if s.flags & SHF_MERGE else 0,
                        bool(s.flags & SHF_GROUP), _plain_code(text(s.name), s.type, s.flags))
        for i, s in enumerate(fast.sections)]
    obj = symbols.ObjectFile("elf", fast.arch, relocatable=True, bias=DEFAULT_BASE)
    for s in fast.symbols:
        sym = _symbol(s.name, s.binding, s.type, s.shndx, s.value, s.size, sections)
        if sym is not None:
            obj.symbols.append(sym)
    index = {id(s): i for i, s in enumerate(fast.sections)}
    rela = {id(s) for s in fast.sections if s.type == elf.SHT_RELA}
    for r in fast.relocations:
        if r.section is None:
            continue            # a relocation section that applies to no section patches nothing
        kind, pre, width = relocs.elf(fast.arch, r.type)
        s = r.symbol
        to = _target(s, r.addend, sections) if s is not None else relocs.target(None, None, r.addend)
        sym = _symbol(s.name, s.binding, s.type, s.shndx, s.value, s.size, sections) if s is not None else None
        obj.relocations.append(relocs.Reloc(index[id(r.section)], r.address, kind, pre, width, to, r.type,
                                            r.addend if id(r.table) in rela else None, sym))
    return obj


def _rodata(name: str, kind: int, flags: int) -> bool:
    """Read-only data a function of the object may take into its unit (symbols.Section.rodata):
    allocated bytes nobody writes or runs, in no COMDAT group (another object's copy of the group
    may be linked instead) and not merged as strings (pieces the linker cuts at each NUL), in a
    section the linker places as plain read-only data: named .rodata, .rodata.* or .rodata1, as
    compilers name it. The linker and the C library give other names meaning: the entries of a
    PROGBITS "a" section named .ctors are called before main (a proven unit whose table lay there
    crashed the program at start), .init_array*, .eh_frame, .gnu.linkonce.*, glibc's
    __libc_atexit, ..."""
    named = name in (".rodata", ".rodata1") or name.startswith(".rodata.")
    bad = SHF_WRITE | SHF_EXECINSTR | SHF_GROUP | SHF_STRINGS | SHF_TLS
    return named and kind == SHT_PROGBITS and bool(flags & SHF_ALLOC) and not flags & bad


def _plain_code(name: str, kind: int, flags: int) -> bool:
    """Code of an object the linker places as any other (symbols.Section.plain_code): allocated,
    executable PROGBITS named .text or .text.*, as compilers name it, not merged (ld, gold and lld
    cut an SHF_MERGE section into entities of its entry size and keep one of each value: two equal
    instructions became one), in no group, not TLS and not excluded. Other names have meaning: ld
    places `.init`/`.fini` inside _init/_fini, run at start and exit; the runtime calls the entries
    of `.init_array`/`.ctors`; a `.gnu.warning` section is a warning's text, dropped from the
    output; ... The Linux kernel frees `.text.startup` after boot and drops `.text.exit`."""
    named = name == ".text" or (name.startswith(".text.") and not name.startswith((".text.startup", ".text.exit")))
    bad = SHF_WRITE | SHF_MERGE | SHF_STRINGS | SHF_GROUP | SHF_TLS | SHF_EXCLUDE
    return named and kind == SHT_PROGBITS and flags & CODE == CODE and not flags & bad


def _as_loaded(data: bytes, segments: list[Any], arch: str, addr: int, size: int) -> tuple[bytes, bool]:
    """The bytes the loader maps at a code section's address in an executable or shared object, and
    whether it leaves them executable. The loader reads program headers, never section headers: a
    section header whose sh_offset points at other bytes of the file (a decoy) would otherwise have
    nverify verify bytes that never run (tests/test_adversarial.py, test_elf_section_offset_decoy).
    The mapping is worked out as Linux's binfmt_elf makes it for each page size the ISA's kernels
    use; a section whose bytes or execute permission depend on the page size, or that is not wholly
    mapped executable from the file, is not code the program can run: not executable, so refused."""
    import lief

    loads = [g for g in segments if g.type == lief.ELF.Segment.TYPE.LOAD]
    relro = [g for g in segments if g.type == lief.ELF.Segment.TYPE.GNU_RELRO]
    seen = set()
    for page in PAGE_SIZES[arch]:
        if all((g.virtual_address - g.file_offset) % page == 0 for g in loads):   # else exec fails
            seen.add(_mapped(data, loads, relro, addr, size, page))
    content, executable = seen.pop() if len(seen) == 1 else (None, False)
    return (content, executable) if content is not None else (b"", False)


def _mapped(data: bytes, loads: list[Any], relro: list[Any], addr: int, size: int,
            page: int) -> tuple[bytes | None, bool]:
    """binfmt_elf with pages of `page` bytes: each PT_LOAD in program-header order maps whole pages
    of the file from the page holding p_vaddr (MAP_FIXED: a later one replaces what an earlier one
    mapped), with the rest of its last file page zeroed and zero pages up to p_memsz when p_memsz
    exceeds p_filesz; then ld.so makes PT_GNU_RELRO's pages read-only. None: some byte is unmapped
    or past the end of the file."""
    out, mapped, x = bytearray(size), bytearray(size), bytearray(size)

    def up(v: int) -> int:
        return -(-v // page) * page

    for g in loads:
        vaddr, filesz, memsz = g.virtual_address, g.physical_size, g.virtual_size
        bss = memsz > filesz
        a0, a1 = max(addr, vaddr - vaddr % page), min(addr + size, up(vaddr + (memsz if bss else filesz)))
        if a0 >= a1:
            continue
        f1 = max(a0, min(a1, vaddr + filesz)) if bss else a1      # [a0, f1) from the file, then zeros
        off = g.file_offset + a0 - vaddr
        if off + f1 - a0 > len(data):
            return None, False
        out[a0 - addr:f1 - addr] = data[off:off + f1 - a0]
        out[f1 - addr:a1 - addr] = bytes(a1 - f1)
        mapped[a0 - addr:a1 - addr] = b"\1" * (a1 - a0)
        x[a0 - addr:a1 - addr] = (b"\1" if int(g.flags) & PF_X else b"\0") * (a1 - a0)
    for g in relro:
        a0 = max(addr, g.virtual_address - g.virtual_address % page)
        a1 = min(addr + size, up(g.virtual_address + g.virtual_size))
        if a0 < a1:
            x[a0 - addr:a1 - addr] = bytes(a1 - a0)
    if not all(mapped):
        return None, False
    return bytes(out), all(x)


def _from_lief(path: str, data: bytes) -> symbols.ObjectFile:
    """LIEF's reading of an ELF file: executables, shared objects, and objects elf.py leaves to it."""
    import lief

    lief.logging.disable()
    binary: Any = lief.ELF.parse(list(data)) if data else None
    if binary is None:
        raise BlobError(f"{path}: malformed ELF file: LIEF could not parse its headers")
    machine = binary.header.machine_type
    found = {lief.ELF.ARCH.X86_64: "x86_64", lief.ELF.ARCH.AARCH64: "aarch64"}.get(machine)
    if found is None:
        raise UnsupportedError(f"{path}: ELF machine {machine.name} is not supported (x86_64 and aarch64 are)")
    rel = binary.header.file_type == lief.ELF.Header.FILE_TYPE.REL
    raw = list(binary.sections)
    if rel:
        _relocations_read(path, [int(s.type) for s in raw])
    sections: list[symbols.Section | None] = []
    for i, s in enumerate(raw):
        content = b"" if s.type == lief.ELF.Section.TYPE.NOBITS else bytes(s.content)
        executable = int(s.flags) & CODE == CODE
        if executable and not rel:
            content, executable = _as_loaded(data, list(binary.segments), found, s.virtual_address, len(content))
        sections.append(symbols.Section(
            i, text(s.name), 0 if rel else s.virtual_address, content, executable, bool(int(s.flags) & SHF_WRITE),
            rel and _rodata(text(s.name), int(s.type.value), int(s.flags)), max(int(s.alignment), 1),
            int(s.entry_size) if int(s.flags) & SHF_MERGE else 0, bool(int(s.flags) & SHF_GROUP),
            rel and _plain_code(text(s.name), int(s.type.value), int(s.flags))))
    obj = symbols.ObjectFile("elf", found, relocatable=rel, bias=DEFAULT_BASE if rel else 0)
    for s in binary.symbols:
        sym = _symbol(s.name, int(s.binding), int(s.type), s.shndx, s.value, s.size, sections)
        if sym is not None:
            obj.symbols.append(sym)
    index = {(text(s.name), s.offset, s.size): i for i, s in enumerate(raw)}
    type_mask = 0xFF if binary.header.identity_class == lief.ELF.Header.CLASS.ELF32 else 0xFFFFFFFF
    for r in binary.relocations:
        space = None
        if rel:
            if not r.has_section or r.section is None:
                continue
            space = index.get((text(r.section.name), r.section.offset, r.section.size))
            if space is None:
                raise BlobError(f"{path}: a relocation applies to a section that is not in the section table")
        rtype = r.r_info(binary.header.identity_class) & type_mask
        kind, pre, width = relocs.elf(found, rtype)
        s = r.symbol if r.has_symbol else None
        to = _target(s, r.addend, sections) if s is not None else relocs.target(None, None, r.addend)
        sym = _symbol(s.name, int(s.binding), int(s.type), s.shndx, s.value, s.size, sections) \
            if s is not None else None
        obj.relocations.append(relocs.Reloc(space, r.address, kind, pre, width, to, rtype,
                                            r.addend if r.is_rela else None, sym))
    return obj

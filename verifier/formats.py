"""Mach-O (thin and fat) and PE/COFF (images and objects) through LIEF -> `symbols.ObjectFile` -> `Blob`.

Neither format records a function's size. Its extent is therefore taken from the next thing
known to start after it in the same code section (verifier/symbols.py: another symbol, a
Mach-O function start, a PE unwind entry) or the section's end; a PE unwind entry that starts
at the function gives its exact end. Mach-O's linker splits a section at every symbol
(MH_SUBSECTIONS_VIA_SYMBOLS), so there every symbol ends the function before it.
"""

from __future__ import annotations

import struct
from typing import Any

from . import macho_relocs, relocs, rodata, symbols
from .arch import canonical_arch
from .blob import DEFAULT_BASE, Blob, text
from .errors import BlobError, UnsupportedError, UsageError

IMAGE_SCN_CNT_CODE, IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_WRITE = 0x20, 0x20000000, 0x80000000
COFF_MACHINES = {0x8664: "x86_64", 0xAA64: "aarch64"}


def looks_like_coff(data: bytes) -> bool:
    """A COFF object starts with its machine, then a section count and a symbol table in the file.

    There is no magic number, so the header must also be consistent with the file: raw code
    that happens to start with the same two bytes is not taken for an object.
    """
    if len(data) < 20 or int.from_bytes(data[:2], "little") not in COFF_MACHINES:
        return False
    nsections = int.from_bytes(data[2:4], "little")
    symtab, nsyms = int.from_bytes(data[8:12], "little"), int.from_bytes(data[12:16], "little")
    opt = int.from_bytes(data[16:18], "little")
    return 0 < nsections <= 96 and opt == 0 and 20 + 40 * nsections <= symtab \
        and symtab + 18 * nsyms <= len(data) and nsyms > 0


def _candidates(symbol: str, explicit: bool, underscore: bool) -> list[str]:
    """Mach-O C symbols carry a leading underscore: `add` is `_add` in the file."""
    if not underscore:
        return [symbol]
    return [symbol, f"_{symbol}"] if explicit else [f"_{symbol}", symbol]


def _check_arch(path: str, kind: str, found: str, arch: str | None) -> None:
    if arch is not None and canonical_arch(arch) != found:
        raise UsageError(f"{path}: --arch {arch} conflicts with the {kind} header, which says {found}; "
                         "drop --arch or pass the right file")


def _common(path: str, base: int | None, symbol: str | None) -> str:
    if base is not None:
        raise UsageError(f"{path}: --base applies to raw blobs only; an object file places its code itself")
    if symbol is None:
        raise UsageError(f"{path}: say which function to verify with --symbol NAME")
    return symbol



# --- Mach-O ------------------------------------------------------------------------------------

N_STAB, N_TYPE, N_EXT, N_SECT, N_UNDF, N_WEAK_DEF = 0xE0, 0x0E, 0x01, 0x0E, 0x00, 0x0080
VM_PROT_EXECUTE = 0x4


def load_macho(path: str, data: bytes, arch: str | None, base: int | None, symbol: str | None,
               explicit_symbol: bool) -> Blob:
    import lief

    lief.logging.disable()
    fat = lief.MachO.parse(list(data))
    if fat is None or fat.size == 0:
        raise BlobError(f"{path}: malformed Mach-O file: LIEF could not parse its headers")
    name = _common(path, base, symbol)
    found, binary = _slice(path, fat, arch)
    obj = _macho_file(path, data, binary, found)
    return symbols.unit(path, obj, _candidates(name, explicit_symbol, underscore=True), explicit_symbol)


def _slice(path: str, fat: Any, arch: str | None) -> tuple[str, Any]:
    import lief

    cpus = {lief.MachO.Header.CPU_TYPE.X86_64: "x86_64", lief.MachO.Header.CPU_TYPE.ARM64: "aarch64"}
    # LIEF objects are typed Any here: its stubs mark every accessor Optional, and a damaged
    # file that yields None where an object was expected is turned into an input error by
    # blob._contained.
    members: list[Any] = [fat.at(i) for i in range(fat.size)]
    slices = [(cpus.get(b.header.cpu_type), b) for b in members]
    usable = [(a, b) for a, b in slices if a is not None]
    names = ", ".join(str(b.header.cpu_type).split(".")[-1].lower() for _, b in slices)
    if not usable:
        raise UnsupportedError(f"{path}: Mach-O for {names}; only x86_64 and arm64 are supported")
    if fat.size == 1:
        _check_arch(path, "Mach-O", usable[0][0], arch)
        return usable[0]
    if arch is None:
        raise UsageError(f"{path} is a fat Mach-O with slices {names}: choose one with --arch")
    want = canonical_arch(arch)
    chosen = [b for a, b in usable if a == want]
    if not chosen:
        raise UsageError(f"{path}: the fat Mach-O has no {want} slice (it has {names})")
    if len(chosen) > 1:
        # Slices of one CPU type differ by subtype (x86_64 and x86_64h, arm64 and arm64e), and which
        # one runs is the machine's or the process's choice (a Haswell Mac loads x86_64h; an arm64e
        # process arm64e): verifying the first would leave the other unverified.
        raise UnsupportedError(f"{path}: the fat Mach-O has {len(chosen)} {want} slices (subtypes "
                               f"{', '.join(str(b.header.cpu_subtype) for b in chosen)}); the one that "
                               "runs depends on the CPU or the process, so neither is verified alone")
    return want, chosen[0]


def _macho_loaded(binary: Any, s: Any, code: bool, is_obj: bool) -> tuple[bytes, bool]:
    """A Mach-O section's bytes and whether they are code that can run. ld64 copies an object's
    sections by their own offset, but dyld maps an image's segments (fileoff, vmaddr, initprot) and
    never reads a section's offset: a section header pointing at other bytes of the file (a decoy)
    would otherwise have nverify verify bytes that never run (tests/test_adversarial.py,
    test_macho_section_offset_decoy). In an image, a code section's bytes are read through the
    segment that maps its address, and are code only if that segment is mapped executable."""
    if is_obj:
        # ld64 places each section in the output segment its segname names, with that segment's
        # protection: pure_instructions in __DATA links into a non-executable segment, and a call
        # faults. Of the segments ld64 makes by default only __TEXT is executable.
        return bytes(s.content)[:s.size], code and s.segment_name == "__TEXT"
    if not code:
        return bytes(s.content)[:s.size], False
    for g in binary.segments:
        start = s.virtual_address - g.virtual_address
        if 0 <= start and start + s.size <= g.file_size:
            mapped = bytes(g.content)[start:start + s.size]
            return mapped, len(mapped) == s.size and bool(g.init_protection & VM_PROT_EXECUTE)
    return b"", False


def _macho_file(path: str, data: bytes, binary: Any, found: str) -> symbols.ObjectFile:
    import lief

    is_obj = binary.header.file_type == lief.MachO.Header.FILE_TYPE.OBJECT
    code = int(lief.MachO.Section.FLAGS.PURE_INSTRUCTIONS) | int(lief.MachO.Section.FLAGS.SOME_INSTRUCTIONS)
    raw = list(binary.sections)
    # Only the __TEXT segment is mapped read-only (__DATA,__const is written by dyld's fix-ups).
    # Read-only data (verifier/macho_relocs.py) is assumed aligned as its section says, up to a page.
    pieces = {i + 1: p for i, s in enumerate(raw) if is_obj and (p := macho_relocs.rodata_kind(
        s.segment_name, s.name, int(s.type), int(s.flags), s.size)) is not None}
    sections = [symbols.Section(i + 1, f"{s.segment_name},{s.name}", s.virtual_address,
                                *_macho_loaded(binary, s, bool(int(s.flags) & code), is_obj),
                                s.segment_name != "__TEXT", i + 1 in pieces,
                                1 << min(s.alignment, 12) if i + 1 in pieces else 1)
                for i, s in enumerate(raw)]
    obj = symbols.ObjectFile("macho", found, relocatable=is_obj, bias=DEFAULT_BASE if is_obj else 0,
                             all_symbols_bound=True, display=lambda n: n[1:] if n.startswith("_") else n)
    by_index: list[macho_relocs.SymbolInfo] = []      # the symbol table, in order, for relocations
    for s in binary.symbols:
        t = s.raw_type
        if t & N_STAB:
            by_index.append(macho_relocs.SymbolInfo(None, t, s.description))
            continue
        where = t & N_TYPE
        section = sections[s.numberof_sections - 1] if where == N_SECT and 0 < s.numberof_sections <= len(
            sections) else None
        bind = "local" if not t & N_EXT else "weak" if s.description & N_WEAK_DEF else "global"
        defined = not (where == N_UNDF and s.value == 0)
        if section is None and s.has_export_info and s.value:     # known only from dyld's export trie
            section = next((x for x in sections if x.start <= s.value < x.end), None)
            bind, defined = "global", True
        sym = symbols.Symbol(text(s.name), section, s.value, 0, bind, symbols.NOTYPE, defined)
        by_index.append(macho_relocs.SymbolInfo(sym, t, s.description))
        obj.symbols.append(sym)
    if binary.has_function_starts:
        seg = binary.get_segment("__TEXT")
        obj.bounds += [seg.virtual_address + f for f in binary.function_starts.functions] if seg else []
    if is_obj:
        obj.relocations = macho_relocs.read(path, data, binary.fat_offset, found, sections, raw, by_index, pieces)
    else:
        for r in binary.relocations:    # dyld's rebases and binds, at virtual addresses
            to = text(r.symbol.name) if r.has_symbol and r.symbol is not None else "the image base"
            obj.relocations.append(relocs.Reloc(None, r.address, f"dyld {type(r).__name__}", 0,
                                                r.size // 8 or relocs.UNKNOWN_REACH, to))
    return obj


# --- PE images and COFF objects ----------------------------------------------------------------

def load_pe(path: str, data: bytes, arch: str | None, base: int | None, symbol: str | None,
            explicit_symbol: bool) -> Blob:
    import lief

    lief.logging.disable()
    cfg = lief.PE.ParserConfig()
    cfg.parse_exceptions = True
    cfg.parse_rsrc = cfg.parse_signature = False
    binary: Any = lief.PE.parse(list(data), cfg)
    if binary is None:
        raise BlobError(f"{path}: malformed PE file: LIEF could not parse its headers")
    name = _common(path, base, symbol)
    found = COFF_MACHINES.get(int(binary.header.machine))
    if found is None:
        raise UnsupportedError(f"{path}: PE machine {int(binary.header.machine):#x} is not supported "
                               "(AMD64 and ARM64 are)")
    _check_arch(path, "PE", found, arch)
    return symbols.unit(path, _pe_file(binary, found), [name], explicit_symbol)


def _executable(section: Any) -> bool:
    return bool(section.characteristics & (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE))


def _writable(section: Any) -> bool:
    return bool(section.characteristics & IMAGE_SCN_MEM_WRITE)


def _pe_file(binary: Any, found: str) -> symbols.ObjectFile:
    sections = [symbols.Section(i, text(s.name), s.virtual_address,
                                bytes(s.content)[:min(s.virtual_size or s.size, s.size)],
                                # The loader maps a section executable by IMAGE_SCN_MEM_EXECUTE alone;
                                # CNT_CODE without it is mapped no-execute (DEP), and a call faults.
                                bool(s.characteristics & IMAGE_SCN_MEM_EXECUTE),
                                _writable(s))
                for i, s in enumerate(binary.sections)]
    unwind = {e.rva_start: e.rva_end for e in binary.exceptions}
    obj = symbols.ObjectFile("pe", found, relocatable=False, bias=binary.optional_header.imagebase,
                             bounds=list(unwind))

    def add(name: str, rva: int, bind: str, kind: str) -> None:
        section = next((s for s in sections if s.start <= rva < s.end), None)
        size = unwind[rva] - rva if rva in unwind and unwind[rva] > rva else 0
        obj.symbols.append(symbols.Symbol(name, section, rva, size, bind, kind))

    if binary.has_exports:
        for e in binary.get_export().entries:
            if e.name and not e.is_forwarded:
                add(text(e.name), e.address, "global", symbols.NOTYPE)
    for s in binary.symbols:            # a COFF symbol table, when the linker kept one (mingw)
        if s.name and s.section is not None and s.value >= 0:
            add(text(s.name), s.section.virtual_address + s.value, "global" if s.is_external else "local",
                symbols.FUNCTION if s.is_function else symbols.NOTYPE)
    for block in binary.relocations:    # base relocations: absolute addresses the loader patches
        for entry in block.entries:
            kind, pre, width = relocs.pe_base(entry.data >> 12)
            obj.relocations.append(relocs.Reloc(None, block.virtual_address + entry.position, kind, pre, width,
                                                "the image base"))
    return obj


def load_coff(path: str, data: bytes, arch: str | None, base: int | None, symbol: str | None,
              explicit_symbol: bool) -> Blob:
    import lief

    lief.logging.disable()
    binary: Any = lief.COFF.parse(list(data))
    if binary is None:
        raise BlobError(f"{path}: malformed COFF object: LIEF could not parse its headers")
    name = _common(path, base, symbol)
    found = COFF_MACHINES[int(data[0] | data[1] << 8)]
    _check_arch(path, "COFF", found, arch)
    return symbols.unit(path, _coff_file(path, binary, found, data), [name], explicit_symbol)


IMAGE_SYM_CLASS_EXTERNAL, IMAGE_SYM_CLASS_STATIC, IMAGE_SYM_CLASS_LABEL, IMAGE_SYM_CLASS_WEAK_EXTERNAL = 2, 3, 6, 105


def _coff_file(path: str, binary: Any, found: str, data: bytes = b"") -> symbols.ObjectFile:
    raw = list(binary.sections)
    for s in raw:
        # The specification puts a relocation at its VirtualAddress minus the section's; lld-link
        # patches the VirtualAddress itself. Where linkers disagree about which bytes are patched, no
        # bytes are verified. A relocation count past 0xffff (NRELOC_OVFL) is kept where LIEF does
        # not read it.
        if s.virtual_address and s.numberof_relocations:
            raise UnsupportedError(f"{path}: section {text(s.name)} of this COFF object has an address "
                                   f"({s.virtual_address:#x}) and relocations: linkers differ on where those apply")
        if len(list(s.relocations)) != s.numberof_relocations:
            # e.g. PointerToRelocations 0: LIEF reads none, LLVM (lld-link) reads the file header
            raise UnsupportedError(f"{path}: section {text(s.name)} has {s.numberof_relocations} relocations, of "
                                   f"which LIEF reads {len(list(s.relocations))}: the linker may apply others")
        if s.characteristics & IMAGE_SCN_LNK_NRELOC_OVFL:
            raise UnsupportedError(f"{path}: section {text(s.name)} has more than 65535 relocations "
                                   "(IMAGE_SCN_LNK_NRELOC_OVFL), which nverify does not read")
    _coff_directives(path, raw, data)
    huge = sum(int(s.size) for s in raw) >= COFF_REL32_OBJECT
    sections = [symbols.Section(i + 1, text(s.name), 0, _coff_content(s), _executable(s), _writable(s),
                                rodata=_coff_rodata(s), align=_coff_align(s),
                                grouped=bool(s.characteristics & IMAGE_SCN_LNK_COMDAT))
                for i, s in enumerate(raw)]
    obj = symbols.ObjectFile("coff", found, relocatable=True, bias=DEFAULT_BASE)
    for s in binary.symbols:
        sym = _coff_symbol(s, sections)
        if sym is not None:
            obj.symbols.append(sym)
    for sec, s in zip(sections, raw, strict=True):
        for r in s.relocations:
            rtype = int(r.type) & 0xFFFF
            kind, pre, width = relocs.coff(found, rtype)
            if r.address + width > s.size:
                # lld-link refuses a field that starts past its section's end, not one that only
                # runs past it: those bytes land in whatever the linker places next (another
                # section of this object, the unit's own data or code)
                raise UnsupportedError(
                    f"{path}: section {sec.name} has a relocation ({kind}) at +{r.address:#x} whose field runs "
                    f"past the section's end (+{s.size:#x}): the linker writes those bytes into the next section")
            to = _coff_symbol(r.symbol, sections) if r.symbol is not None else None
            target = relocs.target(None, to.section.name) if to is not None and to.kind == symbols.SECTION \
                and to.section is not None else relocs.target(text(r.symbol.name) if r.symbol else None, None)
            # As the ELF type whose arithmetic it shares, with its addend read from the field
            # (verifier/rodata.py resolves only those); anything else matches no ELF type. In code
            # only: entries of a jump table in .rdata, and jumps to code in another section, are
            # resolved for ELF objects alone and stay refused here.
            elf_type, addend = coff_as_elf(found, rtype, sec.content, r.address) if sec.executable else (-1, None)
            if elf_type == rodata.X86_PC32 and not _coff_rel32_reaches(to, addend, huge):
                elf_type, addend = -1, None
            obj.relocations.append(relocs.Reloc(sec.key, r.address, kind, pre, width, target, elf_type, addend, to))
    return obj


IMAGE_SCN_CNT_INITIALIZED_DATA, IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x40, 0x80
IMAGE_SCN_LNK_INFO, IMAGE_SCN_LNK_REMOVE, IMAGE_SCN_LNK_COMDAT = 0x200, 0x800, 0x1000
IMAGE_SCN_LNK_NRELOC_OVFL, IMAGE_SCN_MEM_DISCARDABLE, IMAGE_SCN_MEM_READ = 0x01000000, 0x02000000, 0x40000000
AMD64_REL32, AMD64_REL32_5 = 4, 9
ARM64_PAGEBASE_REL21, ARM64_PAGEOFFSET_12A, ARM64_PAGEOFFSET_12L = 4, 6, 7


# Options a .drectve may carry: none changes where a section goes, what it may be (/SECTION,
# /MERGE) or what a name is bound to (/EXPORT:f=g exports g as f, /ALTERNATENAME, /ENTRY). lld-link
# and link.exe honour /SECTION:.rdata,RW and /MERGE:.rdata=.data there, making the unit's read-only
# data writable by any other code of the image.
COFF_DIRECTIVES = frozenset({"defaultlib", "nodefaultlib", "disallowlib", "failifmismatch", "manifestdependency",
                             "guardsym", "throwingnew", "editandcontinue", "include"})


def _coff_long_name(data: bytes, name: str) -> str | None:
    """A section name `/<decimal>` is an offset into the string table, where LLVM (and so lld-link)
    reads the name; LIEF leaves it as written. None when it cannot be read here (`//<base64>`)."""
    if not name.startswith("/") or not name[1:].isdigit() or len(data) < 20:
        return None
    symbols_at, count = struct.unpack_from("<II", data, 8)
    at = symbols_at + 18 * count + int(name[1:])
    end = data.find(b"\0", at)
    return data[at:end].decode("latin-1") if symbols_at and 0 <= at < len(data) and end >= 0 else None


def _coff_directives(path: str, raw: list[Any], data: bytes) -> None:
    """Refuse an object whose .drectve holds an option not in COFF_DIRECTIVES. Every run of
    characters between blanks (quotes dropped) is looked at, a superset of the linker's tokens. A
    section with a long name (`/4`) is looked at whatever it names: lld-link reads `.drectve` there."""
    import re

    for s in raw:
        name = text(s.name)
        if name != ".drectve" and not name.startswith("/"):
            continue
        if name.startswith("/") and _coff_long_name(data, name) != ".drectve" and _coff_long_name(data, name):
            continue
        body = bytes(s.content).decode("latin-1").replace('"', "")
        for token in re.split(r"[\s\0]+", body.removeprefix("\xef\xbb\xbf")):
            name = token[1:].split(":", 1)[0].lower()
            # `/EXPORT:f` (what __declspec(dllexport) writes) exports f itself; `/EXPORT:f=g`, and
            # newer linkers' `/EXPORT:g,EXPORTAS,f`, export another symbol as f: refused
            exported = re.fullmatch(r"[/-]export:[^=,]+(,(@\d+|noname|data|private|constant))*", token, re.I)
            if token and (token[0] not in "/-" or (name not in COFF_DIRECTIVES and not exported)):
                raise UnsupportedError(
                    f"{path}: its .drectve asks the linker for {token[:60]!r}: nverify takes no COFF object whose "
                    "linker directives may move, merge, re-permission or rename what it verifies")


def _coff_content(s: Any) -> bytes:
    """A section's bytes as LLVM's COFF reader, and so lld-link, takes them: none for a section
    without a file pointer (PointerToRawData 0; LIEF reads SizeOfRawData bytes from the file's
    start, the header) or of uninitialised data (no data is written: zeros once loaded). A
    function or read-only data there then has no bytes, and is refused."""
    if not s.pointerto_raw_data or int(s.characteristics) & IMAGE_SCN_CNT_UNINITIALIZED_DATA:
        return b""
    return bytes(s.content)


def _coff_rodata(s: Any) -> bool:
    """Read-only data a function of the object may take into its unit (symbols.Section.rodata):
    initialised, readable, never written or run, kept in the image, in no COMDAT (another object's
    section of the same name may be linked instead), named `.rdata` exactly. The linker sorts a
    `.rdata$x` section by its suffix into `.rdata` and gives some names meaning (`.CRT$XCU` holds
    constructors), so only the plain name is taken."""
    c = int(s.characteristics)
    bad = (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_MEM_WRITE | IMAGE_SCN_CNT_UNINITIALIZED_DATA
           | IMAGE_SCN_LNK_INFO | IMAGE_SCN_LNK_REMOVE | IMAGE_SCN_LNK_COMDAT | IMAGE_SCN_MEM_DISCARDABLE)
    need = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
    return text(s.name) == ".rdata" and c & need == need and not c & bad and len(_coff_content(s)) == s.size


IMAGE_SCN_TYPE_NO_PAD = 0x8
PE_PAGE = 0x1000     # lld-link's and link.exe's default SectionAlignment (/ALIGN)


def _coff_align(s: Any) -> int:
    """The alignment the section's address is known to have once linked: IMAGE_SCN_ALIGN_<n>BYTES,
    none given counting as 1 (assuming less alignment than the linker gives only makes the proof
    consider more layouts). But 1 with IMAGE_SCN_TYPE_NO_PAD, as LLVM's COFF reader (and so
    lld-link) reads it whatever the ALIGN bits say; and at most a page: lld-link aligns a section
    within its output section, whose address is aligned only to SectionAlignment (4 KiB unless the
    user links with a smaller /ALIGN, which a .drectve cannot ask for), so an 8 KiB-aligned .rdata
    lands at 0x3000 after two pages of .text."""
    c = int(s.characteristics)
    if c & IMAGE_SCN_TYPE_NO_PAD:
        return 1
    n = (c >> 20) & 0xF
    return min(1 << (n - 1), PE_PAGE) if 0 < n <= 14 else 1


# lld-link writes REL32 modulo 2^32 without checking that it fits (link.exe refuses an image over
# 2 GiB, LNK1248; lld-link 14 links one): the ELF twin's range check, which the proof relies on,
# holds only while the operand lies less than 2 GiB from the instruction. So a REL32 is resolved
# only when its operand lies within COFF_REL32_SLACK of its section, and when the object's sections
# together stay under COFF_REL32_OBJECT (a 2 GiB .bss of the object itself would put .rdata out of
# reach); the rest of the image is assumed to leave the distance under 2 GiB.
COFF_REL32_SLACK, COFF_REL32_OBJECT = 1 << 24, 1 << 30


def _coff_rel32_reaches(to: Any, addend: int | None, huge: bool) -> bool:
    """Whether a REL32's operand (the symbol plus the field, give or take the instruction's tail)
    lies near the read-only section it targets, in an object that is not itself huge."""
    sec = getattr(to, "section", None)
    if sec is None or not sec.rodata or addend is None:
        return True               # not resolved as read-only data anyway
    at = to.value - sec.start + addend
    return not huge and -COFF_REL32_SLACK <= at <= len(sec.content) + COFF_REL32_SLACK


def coff_as_elf(arch: str, rtype: int, content: bytes, at: int) -> tuple[int, int | None]:
    """A COFF relocation as the ELF type computing the same field (rodata.SUPPORTED) and its addend,
    read from the bytes it patches, where COFF keeps it; (-1, None) for any other. The linker's
    arithmetic (lld-link, COFF/Chunks.cpp; the PE/COFF specification), checked against lld-link
    byte for byte by tests/test_coff_rodata.py:

    - AMD64 REL32_n writes S + field - (P + 4 + n): R_X86_64_PC32 (S + A - P) with A = field - 4 - n.
    - ARM64 PAGEBASE_REL21 writes page(S + imm) - page(P), imm the adrp's 21-bit immediate: ELF's
      ADR_PREL_PG_HI21 with A = imm. The ELF type is range-checked and the COFF one is not, but an
      image spans less than 4 GiB (RVAs are 32 bits), so the page delta always fits 21 bits.
    - ARM64 PAGEOFFSET_12A writes (S & 0xfff) + imm12 into the add's imm12, masked: modulo 4096
      that is (S + imm12) & 0xfff, ADD_ABS_LO12_NC with A = imm12.
    - ARM64 PAGEOFFSET_12L writes ((S & 0xfff) >> k) + imm12 masked to 12 - k bits, k the access's
      log2 size as lld reads it from the instruction (size bits, +4 for a 128-bit SIMD access), and
      refuses an S not aligned to 2^k: LDST<8 << k>_ABS_LO12_NC with A = imm12 << k.
    relocated.Relocated.problem then checks that each field feeds the operand its type names, by
    decoding the instruction linked at two layouts, so a type on the wrong instruction is refused.
    """
    field = content[at:at + 4]
    if len(field) != 4 or at < 0:
        return -1, None
    v = int.from_bytes(field, "little")
    if arch == "x86_64":
        if AMD64_REL32 <= rtype <= AMD64_REL32_5:
            return rodata.X86_PC32, int.from_bytes(field, "little", signed=True) - 4 - (rtype - AMD64_REL32)
        return -1, None
    if rtype == ARM64_PAGEBASE_REL21 and v & 0x9F000000 == 0x90000000:            # adrp
        imm = ((v >> 29) & 3) | ((v >> 3) & 0x1FFFFC)
        return rodata.A64_ADR_PAGE, imm - (1 << 21) if imm & (1 << 20) else imm
    imm12 = (v >> 10) & 0xFFF
    if rtype == ARM64_PAGEOFFSET_12A:
        return rodata.A64_ADD_LO12, imm12
    if rtype == ARM64_PAGEOFFSET_12L:
        k = (v >> 30) + (4 if v & 0x4800000 == 0x4800000 else 0)
        by_scale = {scale: t for t, scale in rodata.A64_LDST_SCALE.items()}
        return (by_scale[k], imm12 << k) if k in by_scale else (-1, None)
    return -1, None


def _coff_symbol(s: Any, sections: list[symbols.Section]) -> symbols.Symbol | None:
    cls, idx, name = int(s.storage_class), s.section_idx, text(s.name)
    if cls == IMAGE_SYM_CLASS_WEAK_EXTERNAL:      # an undefined name with a fallback: bound elsewhere
        return symbols.Symbol(name, None, 0, 0, "weak", symbols.NOTYPE, defined=False)
    if cls not in (IMAGE_SYM_CLASS_EXTERNAL, IMAGE_SYM_CLASS_STATIC, IMAGE_SYM_CLASS_LABEL) or idx == -2:
        return None                     # files, debug records, .bf/.ef
    section = sections[idx - 1] if 0 < idx <= len(sections) else None
    if cls == IMAGE_SYM_CLASS_STATIC and section is not None and s.value == 0 and name == section.name \
            and len(list(s.auxiliary_symbols)):
        return symbols.Symbol(name, section, 0, 0, "local", symbols.SECTION)
    bind = "global" if cls == IMAGE_SYM_CLASS_EXTERNAL else "local"
    kind = symbols.FUNCTION if s.is_function else symbols.NOTYPE
    return symbols.Symbol(name, section, s.value, 0, bind, kind, defined=idx != 0 or s.value != 0)

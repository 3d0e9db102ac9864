"""Mach-O (thin and fat) and PE/COFF (images and objects) through LIEF -> `symbols.ObjectFile` -> `Blob`.

Neither format records a function's size. Its extent is therefore taken from the next thing
known to start after it in the same code section (verifier/symbols.py: another symbol, a
Mach-O function start, a PE unwind entry) or the section's end; a PE unwind entry that starts
at the function gives its exact end. Mach-O's linker splits a section at every symbol
(MH_SUBSECTIONS_VIA_SYMBOLS), so there every symbol ends the function before it.
"""

from __future__ import annotations

from typing import Any

from . import coff, macho_relocs, relocs, symbols
from .arch import canonical_arch
from .blob import DEFAULT_BASE, Blob, text
from .errors import BlobError, UnsupportedError, UsageError

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
MACHO_ZEROFILL = (0x1, 0xC, 0x12)       # S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL: no file bytes


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


def _macho_loaded(data: bytes, binary: Any, s: Any, code: bool, is_obj: bool) -> tuple[bytes, bool]:
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
        # The bytes are read at the section's own file offset, as both linkers read them: LIEF
        # reads through its segment and may hand back other bytes (tests/test_macho_attacks.py).
        if int(s.type) in MACHO_ZEROFILL:
            return bytes(s.size), code and s.segment_name == "__TEXT"
        at = binary.fat_offset + s.offset
        return bytes(data[at:at + s.size]), code and s.segment_name == "__TEXT"
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
                                *_macho_loaded(data, binary, s, bool(int(s.flags) & code), is_obj),
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



def _pe_file(binary: Any, found: str) -> symbols.ObjectFile:
    sections = [symbols.Section(i, text(s.name), s.virtual_address,
                                bytes(s.content)[:min(s.virtual_size or s.size, s.size)],
                                # The loader maps a section executable by IMAGE_SCN_MEM_EXECUTE alone;
                                # CNT_CODE without it is mapped no-execute (DEP), and a call faults.
                                bool(s.characteristics & coff.IMAGE_SCN_MEM_EXECUTE),
                                coff.writable(s))
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
    return symbols.unit(path, coff.object_file(path, binary, found, data), [name], explicit_symbol)

"""Mach-O (thin and fat) and PE/COFF (images and objects) through LIEF: file -> `Blob`.

Neither format records a function's size. Its extent is therefore taken from the next thing
known to start after it in the same code section (another symbol, an exported function, a
Mach-O function start, a PE unwind entry) or the section's end; a PE unwind entry that
starts at the function gives its exact end. Over-estimating the extent loses nothing a proof
relies on: only the bytes execution actually reaches are lifted and checked, and executing
anything outside the extent is still a violation.
"""

from __future__ import annotations

from typing import Any

from .arch import canonical_arch
from .blob import DEFAULT_BASE, Blob, missing_symbol, needs_relocation, text
from .errors import BlobError, UnsupportedError, UsageError

IMAGE_SCN_CNT_CODE, IMAGE_SCN_MEM_EXECUTE = 0x20, 0x20000000
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


def _end(start: int, boundaries, section_end: int) -> int:
    return min([b for b in boundaries if start < b < section_end], default=section_end)


# --- Mach-O ------------------------------------------------------------------------------------

def load_macho(path: str, data: bytes, arch: str | None, base: int | None, symbol: str | None,
               explicit_symbol: bool) -> Blob:
    import lief

    lief.logging.disable()
    fat = lief.MachO.parse(list(data))
    if fat is None or fat.size == 0:
        raise BlobError(f"{path}: malformed Mach-O file: LIEF could not parse its headers")
    name = _common(path, base, symbol)
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
    if fat.size > 1:
        if arch is None:
            raise UsageError(f"{path} is a fat Mach-O with slices {names}: choose one with --arch")
        want = canonical_arch(arch)
        chosen = [b for a, b in usable if a == want]
        if not chosen:
            raise UsageError(f"{path}: the fat Mach-O has no {want} slice (it has {names})")
        found, binary = want, chosen[0]
    else:
        found, binary = usable[0]
        _check_arch(path, "Mach-O", found, arch)
    is_obj = binary.header.file_type == lief.MachO.Header.FILE_TYPE.OBJECT
    defined = [s for s in binary.symbols if s.type == lief.MachO.Symbol.TYPE.SECTION]
    sym = None
    for cand in _candidates(name, explicit_symbol, underscore=True):
        sym = next((s for s in defined if text(s.name) == cand), None)
        if sym is not None:
            break
    if sym is None:
        raise missing_symbol(path, name, [text(s.name).lstrip("_") for s in defined
                                          if text(s.name).startswith("_")], explicit_symbol)
    start = sym.value
    section: Any = binary.section_from_virtual_address(start)
    code_flags = lief.MachO.Section.FLAGS.PURE_INSTRUCTIONS | lief.MachO.Section.FLAGS.SOME_INSTRUCTIONS
    if section is None or not int(section.flags) & int(code_flags):
        raise BlobError(f"{path}: symbol {text(sym.name)!r} is not in a code section")
    sec_end = section.virtual_address + section.size
    bounds = [s.value for s in defined]
    if binary.has_function_starts:
        seg = binary.get_segment("__TEXT")
        bounds += [seg.virtual_address + f for f in binary.function_starts.functions] if seg else []
    end = _end(start, bounds, sec_end)
    rel = start - section.virtual_address
    code = bytes(section.content)[rel: rel + end - start]
    if len(code) != end - start:
        raise BlobError(f"{path}: symbol {text(sym.name)!r} extends past its section: truncated file?")
    for r in binary.relocations:
        # LIEF gives an object's relocations as file offsets (section offset + r_address) and
        # an image's as virtual addresses; both are mapped back to the function's extent here.
        where = r.address - section.offset + section.virtual_address if is_obj else r.address
        if (not is_obj or (r.has_section and r.section.name == section.name)) and start <= where < end:
            target = text(r.symbol.name) if r.has_symbol and r.symbol is not None else "an address"
            raise needs_relocation(path, text(sym.name), where - start, target)
    addr = start + DEFAULT_BASE if is_obj else start
    return Blob(code=code, arch=found, base=addr, entry=addr, name=text(sym.name), source=path, fmt="macho")


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
    functions: dict[str, int] = {}      # name -> RVA
    if binary.has_exports:
        for e in binary.get_export().entries:
            if e.name and not e.is_forwarded:
                functions.setdefault(text(e.name), e.address)
    imagebase = binary.optional_header.imagebase
    for s in binary.symbols:            # a COFF symbol table, when the linker kept one (mingw)
        if s.name and s.section is not None and s.value >= 0:
            functions.setdefault(text(s.name), s.section.virtual_address + s.value)
    if name not in functions:
        raise missing_symbol(path, name, list(functions), explicit_symbol)
    start = functions[name]
    section: Any = binary.section_from_rva(start)
    if section is None or not section.characteristics & (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE):
        raise BlobError(f"{path}: {name!r} is not in a code section")
    sec_end = section.virtual_address + min(section.virtual_size or section.size, section.size)
    unwind = {e.rva_start: e.rva_end for e in binary.exceptions}
    end = unwind.get(start) or _end(start, [*functions.values(), *unwind], sec_end)
    if not start < end <= sec_end:
        raise BlobError(f"{path}: {name!r} has no bytes in its section: truncated file?")
    code = bytes(binary.get_content_from_virtual_address(start, end - start, lief.Binary.VA_TYPES.RVA))
    if len(code) != end - start:
        raise BlobError(f"{path}: {name!r} extends past the mapped file: truncated file?")
    for block in binary.relocations:    # base relocations: absolute addresses the loader patches
        for entry in block.entries:
            where = block.virtual_address + entry.position
            if start <= where < end and entry.type != lief.PE.RelocationEntry.BASE_TYPES.ABS:
                raise needs_relocation(path, name, where - start, "the image base")
    return Blob(code=code, arch=found, base=imagebase + start, entry=imagebase + start, name=name,
                source=path, fmt="pe")


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
    defined = [s for s in binary.symbols if s.section is not None and not s.is_undefined]
    sym = next((s for s in defined if text(s.name) == name), None)
    if sym is None:
        raise missing_symbol(path, name, [s.name for s in defined if s.is_function], explicit_symbol)
    section: Any = sym.section
    if not section.characteristics & (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE):
        raise BlobError(f"{path}: symbol {name!r} is not in a code section")
    content = bytes(section.content)
    same = [s.value for s in defined if s.section_idx == sym.section_idx]
    end = _end(sym.value, same, len(content))
    if not sym.value < end:
        raise BlobError(f"{path}: symbol {name!r} has no bytes in its section: truncated file?")
    for r in section.relocations:
        if sym.value <= r.address < end:
            target = text(r.symbol.name) if r.symbol is not None else "an address"
            raise needs_relocation(path, name, r.address - sym.value, target)
    addr = DEFAULT_BASE + sym.value
    return Blob(code=content[sym.value:end], arch=found, base=addr, entry=addr, name=name, source=path,
                fmt="coff")


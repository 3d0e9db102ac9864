"""Turns a file (raw bytes or an ELF object/library/executable) into a `Blob`: bytes, arch, base."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .arch import canonical_arch
from .errors import BlobError, UnsupportedError, UsageError

DEFAULT_BASE = 0x400000
ELF_MAGIC = b"\x7fELF"
# Container formats issue 3 adds; recognised now so they are not mistaken for raw code.
OTHER_MAGICS = {
    b"\xcf\xfa\xed\xfe": "Mach-O", b"\xce\xfa\xed\xfe": "Mach-O", b"\xca\xfe\xba\xbe": "fat Mach-O",
    b"MZ": "PE",
}


@dataclass(frozen=True)
class Blob:
    code: bytes
    arch: str
    base: int
    entry: int
    name: str | None       # the function's symbol when it came from an object file
    source: str            # path the bytes came from, for messages
    fmt: str               # "raw" or "elf"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.code).hexdigest()

    @property
    def size(self) -> int:
        return len(self.code)

    def contains(self, addr: int) -> bool:
        return self.base <= addr < self.base + len(self.code)


def load(path: str | Path, *, arch: str | None = None, base: int | None = None,
         symbol: str | None = None, default_symbol: str | None = None) -> Blob:
    """Load the function to verify. `default_symbol` is the spec's function name."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise BlobError(f"{path}: cannot read blob: {e.strerror or e}") from None
    if not data:
        raise BlobError(f"{path}: the blob is empty (0 bytes): give a file holding machine code")
    if data.startswith(ELF_MAGIC):
        return _load_elf(str(path), data, arch, base, symbol or default_symbol,
                         explicit_symbol=symbol is not None)
    for magic, kind in OTHER_MAGICS.items():
        if data.startswith(magic) and kind != "PE":
            raise UnsupportedError(f"{path}: {kind} files are not supported yet; extract the "
                                   "function's bytes and pass them as a raw blob with --arch")
    if symbol is not None:
        raise UsageError(f"--symbol {symbol!r} needs an object file, but {path} is a raw blob")
    if arch is None:
        raise UsageError(f"{path} is a raw blob: say which ISA it is with --arch x86_64 or --arch aarch64")
    b = DEFAULT_BASE if base is None else base
    _check_base(b, len(data))
    return Blob(code=data, arch=canonical_arch(arch), base=b, entry=b, name=None,
                source=str(path), fmt="raw")


def _check_base(base: int, size: int) -> None:
    if base <= 0 or base % 4 or base + size >= 1 << 47:
        raise UsageError(f"--base {base:#x} is not usable: give a non-zero, 4-aligned user-space "
                         "address below 2**47")


def _load_elf(path: str, data: bytes, arch: str | None, base: int | None, symbol: str | None,
              explicit_symbol: bool) -> Blob:
    import lief

    lief.logging.disable()
    binary = lief.ELF.parse(list(data)) if data else None
    if binary is None:
        raise BlobError(f"{path}: malformed ELF file: LIEF could not parse its headers")
    machine = binary.header.machine_type
    found = {lief.ELF.ARCH.X86_64: "x86_64", lief.ELF.ARCH.AARCH64: "aarch64"}.get(machine)
    if found is None:
        raise UnsupportedError(f"{path}: ELF machine {machine.name} is not supported "
                               "(x86_64 and aarch64 are)")
    if arch is not None and canonical_arch(arch) != found:
        raise UsageError(f"{path}: --arch {arch} conflicts with the ELF header, which says {found}; "
                         "drop --arch or pass the right file")
    if base is not None:
        raise UsageError(f"{path}: --base applies to raw blobs only; an ELF file places its code itself")
    if symbol is None:
        raise UsageError(f"{path}: say which function to verify with --symbol NAME")
    sym = _find_symbol(binary, symbol)
    if sym is None:
        names = sorted({str(s.name) for s in binary.symbols if s.is_function and s.name})
        hint = f"functions in the file: {', '.join(names[:12])}" if names else "it has no function symbols"
        how = "" if explicit_symbol else " (the name comes from the spec's signature; override with --symbol)"
        raise BlobError(f"{path}: no function symbol {symbol!r}{how}; {hint}")
    if sym.size == 0:
        raise BlobError(f"{path}: symbol {symbol!r} has size 0, so its extent is unknown")
    is_rel = binary.header.file_type == lief.ELF.Header.FILE_TYPE.REL
    code, addr = _symbol_bytes(binary, sym, is_rel, path)
    _check_relocations(binary, sym, is_rel, addr, path)
    if is_rel:
        addr += DEFAULT_BASE
    return Blob(code=code, arch=found, base=addr, entry=addr, name=symbol, source=path, fmt="elf")


def _find_symbol(binary, name: str):
    for s in list(binary.symbols):
        if s.name == name and s.is_function:
            return s
    return None


def _symbol_bytes(binary, sym, is_rel: bool, path: str) -> tuple[bytes, int]:
    if is_rel:
        try:
            section = binary.sections[sym.shndx]
        except (IndexError, TypeError):
            raise BlobError(f"{path}: symbol {sym.name!r} points at no section") from None
        content = bytes(section.content)
        if sym.value + sym.size > len(content):
            raise BlobError(f"{path}: symbol {sym.name!r} extends past its section: truncated file?")
        return content[sym.value: sym.value + sym.size], sym.value
    code = bytes(binary.get_content_from_virtual_address(sym.value, sym.size))
    if len(code) != sym.size:
        raise BlobError(f"{path}: symbol {sym.name!r} extends past the mapped file: truncated file?")
    return code, sym.value


def _check_relocations(binary, sym, is_rel: bool, addr: int, path: str) -> None:
    lo, hi = addr, addr + sym.size
    for r in binary.relocations:
        if is_rel:
            if not r.has_section or r.section is None or r.section.name != binary.sections[sym.shndx].name:
                continue
        if lo <= r.address < hi:
            target = r.symbol.name if r.has_symbol and r.symbol is not None else "an address"
            raise UnsupportedError(
                f"{path}: {sym.name} needs a relocation at +{r.address - lo:#x} (to {target}) to be "
                "correct; nverify verifies self-contained code only (no calls out, no global data)")

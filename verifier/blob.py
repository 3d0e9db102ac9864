"""Turns a file (raw bytes, ELF, Mach-O or PE/COFF) into a `Blob`: bytes, arch, base."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .arch import canonical_arch
from .errors import BlobError, UnsupportedError, UsageError

DEFAULT_BASE = 0x400000
ELF_MAGIC = b"\x7fELF"
MACHO_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")    # 64-bit thin, fat
MACHO32_MAGIC = b"\xce\xfa\xed\xfe"


@dataclass(frozen=True)
class Blob:
    code: bytes
    arch: str
    base: int
    entry: int
    name: str | None       # the function's symbol when it came from an object file
    source: str            # path the bytes came from, for messages
    fmt: str               # "raw", "elf", "macho", "pe" or "coff"

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
    loader = _container(data)
    if loader is not None:
        return _contained(loader, str(path), data, arch, base, symbol or default_symbol, symbol is not None)
    if data.startswith(MACHO32_MAGIC):
        raise UnsupportedError(f"{path}: 32-bit Mach-O is not supported (x86_64 and arm64 are)")
    if symbol is not None:
        raise UsageError(f"--symbol {symbol!r} needs an object file, but {path} is a raw blob")
    if arch is None:
        raise UsageError(f"{path} is a raw blob: say which ISA it is with --arch x86_64 or --arch aarch64")
    b = DEFAULT_BASE if base is None else base
    _check_base(b, len(data))
    return Blob(code=data, arch=canonical_arch(arch), base=b, entry=b, name=None,
                source=str(path), fmt="raw")


def _container(data: bytes):
    """The loader for an object/image format, or None for raw code.

    "MZ" is also a valid start of x86-64 code (rex.WRB; pop rdx), so a file counts as PE only
    when LIEF finds a PE header behind it; COFF objects have no magic at all (formats.looks_like_coff).
    """
    from . import formats

    if data.startswith(ELF_MAGIC):
        return _load_elf
    if data.startswith(MACHO_MAGICS):
        return formats.load_macho
    if data.startswith(b"MZ"):
        import lief

        if lief.is_pe(list(data)):
            return formats.load_pe
    if formats.looks_like_coff(data):
        return formats.load_coff
    return None


# What LIEF raises on a damaged file (through its bindings: SystemError; invalid enum values:
# ValueError; a field that failed to parse: None where an object was expected).
_DAMAGED = (SystemError, ValueError, TypeError, AttributeError, IndexError, OverflowError, RuntimeError)


def _contained(loader, path: str, data: bytes, arch, base, symbol, explicit: bool) -> Blob:
    """Run a container loader; a file LIEF cannot read consistently is malformed input (exit 2).

    Well-formed files of every supported kind are covered by tests, so what lands here is a
    damaged file; with NVERIFY_DEBUG set the exception propagates, to tell a bug from damage.
    """
    import os
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # LIEF warns about unknown enum values in damaged headers
        try:
            return loader(path, data, arch, base, symbol, explicit_symbol=explicit)
        except _DAMAGED as e:
            if os.environ.get("NVERIFY_DEBUG"):
                raise
            kind = {"_load_elf": "ELF", "load_macho": "Mach-O", "load_pe": "PE", "load_coff": "COFF"}[loader.__name__]
            raise BlobError(f"{path}: malformed {kind} file: its headers or symbol table are inconsistent "
                            f"({type(e).__name__})") from None


def text(name) -> str:
    """A symbol name as text: LIEF returns bytes for names that are not valid UTF-8."""
    return name.decode("latin-1") if isinstance(name, bytes) else str(name)


def missing_symbol(path: str, symbol: str, functions: list[str], explicit: bool) -> BlobError:
    functions = sorted({text(f) for f in functions})
    more = f" and {len(functions) - 12} more" if len(functions) > 12 else ""
    hint = f"functions in the file: {', '.join(functions[:12])}{more}" if functions else "it has no function symbols"
    how = "" if explicit else " (the name comes from the spec's signature; override with --symbol)"
    return BlobError(f"{path}: no function symbol {symbol!r}{how}; {hint}")


def needs_relocation(path: str, name: str, offset: int, target: str) -> UnsupportedError:
    return UnsupportedError(
        f"{path}: {name} needs a relocation at +{offset:#x} (to {target}) to be correct; nverify "
        "verifies self-contained code only (no calls out, no global data)")


def _check_base(base: int, size: int) -> None:
    if base <= 0 or base % 4 or base + size >= 1 << 47:
        raise UsageError(f"--base {base:#x} is not usable: give a non-zero, 4-aligned user-space "
                         "address below 2**47")


def _load_elf(path: str, data: bytes, arch: str | None, base: int | None, symbol: str | None,
              explicit_symbol: bool) -> Blob:
    from . import elf

    binary = elf.parse(data)       # an object file, read without importing LIEF (verifier/elf.py)
    if binary is not None:
        found, is_rel = binary.arch, True
    else:
        binary, found, is_rel = _lief_elf(path, data)
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
        raise missing_symbol(path, symbol, names, explicit_symbol)
    if sym.size == 0:
        raise BlobError(f"{path}: symbol {symbol!r} has size 0, so its extent is unknown")
    code, addr = _symbol_bytes(binary, sym, is_rel, path)
    _check_relocations(binary, sym, is_rel, addr, path)
    if is_rel:
        addr += DEFAULT_BASE
    return Blob(code=code, arch=found, base=addr, entry=addr, name=symbol, source=path, fmt="elf")


def _lief_elf(path: str, data: bytes):
    """LIEF's reading of an ELF file: (binary, ISA, is it relocatable)."""
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
    return binary, found, binary.header.file_type == lief.ELF.Header.FILE_TYPE.REL


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
            raise needs_relocation(path, sym.name, r.address - lo, target)

"""Turns a file (raw bytes, ELF, Mach-O or PE/COFF) into a `Blob`: bytes, arch, base."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

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
    section: str | None = None      # the section the function lies in (object files and images)
    offset: int = 0                 # where it starts in that section
    extent_note: str | None = None  # how its end was found, when the symbol table gives no size
    # The read-only data of the unit (rodata.RoData) and the relocations linking the code to it
    # (rodata.Fixup): `code` is the bytes as the object holds them, fields unlinked.
    rodata: tuple[Any, ...] = ()
    fixups: tuple[Any, ...] = ()
    align: int = 1                  # the alignment of the function's section (where it may be linked)
    span: int = 0                   # bytes from `base` that lie together when linked (0: all); past
                                    # them, parts of the function in other sections (verifier/pieces.py)
    parts: tuple[tuple[int, int], ...] = ()     # each such part: [start, end) from `base`

    @property
    def sha256(self) -> str:
        """The verified unit's digest: the code alone, or the code, its data and their links, and
        where the code lies past its section's alignment when the proof relies on it."""
        place = self.place
        if not self.rodata and not self.fixups and self.entry == self.base and place == (1, 0):
            return hashlib.sha256(self.code).hexdigest()
        from .rodata import digest

        return digest(self.code, self.rodata, self.fixups, self.entry - self.base, place, self.span, self.parts)

    @property
    def place(self) -> tuple[int, int]:
        """(align, offset past it) the proof assumes the code lies at, when the code's address is
        a value of the proof (`$code`, entry._code_base); else (1, 0). Part of the unit: the same
        bytes in a section aligned less may lie elsewhere (`lea rax, [rip+f]; and eax, 63`)."""
        from . import isa

        if self.align > 1 and isa.symbolic_code(self):
            return self.align, self.offset % self.align
        return 1, 0

    @cached_property
    def image(self) -> bytes:
        """The bytes that are decoded and lifted: linked for the placeholder layout."""
        return self.linked(self.base, [r.placeholder for r in self.rodata])

    def linked(self, base: int, addresses) -> bytes:
        """The code linked as the linker would: at `base`, region i of `rodata` at addresses[i]."""
        if not self.fixups:
            return self.code
        from .rodata import link

        return link(self.arch, self.code, base, self.fixups, addresses)

    @property
    def size(self) -> int:
        return len(self.code)

    def extent(self) -> dict[str, str]:
        """Where the verified bytes lie in their file, for the result JSON and the attestation."""
        if self.section is None:
            return {}
        out = {"section": self.section, "offset": hex(self.offset)}
        if self.extent_note:
            out["extent"] = self.extent_note
        return out

    def contains(self, addr: int) -> bool:
        return self.base <= addr < self.base + len(self.code)

    def piece(self, addr: int) -> tuple[int, int]:
        """The addresses [lo, hi) of the bytes that lie together with `addr` when linked: the
        unit's span, or the part of it in another section that holds `addr`."""
        off = addr - self.base
        for lo, hi in self.parts:
            if lo <= off < hi:
                return self.base + lo, self.base + hi
        return self.base, self.base + (self.span or len(self.code))


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
        from .elfload import load_elf

        return load_elf
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
            kind = {"load_elf": "ELF", "load_macho": "Mach-O", "load_pe": "PE", "load_coff": "COFF"}[loader.__name__]
            raise BlobError(f"{path}: malformed {kind} file: its headers or symbol table are inconsistent "
                            f"({type(e).__name__})") from None


def text(name) -> str:
    """A symbol name as text: LIEF returns bytes for names that are not valid UTF-8."""
    return name.decode("latin-1") if isinstance(name, bytes) else str(name)


def _check_base(base: int, size: int) -> None:
    if base <= 0 or base % 4 or base + size >= 1 << 47:
        raise UsageError(f"--base {base:#x} is not usable: give a non-zero, 4-aligned user-space "
                         "address below 2**47")

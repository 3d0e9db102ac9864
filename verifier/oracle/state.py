"""Entry states and runs as plain data, and their wire form: EntryState -> request, response -> Run."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import wire

PAGE = wire.PAGE
CANARY = 0xA5                          # fills the rest of every data page the state maps
CODE_FILL = {"x86_64": 0xCC, "aarch64": 0x00}   # int3 / udf #0 around the blob
UDF_SVC = 0x0000_5343                  # AArch64 `udf #0x5343`: what an svc becomes under qemu
X86_FLAGS = 0xCD5                      # CF PF AF ZF SF OF DF: the flags a state may set
USER_LIMIT = {"x86_64": 1 << 47, "aarch64": 1 << 47}
X86_NAMES = (*wire.X86_GPRS, "rflags", "mxcsr", "fpcw", "fpsw", *(f"ymm{i}" for i in range(16)),
             *(f"xmm{i}" for i in range(16)))
A64_NAMES = (*(f"x{i}" for i in range(31)), "sp", "nzcv", "fpcr", "fpsr", *(f"q{i}" for i in range(32)))


@dataclass(frozen=True)
class Region:
    """Memory the entry state holds at `addr`: the arrays, the stack window, read-only data."""
    addr: int
    data: bytes
    writable: bool = True


@dataclass(frozen=True)
class EntryState:
    """A concrete entry state. `regs` uses nverify's names (x86-64: rax.., rflags, mxcsr, fpcw,
    fpsw, ymm0.. or xmm0..; AArch64: x0.., sp, nzcv, fpcr, fpsr, q0..); a register left out is 0
    (mxcsr 0x1f80 and fpcw 0x37f, their reset values). On x86-64 the runner writes `ret_addr` to
    [rsp]; on AArch64 it is x30."""
    arch: str
    code: bytes
    base: int
    entry: int
    regions: tuple[Region, ...]
    regs: Mapping[str, int] = field(default_factory=dict)
    ret_addr: int = 0


@dataclass(frozen=True)
class Run:
    """What the CPU did with one entry state. `pages` holds the final bytes of every page of every
    region; `signal` is set when the blob faulted (SIGSYS: it made a system call, which did not run)."""
    oracle: str
    cpu: str
    returned: bool = False
    signal: int | None = None
    signal_name: str = ""
    si_code: int | None = None
    fault_addr: int | None = None
    fault_pc: int | None = None
    regs: dict[str, int] = field(default_factory=dict)
    pages: dict[int, bytes] = field(default_factory=dict)
    timeout: bool = False
    error: str = ""
    syscall: int | None = None


class StateError(ValueError):
    """The entry state cannot be laid out (overlap, a page with two protections, a bad value)."""


@dataclass(frozen=True)
class Map:
    addr: int
    data: bytes
    prot: int                       # PROT_READ 1 | PROT_WRITE 2 | PROT_EXEC 4
    owner: str


@dataclass(frozen=True)
class Request:
    data: bytes
    maps: tuple[Map, ...]
    region_pages: tuple[int, ...]   # page addresses that belong to regions (reported in Run.pages)
    svc_words: frozenset[int]       # AArch64 under qemu: addresses of the blob's svc, replaced
    jump: int                       # the trampoline page


def register_block(arch: str, regs: Mapping[str, int], entry: int, avx: bool) -> bytes:
    """The register block (wire.py layout) holding `regs`."""
    names = X86_NAMES if arch == "x86_64" else A64_NAMES
    unknown = sorted(set(regs) - set(names))
    if unknown:
        raise StateError(f"unknown register(s) for {arch}: {', '.join(unknown)}")
    block = bytearray(wire.REGS_SIZE)
    return bytes(_x86_block(block, regs, entry, avx) if arch == "x86_64" else _a64_block(block, regs))


def _put(block: bytearray, off: int, value: int, size: int, name: str) -> None:
    if not 0 <= value < 1 << (8 * size):
        raise StateError(f"{name} = {value:#x} does not fit in {8 * size} bits")
    block[off:off + size] = value.to_bytes(size, "little")


def _x86_block(block: bytearray, regs: Mapping[str, int], entry: int, avx: bool) -> bytearray:
    for i, r in enumerate(wire.X86_GPRS):
        _put(block, 8 * i, regs.get(r, 0), 8, r)
    flags = regs.get("rflags", 0x202)
    if flags & ~(X86_FLAGS | 0x202):
        raise StateError(f"rflags = {flags:#x}: only CF PF AF ZF SF OF and DF can be set")
    _put(block, wire.R_RFLAGS, flags | 0x202, 8, "rflags")
    _put(block, wire.R_MXCSR, regs.get("mxcsr", 0x1F80), 2, "mxcsr")      # bits 16-31 are reserved
    # fldenv image: control, status, tag (all empty) words, each in a 32-bit slot
    _put(block, wire.R_FPENV, regs.get("fpcw", 0x37F), 2, "fpcw")
    _put(block, wire.R_FPENV + 4, regs.get("fpsw", 0), 2, "fpsw")
    _put(block, wire.R_FPENV + 8, 0xFFFF, 2, "fptag")
    _put(block, wire.R_ENTRY, entry, 8, "entry")
    for i in range(16):
        if f"ymm{i}" in regs and f"xmm{i}" in regs:
            raise StateError(f"give ymm{i} or xmm{i}, not both")
        value = regs.get(f"ymm{i}", regs.get(f"xmm{i}", 0))
        if not avx and value >> 128:
            raise StateError(f"ymm{i} = {value:#x}: this CPU has no AVX, only the low 128 bits exist")
        _put(block, wire.R_YMM + 32 * i, value, 32, f"ymm{i}")
    return block


def _a64_block(block: bytearray, regs: Mapping[str, int]) -> bytearray:
    for i in range(31):
        _put(block, 8 * i, regs.get(f"x{i}", 0), 8, f"x{i}")
    _put(block, wire.A64_R_SP, regs.get("sp", 0), 8, "sp")
    nzcv = regs.get("nzcv", 0)
    if nzcv & ~0xF000_0000:
        raise StateError(f"nzcv = {nzcv:#x}: only bits 31-28 (N Z C V) exist")
    _put(block, wire.A64_R_NZCV, nzcv, 8, "nzcv")
    _put(block, wire.A64_R_FPCR, regs.get("fpcr", 0), 8, "fpcr")
    _put(block, wire.A64_R_FPSR, regs.get("fpsr", 0), 8, "fpsr")
    for i in range(32):
        _put(block, wire.A64_R_Q + 16 * i, regs.get(f"q{i}", 0), 16, f"q{i}")
    return block


def parse_block(arch: str, block: bytes, avx: bool) -> dict[str, int]:
    """Final register values from a register block the runner wrote."""
    def u(off: int, size: int) -> int:
        return int.from_bytes(block[off:off + size], "little")
    if arch == "x86_64":
        out = {r: u(8 * i, 8) for i, r in enumerate(wire.X86_GPRS)}
        out |= {"rflags": u(wire.R_RFLAGS, 8), "mxcsr": u(wire.R_MXCSR, 4), "fpcw": u(wire.R_FPENV, 2),
                "fpsw": u(wire.R_FPENV + 4, 2), "fptag": u(wire.R_FPENV + 8, 2)}
        vec = "ymm" if avx else "xmm"
        out |= {f"{vec}{i}": u(wire.R_YMM + 32 * i, 32 if avx else 16) for i in range(16)}
        return out
    out = {f"x{i}": u(8 * i, 8) for i in range(31)}
    out |= {"sp": u(wire.A64_R_SP, 8), "nzcv": u(wire.A64_R_NZCV, 8), "fpcr": u(wire.A64_R_FPCR, 8),
            "fpsr": u(wire.A64_R_FPSR, 8)}
    return out | {f"q{i}": u(wire.A64_R_Q + 16 * i, 16) for i in range(32)}


def decode_status(raw: bytes) -> dict[str, int]:
    names = ("magic", "len", "status", "wait", "signo", "code", "addr", "pc", "errno", "index",
             "complete", "sysnr")
    return dict(zip(names, struct.unpack_from(f"<{len(names)}Q", raw), strict=True))

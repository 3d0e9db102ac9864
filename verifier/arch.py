"""Per-ISA and per-ABI facts (DESIGN §4) as plain data: registers, stack rules, callee-saved sets."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64",
           "aarch64": "aarch64", "arm64": "aarch64"}


@dataclass(frozen=True)
class Abi:
    name: str
    arch: str
    arg_regs: tuple[str, ...]
    ret_reg: str
    sp: str
    link_reg: str | None          # AArch64: return address register; x86-64: on the stack
    callee_saved: tuple[str, ...]
    vector_callee_saved: tuple[str, ...]  # their low `vector_saved_bits` bits are preserved
    untouched: tuple[str, ...]    # must hold their entry value (AArch64 x18)
    red_zone: int
    sp_entry_mod16: int           # sp mod 16 at entry
    ret_pops: int                 # bytes the return adds to sp (x86-64: the return address)
    narrow_args_extended_to: int  # bits: 8/16-bit arguments are extended by the caller to this
    pointer_bits: int = 64
    vector_saved_bits: int = 64
    shadow_space: int = 0         # bytes above the return address the callee owns (win64: 32)
    summary: str = ""             # one line for --help and the docs

    @property
    def stack_hi(self) -> int:
        """Highest offset from the entry stack pointer (exclusive) the function may touch."""
        return self.ret_pops + self.shadow_space


SYSV = Abi(
    name="sysv", arch="x86_64",
    arg_regs=("rdi", "rsi", "rdx", "rcx", "r8", "r9"), ret_reg="rax", sp="rsp", link_reg=None,
    callee_saved=("rbx", "rbp", "r12", "r13", "r14", "r15"), vector_callee_saved=(),
    untouched=(), red_zone=128, sp_entry_mod16=8, ret_pops=8, narrow_args_extended_to=32,
    summary="x86-64 System V (Linux, BSD, macOS): rdi rsi rdx rcx r8 r9; 128-byte red zone",
)

# Microsoft x64: four register arguments; rdi, rsi and xmm6-xmm15 (all 128 bits) are callee-saved;
# no red zone, so nothing below rsp survives; the caller reserves 32 bytes of "shadow space" just
# above the return address, which the callee may use freely (its contents at entry are garbage,
# so they are arbitrary here). Narrow arguments are not extended: the unused bits are garbage.
WIN64 = Abi(
    name="win64", arch="x86_64",
    arg_regs=("rcx", "rdx", "r8", "r9"), ret_reg="rax", sp="rsp", link_reg=None,
    callee_saved=("rbx", "rbp", "rdi", "rsi", "r12", "r13", "r14", "r15"),
    vector_callee_saved=tuple(f"ymm{i}" for i in range(6, 16)), vector_saved_bits=128,
    untouched=(), red_zone=0, sp_entry_mod16=8, ret_pops=8, narrow_args_extended_to=0, shadow_space=32,
    summary="Microsoft x64 (PE/COFF): rcx rdx r8 r9; rdi rsi xmm6-15 callee-saved; 32-byte shadow space; "
    "no red zone",
)

AAPCS64 = Abi(
    name="aapcs64", arch="aarch64",
    arg_regs=tuple(f"x{i}" for i in range(8)), ret_reg="x0", sp="sp", link_reg="x30",
    callee_saved=tuple(f"x{i}" for i in range(19, 30)),
    vector_callee_saved=tuple(f"q{i}" for i in range(8, 16)),
    untouched=("x18",), red_zone=0, sp_entry_mod16=0, ret_pops=0, narrow_args_extended_to=0,
    summary="Arm AAPCS64 (Linux, Windows on Arm): x0-x7; no red zone; narrow arguments not extended",
)

# Apple arm64 diverges from AAPCS64 where it matters here: the caller sign- or zero-extends 8- and
# 16-bit arguments to 32 bits (AAPCS64 leaves those bits unspecified), and the 128 bytes below sp
# are a red zone (LLDB's ABIMacOSX_arm64::GetRedZoneSize). x18 is reserved, as in our AAPCS64.
APPLE = Abi(
    name="apple", arch="aarch64",
    arg_regs=AAPCS64.arg_regs, ret_reg="x0", sp="sp", link_reg="x30",
    callee_saved=AAPCS64.callee_saved, vector_callee_saved=AAPCS64.vector_callee_saved,
    untouched=("x18",), red_zone=128, sp_entry_mod16=0, ret_pops=0, narrow_args_extended_to=32,
    summary="Apple arm64 (Mach-O): x0-x7; callers extend narrow arguments to 32 bits; 128-byte red zone; "
    "x18 reserved",
)

ABIS = {a.name: a for a in (SYSV, WIN64, AAPCS64, APPLE)}

# The FP control state every ABI here makes callee-saved, by ISA, with the bits of it that are
# (System V psABI 3.2.1 and the Microsoft x64 convention: MXCSR's control bits 6-15 and the x87
# control word; AAPCS64: FPCR). The status bits are the caller's to lose.
MXCSR_CONTROL = 0xFFC0
FP_CALLEE_SAVED = {"x86_64": {"mxcsr": MXCSR_CONTROL, "fpcw": 0xFFFF}, "aarch64": {"fpcr": 0xFFFFFFFF}}
DEFAULT_ABI = {"x86_64": SYSV, "aarch64": AAPCS64}
# The ABI a container format implies when --abi is not given (Mach-O x86-64 is System V).
FORMAT_ABI = {("macho", "aarch64"): APPLE, ("pe", "x86_64"): WIN64, ("coff", "x86_64"): WIN64}


def select_abi(arch: str, fmt: str, name: str | None) -> Abi:
    """The ABI to verify under: `name` (from --abi) if given, else the format's, else the ISA's."""
    if name is None:
        return FORMAT_ABI.get((fmt, arch), DEFAULT_ABI[arch])
    abi = ABIS.get(name.lower())
    if abi is None:
        raise UsageError(f"unknown ABI {name!r}: use one of {', '.join(ABIS)}")
    if abi.arch != arch:
        fits = ", ".join(a.name for a in ABIS.values() if a.arch == arch)
        raise UsageError(f"--abi {abi.name} is an {abi.arch} ABI but the blob is {arch}: use {fits}")
    return abi


def canonical_arch(name: str) -> str:
    try:
        return ALIASES[name.lower()]
    except KeyError:
        raise UsageError(
            f"unknown architecture {name!r}: use one of x86_64 (amd64) or aarch64 (arm64)"
        ) from None

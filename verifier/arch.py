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
    vector_callee_saved: tuple[str, ...]  # low 64 bits preserved
    untouched: tuple[str, ...]    # must hold their entry value (AArch64 x18)
    red_zone: int
    sp_entry_mod16: int           # sp mod 16 at entry
    ret_pops: int                 # bytes the return adds to sp (x86-64: the return address)
    narrow_args_extended_to: int  # bits: 8/16-bit arguments are extended by the caller to this
    pointer_bits: int = 64


SYSV = Abi(
    name="sysv", arch="x86_64",
    arg_regs=("rdi", "rsi", "rdx", "rcx", "r8", "r9"), ret_reg="rax", sp="rsp", link_reg=None,
    callee_saved=("rbx", "rbp", "r12", "r13", "r14", "r15"), vector_callee_saved=(),
    untouched=(), red_zone=128, sp_entry_mod16=8, ret_pops=8, narrow_args_extended_to=32,
)

AAPCS64 = Abi(
    name="aapcs64", arch="aarch64",
    arg_regs=tuple(f"x{i}" for i in range(8)), ret_reg="x0", sp="sp", link_reg="x30",
    callee_saved=tuple(f"x{i}" for i in range(19, 30)),
    vector_callee_saved=tuple(f"q{i}" for i in range(8, 16)),
    untouched=("x18",), red_zone=0, sp_entry_mod16=0, ret_pops=0, narrow_args_extended_to=0,
)

DEFAULT_ABI = {"x86_64": SYSV, "aarch64": AAPCS64}


def canonical_arch(name: str) -> str:
    try:
        return ALIASES[name.lower()]
    except KeyError:
        raise UsageError(
            f"unknown architecture {name!r}: use one of x86_64 (amd64) or aarch64 (arm64)"
        ) from None

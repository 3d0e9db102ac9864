"""What nverify adds to VEX's meaning of a verified form: outputs the ISA leaves undefined made
fresh unknowns, faults VEX leaves out, and the FP control and status state VEX pins (MXCSR, the x87
control word, AArch64 FPCR/FPSR) modelled whole. A form's `fix` names its correction here; the
executor calls `before` and `after` around each instruction and `ccall` for the VEX helpers that
read or write that state.

Each correction is argued from the Intel SDM / AMD APM / Arm ARM in its docstring, and checked
against the CPU by the co-simulation tests."""

from __future__ import annotations

from typing import Any, Protocol

import claripy

from .table import Form, Insn
from .x86_64 import FLAG_BITS

BV = claripy.ast.BV

# x87 control word: bits 0-5 masks, 8-9 precision, 10-11 rounding, 12 infinity control are kept
# by fldcw; the reserved bits 6, 7 and 13-15 read as the CPU fixes them (this machine: bit 6 set),
# the same constant at entry and after every fldcw.
FPUCW_KEPT = 0x1F3F
# MXCSR: bits 16-31 are reserved (#GP if ldmxcsr sets one); bit 6 (DAZ) exists where MXCSR_MASK
# says so; its callee-saved control bits are arch.MXCSR_CONTROL.
# FPCR: AHP, DN, FZ and RMode exist on every AArch64 CPU with FP; FZ16, the trap enables, the AFP
# bits and the AArch32 Len/Stride fields may or may not, by CPU (RES0 or RAZ/WI where absent).
FPCR_CORE = 0x07C00000
FPCR_MAYBE = 0x003F9F07
# FPSR cumulative exception flags IOC DZC OFC UFC IXC IDC; QC (bit 27) is VEX's QCFLAG.
FPSR_FLAGS = 0x9F


class Ctx(Protocol):
    arch: str

    def reg(self, name: str) -> BV: ...
    def set_reg(self, name: str, value: BV) -> None: ...
    def flags(self) -> BV: ...                 # x86: rflags from VEX's thunk (64 bits)
    def set_flags(self, value: BV) -> None: ...
    def fresh(self, bits: int, what: str) -> BV: ...
    def sp_offset(self) -> int: ...
    def fault(self, cond: Any, kind: str, message: str) -> None: ...   # a violation where cond holds


def before(form: Form, insn: Insn, ctx: Ctx) -> object:
    if form.fix in ("shift", "rotate", "shiftd"):
        return _count(insn, ctx)
    if form.fix == "sp-align" and any(m[0] in ("sp", "wsp") for m in insn.mem):
        off = ctx.sp_offset()
        if off % 16:
            ctx.fault(claripy.true(), "memory-safety", f"{insn.text()} at {insn.addr:#x} uses sp as a base "
                      f"while sp is not 16-aligned (entry sp {off:+d}): an SP alignment fault")
    return None


def after(form: Form, insn: Insn, ctx: Ctx, captured: object) -> None:
    mask: Any = sum(FLAG_BITS[c] for c in form.undefined)
    fix = form.fix
    if fix in ("shift", "rotate", "shiftd"):
        mask = _shift_undefined(insn, fix, captured) | mask
    elif fix == "bitscan":
        _bitscan(insn, ctx)
    elif fix == "tzcnt":
        cf = claripy.Extract(0, 0, ctx.flags()) == 1    # VEX's tzcnt: CF = (source == 0)
        _dest_unknown_where(insn, ctx, cf)
        mask = sum(FLAG_BITS.values())
    elif fix == "msr":
        _msr(insn, ctx)
    elif fix == "mrs":
        _mrs(insn, ctx)
    if isinstance(mask, int) and mask == 0:
        return
    flags = ctx.flags()
    m = mask if not isinstance(mask, int) else claripy.BVV(mask, 64)
    ctx.set_flags((flags & ~m) | (ctx.fresh(64, f"flags after {insn.mnemonic}") & m))


def _count(insn: Insn, ctx: Ctx) -> BV:
    if insn.shape.endswith("i"):
        return claripy.BVV(insn.imms[-1] & 0xFF, 8)
    if insn.shape in ("r", "m"):
        return claripy.BVV(1, 8)
    return claripy.Extract(7, 0, ctx.reg("rcx"))


def _shift_undefined(insn: Insn, fix: str, count: Any) -> Any:
    """OF is undefined after a shift or rotate by more than 1; CF after shl/shr of an 8- or 16-bit
    operand by its width or more (SDM vol. 2, SAL/SAR/SHL/SHR, ROL/ROR, SHLD/SHRD). AF, undefined
    after every shift, is unobservable: no verified form reads it."""
    w = insn.widths[0]
    c = count & (0x3F if w == 64 else 0x1F)
    of = claripy.If(claripy.UGT(c, 1), claripy.BVV(FLAG_BITS["O"], 64), claripy.BVV(0, 64))
    if fix == "shift" and insn.mnemonic in ("shl", "sal", "shr") and w in (8, 16):
        cf = claripy.If(claripy.UGE(c, w), claripy.BVV(FLAG_BITS["C"], 64), claripy.BVV(0, 64))
        return of | cf
    return of


def _bitscan(insn: Insn, ctx: Ctx) -> None:
    """bsf/bsr of 0: Intel leaves the destination undefined, AMD unchanged; ZF says which."""
    zf = claripy.Extract(6, 6, ctx.flags()) == 1
    _dest_unknown_where(insn, ctx, zf)


def _dest_unknown_where(insn: Insn, ctx: Ctx, cond: Any) -> None:
    dest = insn.regs[0] if insn.shape[0] == "r" else None
    if dest is None:
        return
    full = _full_gpr(dest)
    cur = ctx.reg(full)
    if insn.widths[0] == 16:
        new = claripy.Concat(claripy.Extract(63, 16, cur),
                             claripy.If(cond, ctx.fresh(16, f"{insn.mnemonic} of 0"), claripy.Extract(15, 0, cur)))
    else:
        new = claripy.If(cond, ctx.fresh(64, f"{insn.mnemonic} of 0"), cur)
    ctx.set_reg(full, new)


_ALIASES = {"ax": "rax", "bx": "rbx", "cx": "rcx", "dx": "rdx", "si": "rsi", "di": "rdi", "bp": "rbp", "sp": "rsp"}


def _full_gpr(name: str) -> str:
    if name.startswith("r") and name[1:].rstrip("dwb").isdigit():
        return name.rstrip("dwb") if name[1:].rstrip("dwb") else name
    if name.startswith("e") and name[1:] in _ALIASES:
        return _ALIASES[name[1:]]
    return _ALIASES.get(name, name)


# --- FP control and status state -----------------------------------------------------------------

def ccall(name: str, args: list, ctx: Ctx) -> BV | None:
    """VEX helpers over the FP control state, answered from nverify's whole-register model."""
    if name == "amd64g_create_mxcsr":
        return claripy.ZeroExt(32, ctx.reg("mxcsr"))
    if name == "amd64g_create_fpucw":
        return claripy.ZeroExt(48, ctx.reg("fpcw"))
    if name == "amd64g_check_ldmxcsr":
        new = claripy.Extract(31, 0, args[0])
        bad = claripy.Or(claripy.Extract(31, 16, new) != 0,
                         claripy.And(claripy.Extract(6, 6, new) == 1, ctx.reg("$cpu.daz") == 0))
        ctx.fault(bad, "policy", "ldmxcsr sets a reserved MXCSR bit: #GP")
        ctx.set_reg("mxcsr", new)
        return claripy.Concat(claripy.BVV(0, 32), claripy.ZeroExt(30, claripy.Extract(14, 13, new)))
    if name == "amd64g_check_fldcw":
        new = claripy.Extract(15, 0, args[0])
        reserved = ctx.reg("fpcw.entry") & (0xFFFF ^ FPUCW_KEPT)
        ctx.set_reg("fpcw", (new & FPUCW_KEPT) | reserved)
        return claripy.Concat(claripy.BVV(0, 32), claripy.ZeroExt(30, claripy.Extract(11, 10, new)))
    return None


def _sysreg(insn: Insn) -> str:
    return insn.op_str.split(",")[1 if insn.mnemonic == "mrs" else 0].strip().lower()


def _msr(insn: Insn, ctx: Ctx) -> None:
    reg, src = _sysreg(insn), insn.regs[-1]
    val = claripy.Extract(31, 0, ctx.reg(_x(src)))
    if reg == "fpcr":   # bits this CPU lacks stay 0 (RES0 / RAZ-WI)
        ctx.set_reg("fpcr", val & (claripy.BVV(FPCR_CORE, 32) | ctx.reg("$cpu.fpcr")))
    elif reg == "fpsr":
        ctx.set_reg("fpsr", val & FPSR_FLAGS)


def _mrs(insn: Insn, ctx: Ctx) -> None:
    if _sysreg(insn) == "fpsr":   # VEX builds only QC; the cumulative exception flags are ours
        dest = _x(insn.regs[0])
        if dest != "xzr":
            ctx.set_reg(dest, ctx.reg(dest) | claripy.ZeroExt(32, ctx.reg("fpsr")))


def _x(name: str) -> str:
    return "x" + name[1:] if name.startswith("w") and name != "wzr" else ("xzr" if name == "wzr" else name)

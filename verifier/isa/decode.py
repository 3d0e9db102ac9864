"""Decodes bytes into `Insn`s with capstone, and checks that a second decoder agrees (x86-64:
iced-x86) on length, operands and memory operands: bytes -> `Insn` or a disagreement."""

from __future__ import annotations

from functools import lru_cache

import capstone as cs
from capstone import arm64_const as A
from capstone import x86_const as X

from .table import Insn

_X86_GPR = {f"r{n}{s}" for n in range(8, 16) for s in ("", "d", "w", "b")} | {
    r for base in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp")
    for r in (f"r{base}", f"e{base}", base)} | {
    "al", "bl", "cl", "dl", "ah", "bh", "ch", "dh", "sil", "dil", "bpl", "spl"}


@lru_cache(maxsize=4)
def _md(arch: str) -> cs.Cs:
    md = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64) if arch == "x86_64" else cs.Cs(cs.CS_ARCH_ARM64, cs.CS_MODE_ARM)
    md.detail = True
    return md


@lru_cache(maxsize=65536)
def decode_at(arch: str, code: bytes, base: int, off: int) -> Insn | None:
    md = _md(arch)
    for i in md.disasm(code[off:off + 16], base + off, count=1):
        return _x86(md, i) if arch == "x86_64" else _a64(md, i)
    return None


def _x86(md: cs.Cs, i) -> Insn:
    shape, widths, mem, regs, imms = [], [], [], [], []
    for op in i.operands:
        if op.type == X.X86_OP_REG:
            name = md.reg_name(op.reg)
            shape.append("r" if name in _X86_GPR else "x" if name.startswith("xmm") else
                         "y" if name.startswith("ymm") else "?")
            widths.append(op.size * 8 if name in _X86_GPR else 0)
            regs.append(name)
        elif op.type == X.X86_OP_IMM:
            shape.append("i")
            widths.append(0)
            imms.append(op.imm)
        elif op.type == X.X86_OP_MEM:
            shape.append("m")
            widths.append(op.size * 8)
            m = op.mem
            base = md.reg_name(m.base) if m.base else ""
            disp = m.disp
            if base == "rip":   # as iced reports it: the absolute target
                base, disp = "", (i.address + i.size + m.disp) & (2**64 - 1)
            seg = md.reg_name(m.segment) if m.segment else ""
            mem.append((base, md.reg_name(m.index) if m.index else "", m.scale if m.index else 1,
                        disp & (2**64 - 1), op.size * 8, seg))
        else:
            shape.append("?")
            widths.append(0)
    return Insn(i.address, i.size, i.mnemonic, i.op_str, bytes(i.bytes), "".join(shape), tuple(widths),
                tuple(mem), tuple(regs), tuple(imms))


def _a64(md: cs.Cs, i) -> Insn:
    shape, mem, regs, imms = [], [], [], []
    for op in i.operands:
        if op.type == A.ARM64_OP_REG:
            name = md.reg_name(op.reg)
            shape.append("r" if name[0] in "xw" or name in ("sp", "wsp") else "v")
            regs.append(name)
        elif op.type in (A.ARM64_OP_IMM, A.ARM64_OP_CIMM):
            shape.append("i")
            imms.append(op.imm)
        elif op.type == A.ARM64_OP_MEM:
            shape.append("m")
            m = op.mem
            mem.append((md.reg_name(m.base) if m.base else "", md.reg_name(m.index) if m.index else "",
                        1, m.disp, 0, ""))
        elif op.type in (A.ARM64_OP_REG_MRS, A.ARM64_OP_REG_MSR, A.ARM64_OP_SYS, A.ARM64_OP_PSTATE):
            shape.append("s")
        else:
            shape.append("c")
    return Insn(i.address, i.size, i.mnemonic, i.op_str, bytes(i.bytes), "".join(shape), (),
                tuple(mem), tuple(regs), tuple(imms))


def disassemble(arch: str, code: bytes, base: int) -> list[Insn]:
    """Linear disassembly of a whole blob, for reports and summaries."""
    out, off = [], 0
    while off < len(code):
        i = decode_at(arch, code, base, off)
        if i is None:
            out.append(Insn(base + off, 1, ".byte", f"{code[off]:#04x}", code[off:off + 1]))
            off += 1
        else:
            out.append(i)
            off += i.size
    return out


# --- a second x86 decoder -----------------------------------------------------------------------

@lru_cache(maxsize=1)
def _iced():
    import iced_x86
    names = {getattr(iced_x86.Register, n): n.lower() for n in dir(iced_x86.Register) if n.isupper()}
    return iced_x86, names


@lru_cache(maxsize=65536)
def x86_disagreement(mine: Insn, code: bytes) -> str | None:
    """Where iced-x86 decodes `code` (the bytes at `mine.addr`, up to 15) differently from what
    capstone made of them (`mine`): a sentence naming the difference, else None."""
    iced, names = _iced()
    ins = iced.Decoder(64, code[:15], ip=mine.addr).decode()
    if ins.code == 0:
        return f"capstone decodes {code[:15].hex()} and iced-x86 cannot"
    if ins.len != mine.size:
        return f"capstone decodes {mine.size} bytes ({mine.text()}) and iced-x86 {ins.len} ({ins})"
    regs, mem, imms = [], [], []
    k = iced.OpKind
    for n in range(ins.op_count):
        kind = ins.op_kind(n)
        if kind == k.REGISTER:
            regs.append(names.get(ins.op_register(n), "?"))
        elif kind == k.MEMORY:
            base = names.get(ins.memory_base, "") if ins.memory_base else ""
            disp = ins.memory_displacement
            if base == "rip":
                base = ""
            index = names.get(ins.memory_index, "") if ins.memory_index else ""
            mem.append((base, index, ins.memory_index_scale if index else 1, disp & (2**64 - 1)))
        elif kind in (k.NEAR_BRANCH64, k.NEAR_BRANCH32, k.NEAR_BRANCH16):
            imms.append(ins.near_branch_target)
        elif kind in (k.FAR_BRANCH16, k.FAR_BRANCH32):
            imms.append(ins.far_branch_selector)
        elif kind != k.IMMEDIATE8_2ND:
            imms.append(ins.immediate(n))
    ours_mem = [m[:4] for m in mine.mem]
    if ours_mem != mem:
        return f"capstone reads memory operand {ours_mem} and iced-x86 {mem} ({mine.text()} / {ins})"
    if list(mine.regs) != regs:
        return f"capstone names registers {list(mine.regs)} and iced-x86 {regs} ({mine.text()} / {ins})"
    if [v & (2**64 - 1) for v in mine.imms] != [v & (2**64 - 1) for v in imms][:len(mine.imms)]:
        return f"capstone reads immediates {list(mine.imms)} and iced-x86 {imms} ({mine.text()} / {ins})"
    return None

"""Decodes a blob with capstone and classifies instructions the machine model forbids (DESIGN §4).

capstone is a second decoder beside VEX: an instruction is judged on what capstone says it is,
so a lifter that mis-decodes a forbidden instruction as something harmless cannot hide it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import capstone as cs

from .blob import Blob

X86_FORBIDDEN = {
    "syscall": "a system call", "sysenter": "a system call", "sysexit": "a privileged instruction",
    "sysret": "a privileged instruction", "int": "a software interrupt", "int1": "a software interrupt",
    "int3": "a breakpoint trap", "into": "a software interrupt", "hlt": "a halt",
    "in": "port I/O", "out": "port I/O", "insb": "port I/O", "insw": "port I/O", "insd": "port I/O",
    "outsb": "port I/O", "outsw": "port I/O", "outsd": "port I/O",
    "rdtsc": "a timestamp read", "rdtscp": "a timestamp read", "rdpmc": "a performance-counter read",
    "rdrand": "a hardware random number", "rdseed": "a hardware random number",
    "cpuid": "a CPU identification read", "xgetbv": "a processor-state read", "rdpid": "a processor-id read",
    "rdfsbase": "a segment-base read", "rdgsbase": "a segment-base read",
    "wrfsbase": "a segment-base write", "wrgsbase": "a segment-base write",
    "rdmsr": "a privileged instruction", "wrmsr": "a privileged instruction", "cli": "a privileged instruction",
    "sti": "a privileged instruction", "swapgs": "a privileged instruction", "iretq": "an interrupt return",
    "iretd": "an interrupt return", "iret": "an interrupt return", "ud2": "a deliberate trap",
    "ud1": "a deliberate trap", "ud0": "a deliberate trap", "vmcall": "a hypervisor call",
    "lgdt": "a privileged instruction", "lidt": "a privileged instruction", "invlpg": "a privileged instruction",
    "wbinvd": "a privileged instruction", "invd": "a privileged instruction", "clts": "a privileged instruction",
}
A64_FORBIDDEN = {
    "svc": "a system call", "hvc": "a hypervisor call", "smc": "a secure-monitor call",
    "brk": "a breakpoint trap", "hlt": "a halt", "udf": "a deliberate trap", "eret": "an exception return",
    "wfi": "a wait-for-interrupt", "wfe": "a wait-for-event", "sys": "a system instruction",
    "sysl": "a system instruction", "dc": "a cache-maintenance instruction",
    "ic": "a cache-maintenance instruction", "at": "an address-translation instruction",
    "tlbi": "a TLB-maintenance instruction", "br": "an indirect jump", "blr": "an indirect call",
    "braa": "an indirect jump", "brab": "an indirect jump", "blraa": "an indirect call",
    "blrab": "an indirect call", "braaz": "an indirect jump", "brabz": "an indirect jump",
    "blraaz": "an indirect call", "blrabz": "an indirect call",
}
# System registers a program may legitimately touch: its own flags and FP control/status.
A64_SAFE_SYSREGS = {"nzcv", "fpcr", "fpsr"}


@dataclass(frozen=True)
class Insn:
    addr: int
    size: int
    mnemonic: str
    op_str: str
    raw: bytes

    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}".strip()


@dataclass(frozen=True)
class Finding:
    addr: int
    reason: str      # DESIGN §5 reason code: policy, undecodable or unsupported-instruction
    message: str


def _disassembler(arch: str) -> cs.Cs:
    if arch == "x86_64":
        md = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64)
    else:
        md = cs.Cs(cs.CS_ARCH_ARM64, cs.CS_MODE_ARM)
    md.detail = True
    return md


@lru_cache(maxsize=4)
def _md(arch: str) -> cs.Cs:
    return _disassembler(arch)


def decode(blob: Blob, addr: int) -> Insn | None:
    off = addr - blob.base
    if not 0 <= off < blob.size:
        return None
    return _decode(blob.arch, blob.code, blob.base, off)


@lru_cache(maxsize=65536)
def _decode(arch: str, code: bytes, base: int, off: int) -> Insn | None:
    for i in _md(arch).disasm(code[off:off + 16], base + off, count=1):
        return Insn(i.address, i.size, i.mnemonic, i.op_str, bytes(i.bytes))
    return None


def check(blob: Blob, addr: int) -> Finding | None:
    """Why the instruction at `addr` may not execute, or None when it may."""
    insn = decode(blob, addr)
    if insn is None:
        return Finding(addr, "undecodable", f"no valid {blob.arch} instruction at {addr:#x}")
    if insn.addr + insn.size > blob.base + blob.size:
        return Finding(addr, "undecodable", f"the instruction at {addr:#x} runs past the end of the blob")
    return _classify(blob, insn)


def _classify(blob: Blob, insn: Insn) -> Finding | None:
    m = insn.mnemonic
    table = X86_FORBIDDEN if blob.arch == "x86_64" else A64_FORBIDDEN
    if m in table or m.split(".")[0] in table:
        return Finding(insn.addr, "policy", f"{insn.text()} at {insn.addr:#x} is {table.get(m, 'forbidden')}")
    if blob.arch == "x86_64":
        return _classify_x86(blob, insn)
    return _classify_a64(blob, insn)


def _direct_target(op_str: str) -> int | None:
    s = op_str.strip().lstrip("#")
    try:
        return int(s, 16) if s.startswith("0x") else int(s)
    except ValueError:
        return None


def _classify_x86(blob: Blob, insn: Insn) -> Finding | None:
    m, ops = insn.mnemonic, insn.op_str
    if m.startswith("rep") and m.split()[-1].startswith(("ins", "outs")):
        return Finding(insn.addr, "policy", f"{insn.text()} at {insn.addr:#x} is port I/O")
    if m in ("call", "jmp") or m.startswith("notrack"):
        target = _direct_target(ops)
        kind = "call" if "call" in m else "jump"
        if target is None:
            return Finding(insn.addr, "policy", f"{insn.text()} at {insn.addr:#x} is an indirect {kind}")
        if not blob.contains(target):
            return Finding(insn.addr, "policy", f"{insn.text()} at {insn.addr:#x} {kind}s outside the blob")
        if kind == "call":
            return Finding(insn.addr, "unsupported-instruction",
                           f"{insn.text()} at {insn.addr:#x} calls inside the blob: internal calls push "
                           "a code address, which nverify does not model yet")
    if "rip" in ops and m == "lea":
        return Finding(insn.addr, "unsupported-instruction",
                       f"{insn.text()} at {insn.addr:#x} takes the code's own address; the code's "
                       "position is not part of the model, so this cannot be verified")
    if m == "mov" and any(r in ops for r in ("cr", "dr")) and _x86_ctrl_reg(ops):
        return Finding(insn.addr, "policy", f"{insn.text()} at {insn.addr:#x} is a privileged instruction")
    return None


def _x86_ctrl_reg(ops: str) -> bool:
    return any(tok.strip() in {f"cr{i}" for i in range(16)} | {f"dr{i}" for i in range(8)}
               for tok in ops.split(","))


def _classify_a64(blob: Blob, insn: Insn) -> Finding | None:
    m, ops = insn.mnemonic, insn.op_str
    if m in ("mrs", "msr"):
        reg = ops.split(",")[1 if m == "mrs" else 0].strip().lower()
        if reg not in A64_SAFE_SYSREGS:
            what = "reads" if m == "mrs" else "writes"
            return Finding(insn.addr, "policy",
                           f"{insn.text()} at {insn.addr:#x} {what} system register {reg}")
    if m in ("b", "bl") or m.startswith("b."):
        target = _direct_target(ops)
        if target is not None and not blob.contains(target):
            kind = "calls" if m == "bl" else "jumps"
            return Finding(insn.addr, "policy", f"{insn.text()} at {insn.addr:#x} {kind} outside the blob")
        if m == "bl":
            return Finding(insn.addr, "unsupported-instruction",
                           f"{insn.text()} at {insn.addr:#x} calls inside the blob: internal calls put "
                           "a code address in x30, which nverify does not model yet")
    if m in ("adr", "adrp"):
        return Finding(insn.addr, "unsupported-instruction",
                       f"{insn.text()} at {insn.addr:#x} takes the code's own address; the code's "
                       "position is not part of the model, so this cannot be verified")
    if m == "ret" and ops.strip() not in ("", "x30"):
        return Finding(insn.addr, "policy", f"{insn.text()} at {insn.addr:#x} is an indirect jump")
    return None


def disassemble(blob: Blob) -> list[Insn]:
    """Linear disassembly of the whole blob, for reports and the policy summary."""
    out, off = [], 0
    while off < blob.size:
        i = _decode(blob.arch, blob.code, blob.base, off)
        if i is None:
            out.append(Insn(blob.base + off, 1, ".byte", f"{blob.code[off]:#04x}", blob.code[off:off + 1]))
            off += 1
        else:
            out.append(i)
            off += i.size
    return out

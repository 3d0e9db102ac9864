"""A small unicorn harness of the tests' own, independent of nverify's replay and of VEX:
run a blob on concrete arguments under the ABI and return its outputs by spec name."""

from __future__ import annotations

import unicorn as uc
from unicorn import arm64_const as A
from unicorn import x86_const as X

CODE, DATA, STACK, RET = 0x400000, 0x600000, 0x7F0000, 0x1000


def run(arch: str, code: bytes, spec, args: dict[str, int]) -> dict[str, int] | None:
    """Outputs named as in the spec, or None when the blob faults or does not return."""
    x86 = arch == "x86_64"
    mu = uc.Uc(uc.UC_ARCH_X86, uc.UC_MODE_64) if x86 else uc.Uc(uc.UC_ARCH_ARM64, uc.UC_MODE_ARM)
    for base in (CODE, DATA, STACK):
        mu.mem_map(base, 0x10000)
    mu.mem_write(CODE, code)
    regs = ([X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX, X.UC_X86_REG_RCX] if x86
            else [A.UC_ARM64_REG_X0, A.UC_ARM64_REG_X1, A.UC_ARM64_REG_X2, A.UC_ARM64_REG_X3])
    addr = DATA
    arrays = {}
    for p, reg in zip(spec.signature.params, regs, strict=False):
        if p.is_array:
            w = p.bits // 8
            mu.mem_write(addr, b"".join(args[n].to_bytes(w, "little") for n in p.entry_names()))
            mu.reg_write(reg, addr)
            arrays[p.name] = (addr, p)
            addr += 0x100
        else:
            v = args[p.name]
            if x86 and p.signed and p.bits < 32 and v >> (p.bits - 1):
                v |= (1 << 32) - (1 << p.bits)
            mu.reg_write(reg, v)
    sp = STACK + 0x8000
    if x86:
        mu.mem_write(sp, RET.to_bytes(8, "little"))
        mu.reg_write(X.UC_X86_REG_RSP, sp)
    else:
        mu.reg_write(A.UC_ARM64_REG_SP, sp)
        mu.reg_write(A.UC_ARM64_REG_X30, RET)
    try:
        mu.emu_start(CODE, RET, timeout=2_000_000, count=100_000)
    except uc.UcError:
        return None
    if mu.reg_read(X.UC_X86_REG_RIP if x86 else A.UC_ARM64_REG_PC) != RET:
        return None
    out: dict[str, int] = {}
    for base, p in arrays.values():
        if not p.const:
            w = p.bits // 8
            data = bytes(mu.mem_read(base, w * p.length))
            for i in range(p.length):
                out[f"{p.name}.{i}.out"] = int.from_bytes(data[i * w:(i + 1) * w], "little")
    if spec.signature.ret is not None:
        v = mu.reg_read(X.UC_X86_REG_RAX if x86 else A.UC_ARM64_REG_X0)
        out["ret"] = v & ((1 << spec.signature.ret.bits) - 1)
    return out

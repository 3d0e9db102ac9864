"""A small unicorn harness of the tests' own, independent of nverify's replay and of VEX.

`execute` runs a blob from a given register file and memory; `run` calls a blob on concrete
arguments under the ABI and returns its outputs by spec name; `draw_args` draws such arguments."""

from __future__ import annotations

import unicorn as uc
from unicorn import arm64_const as A
from unicorn import x86_const as X

from .build import BASE

CODE, DATA, STACK, RET = BASE, 0x600000, 0x7F0000, 0x1000


def execute(arch: str, code: bytes, regs: dict[str, int], memory: dict[int, bytes], *,
            count: int = 100_000) -> uc.Uc:
    """Run `code` at CODE with registers by name (rdi, eflags, x0, sp, nzcv …) and memory contents
    (in DATA or STACK) until it returns to RET; the x86-64 return address is written at [rsp].
    A fault raises unicorn's UcError."""
    x86 = arch == "x86_64"
    mu = uc.Uc(uc.UC_ARCH_X86, uc.UC_MODE_64) if x86 else uc.Uc(uc.UC_ARCH_ARM64, uc.UC_MODE_ARM)
    for base in (CODE, DATA, STACK):
        mu.mem_map(base, 0x10000)
    mu.mem_write(CODE, code)
    for addr, data in memory.items():
        mu.mem_write(addr, data)
    if not x86:
        mu.reg_write(A.UC_ARM64_REG_CPACR_EL1, 0x300000)   # FP/SIMD on
        mu.reg_write(A.UC_ARM64_REG_X30, RET)
    for name, value in regs.items():
        rid = getattr(X if x86 else A, f"UC_{'X86' if x86 else 'ARM64'}_REG_{name.upper()}", None)
        if rid is not None:
            mu.reg_write(rid, value)
    if x86:
        mu.mem_write(regs["rsp"], RET.to_bytes(8, "little"))
    mu.emu_start(CODE, RET, timeout=2_000_000, count=count)
    return mu


def draw_args(spec, rng, edges: list[int], edge: bool) -> dict:
    """Entry values for a spec's names — one of `edges` (when `edge`) or random bits, masked to the
    width — for scalars and fixed-array elements; for T p[n], p as {index: element} over the
    largest n, and n drawn within it."""
    def value(bits: int) -> int:
        return (rng.choice(edges) if edge else rng.getrandbits(bits)) & ((1 << bits) - 1)

    args: dict = {}
    for p in spec.signature.params:
        if p.is_variable:
            args[p.name] = {i: value(p.bits) for i in range(spec.lengths[p.name])}
        else:
            for n in p.entry_names():
                args[n] = value(p.bits)
    for arr, largest in spec.lengths.items():
        args[str(spec.signature.param(arr).length)] = rng.randrange(largest + 1)
    return args


def run(arch: str, code: bytes, spec, args: dict) -> dict | None:
    """Outputs named as in the spec, or None when the blob faults or does not return.
    For T p[n], args[p] and the output p.out are {index: element} over the largest n."""
    x86 = arch == "x86_64"
    names = ["rdi", "rsi", "rdx", "rcx"] if x86 else ["x0", "x1", "x2", "x3"]
    regs: dict[str, int] = {}
    memory: dict[int, bytes] = {}
    arrays = {}
    addr = DATA
    for p, reg in zip(spec.signature.params, names, strict=False):
        if p.is_array:
            w = p.bits // 8
            count = spec.lengths[p.name] if p.is_variable else p.length
            elems = [args[p.name].get(i, 0) for i in range(count)] if p.is_variable else \
                [args[n] for n in p.entry_names()]
            memory[addr] = b"".join(v.to_bytes(w, "little") for v in elems)
            regs[reg] = addr
            arrays[p.name] = (addr, p, count)
            addr += 0x100
        else:
            v = args[p.name]
            if x86 and p.signed and p.bits < 32 and v >> (p.bits - 1):
                v |= (1 << 32) - (1 << p.bits)
            regs[reg] = v
    regs["rsp" if x86 else "sp"] = STACK + 0x8000
    try:
        mu = execute(arch, code, regs, memory)
    except uc.UcError:
        return None
    if mu.reg_read(X.UC_X86_REG_RIP if x86 else A.UC_ARM64_REG_PC) != RET:
        return None
    out: dict = {}
    for base, p, count in arrays.values():
        if not p.const:
            w = p.bits // 8
            data = bytes(mu.mem_read(base, w * count))
            vals = {i: int.from_bytes(data[i * w:(i + 1) * w], "little") for i in range(count)}
            if p.is_variable:
                out[f"{p.name}.out"] = vals
            else:
                out.update({f"{p.name}.{i}.out": v for i, v in vals.items()})
    if spec.signature.ret is not None:
        v = mu.reg_read(X.UC_X86_REG_RAX if x86 else A.UC_ARM64_REG_X0)
        out["ret"] = v & ((1 << spec.signature.ret.bits) - 1)
    return out

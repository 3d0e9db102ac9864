"""Replays a counterexample on unicorn, an emulator independent of VEX: model -> `Replay`.

The replay enforces the same machine model as the symbolic run (regions, stack frame and red
zone, forbidden instructions, loop bound) on concrete values, so a refutation is confirmed by
something other than the lifter that found it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import unicorn as uc
from unicorn import arm64_const as A
from unicorn import x86_const as X

from . import isa, smt
from .arch import Abi
from .blob import Blob
from .entry import STACK_MAX
from .exploration import Exploration
from .names import stack_offset

PAGE = 0x1000
CANONICAL = 1 << 47
MAX_STEPS = 1_000_000
X86_FLAG_BITS = 0x8D5        # CF PF AF ZF SF OF: the flags VEX's OP_COPY takes from cc_dep1


@dataclass
class Replay:
    events: list[tuple[str, int, str]] = field(default_factory=list)   # (kind, insn address, message)
    outputs: dict[str, int] = field(default_factory=dict)
    returned: bool = False
    final_registers: dict[str, int] = field(default_factory=dict)
    entry_registers: dict[str, int] = field(default_factory=dict)
    trace: list[int] = field(default_factory=list)
    error: str = ""

    def kinds(self) -> set[str]:
        return {k for k, _, _ in self.events}


def _reg_id(arch: str, name: str) -> int | None:
    if arch == "x86_64":
        special = {"rflags": X.UC_X86_REG_EFLAGS, "fs_base": X.UC_X86_REG_FS_BASE,
                   "gs_base": X.UC_X86_REG_GS_BASE}
        return special.get(name, getattr(X, f"UC_X86_REG_{name.upper()}", None)) \
            if not name.startswith(("cr", "fpreg")) and not name.endswith("_seg") else None
    special = {"sp": A.UC_ARM64_REG_SP, "nzcv": A.UC_ARM64_REG_NZCV, "tpidr_el0": A.UC_ARM64_REG_TPIDR_EL0}
    return special.get(name, getattr(A, f"UC_ARM64_REG_{name.upper()}", None))


def replay(blob: Blob, abi: Abi, ex: Exploration, model: dict[str, int], loop_bound: int,
           names: dict[str, int]) -> Replay:
    out = Replay()
    symbols = {**ex.symbols, **names}
    regs = {r: smt.evaluate(t, symbols, model) for r, t in ex.entry_registers.items()}
    out.entry_registers = regs
    is_x86 = blob.arch == "x86_64"
    mu = uc.Uc(uc.UC_ARCH_X86, uc.UC_MODE_64) if is_x86 else uc.Uc(uc.UC_ARCH_ARM64, uc.UC_MODE_ARM)
    sp_name = "rsp" if is_x86 else "sp"
    sp0 = regs[sp_name]
    ret_addr = smt.evaluate(ex.return_address, symbols, model)
    # (name, base, bytes that exist, element bits, elements modelled, const); for T p[n] only the
    # first n (the counterexample's value) of the modelled elements exist.
    arrays = [(name, regs[reg], bits // 8 * (n if count is None else min(n, model.get(count, 0))), bits, n, const)
              for name, reg, bits, n, const, count in ex.arrays]
    from .oracle.concrete import code_address, rodata_addresses
    from .rodata import link_data

    placed = rodata_addresses(blob, model)
    if code_address(blob, ex, model) != blob.base:
        out.error = "the counterexample places the code elsewhere than unicorn runs it"
        return out
    rodata = [(at, len(ro.data)) for at, ro in zip(placed, blob.rodata, strict=True)]
    spans = [(blob.base, blob.size), *rodata,
             (sp0 - STACK_MAX - abi.red_zone, STACK_MAX + abi.red_zone + abi.stack_hi + 8)]
    spans += [(base, max(bits // 8 * n, 1)) for _, base, _size, bits, n, _ in arrays]
    if any(not 0 <= lo < lo + n <= CANONICAL for lo, n in spans) or not 0 <= ret_addr < CANONICAL:
        out.error = ("the counterexample needs addresses outside the emulator's canonical user space "
                     f"(below {CANONICAL:#x}), so it cannot be replayed")
        return out
    try:
        _map(mu, spans)
    except uc.UcError as e:
        out.error = f"cannot map the counterexample's memory in unicorn ({e})"
        return out
    try:
        mu.mem_write(blob.base, blob.linked(blob.base, placed))
        for at, ro in zip(placed, blob.rodata, strict=True):
            mu.mem_write(at, link_data(ro, at, blob.base))
    except ValueError as e:      # rodata.LinkError: the linker could not place it so either
        out.error = f"the counterexample's layout cannot be linked: {e}"
        return out
    for name, base, _size, bits, n, _const in arrays:
        w = bits // 8
        data = b"".join(model.get(f"{name}.{i}", 0).to_bytes(w, "little") for i in range(n))
        mu.mem_write(base, data)
    for sym in ex.symbols:
        off = stack_offset(sym)
        if off is not None:
            mu.mem_write(sp0 + off, bytes([model.get(sym, 0)]))
    if is_x86:
        mu.mem_write(sp0, ret_addr.to_bytes(8, "little"))
    for name, val in regs.items():
        rid = _reg_id(blob.arch, name)
        if rid is None:
            continue
        if name == "rflags":
            val = (val & X86_FLAG_BITS) | 0x2 | ((regs.get("acflag", 0) & 1) << 18) \
                | ((regs.get("idflag", 0) & 1) << 21)
        if name == "nzcv":
            val &= 0xF0000000
        try:
            mu.reg_write(rid, val)
        except (uc.UcError, OverflowError, TypeError):
            continue
    _run(mu, blob, abi, out, arrays, sp0, ret_addr, loop_bound, rodata)
    return out


def _map(mu: uc.Uc, spans: list[tuple[int, int]]) -> None:
    pages = sorted((s // PAGE * PAGE, -(-(s + n) // PAGE) * PAGE) for s, n in spans)
    merged: list[list[int]] = []
    for lo, hi in pages:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    for lo, hi in merged:
        mu.mem_map(lo, hi - lo)


def _run(mu, blob: Blob, abi: Abi, out: Replay, arrays, sp0: int, ret_addr: int, loop_bound: int,
         rodata: list[tuple[int, int]]) -> None:
    is_x86 = blob.arch == "x86_64"
    sp_reg = X.UC_X86_REG_RSP if is_x86 else A.UC_ARM64_REG_SP
    visits: dict[int, int] = {}
    pending: list[tuple[int, int, int, bool, int]] = []
    cur = {"addr": blob.entry, "sp": sp0, "ret": False}
    stack_hi = sp0 + abi.stack_hi

    def stop(kind: str, addr: int, msg: str) -> None:
        out.events.append((kind, addr, msg))
        mu.emu_stop()

    def flush() -> bool:
        sp_end = mu.reg_read(sp_reg)
        for insn, addr, size, write, sp_at in pending:
            lo = min(sp_at, sp_end) - abi.red_zone
            if not (lo <= addr and addr + size <= stack_hi):
                stop("memory-safety", insn, f"{'write' if write else 'read'} of {size} bytes at {addr:#x} "
                     "outside the stack frame")
                return False
        pending.clear()
        return True

    def on_code(mu, addr, size, _):
        if not flush():
            return
        if addr == ret_addr:
            mu.emu_stop()
            return
        if cur["ret"] and not (isa.symbolic_code(blob) and addr in isa.instruction_starts(blob)):
            stop("frame", cur["addr"], f"the return at {cur['addr']:#x} went to {addr:#x}, not to the "
                 f"caller's return address {ret_addr:#x}")
            return
        if not blob.contains(addr):
            stop("policy", cur["addr"], f"execution left the blob for {addr:#x}")
            return
        if isa.symbolic_code(blob) and addr not in isa.instruction_starts(blob):
            stop("policy", cur["addr"], f"the jump at {cur['addr']:#x} went to {addr:#x}, not an instruction "
                 "of the unit")
            return
        d = isa.check(blob, addr)
        if d.kind in ("policy", "undecodable"):
            stop(d.kind, addr, d.message)
            return
        visits[addr] = visits.get(addr, 0) + 1
        if visits[addr] > loop_bound:
            stop("loop-bound", addr, f"loop bound {loop_bound} exceeded at {addr:#x}")
            return
        out.trace.append(addr)
        insn = isa.decode_insn(blob, addr)
        cur["addr"], cur["sp"] = addr, mu.reg_read(sp_reg)
        cur["ret"] = insn is not None and insn.mnemonic in ("ret", "retq", "retaa", "retab")

    def on_mem(mu, access, addr, size, value, _):
        write = access == uc.UC_MEM_WRITE
        for name, base, asize, _bits, _n, const in arrays:
            if base <= addr and addr + size <= base + asize:
                if write and const:
                    stop("memory-safety", cur["addr"], f"write to const array {name}")
                return
        if any(lo <= addr and addr + size <= lo + n for lo, n in rodata):
            if write:
                stop("memory-safety", cur["addr"], f"write of {size} bytes to the unit's read-only data at {addr:#x}")
            return
        if sp0 - STACK_MAX - abi.red_zone <= addr < stack_hi + 8:
            pending.append((cur["addr"], addr, size, write, cur["sp"]))
            return
        stop("memory-safety", cur["addr"], f"{'write' if write else 'read'} of {size} bytes at {addr:#x} "
             "outside every array and the stack frame")

    def on_unmapped(mu, access, addr, size, value, _):
        if access in (uc.UC_MEM_FETCH_UNMAPPED, uc.UC_MEM_FETCH_PROT):
            if addr == ret_addr:
                return False
            kind = "frame" if cur["ret"] else "policy"
            out.events.append((kind, cur["addr"], f"execution left the blob for {addr:#x}"))
            return False
        out.events.append(("memory-safety", cur["addr"], f"access of {size} bytes at unmapped {addr:#x}"))
        return False

    mu.hook_add(uc.UC_HOOK_CODE, on_code)
    mu.hook_add(uc.UC_HOOK_MEM_READ | uc.UC_HOOK_MEM_WRITE, on_mem)
    mu.hook_add(uc.UC_HOOK_MEM_UNMAPPED | uc.UC_HOOK_MEM_FETCH_PROT, on_unmapped)
    try:
        mu.emu_start(blob.entry, ret_addr, count=MAX_STEPS)
    except uc.UcError as e:
        pc = mu.reg_read(X.UC_X86_REG_RIP if is_x86 else A.UC_ARM64_REG_PC)
        if not out.events:
            if pc == ret_addr:
                pass
            else:
                out.events.append(("policy", cur["addr"], f"the instruction at {cur['addr']:#x} "
                                   f"faulted on the emulator ({e})"))
    pc = mu.reg_read(X.UC_X86_REG_RIP if is_x86 else A.UC_ARM64_REG_PC)
    if not out.events and pc == ret_addr:
        out.returned = flush()
    _collect(mu, blob, abi, out, arrays)


def _collect(mu, blob: Blob, abi: Abi, out: Replay, arrays) -> None:
    names = ["rsp" if blob.arch == "x86_64" else "sp", abi.ret_reg, *abi.callee_saved, *abi.untouched,
             *abi.vector_callee_saved]
    for name in names:
        rid = _reg_id(blob.arch, name)
        if rid is not None:
            v = mu.reg_read(rid)
            vmask = (1 << abi.vector_saved_bits) - 1
            out.final_registers[name] = v if name not in abi.vector_callee_saved else v & vmask
    if blob.arch == "x86_64":
        out.final_registers["df"] = (mu.reg_read(X.UC_X86_REG_EFLAGS) >> 10) & 1
    for name, base, _size, bits, n, const in arrays:
        if const:
            continue
        w = bits // 8
        data = bytes(mu.mem_read(base, w * n))
        for i in range(n):
            out.outputs[f"{name}.{i}.out"] = int.from_bytes(data[i * w:(i + 1) * w], "little")
    out.outputs["$ret"] = out.final_registers.get(abi.ret_reg, 0)

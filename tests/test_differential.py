"""Differential tier: the symbolic final state, evaluated under a random concrete entry state,
must equal what unicorn computes from that state. A divergence is a soundness bug in our model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import arm64_const as A
from unicorn import x86_const as X

from verifier import smt
from verifier import spec as spec_mod
from verifier.arch import DEFAULT_ABI
from verifier.blob import Blob
from verifier.names import RETADDR, register, upper_bits
from verifier.symexec import explore

from .asm_library import ASM
from .build import ARCHES, BASE, assemble
from .concrete import DATA, RET, STACK, execute

SCRATCH = {"x86_64": ["rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11"],
           "aarch64": [f"x{i}" for i in range(1, 18)]}
CASES = [(a, n) for a in ARCHES for n in sorted(ASM[a])]
_explored: dict = {}


def _exploration(arch, name):
    if (arch, name) not in _explored:
        code = assemble(arch, ASM[arch][name])
        blob = Blob(code=code, arch=arch, base=BASE, entry=BASE, name=None, source=name, fmt="raw")
        spec = spec_mod.load(name)
        _explored[(arch, name)] = (blob, spec, explore(blob, spec, DEFAULT_ABI[arch]))
    return _explored[(arch, name)]


@pytest.mark.parametrize("arch,name", CASES)
@settings(max_examples=15)
@given(data=st.data())
def test_symbolic_final_state_matches_unicorn(arch, name, data):
    blob, spec, ex = _exploration(arch, name)
    model: dict[str, int] = {}
    for p in spec.signature.params:
        # T p[n]: the explorer's element symbols p.0 … (as many as the largest n), and n within them
        names = [f"{p.name}.{i}" for i in range(spec.lengths[p.name])] if p.is_variable else p.entry_names()
        for n in names:
            model[n] = data.draw(st.integers(0, (1 << p.bits) - 1) | st.sampled_from([0, 1, (1 << p.bits) - 1]))
    for arr, largest in spec.lengths.items():
        model[str(spec.signature.param(arr).length)] = data.draw(st.integers(0, largest))
    if not smt.evaluate(spec.pre, spec.names, model):
        return
    for reg in SCRATCH[arch]:
        model[register(reg)] = data.draw(st.integers(0, (1 << 64) - 1))
    model.update({upper_bits(r): data.draw(st.integers(0, (1 << 32) - 1)) for r in ("rdi", "rsi", "rdx", "rcx")})
    model.update({upper_bits(f"x{i}"): data.draw(st.integers(0, (1 << 32) - 1)) for i in range(4)})
    flags = register("rflags" if arch == "x86_64" else "nzcv")
    model[flags] = data.draw(st.integers(0, (1 << 64) - 1))
    sp = STACK + 0x8000
    model.update({register("rsp" if arch == "x86_64" else "sp"): sp, RETADDR: RET, register("x30"): RET})
    base = {name: DATA + 0x1000 * i for i, (name, *_) in enumerate(ex.arrays)}
    for name, reg, *_ in ex.arrays:
        model[register(reg)] = base[name]
    symbols = {**ex.symbols, **spec.names}
    wanted = set(SCRATCH[arch]) | {"rdi", "rsi", "rdx", "rcx", "rsp", "sp", "x0", "x30"}
    regs = {r: smt.evaluate(t, symbols, model) for r, t in ex.entry_registers.items() if r in wanted}
    if arch == "x86_64":
        regs["eflags"] = (model[flags] & 0x8D5) | 2
    else:
        regs["nzcv"] = model[flags] & 0xF0000000
    live = [p for p in ex.paths if p.status == "returned" and smt.evaluate(p.pc, symbols, model)]
    assert len(live) == 1, "exactly one path must match a concrete state"
    memory = {base[arr]: b"".join(model[f"{arr}.{i}"].to_bytes(bits // 8, "little") for i in range(n))
              for arr, _reg, bits, n, _c, _count in ex.arrays}
    mu = execute(arch, blob.code, regs, memory, count=10_000)
    path = live[0]
    for out, term in path.outputs.items():
        want = smt.evaluate(term, symbols, model)
        if out == "ret":
            reg = X.UC_X86_REG_RAX if arch == "x86_64" else A.UC_ARM64_REG_X0
            got = mu.reg_read(reg) & ((1 << spec.signature.ret.bits) - 1)
        else:
            arr, idx, _ = out.split(".")
            p = spec.signature.param(arr)
            w = p.bits // 8
            got = int.from_bytes(mu.mem_read(base[arr] + int(idx) * w, w), "little")
        assert got == want, f"{out}: unicorn {got:#x}, symbolic {want:#x}"

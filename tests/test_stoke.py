"""The stoke generator: its evaluator against the CPU's semantics (unicorn), synthesis from an
empty program ending PROVEN with fixed seeds, and CEGIS: when the test cases cannot tell a wrong
program from a right one, the verifier's counterexample is what steers the search."""

from __future__ import annotations

import random

import pytest

from generators import Task
from generators.hand import assemble
from generators.stoke import OPS, Fault, Insn, Stoke, render, run
from generators.synth import run as synth
from verifier.spec import load

from .concrete import execute


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_evaluator_agrees_with_the_emulator(arch):
    """Random straight-line programs from the pool: the evaluator's result is the CPU's."""
    rng = random.Random(arch)
    nregs = 4
    checked = 0
    for _ in range(500):
        prog = []
        for _ in range(rng.randrange(1, 6)):
            op = rng.choice(OPS[arch])
            imm = rng.randrange(1, 32) if op in ("shl", "shr", "sar") else rng.choice([0, 1, 3, 16, 255])
            prog.append(Insn(op, rng.randrange(nregs), rng.randrange(nregs), imm))
        values = [rng.getrandbits(32) for _ in range(nregs)]
        try:
            want = run(prog, values, arch)
        except Fault:
            continue
        code = assemble(arch, render(prog, arch, nregs))
        names = ["rax", "rdi", "rsi", "rdx"] if arch == "x86_64" else ["x0", "x1", "x2", "x3"]
        regs = dict(zip(names, values, strict=True))
        regs.update({"rsp": 0x7F8000} if arch == "x86_64" else {"sp": 0x7F8000})
        mu = execute(arch, code, regs, {})
        from unicorn import arm64_const as A
        from unicorn import x86_const as X

        got = mu.reg_read(X.UC_X86_REG_EAX if arch == "x86_64" else A.UC_ARM64_REG_W0) & 0xFFFFFFFF
        assert got == want, (render(prog, arch, nregs), values)
        checked += 1
    assert checked > 120


@pytest.mark.parametrize("arch,spec,seed", [("x86_64", "p01", 1), ("x86_64", "p16", 1), ("aarch64", "p01", 1),
                                            ("aarch64", "p16", 1)])
def test_synthesis_from_scratch_is_proven(arch, spec, seed):
    out = synth(Stoke(), Task(spec=load(spec), arch=arch, seed=seed, budget=90))
    assert out.best is not None and out.best.verdict.value == 0, out.tried[-3:]
    assert out.provenance["generator"] == "stoke" and out.provenance["iterations"] > 0


def test_counterexamples_steer_the_search(monkeypatch):
    """With only x = 0 and x = 1 as test cases, `mov eax, 0` looks right for p01; the verifier's
    counterexample becomes a test case and the search goes on to a proven program."""
    monkeypatch.setattr(Stoke, "_initial_inputs", lambda self: [[0], [1]])
    gen = Stoke()
    out = synth(gen, Task(spec=load("p01"), arch="x86_64", seed=3, budget=90))
    assert out.best is not None and out.best.verdict.value == 0
    verdicts = [t["verdict"] for t in out.tried]
    assert "refuted" in verdicts and verdicts[-1] == "proven", verdicts
    assert len(gen.tests) > 2          # grown by the counterexamples


def test_specs_it_cannot_handle_are_input_errors():
    from verifier.errors import UsageError

    with pytest.raises(UsageError, match="32-bit scalar"):
        Stoke().start(Task(spec=load("sort3"), arch="x86_64"))
    with pytest.raises(UsageError, match="fixes ret"):
        Stoke().start(Task(spec=load("p02"), arch="x86_64"))

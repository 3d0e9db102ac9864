"""The stoke generator: its evaluator against the CPU's semantics (unicorn), synthesis from an
empty program ending PROVEN with fixed seeds, and CEGIS: when the test cases cannot tell a wrong
program from a right one, the verifier's counterexample is what steers the search."""

from __future__ import annotations

import random
from pathlib import Path

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


SYNTHESIS = [("x86_64", p) for p in ("p01", "p02", "p03", "p06", "p16", "p18")] + \
            [("aarch64", p) for p in ("p01", "p03", "p16")]


# --iterations makes each case the same search on any machine: a loaded CI machine is slower
# but proves the same program after the same number of proposals
@pytest.mark.parametrize("arch,spec", SYNTHESIS)
def test_synthesis_from_scratch_is_proven(arch, spec):
    out = synth(Stoke(), Task(spec=load(spec), arch=arch, seed=1, budget=300, iterations=1_500_000))
    assert out.best is not None and out.best.verdict.value == 0, out.tried[-3:]
    assert out.provenance["generator"] == "stoke" and out.provenance["iterations"] > 0


def test_counterexamples_steer_the_search(monkeypatch):
    """With only x = 0 and x = 1 as test cases, `mov eax, 0` looks right for p01; the verifier's
    counterexample becomes a test case and the search goes on to a proven program."""
    monkeypatch.setattr(Stoke, "_initial_inputs", lambda self: [[0], [1]])
    gen = Stoke()
    out = synth(gen, Task(spec=load("p01"), arch="x86_64", seed=3, budget=300, iterations=1_500_000))
    assert out.best is not None and out.best.verdict.value == 0
    verdicts = [t["verdict"] for t in out.tried]
    assert "refuted" in verdicts and verdicts[-1] == "proven", verdicts
    assert len(gen.tests) > 2          # grown by the counterexamples


def test_specs_it_cannot_handle_are_input_errors():
    from verifier.errors import UsageError

    with pytest.raises(UsageError, match="32-bit scalar"):
        Stoke().start(Task(spec=load("sort3"), arch="x86_64"))


LIBRARY_C = Path(__file__).parent / "c" / "library.c"


@pytest.mark.parametrize("arch,fn,seed", [("x86_64", f"p{i:02d}", {4: 2, 9: 2, 10: 4}.get(i, 1)) for i in range(1, 11)]
                         + [("aarch64", "p05", 1)])
def test_optimisation_from_gcc_O0_is_no_longer_than_gcc_O2(tmp_path, arch, fn, seed):
    """tests/c/library.c (written from each function's meaning, loops included) at -O0 is the
    starting program; the result must be proven and no longer than what gcc -O2 makes of it."""
    from generators.stoke import _instructions
    from verifier.blob import load as load_blob

    from .build import compile_c

    src = LIBRARY_C.read_text()
    o0 = compile_c(tmp_path, arch, src, "O0", name="lib0")
    o2 = load_blob(str(compile_c(tmp_path, arch, src, "O2", name="lib2")), symbol=fn)
    out = synth(Stoke(), Task(spec=load(fn), arch=arch, seed=seed, budget=300, iterations=1_000_000,
                              source=f"{o0}"))
    assert out.tried[0]["verdict"] == "proven"                  # the -O0 program itself, verified first
    assert out.best is not None and out.best.verdict.value == 0
    n, limit = _instructions(out.best_candidate.code, arch), _instructions(o2.code, arch)
    assert n <= limit, (n, limit, out.best_candidate.note)


def test_lane_evaluator_agrees_with_the_per_test_case_one():
    """run_lanes (all test cases in one big integer) against run (one test case at a time, and
    itself checked against unicorn above), on random programs and edge-heavy inputs."""
    from generators.stoke import FAMILIES, IMMS, LEA_IMMS, M32, Lanes, faults, run_lanes

    for arch in ("x86_64", "aarch64"):
        rng = random.Random(arch)
        checked = 0
        for _ in range(1500):
            prog = []
            for _ in range(rng.randrange(1, 9)):
                fam = rng.choice(FAMILIES[arch])
                op = fam + rng.choice(("e", "ne", "b", "ae", "be", "a", "l", "ge", "le", "g")) \
                    if fam in ("cmov", "set") else fam
                imm = rng.randrange(1, 32) if op in ("shl", "shr", "sar") else \
                    rng.choice(LEA_IMMS if op == "lea" else IMMS)
                prog.append(Insn(op, rng.randrange(5), rng.randrange(5), imm))
            cases = [[rng.choice([0, 1, M32, 0x80000000, 0x7FFFFFFF, rng.getrandbits(32)]) for _ in range(5)]
                     for _ in range(20)]
            try:
                want = [run(prog, c, arch) for c in cases]
            except Fault:
                assert faults(prog, arch)
                continue
            assert not faults(prog, arch)
            lanes = Lanes(len(cases))
            got = lanes.unpack(run_lanes(prog, [lanes.pack([c[k] for c in cases]) for k in range(5)], arch, lanes))
            assert got == want, (arch, prog)
            checked += 1
        assert checked > 400


def test_parallel_chains_are_the_single_chain_searches(monkeypatch):
    """--jobs 2: chain i runs what --jobs 1 runs with seed + 7919·i, so every candidate the
    coordinator verifies is one of those two searches' candidates; the chains are cleaned up."""
    import multiprocessing

    from generators.chains import SEED_STEP

    def candidates(seed):
        out = synth(Stoke(), Task(spec=load("p07"), arch="x86_64", seed=seed, budget=120, iterations=300_000))
        assert out.best is not None
        return {t["sha256"] for t in out.tried}

    gen = Stoke()
    out = synth(gen, Task(spec=load("p07"), arch="x86_64", seed=5, budget=120, iterations=300_000, jobs=2))
    assert out.best is not None and out.best.verdict.value == 0
    assert gen.stats()["chains"] == 2
    assert {t["sha256"] for t in out.tried} <= candidates(5) | candidates(5 + SEED_STEP)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("nverify-chain")]


def test_iterations_make_the_search_reproducible():
    a = synth(Stoke(), Task(spec=load("p04"), arch="aarch64", seed=9, budget=120, iterations=50_000))
    b = synth(Stoke(), Task(spec=load("p04"), arch="aarch64", seed=9, budget=120, iterations=50_000))
    assert a.proposals == b.proposals <= 50_000
    assert [t["sha256"] for t in a.tried] == [t["sha256"] for t in b.tried]
    assert a.provenance["max_iterations"] == 50_000

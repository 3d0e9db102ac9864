"""Loops and variable-length arrays: vectorised compiler output (gcc -O3, x86-64-v3 too, and the
AArch64 cross gcc at -O3) proves against the library's specs;
off-by-one versions are refuted with replayed counterexamples; a loop that spins on one input is
never PROVEN."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier import prove
from verifier.pipeline import Options

from .build import ARCHES, asm_file, compile_c, have_cc

LOOPS_C = (Path(__file__).parent / "c" / "loops.c").read_text()
FUNCTIONS = ["sum", "copy", "max8", "strnlen", "dot"]
# -O0 and -O2 of the same source are proven with the rest of the library (test_library.py).
OPTS = {"x86_64": ["O3", "O3 -march=x86-64-v3"], "aarch64": ["O3"]}


def _prove(path: Path, spec: str, arch: str) -> dict:
    return prove(str(path), spec, Options(arch=arch)).to_json()


@pytest.mark.parametrize("arch,opt", [(a, o) for a in ARCHES for o in OPTS[a]])
@pytest.mark.parametrize("fn", FUNCTIONS)
def test_compiled_loops_prove(tmp_path, arch, opt, fn):
    if not have_cc(arch):
        pytest.fail(f"no C compiler for {arch}: install gcc-aarch64-linux-gnu (.ci/run does)")
    obj = compile_c(tmp_path, arch, LOOPS_C, opt, name="loops")
    r = _prove(obj, fn, arch)
    assert r["verdict"] == "proven", r


# Each mutation is one edit of the C source: reading or writing one past the end, stopping one short.
OFF_BY_ONE = {
    "sum": [("i < n; i++) s += p[i]", "i <= n; i++) s += p[i]", "memory-safety")],
    "copy": [("i < n; i++) dst[i]", "i <= n; i++) dst[i]", "memory-safety"),
             ("i < n; i++) dst[i]", "i + 1 < n; i++) dst[i]", "postcondition")],
    "max8": [("i < 8; i++)", "i < 7; i++)", "postcondition"),
             ("i < 8; i++)", "i < 9; i++)", "memory-safety")],
    "strnlen": [("while (i < n && s[i]", "while (i <= n && s[i]", "memory-safety")],
    "dot": [("i < n; i++) s += (uint32_t)a[i]", "i + 1 < n; i++) s += (uint32_t)a[i]", "postcondition")],
}
MUTANTS = [(fn, k, arch) for fn, ms in OFF_BY_ONE.items() for k in range(len(ms)) for arch in ARCHES]


@pytest.mark.parametrize("fn,k,arch", MUTANTS)
def test_off_by_one_is_refuted_with_replayed_counterexample(tmp_path, fn, k, arch):
    old, new, reason = OFF_BY_ONE[fn][k]
    assert LOOPS_C.count(old) == 1, old
    obj = compile_c(tmp_path, arch, LOOPS_C.replace(old, new), "O2", name="mutant")
    r = _prove(obj, fn, arch)
    assert r["verdict"] == "refuted" and r["reason"] == reason, r
    assert r["counterexample"]["replayed"] is True, r


SPIN = {
    "x86_64": """
        xor eax, eax
        xor ecx, ecx
        cmp rsi, 5
        jne loop
    spin: jmp spin
    loop: cmp rcx, rsi
        jae done
        add eax, dword ptr [rdi + rcx*4]
        inc rcx
        jmp loop
    done: ret""",
    "aarch64": """
        mov w2, #0
        mov x3, #0
        cmp x1, #5
        b.ne loop
    spin: b spin
    loop: cmp x3, x1
        b.hs done
        ldr w4, [x0, x3, lsl #2]
        add w2, w2, w4
        add x3, x3, #1
        b loop
    done: mov w0, w2
        ret""",
}


@pytest.mark.parametrize("arch", ARCHES)
def test_loop_that_spins_on_one_length_is_never_proven(tmp_path, arch):
    r = _prove(asm_file(tmp_path, arch, SPIN[arch]), "sum", arch)
    assert r["verdict"] in ("unknown", "refuted"), r
    if r["verdict"] == "unknown":
        assert r["reason"] == "loop-bound", r
        assert r["counterexample"]["inputs"]["n"] == "0x5"
    # the same loop without the trap proves: the trap is what is caught
    good = SPIN[arch].replace("jne loop", "jmp loop").replace("b.ne loop", "b loop")
    assert _prove(asm_file(tmp_path, arch, good, name="good"), "sum", arch)["verdict"] == "proven"


def test_access_at_index_n_is_out_of_bounds_even_below_the_largest_n(tmp_path):
    # Reads p[n] only when n == 3, so the read stays inside the 8 elements pre allows at most:
    # still out of bounds, because only n elements exist.
    code = """
        xor eax, eax
        cmp rsi, 3
        jne done
        mov eax, dword ptr [rdi + 12]
    done: ret"""
    r = _prove(asm_file(tmp_path, "x86_64", code), "sum", "x86_64")
    assert r["verdict"] == "refuted" and r["reason"] == "memory-safety", r
    assert r["counterexample"]["inputs"]["n"] == "0x3" and r["counterexample"]["replayed"] is True


# 1000 iterations of a multiply and a xor: the result is a term thousands of operators deep, which
# once overflowed Python's recursion limit in refute fast ("internal error" instead of a verdict).
LONG_LOOP = {
    "x86_64": "mov eax, edi\n mov ecx, 1000\n l: imul eax, eax, 3\n xor eax, edi\n dec ecx\n jnz l\n ret",
    "aarch64": "mov w1, #1000\n l: mul w0, w0, w0\n eor w0, w0, w1\n subs w1, w1, #1\n b.ne l\n ret",
}
LONG_LOOP_SPEC = """(set-info :nverify-signature "uint32_t f(uint32_t x)")
(set-info :nverify-loop-bound 1200)
(define-fun post () Bool {post})
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_loop_a_thousand_times_deep_gets_a_verdict(tmp_path, arch, capsys):
    from verifier.cli import main

    blob = asm_file(tmp_path, arch, LONG_LOOP[arch])
    for post, verdict, code in (("(= ret x)", "refuted", 1), ("(= (bvand ret #x00000001) (bvand ret #x00000001))",
                                                             "proven", 0)):
        spec = tmp_path / f"{verdict}.smt"
        spec.write_text(LONG_LOOP_SPEC.format(post=post))
        r = prove(str(blob), str(spec), Options(arch=arch, jobs=1)).to_json()
        assert r["verdict"] == verdict, r
        assert main(["prove", str(blob), "--spec", str(spec), "--arch", arch, "-q"]) == code
        assert "internal error" not in capsys.readouterr().err


def test_formulas_too_deep_for_any_step_are_unknown_not_an_internal_error(tmp_path, monkeypatch):
    import verifier.pipeline as pipeline

    def overflow(*_args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(pipeline, "_verify", overflow)
    spec = tmp_path / "s.smt"
    spec.write_text(LONG_LOOP_SPEC.format(post="(= ret x)"))
    r = prove(str(asm_file(tmp_path, "x86_64", LONG_LOOP["x86_64"])), str(spec), Options(arch="x86_64")).to_json()
    assert (r["verdict"], r["reason"]) == ("unknown", "solver-unknown") and "nested too deeply" in r["message"]

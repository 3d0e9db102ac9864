"""Co-simulation (issue 17): counterexamples replayed on the CPU oracle, which sees what unicorn does
not (alignment faults) and computes what the CPU computes (AVX2), with every fixture built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verifier import oracle
from verifier.cli import main

from .build import asm_file, compile_c, have_cc

NATIVE = pytest.mark.skipif(oracle.available("x86_64") != "native", reason="needs an x86-64 host")
IDENTITY = """(set-info :nverify-signature "int32_t f(int32_t x)")
(define-fun post () Bool (= ret x))
"""
# A five-element sorting network with its last comparator (1,2) missing: gcc -O3 -march=x86-64-v3
# compiles it into vpminsd/vpmaxsd, where unicorn's results differ from the CPU's.
SORT5_MISSING = """#include <stdint.h>
#define CX(i, j) { int32_t a = p[i], b = p[j]; p[i] = a < b ? a : b; p[j] = a < b ? b : a; }
void sort5(int32_t p[5]) { CX(0,1) CX(3,4) CX(2,4) CX(2,3) CX(1,4) CX(0,3) CX(0,2) CX(1,3) }
"""


def _prove(tmp: Path, blob: Path, spec: str) -> dict:
    out = tmp / "r.json"
    main(["prove", str(blob), "--spec", spec, "--arch", "x86_64", "--json", str(out)])
    return json.loads(out.read_text())


def _has_avx2() -> bool:
    return " avx2" in Path("/proc/cpuinfo").read_text()


@NATIVE
def test_misaligned_movaps_is_refuted_with_the_cpus_signal(tmp_path):
    """rsp-16 is 8 mod 16 at entry: movaps faults (#GP) on every call; unicorn ignores alignment."""
    spec = tmp_path / "id.smt"
    spec.write_text(IDENTITY)
    blob = asm_file(tmp_path, "x86_64", "mov eax, edi\nmovaps [rsp-16], xmm0\nret")
    r = _prove(tmp_path, blob, str(spec))
    assert r["verdict"] == "refuted", r["message"]
    o = r["counterexample"]["oracle"]
    assert o["oracle"] == "native" and o["judged_by"] == "native" and o["cpu"]
    assert o["signal"] == "SIGSEGV" and o["pc"] == "0x400002"
    assert "SIGSEGV" in r["counterexample"]["replay"]


@NATIVE
@pytest.mark.skipif(not have_cc("x86_64"), reason="needs gcc")
def test_avx2_sorting_network_bug_is_refuted_on_the_cpu(tmp_path):
    if not _has_avx2():
        pytest.skip("this CPU has no AVX2")
    obj = compile_c(tmp_path, "x86_64", SORT5_MISSING, "O3 -march=x86-64-v3", "sort5")
    r = _prove(tmp_path, obj, "specs/sort5.smt")
    assert r["verdict"] == "refuted" and r["reason"] == "postcondition", r["message"]
    cex = r["counterexample"]
    assert cex["replayed"] and cex["oracle"]["judged_by"] == "native" and cex["oracle"]["returned"]
    out = [int(cex["actual"][f"p.{i}.out"], 16) for i in range(5)]
    signed = [v - (1 << 32) if v >> 31 else v for v in out]
    assert signed != sorted(signed)


INCREMENT = """(set-info :nverify-signature "int32_t f(int32_t x)")
(define-fun post () Bool (= ret (bvadd x #x00000001)))
"""
# What the injected wrong semantics computes: a proof of this spec for `add eax, 1` rests on it.
WRONG = """(set-info :nverify-signature "int32_t f(int32_t x)")
(define-fun post () Bool (= ret (bvadd x #x00000001 (ite (= x #x00001234) #x00000001 #x00000000))))
"""


@NATIVE
def test_a_normal_proof_carries_its_cosimulation(tmp_path):
    spec = tmp_path / "inc.smt"
    spec.write_text(INCREMENT)
    r = _prove(tmp_path, asm_file(tmp_path, "x86_64", "mov eax, edi\nadd eax, 1\nret"), str(spec))
    assert r["verdict"] == "proven", r["message"]
    assert r["cosim"]["oracle"] == "native" and r["cosim"]["cpu"]
    assert r["cosim"]["states"] > 0 and r["cosim"]["mismatches"] == 0


@NATIVE
def test_a_proof_that_rests_on_a_wrong_semantics_is_unknown(tmp_path, monkeypatch):
    """Iop_Add32 replaced by a + b + (a == 0x1234): the blob 'proves' the wrong spec symbolically;
    the CPU, run on states that include the special value, disagrees."""
    import claripy

    from verifier import symexec

    real = symexec._Engine._perform_vex_expr_Op

    def wrong(self, op, args):
        res = real(self, op, args)
        if op == "Iop_Add32":
            res = res + claripy.If(args[0] == 0x1234, claripy.BVV(1, 32), claripy.BVV(0, 32))
        return res
    monkeypatch.setattr(symexec._Engine, "_perform_vex_expr_Op", wrong)
    spec = tmp_path / "wrong.smt"
    spec.write_text(WRONG)
    r = _prove(tmp_path, asm_file(tmp_path, "x86_64", "mov eax, edi\nadd eax, 1\nret"), str(spec))
    assert r["verdict"] == "unknown" and r["reason"] == "lifter-mismatch", r["message"]
    assert r["cosim"]["mismatches"] > 0 and "path 0" in r["message"]


@NATIVE
def test_a_proof_no_state_of_which_runs_on_the_oracle_is_unknown(tmp_path, monkeypatch):
    """The oracle is there but refuses every state (here: every layout is rejected): the PROVEN is not
    confirmed, so it is UNKNOWN with the reason, never a silent PROVEN with 0 states."""
    from verifier.oracle import layout

    def refuse(*a, **k):
        raise oracle.StateError("the address is taken")
    monkeypatch.setattr(layout, "request", refuse)
    spec = tmp_path / "inc.smt"
    spec.write_text(INCREMENT)
    r = _prove(tmp_path, asm_file(tmp_path, "x86_64", "mov eax, edi\nadd eax, 1\nret"), str(spec))
    assert r["verdict"] == "unknown" and r["reason"] == "lifter-mismatch", r["message"]
    assert "ran no entry state" in r["message"] and "address is taken" in r["message"]
    assert r["cosim"]["states"] == 0 and r["cosim"]["available"] is True


def test_without_an_oracle_the_cosim_block_says_so(tmp_path, monkeypatch):
    from verifier.oracle import cosim

    monkeypatch.setattr(cosim, "oracle_for", lambda arch: None)
    spec = tmp_path / "inc.smt"
    spec.write_text(INCREMENT)
    r = _prove(tmp_path, asm_file(tmp_path, "x86_64", "mov eax, edi\nadd eax, 1\nret"), str(spec))
    assert r["verdict"] == "proven", r["message"]
    assert r["cosim"]["available"] is False and "unicorn only" in r["cosim"]["note"]


@pytest.mark.skipif(oracle.available("aarch64") is None, reason="no qemu-aarch64")
def test_an_aarch64_proof_is_cosimulated_under_qemu(tmp_path):
    """States keep x30 4-aligned (the oracle maps its landing stub there): before, every AArch64 state
    was refused and the proof carried 0 co-simulated states."""
    spec = tmp_path / "inc.smt"
    spec.write_text(INCREMENT)
    out = tmp_path / "r.json"
    main(["prove", str(asm_file(tmp_path, "aarch64", "add w0, w0, #1\nret")), "--spec", str(spec),
          "--arch", "aarch64", "--json", str(out)])
    r = json.loads(out.read_text())
    assert r["verdict"] == "proven", r["message"]
    assert r["cosim"]["oracle"] == "qemu" and r["cosim"]["states"] > 0 and r["cosim"]["mismatches"] == 0


def test_a_stray_write_is_found_beside_the_writes_the_blob_may_make():
    """The canary check compares whole stretches of a page: bytes of a writable array and of the stack
    window may change, any other byte of a mapped page (a const array's, the canary around an array)
    is a stray write, reported at its address."""
    from verifier.oracle import concrete, cosim, initial_pages
    from verifier.oracle.state import EntryState, Region, Run

    arr, ro, sp = 0x10_0008, 0x10_0100, 0x20_0800
    state = EntryState("aarch64", b"\x00" * 4, 0x40_0000, 0x40_0000,
                       (Region(sp - 0x100, bytes(0x200)), Region(arr, bytes(20)), Region(ro, bytes(8), writable=False)),
                       {"sp": sp}, 0x50_0000)
    arrays = (concrete.Array("p", arr, 20, 32, 5, False), concrete.Array("q", ro, 8, 32, 2, True))
    c = concrete.Concrete(state, {}, arrays, (), sp, 0x50_0000, (sp - 0x100, sp + 0x100))

    def stray(*changes: int) -> list:
        pages = {p: bytearray(b) for p, b in initial_pages(state).items()}
        for a in changes:
            pages[a & ~0xFFF][a & 0xFFF] ^= 0xFF
        run = Run("qemu", "", returned=True, pages={p: bytes(b) for p, b in pages.items()})
        return cosim._stray_writes("aarch64", c, run)

    assert stray() == []
    assert stray(arr, arr + 19, sp - 0x100, sp + 0xFF) == []
    for bad in (arr - 1, arr + 20, ro, ro + 7, sp + 0x100, 0x10_0000, 0x10_0FFF):
        got = stray(arr + 4, bad)
        assert got and got[0][0] == "memory-safety" and f"{bad:#x}" in got[0][2], (hex(bad), got)
    assert f"{arr + 20:#x}" in stray(arr + 40, arr + 20)[0][2]     # the first one in the page


CLAMP = """(set-info :nverify-signature "int32_t f(int32_t x)")
(define-fun post () Bool (= ret (ite (bvslt x #x00000000) #x00000000 x)))
"""
CLAMP_ASM = "mov eax, edi\ntest edi, edi\njns done\nxor eax, eax\ndone: ret"


@NATIVE
def test_every_path_runs_a_state_and_the_count_is_in_the_result(tmp_path):
    spec = tmp_path / "clamp.smt"
    spec.write_text(CLAMP)
    r = _prove(tmp_path, asm_file(tmp_path, "x86_64", CLAMP_ASM), str(spec))
    assert r["verdict"] == "proven", r["message"]
    assert r["cosim"]["paths"] == {"returned": 2, "run": 2} and "uncovered" not in r["cosim"]
    assert r["cosim"]["states"] == 16 and r["cosim"]["mismatches"] == 0


@NATIVE
def test_a_path_without_a_state_is_named_not_dropped(tmp_path, monkeypatch):
    """The solver finds no state for one path (here: it is told to find none): the proof stands on the
    other path's states, and the result says which path ran nothing."""
    from verifier.oracle import sample

    real = sample.Sampler.states
    monkeypatch.setattr(sample.Sampler, "states", lambda self, i, n, seed: [] if i == 1 else real(self, i, n, seed))
    spec = tmp_path / "clamp.smt"
    spec.write_text(CLAMP)
    r = _prove(tmp_path, asm_file(tmp_path, "x86_64", CLAMP_ASM), str(spec))
    assert r["verdict"] == "proven", r["message"]
    c = r["cosim"]
    assert c["paths"] == {"returned": 2, "run": 1} and c["states"] == 8
    assert c["uncovered"].startswith("1 of 2 returned paths ran no entry state"), c["uncovered"]
    from reports.terminal import cosim_line

    assert "8 entry states over 1 of 2 paths" in cosim_line(c) and "(paths 1)" in cosim_line(c)

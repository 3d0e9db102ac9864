"""Where VEX and the hardware part ways, nverify follows the hardware (or says UNKNOWN)."""

from __future__ import annotations

import pytest

from verifier import prove
from verifier.pipeline import Options

from .build import asm_file

UDIV0 = """(set-info :nverify-signature "uint32_t udiv0(uint32_t x, uint32_t y)")
(define-fun post () Bool (= ret (ite (= y #x00000000) #x00000000 (bvudiv x y))))
"""
QUOT = """(set-info :nverify-signature "uint32_t quot(uint32_t hi, uint32_t lo, uint32_t d)")
(define-fun pre () Bool (distinct d #x00000000))
(define-fun post () Bool (= ret ((_ extract 31 0) (bvudiv (concat hi lo) ((_ zero_extend 32) d)))))
"""


def _run(tmp_path, arch, spec_text, asm):
    spec = tmp_path / "s.smt"
    spec.write_text(spec_text)
    return prove(str(asm_file(tmp_path, arch, asm)), str(spec), Options(arch=arch, jobs=1)).to_json()


def test_aarch64_division_by_zero_returns_zero(tmp_path):
    assert _run(tmp_path, "aarch64", UDIV0, "udiv w0, w0, w1\n ret")["verdict"] == "proven"


def test_x86_division_by_zero_traps(tmp_path):
    spec = '(set-info :nverify-signature "uint32_t udiv0(uint32_t x, uint32_t y)")\n(define-fun post () Bool true)\n'
    r = _run(tmp_path, "x86_64", spec, "mov eax, edi\n xor edx, edx\n div esi\n ret")
    assert (r["verdict"], r["reason"]) == ("refuted", "policy")
    assert r["counterexample"]["inputs"]["y"] == "0x0" and r["counterexample"]["replayed"]


def test_x86_quotient_overflow_traps_even_though_vex_truncates(tmp_path):
    r = _run(tmp_path, "x86_64", QUOT, "mov eax, esi\n div edx\n ret")
    assert (r["verdict"], r["reason"]) == ("refuted", "policy"), r
    assert "#DE" in r["message"] and r["counterexample"]["replayed"]


@pytest.mark.parametrize("arch,asm", [("x86_64", "cvtsi2sd xmm0, edi\n addsd xmm0, xmm0\n cvttsd2si eax, xmm0\n ret"),
                                      ("aarch64", "scvtf d0, w0\n fadd d0, d0, d0\n fcvtzs w0, d0\n ret")])
def test_floating_point_arithmetic_is_unknown_not_guessed(tmp_path, arch, asm):
    spec = '(set-info :nverify-signature "int32_t twice(int32_t x)")\n(define-fun post () Bool (= ret (bvadd x x)))\n'
    r = _run(tmp_path, arch, spec, asm)
    assert (r["verdict"], r["reason"]) == ("unknown", "unsupported-instruction"), r


@pytest.mark.parametrize("arch,asm,at", [("x86_64", "lea rax, [rip]\n ret", 0x400007),
                                         ("aarch64", "adr x0, .\n ret", 0x400000)])
def test_reading_the_code_address_proves_nothing_about_it(tmp_path, arch, asm, at):
    """The code's own address is the symbol $code plus an offset (the blob may be placed
    anywhere): a spec that holds for any address proves, one that names the address where the
    blob was lifted is refuted, on the CPU with the code placed elsewhere."""
    spec = '(set-info :nverify-signature "uint64_t where(void)")\n(define-fun post () Bool {post})\n'
    r = _run(tmp_path, arch, spec.format(post="true"), asm)
    assert r["verdict"] == "proven", r
    r = _run(tmp_path, arch, spec.format(post=f"(= ret #x{at:016x})"), asm)
    assert r["verdict"] == "refuted" and r["counterexample"]["replayed"], r

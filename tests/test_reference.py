"""Reference mode (DESIGN §3): a blob proven equal to a reference on every entry state."""

from __future__ import annotations

from verifier import prove
from verifier.pipeline import Options

from .build import asm_file, compile_c
from .test_abi_edges import SORT3_C

SIG_ONLY = '(set-info :nverify-signature "uint32_t p01(uint32_t x)")\n'


def test_equal_blobs_prove_and_different_ones_refute(tmp_path):
    spec = tmp_path / "p01.smt"
    spec.write_text(SIG_ONLY)
    ref = asm_file(tmp_path, "x86_64", "lea eax, [rdi-1]\n and eax, edi\n ret", "ref")
    same = asm_file(tmp_path, "x86_64", "mov eax, edi\n sub eax, 1\n and eax, edi\n ret", "same")
    off = asm_file(tmp_path, "x86_64", "mov eax, edi\n sub eax, 2\n and eax, edi\n ret", "off")
    ok = prove(str(same), str(spec), Options(arch="x86_64", ref=str(ref), jobs=1)).to_json()
    assert ok["verdict"] == "proven" and ok["options"]["ref"]["sha256"]
    bad = prove(str(off), str(spec), Options(arch="x86_64", ref=str(ref), jobs=1)).to_json()
    assert (bad["verdict"], bad["reason"]) == ("refuted", "postcondition")
    cex = bad["counterexample"]
    assert cex["replayed"] and cex["expected"]["ret"] != cex["actual"]["ret"]


def test_a_misbehaving_reference_gives_unknown(tmp_path):
    spec = tmp_path / "p01.smt"
    spec.write_text(SIG_ONLY)
    ref = asm_file(tmp_path, "x86_64", "cmp edi, 7\n jne ok\n syscall\n ok: lea eax, [rdi-1]\n and eax, edi\n ret")
    new = asm_file(tmp_path, "x86_64", "lea eax, [rdi-1]\n and eax, edi\n ret", "new")
    r = prove(str(new), str(spec), Options(arch="x86_64", ref=str(ref), jobs=1)).to_json()
    assert (r["verdict"], r["reason"]) == ("unknown", "reference")


def test_gcc_O0_equals_O2_on_aarch64(tmp_path):
    o0 = compile_c(tmp_path, "aarch64", SORT3_C, "O0", "a")
    o2 = compile_c(tmp_path, "aarch64", SORT3_C, "O2", "b")
    spec = tmp_path / "s.smt"
    spec.write_text('(set-info :nverify-signature "void sort3(int32_t p[3])")\n')
    r = prove(str(o2), str(spec), Options(ref=str(o0), jobs=1)).to_json()
    assert r["verdict"] == "proven", r


BRANCHY_REF = """
    cmp edi, 1
    jne a
    mov eax, 10
    ret
a:  cmp edi, 2
    jne b
    mov eax, 20
    ret
b:  cmp edi, 3
    jne c
    mov eax, 30
    ret
c:  xor eax, eax
    ret
"""
# One path, and wrong on x = 3 only (31, not 30): the reference's path for x = 3 is the one a
# two-path budget leaves unexplored.
STRAIGHT_WRONG = """
    xor eax, eax
    mov ecx, 10
    cmp edi, 1
    cmove eax, ecx
    mov ecx, 20
    cmp edi, 2
    cmove eax, ecx
    mov ecx, 31
    cmp edi, 3
    cmove eax, ecx
    ret
"""


def test_a_reference_cut_off_at_the_path_limit_gives_unknown(tmp_path):
    spec = tmp_path / "f.smt"
    spec.write_text('(set-info :nverify-signature "uint32_t f(uint32_t x)")\n')
    ref = asm_file(tmp_path, "x86_64", BRANCHY_REF, "ref")
    new = asm_file(tmp_path, "x86_64", STRAIGHT_WRONG, "new")
    cut = prove(str(new), str(spec), Options(arch="x86_64", ref=str(ref), jobs=1, max_paths=2)).to_json()
    assert (cut["verdict"], cut["reason"]) == ("unknown", "timeout"), cut
    assert "reference" in cut["message"]
    full = prove(str(new), str(spec), Options(arch="x86_64", ref=str(ref), jobs=1)).to_json()
    assert (full["verdict"], full["reason"]) == ("refuted", "postcondition"), full
    assert full["counterexample"]["inputs"]["x"] == "0x3"

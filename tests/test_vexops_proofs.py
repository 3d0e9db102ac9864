"""Golden cases for the forms verifier/vexops.py models: for each, a kernel that now PROVES its
spec and a wrong variant that REFUTES it (replayed), on the ISA the form belongs to. The CPU
agreement of each form is tests/test_vexops.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from verifier import prove
from verifier.pipeline import Options

from .build import CC, asm_file, compile_c, have_cc

S2N = Path(__file__).parent / "data" / "s2n-bignum"


def _prove(tmp_path: Path, arch: str, spec: str, blob: Path, **kw) -> dict:
    s = tmp_path / "spec.smt"
    s.write_text(spec)
    return prove(str(blob), str(s), Options(arch=arch, jobs=1, **kw)).to_json()


def _asm(tmp_path: Path, arch: str, spec: str, text: str) -> dict:
    return _prove(tmp_path, arch, spec, asm_file(tmp_path, arch, text))


def _verdict(r: dict) -> tuple[str, str | None]:
    return r["verdict"], r.get("reason")


def _refuted(r: dict, reason: str) -> None:
    assert _verdict(r) == ("refuted", reason), r
    assert r["counterexample"]["replayed"], r


def _bits(var: str, lo: int, hi: int, step: int, width: int) -> str:
    """The bits lo, lo+step … below hi of var, each zero-extended to width bits (bvadd operands)."""
    return " ".join(f"((_ zero_extend {width - 1}) ((_ extract {i} {i}) {var}))" for i in range(lo, hi, step))


# --- AArch64 popcount: cnt + addv (what gcc emits for __builtin_popcountll) ----------------------

# Summed in 8 bits: at most 64 bits are set, so the sum never wraps. (Summed in 32 bits the same
# spec is a counting argument CDCL solvers find hard: that obligation times out.)
POPCOUNT = f"""(set-info :nverify-signature "uint32_t popcount64(uint64_t x)")
(define-fun post () Bool (= ret ((_ zero_extend 24) (bvadd {_bits("x", 0, 64, 1, 8)}))))
"""


@pytest.mark.skipif(not have_cc("aarch64"), reason="needs aarch64-linux-gnu-gcc")
def test_gcc_popcount_on_aarch64_proves(tmp_path):
    src = "#include <stdint.h>\nuint32_t popcount64(uint64_t x) { return __builtin_popcountll(x); }\n"
    obj = compile_c(tmp_path, "aarch64", src, "O2", "popcount")
    text = subprocess.run([CC["aarch64"].replace("gcc", "objdump"), "-d", str(obj)], capture_output=True,
                          text=True).stdout
    assert "cnt\tv0.8b" in text and "addv\tb0" in text, text   # the form under test, not a loop
    assert _verdict(_prove(tmp_path, "aarch64", POPCOUNT, obj)) == ("proven", None)


def test_popcount_of_the_low_word_only_refutes(tmp_path):
    r = _asm(tmp_path, "aarch64", POPCOUNT, "fmov s0, w0\n cnt v0.8b, v0.8b\n addv b0, v0.8b\n fmov w0, s0\n ret")
    _refuted(r, "postcondition")


# --- x86 pavgb / pavgw / psadbw ------------------------------------------------------------------

def _avg_spec(bits: int, n: int) -> str:
    t = f"uint{bits}_t"
    each = " ".join(f"(= a.{i}.out ((_ extract {bits} 1) (bvadd ((_ zero_extend 1) a.{i}) ((_ zero_extend 1) b.{i}) "
                    f"(_ bv1 {bits + 1}))))" for i in range(n))
    return (f'(set-info :nverify-signature "void avg({t} a[{n}], const {t} b[{n}])")\n'
            f"(define-fun post () Bool (and {each}))\n")


AVG = {
    "pavgb": (8, 16, "movdqu xmm0, [rdi]\n movdqu xmm1, [rsi]\n pavgb xmm0, xmm1\n movdqu [rdi], xmm0\n ret"),
    "vpavgw": (16, 16, "vmovdqu ymm0, [rdi]\n vpavgw ymm0, ymm0, [rsi]\n vmovdqu [rdi], ymm0\n vzeroupper\n ret"),
}


@pytest.mark.parametrize("name", sorted(AVG))
def test_rounding_average_proves(tmp_path, name):
    bits, n, text = AVG[name]
    assert _verdict(_asm(tmp_path, "x86_64", _avg_spec(bits, n), text)) == ("proven", None)


def test_average_of_the_wrong_lane_width_refutes(tmp_path):
    text = AVG["pavgb"][2].replace("pavgb", "pavgw")
    _refuted(_asm(tmp_path, "x86_64", _avg_spec(8, 16), text), "postcondition")


SAD = ('(set-info :nverify-signature "uint64_t sad(const uint8_t a[8], const uint8_t b[8])")\n'
       "(define-fun d ((x (_ BitVec 8)) (y (_ BitVec 8))) (_ BitVec 64)\n"
       "  ((_ zero_extend 56) (ite (bvuge x y) (bvsub x y) (bvsub y x))))\n"
       "(define-fun post () Bool (= ret (bvadd " + " ".join(f"(d a.{i} b.{i})" for i in range(8)) + ")))\n")


def test_psadbw_proves(tmp_path):
    text = "movq xmm0, [rdi]\n movq xmm1, [rsi]\n psadbw xmm0, xmm1\n movq rax, xmm0\n ret"
    assert _verdict(_asm(tmp_path, "x86_64", SAD, text)) == ("proven", None)


def test_psadbw_over_half_the_bytes_refutes(tmp_path):
    text = "movd xmm0, [rdi]\n movd xmm1, [rsi]\n psadbw xmm0, xmm1\n movq rax, xmm0\n ret"
    _refuted(_asm(tmp_path, "x86_64", SAD, text), "postcondition")


# --- BMI2 pext / pdep ----------------------------------------------------------------------------

ODD_BITS = ('(set-info :nverify-signature "uint32_t odd_bits(uint64_t x)")\n'
            "(define-fun post () Bool (= ret (concat "
            + " ".join(f"((_ extract {2 * j + 1} {2 * j + 1}) x)" for j in reversed(range(32))) + ")))\n")
SPREAD = ('(set-info :nverify-signature "uint64_t spread(uint32_t x)")\n'   # Morton encoding: bit j -> 2j
          "(define-fun post () Bool (= ret (concat "
          + " ".join(f"#b0 ((_ extract {j} {j}) x)" for j in reversed(range(32))) + ")))\n")
ROUND_TRIP = ('(set-info :nverify-signature "uint16_t f(uint16_t x, uint16_t m)")\n'
              "(define-fun post () Bool (= ret (bvand x m)))\n")
BMI2 = {
    "pext64": (ODD_BITS, "movabs rsi, 0xaaaaaaaaaaaaaaaa\n pext rax, rdi, rsi\n ret"),
    "pdep64": (SPREAD, "movabs rsi, 0x5555555555555555\n mov edi, edi\n pdep rax, rdi, rsi\n ret"),
    "pext_pdep32": (ROUND_TRIP, "pext eax, edi, esi\n pdep eax, eax, esi\n ret"),
}


@pytest.mark.parametrize("name", sorted(BMI2))
def test_pext_pdep_prove(tmp_path, name):
    spec, text = BMI2[name]
    assert _verdict(_asm(tmp_path, "x86_64", spec, text)) == ("proven", None)


@pytest.mark.parametrize("name,old,new", [("pext64", "0xaaaaaaaaaaaaaaaa", "0xaaaaaaaaaaaaaaab"),
                                          ("pdep64", "pdep rax", "pext rax"),
                                          ("pext_pdep32", "pdep eax, eax, esi", "pdep eax, eax, edi")])
def test_pext_pdep_wrong_variant_refutes(tmp_path, name, old, new):
    spec, text = BMI2[name]
    _refuted(_asm(tmp_path, "x86_64", spec, text.replace(old, new)), "postcondition")


# --- xchg with memory (a CAS in VEX) -------------------------------------------------------------

SWAP = ('(set-info :nverify-signature "uint32_t swap(uint32_t p[2], uint32_t v)")\n'
        "(define-fun post () Bool (and (= ret p.1) (= p.1.out v) (= p.0.out p.0)))\n")


def test_xchg_with_memory_proves(tmp_path):
    assert _verdict(_asm(tmp_path, "x86_64", SWAP, "xchg [rdi + 4], esi\n mov eax, esi\n ret")) == ("proven", None)


def test_xchg_with_its_own_stack_slot_proves(tmp_path):
    spec = ('(set-info :nverify-signature "uint64_t f(uint64_t a, uint64_t b)")\n'
            "(define-fun post () Bool (= ret b))\n")
    text = "push rdi\n mov rax, rsi\n xchg [rsp], rax\n pop rax\n ret"
    assert _verdict(_asm(tmp_path, "x86_64", spec, text)) == ("proven", None)


def test_xchg_into_a_const_array_refutes(tmp_path):
    spec = SWAP.replace("uint32_t p[2]", "const uint32_t p[2]").replace(
        "(and (= ret p.1) (= p.1.out v) (= p.0.out p.0))", "(= ret p.1)")
    _refuted(_asm(tmp_path, "x86_64", spec, "xchg [rdi + 4], esi\n mov eax, esi\n ret"), "memory-safety")


def test_xchg_past_the_array_refutes(tmp_path):
    _refuted(_asm(tmp_path, "x86_64", SWAP, "xchg [rdi + 8], esi\n mov eax, esi\n ret"), "memory-safety")


def test_xchg_that_may_split_a_cache_line_is_not_proven(tmp_path):
    spec = SWAP.replace("p[2]", "p[4]")
    r = _asm(tmp_path, "x86_64", spec, "xchg [rdi + 6], esi\n mov eax, esi\n ret")
    assert r["verdict"] != "proven", r
    assert any(o["kind"] == "memory-safety" and o["result"] == "refuted" for o in r["obligations"]), r


def test_other_locked_operations_stay_unsupported(tmp_path):
    r = _asm(tmp_path, "x86_64", SWAP, "mov eax, esi\n lock xadd [rdi + 4], eax\n ret")
    assert _verdict(r) == ("unknown", "unsupported-instruction"), r


# --- AArch64 sbcs with the zero register (issue 17) ----------------------------------------------

NEG_CARRY = "mov x2, #0\n cmp x2, #0\n sbcs x1, xzr, x0\n sbc x0, xzr, xzr\n ret"
ALL_ONES = ('(set-info :nverify-signature "uint64_t f(uint64_t x)")\n'
            "(define-fun post () Bool (= ret #xffffffffffffffff))\n")
NONZERO_MASK = ('(set-info :nverify-signature "uint64_t f(uint64_t x)")\n'
                "(define-fun post () Bool (= ret (ite (= x #x0000000000000000) #x0000000000000000 "
                "#xffffffffffffffff)))\n")


def test_sbcs_with_xzr_first_has_the_cpus_carry(tmp_path):
    # VEX's (angr's) carry made the first spec PROVEN; the CPU returns 0 for x = 0.
    r = _asm(tmp_path, "aarch64", ALL_ONES, NEG_CARRY)
    _refuted(r, "postcondition")
    assert r["counterexample"]["inputs"]["x"] == "0x0"
    assert _verdict(_asm(tmp_path, "aarch64", NONZERO_MASK, NEG_CARRY)) == ("proven", None)


def _s2n_object(tmp_path: Path, edit: tuple[str, str] | None = None) -> Path:
    src = (S2N / "bignum_neg_p256.S").read_text()
    if edit:
        assert edit[0] in src
        src = src.replace(*edit)
    (tmp_path / "neg.S").write_text(src)
    obj = tmp_path / "neg.o"
    subprocess.run([CC["aarch64"], "-c", f"-I{S2N}", str(tmp_path / "neg.S"), "-o", str(obj)], check=True,
                   capture_output=True)
    return obj


@pytest.mark.skipif(not have_cc("aarch64"), reason="needs aarch64-linux-gnu-gcc")
def test_s2n_bignum_neg_p256_proves(tmp_path):
    spec = (S2N / "bignum_neg_p256.smt").read_text()
    r = _prove(tmp_path, "aarch64", spec, _s2n_object(tmp_path))
    assert _verdict(r) == ("proven", None), r


@pytest.mark.skipif(not have_cc("aarch64"), reason="needs aarch64-linux-gnu-gcc")
def test_s2n_bignum_neg_p256_with_a_broken_borrow_chain_refutes(tmp_path):
    spec = (S2N / "bignum_neg_p256.smt").read_text()
    obj = _s2n_object(tmp_path, ("sbcs    d2, xzr, d2", "sbc     d2, xzr, d2"))
    _refuted(_prove(tmp_path, "aarch64", spec, obj), "postcondition")


# --- x86 8- and 16-bit division: #DE on overflow --------------------------------------------------

QUOT8 = ('(set-info :nverify-signature "uint8_t quot(uint16_t n, uint8_t d)")\n'
         "(define-fun pre () Bool (and (distinct d #x00) (bvult (bvudiv n ((_ zero_extend 8) d)) #x0100)))\n"
         "(define-fun post () Bool (= ret ((_ extract 7 0) (bvudiv n ((_ zero_extend 8) d)))))\n")
IQUOT16 = ('(set-info :nverify-signature "int16_t quot(int16_t hi, uint16_t lo, int16_t d)")\n'
           "(define-fun q () (_ BitVec 32) (bvsdiv (concat hi lo) ((_ sign_extend 16) d)))\n"
           "(define-fun pre () Bool (and (distinct d #x0000) (= q ((_ sign_extend 16) ((_ extract 15 0) q)))))\n"
           "(define-fun post () Bool (= ret ((_ extract 15 0) q)))\n")
# The same kernels under a pre that allows any nonzero divisor: a quotient that does not fit faults.
QUOT8_ANY = QUOT8.replace("(and (distinct d #x00) (bvult (bvudiv n ((_ zero_extend 8) d)) #x0100))",
                          "(distinct d #x00)")
IQUOT16_ANY = IQUOT16.replace("(and (distinct d #x0000) (= q ((_ sign_extend 16) ((_ extract 15 0) q))))",
                              "(distinct d #x0000)")
DIV = {"div8": (QUOT8, QUOT8_ANY, "mov eax, edi\n div sil\n ret"),
       "idiv16": (IQUOT16, IQUOT16_ANY, "mov eax, esi\n mov ecx, edx\n mov edx, edi\n idiv cx\n ret")}


@pytest.mark.parametrize("name", sorted(DIV))
def test_narrow_division_proves_when_the_quotient_fits(tmp_path, name):
    spec, _, text = DIV[name]
    assert _verdict(_asm(tmp_path, "x86_64", spec, text)) == ("proven", None)


@pytest.mark.parametrize("name", sorted(DIV))
def test_narrow_division_overflow_faults(tmp_path, name):
    spec, loose, text = DIV[name]
    assert loose != spec
    r = _asm(tmp_path, "x86_64", loose, text)
    _refuted(r, "policy")
    assert "#DE" in r["message"], r


def test_issue_example_div_cl_faults(tmp_path):
    spec = '(set-info :nverify-signature "uint64_t f(void)")\n(define-fun post () Bool true)\n'
    r = _asm(tmp_path, "x86_64", spec, "mov ax, 0x1000\n mov cl, 2\n div cl\n ret")
    _refuted(r, "policy")

"""Calling conventions: code that is right under one ABI and wrong under another is refuted
under the wrong one, for each of sysv, win64, aapcs64 and apple; the result names the ABI."""

from __future__ import annotations

import pytest

from verifier import prove
from verifier.cli import main
from verifier.pipeline import Options

from .build import asm_file, clang_object, compile_c, have_cc

SEVEN = '(set-info :nverify-signature "uint32_t seven(void)")\n(define-fun post () Bool (= ret #x00000007))\n'
ADD = '(set-info :nverify-signature "uint32_t add(uint32_t a, uint32_t b)")\n' \
      '(define-fun post () Bool (= ret (bvadd a b)))\n'
NARROW = '(set-info :nverify-signature "uint32_t addb(uint8_t a, int8_t b)")\n' \
         '(define-fun post () Bool (= ret (bvadd ((_ zero_extend 24) a) ((_ sign_extend 24) b))))\n'
ADD_C = "unsigned add(unsigned a, unsigned b) { return a + b; }\n"
NARROW_C = "unsigned addb(unsigned char a, signed char b) { return a + b; }\n"

# Hand-written `seven` bodies that touch exactly one ABI rule; what each ABI must say of them.
RULES = {
    ("x86_64", "uses-win64-shadow-space"): (
        "mov qword ptr [rsp+8], 7\n mov rax, [rsp+8]\n mov [rsp+32], rax\n ret",
        {"win64": "proven", "sysv": "memory-safety"}),
    ("x86_64", "writes-past-the-shadow-space"): (
        "mov qword ptr [rsp+40], 7\n mov eax, 7\n ret", {"win64": "memory-safety", "sysv": "memory-safety"}),
    ("x86_64", "uses-sysv-red-zone"): (
        "mov dword ptr [rsp-8], 7\n mov eax, [rsp-8]\n ret", {"sysv": "proven", "win64": "memory-safety"}),
    ("x86_64", "clobbers-rsi-rdi"): (
        "xor esi, esi\n xor edi, edi\n mov eax, 7\n ret", {"sysv": "proven", "win64": "frame"}),
    ("x86_64", "clobbers-xmm6"): ("pxor xmm6, xmm6\n mov eax, 7\n ret", {"sysv": "proven", "win64": "frame"}),
    # win64 keeps all 128 bits of xmm6-15, not only the low 64 as AAPCS64 does for v8-v15
    ("x86_64", "clobbers-high-half-of-xmm15"): (
        "punpcklqdq xmm15, xmm15\n mov eax, 7\n ret", {"sysv": "proven", "win64": "frame"}),
    ("x86_64", "saves-and-restores-rsi-xmm6"): (
        "push rsi\n sub rsp, 16\n movdqu [rsp], xmm6\n xor esi, esi\n pxor xmm6, xmm6\n"
        " movdqu xmm6, [rsp]\n add rsp, 16\n pop rsi\n mov eax, 7\n ret", {"sysv": "proven", "win64": "proven"}),
    ("aarch64", "uses-apple-red-zone"): (
        "mov w1, #7\n str w1, [sp, #-16]\n ldr w0, [sp, #-16]\n ret", {"apple": "proven", "aapcs64": "memory-safety"}),
    ("aarch64", "writes-past-the-apple-red-zone"): (
        "mov w1, #7\n str w1, [sp, #-132]\n mov w0, #7\n ret", {"apple": "memory-safety", "aapcs64": "memory-safety"}),
    ("aarch64", "touches-x18"): ("mov x18, #1\n mov w0, #7\n ret", {"apple": "frame", "aapcs64": "frame"}),
}


def _outcome(r: dict) -> str:
    return r["verdict"] if r["verdict"] != "refuted" else r["reason"]


@pytest.mark.parametrize("arch,rule", sorted(RULES))
def test_abi_rules_on_hand_written_code(tmp_path, arch, rule):
    text, expected = RULES[arch, rule]
    blob = asm_file(tmp_path, arch, text)
    spec = tmp_path / "seven.smt"
    spec.write_text(SEVEN)
    for abi, want in expected.items():
        r = prove(str(blob), str(spec), Options(arch=arch, abi=abi)).to_json()
        assert r["abi"] == abi
        assert _outcome(r) == want, (abi, r)
        if r["verdict"] == "refuted":
            assert r["counterexample"]["replayed"] is True


def _spec(tmp_path, text: str, name: str):
    p = tmp_path / f"{name}.smt"
    p.write_text(text)
    return str(p)


def test_sysv_code_is_refuted_under_win64(tmp_path):
    obj = compile_c(tmp_path, "x86_64", ADD_C, "O2", name="add")
    spec = _spec(tmp_path, ADD, "add")
    r = prove(str(obj), spec).to_json()
    assert (r["verdict"], r["abi"], r["blob"]["format"]) == ("proven", "sysv", "elf")
    r = prove(str(obj), spec, Options(abi="win64")).to_json()
    assert (r["verdict"], r["reason"], r["abi"]) == ("refuted", "postcondition", "win64")
    assert r["counterexample"]["replayed"] is True


@pytest.mark.usefixtures("llvm")
def test_win64_code_is_refuted_under_sysv(tmp_path):
    obj = clang_object(tmp_path, "pe", "x86_64", ADD_C, name="add")
    spec = _spec(tmp_path, ADD, "add")
    r = prove(str(obj), spec).to_json()
    assert (r["verdict"], r["abi"], r["blob"]["format"]) == ("proven", "win64", "coff")
    r = prove(str(obj), spec, Options(abi="sysv")).to_json()
    assert (r["verdict"], r["reason"], r["abi"]) == ("refuted", "postcondition", "sysv")


@pytest.mark.usefixtures("llvm")
def test_apple_code_relying_on_caller_extension_is_refuted_under_aapcs64(tmp_path):
    obj = clang_object(tmp_path, "macho", "aarch64", NARROW_C, name="addb")
    spec = _spec(tmp_path, NARROW, "addb")
    r = prove(str(obj), spec).to_json()
    assert (r["verdict"], r["abi"], r["blob"]["format"]) == ("proven", "apple", "macho")
    r = prove(str(obj), spec, Options(abi="aapcs64")).to_json()
    assert (r["verdict"], r["reason"], r["abi"]) == ("refuted", "postcondition", "aapcs64")
    # the counterexample sets bits above the 8-bit argument, which AAPCS64 leaves to chance
    assert r["counterexample"]["replayed"] is True


def test_aapcs64_code_extends_its_own_arguments(tmp_path):
    if not have_cc("aarch64"):
        pytest.fail("no aarch64 cross gcc: install gcc-aarch64-linux-gnu (.ci/run does)")
    obj = compile_c(tmp_path, "aarch64", NARROW_C, "O2", name="addb")
    spec = _spec(tmp_path, NARROW, "addb")
    for abi in ("aapcs64", "apple"):     # correct under both: it makes no use of the extension
        r = prove(str(obj), spec, Options(abi=abi)).to_json()
        assert (r["verdict"], r["abi"]) == ("proven", abi)
    # ... and code that trusts the upper bits (as Apple allows) is refuted under AAPCS64
    blob = asm_file(tmp_path, "aarch64", "add w0, w0, w1, sxtb\n ret")
    r = prove(str(blob), spec, Options(arch="aarch64")).to_json()
    assert (r["verdict"], r["reason"]) == ("refuted", "postcondition")


def test_win64_passes_four_arguments_in_registers(tmp_path):
    spec = _spec(tmp_path, '(set-info :nverify-signature "uint64_t f(uint64_t a, uint64_t b, uint64_t c, '
                 'uint64_t d, uint64_t e)")\n(define-fun post () Bool true)\n', "five")
    blob = asm_file(tmp_path, "x86_64", "ret")
    code = main(["prove", str(blob), "--spec", spec, "--arch", "x86_64", "--abi", "win64", "-q"])
    assert code == 2


@pytest.mark.parametrize("argv,expect", [
    (["--arch", "x86_64", "--abi", "apple"], "--abi apple is an aarch64 ABI but the blob is x86_64"),
    (["--arch", "aarch64", "--abi", "win64"], "--abi win64 is an x86_64 ABI but the blob is aarch64"),
    (["--arch", "x86_64", "--abi", "stdcall"], "unknown ABI 'stdcall'"),
])
def test_abi_that_does_not_fit_is_a_usage_error(tmp_path, capsys, argv, expect):
    blob = asm_file(tmp_path, argv[1], "ret")
    code = main(["prove", str(blob), "--spec", _spec(tmp_path, SEVEN, "seven"), *argv])
    _, err = capsys.readouterr()
    assert code == 2 and expect in err and "Traceback" not in err

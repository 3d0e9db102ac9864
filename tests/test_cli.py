"""The command line: exit codes, JSON output, and one clear line (never a traceback) on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.cli import main

from .build import asm_file
from .kernels import sort3

SPEC_OK = '(set-info :nverify-signature "void sort3(int32_t p[3])")\n(define-fun post () Bool true)\n'


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_prove_json_to_stdout_matches_design(tmp_path, capsys):
    blob = asm_file(tmp_path, "x86_64", sort3("x86_64"))
    code, out, err = run(["prove", str(blob), "--spec", "sort3", "--arch", "amd64", "--json", "-"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["verdict"] == "proven" and data["reason"] is None
    assert data["nverify"] == "0.1.0"
    assert data["blob"]["arch"] == "x86_64" and data["blob"]["size"] == blob.stat().st_size
    assert len(data["blob"]["sha256"]) == 64 and len(data["spec"]["sha256"]) == 64
    assert {o["name"] for o in data["obligations"]} >= {"post#1", "post#5"}
    assert all(o["solver"] in data["options"]["solvers"] and o["seconds"] >= 0 for o in data["obligations"])
    assert set(data["options"]["solvers"]) == {"bitwuzla", "z3", "cvc5"}
    assert "PROVEN" in err


def test_refuted_exit_code_and_json_file(tmp_path, capsys):
    blob = asm_file(tmp_path, "aarch64", sort3("aarch64", "str w3, [x0, #12]\n ret"))
    out_file = tmp_path / "r.json"
    code, out, _ = run(["prove", str(blob), "--spec", "sort3", "--arch", "arm64", "--json", str(out_file)], capsys)
    assert code == 1
    data = json.loads(out_file.read_text())
    assert data["verdict"] == "refuted" and data["reason"] == "memory-safety"
    assert data["counterexample"]["replayed"] is True
    assert "x0" in data["counterexample"]["inputs"]
    assert "REFUTED" in out


def test_unknown_exit_code(tmp_path, capsys):
    blob = asm_file(tmp_path, "x86_64", sort3("x86_64", "cmp edx, 5\n jne ok\n spin: jmp spin\n ok: ret"))
    code, _, _ = run(["prove", str(blob), "--spec", "sort3", "--arch", "x86_64", "-q"], capsys)
    assert code == 3


@pytest.mark.parametrize("solver", ["z3", "bitwuzla", "cvc5"])
def test_one_solver_alone_proves_and_refutes(tmp_path, capsys, solver):
    good = asm_file(tmp_path, "x86_64", sort3("x86_64"))
    code, out, _ = run(["prove", str(good), "--spec", "sort3", "--arch", "x86_64", "--solver", solver,
                        "--json", "-", "-q"], capsys)
    data = json.loads(out)
    assert code == 0 and data["options"]["solvers"].keys() == {solver}
    assert {o["solver"] for o in data["obligations"]} == {solver}
    bad = asm_file(tmp_path, "x86_64", sort3("x86_64").replace("cmovg", "cmovl", 1), name="bad")
    code, out, _ = run(["prove", str(bad), "--spec", "sort3", "--arch", "x86_64", "--solver", solver,
                        "--json", "-", "-q"], capsys)
    data = json.loads(out)
    assert code == 1 and data["counterexample"]["replayed"] is True


def _bad(tmp_path, capsys, argv, *, expect_in):
    out_file = tmp_path / "never.json"
    code, out, err = run([*argv, "--json", str(out_file)] if argv[0] == "prove" else argv, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert expect_in in err, err
    assert not out_file.exists()
    assert not list(tmp_path.glob(".never.json.*"))


@pytest.mark.parametrize("argv,expect", [
    (["prove"], "required"),
    (["prove", "BLOB", "--spec", "sort3"], "raw blob"),
    (["prove", "BLOB", "--spec", "sort3", "--arch", "mips"], "unknown architecture"),
    (["prove", "BLOB", "--spec", "nosuchspec"], "no such spec"),
    (["prove", "MISSING", "--spec", "sort3", "--arch", "x86_64"], "cannot read"),
    (["prove", "EMPTY", "--spec", "sort3", "--arch", "x86_64"], "empty"),
    (["prove", "BLOB", "--spec", "sort3", "--arch", "x86_64", "--timeout", "-1"], "positive"),
    (["prove", "BLOB", "--spec", "sort3", "--arch", "x86_64", "--base", "zz"], "not a number"),
    (["prove", "BLOB", "--spec", "sort3", "--arch", "x86_64", "--symbol", "f"], "object file"),
    (["prove", "BLOB", "--spec", "sort3", "--arch", "x86_64", "--solver", "yices"], "not a solver"),
    (["prove", "BLOB", "--spec", "sort3", "--arch", "x86_64", "--solver", "z3,z3"], "twice"),
    (["prove", "BLOB", "--spec", "sort3", "--arch", "x86_64", "--solver", ","], "at least one"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments(tmp_path, capsys, argv, expect):
    blob = asm_file(tmp_path, "x86_64", sort3("x86_64"))
    (tmp_path / "EMPTY").write_bytes(b"")
    subst = {"BLOB": str(blob), "EMPTY": str(tmp_path / "EMPTY"), "MISSING": str(tmp_path / "nope.bin")}
    _bad(tmp_path, capsys, [subst.get(a, a) for a in argv], expect_in=expect)


@pytest.mark.parametrize("text,expect", [
    ("(declare-const x (_ BitVec 32))", "spec.smt:1: (declare-const"),
    ("(assert true)", "spec.smt:1: (assert"),
    ('(set-info :nverify-signature "void sort3(int32_t p[3])")\n(define-fun post () Bool (= p.3 p.0))',
     "spec.smt:2: 'p.3' is not declared"),
    ('(set-info :nverify-signature "void f(float x)")\n(define-fun post () Bool true)', "unknown type"),
    ('(set-info :nverify-signature "void sort3(int32_t p[3])")\n(define-fun post () Bool (bvadd p.0 p.1))',
     "spec.smt:"),
    ('(set-info :nverify-signature "void sort3(int32_t p[3])")\n(define-fun post () Bool (= p.0 #x01))',
     "spec.smt:2"),
    ('(set-info :nverify-signature "void sort3(int32_t p[3])")\n(define-fun post () Bool', "never closed"),
    ("(define-fun post () Bool true)", "no signature"),
    ('(set-info :nverify-signature "void sort3(int32_t p[3])")', "no postcondition"),
    ('(set-info :nverify-signature "void sort3(int32_t p[3])")\n(set-info :nverify-loop-bound -3)\n'
     "(define-fun post () Bool true)", "spec.smt:2: :nverify-loop-bound"),
    ("\xff\xfe", "cannot read spec"),
    ('(set-info :nverify-signature "void f(uint8_t p[n], size_t n)")\n(define-fun post () Bool true)',
     "pre allows the length n to exceed 4096"),
    ('(set-info :nverify-signature "void f(uint8_t p[n], int32_t n)")\n'
     "(define-fun pre () Bool (bvsle n #x00000008))\n(define-fun post () Bool true)", "to be negative"),
    ('(set-info :nverify-signature "void f(uint8_t p[k], size_t n)")\n(define-fun post () Bool true)',
     "'k' is not a parameter"),
    ('(set-info :nverify-signature "void f(uint8_t p[n], size_t n)")\n'
     "(define-fun pre () Bool (= n #x0000000000000000))\n(define-fun post () Bool true)", "always empty"),
])
def test_bad_specs(tmp_path, capsys, text, expect):
    blob = asm_file(tmp_path, "x86_64", sort3("x86_64"))
    spec = tmp_path / "spec.smt"
    spec.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    _bad(tmp_path, capsys, ["prove", str(blob), "--spec", str(spec), "--arch", "x86_64"], expect_in=expect)


def test_elf_errors(tmp_path, capsys):
    from .build import compile_c
    obj = compile_c(tmp_path, "x86_64", "int g(int x) { return x + 1; }", "O2")
    _bad(tmp_path, capsys, ["prove", str(obj), "--spec", "sort3"], expect_in="no function symbol 'sort3'")
    _bad(tmp_path, capsys, ["prove", str(obj), "--spec", "sort3", "--arch", "aarch64", "--symbol", "g"],
         expect_in="conflicts with the ELF header")
    truncated = tmp_path / "trunc.o"
    truncated.write_bytes(obj.read_bytes()[:100])
    _bad(tmp_path, capsys, ["prove", str(truncated), "--spec", "sort3"], expect_in=str(truncated))


def test_relocation_needing_function_is_unsupported(tmp_path, capsys):
    from .build import compile_c
    src = "#include <stdint.h>\nextern void h(void);\nvoid sort3(int32_t p[3]) { h(); p[0] = 0; }\n"
    obj = compile_c(tmp_path, "x86_64", src, "O2")
    _bad(tmp_path, capsys, ["prove", str(obj), "--spec", "sort3"], expect_in="relocation")


@settings(max_examples=40)
@given(st.binary(max_size=300))
def test_random_files_never_crash(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("fuzz")
    f = d / "f.bin"
    f.write_bytes(b"\x7fELF" + data if data[:1] == b"\x00" else data)
    spec = d / "s.smt"
    spec.write_text(SPEC_OK)
    code = main(["prove", str(f), "--spec", str(spec), "--arch", "x86_64", "-q", "--jobs", "1", "--timeout", "5"])
    assert code in (0, 1, 2, 3)


@given(st.text(max_size=200))
def test_random_specs_are_input_errors(tmp_path_factory, text):
    d = tmp_path_factory.mktemp("fuzzspec")
    spec = d / "s.smt"
    spec.write_text(text)
    from verifier import spec as spec_mod
    from verifier.errors import SpecError
    try:
        spec_mod.load(str(spec))
    except SpecError as e:   # anything else escaping is a bug that would print a traceback
        assert "\n" not in str(e)


def test_help_does_not_import_angr():
    code = ("import sys; from verifier.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'angr' not in sys.modules and 'claripy' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_shipped_example_is_its_source_assembled():
    from pathlib import Path

    from .build import assemble
    from .kernels import EXAMPLE, sort3
    shipped = Path(EXAMPLE).with_suffix(".bin").read_bytes()
    assert assemble("x86_64", sort3("x86_64")) == shipped

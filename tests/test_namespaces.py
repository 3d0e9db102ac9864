"""Spec names and machine symbols are disjoint: a parameter named after a register is not its value.

Each case names the parameter after a piece of machine state (a register, the flags, the return
address) and proves a blob that reads that state instead of the parameter. Were the names shared,
the parameter would be the very symbol of the state's entry value and the wrong blob PROVEN; the
verdicts must be exactly those of the same spec with a neutral name. Counterexamples keep showing
machine inputs under the names DESIGN §5 gives them (rsp, [rsp-8], [rsp]), never a symbol name.
"""

from __future__ import annotations

import pytest

from verifier import prove
from verifier.pipeline import Options

from .build import asm_file

NEUTRAL = "v"
# arch, parameter name, post over the parameter {p}, a blob reading the named state, a right blob
CASES = [
    ("x86_64", "rax", "(= ret {p})", "ret", "mov rax, rdi\n ret"),
    ("x86_64", "rsi", "(= ret {p})", "mov rax, rsi\n ret", "mov rax, rdi\n ret"),
    ("x86_64", "rdx", "(= ret {p})", "mov rax, rdx\n ret", "mov rax, rdi\n ret"),
    ("x86_64", "r11", "(= ret {p})", "mov rax, r11\n ret", "mov rax, rdi\n ret"),
    ("x86_64", "rsp", "(= ret {p})", "mov rax, rsp\n ret", "mov rax, rdi\n ret"),
    ("x86_64", "retaddr", "(= ret {p})", "mov rax, [rsp]\n ret", "mov rax, rdi\n ret"),
    ("x86_64", "rdi", "(= ret {p})", "mov rax, rsi\n ret", "mov rax, rdi\n ret"),
    ("x86_64", "rflags", "(= ret (bvand {p} #x0000000000000001))", "mov eax, 0\n setc al\n ret",
     "mov rax, rdi\n and eax, 1\n ret"),
    ("aarch64", "x2", "(= ret {p})", "mov x0, x2\n ret", "ret"),
    ("aarch64", "x1", "(= ret {p})", "mov x0, x1\n ret", "ret"),
    ("aarch64", "x0", "(= ret {p})", "mov x0, x3\n ret", "ret"),
    ("aarch64", "sp", "(= ret {p})", "mov x0, sp\n ret", "ret"),
    ("aarch64", "x30", "(= ret {p})", "mov x0, x30\n ret", "ret"),
    ("aarch64", "nzcv", "(= ret (bvand (bvlshr {p} #x000000000000001d) #x0000000000000001))",
     "cset x0, cs\n ret", "ubfx x0, x0, #29, #1\n ret"),
]


def _verdict(tmp_path, arch: str, name: str, post: str, blob: str) -> dict:
    spec = tmp_path / f"{name}.smt"
    spec.write_text(f'(set-info :nverify-signature "uint64_t f(uint64_t {name})")\n'
                    f"(define-fun post () Bool {post.format(p=name)})\n")
    path = asm_file(tmp_path, arch, blob, f"b{abs(hash(blob))}")
    return prove(str(path), str(spec), Options(arch=arch, jobs=1)).to_json()


@pytest.mark.parametrize("arch,name,post,wrong,right", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_parameter_named_after_machine_state_is_not_that_state(tmp_path, arch, name, post, wrong, right):
    for blob, want in ((wrong, "refuted"), (right, "proven")):
        named = _verdict(tmp_path, arch, name, post, blob)
        neutral = _verdict(tmp_path, arch, NEUTRAL, post, blob)
        assert (named["verdict"], named["reason"]) == (neutral["verdict"], neutral["reason"]), (named, neutral)
        assert named["verdict"] == want, named
        if want == "refuted":
            inputs = named["counterexample"]["inputs"]
            assert name in inputs and not any("$" in k for k in inputs), inputs
            assert named["counterexample"]["replayed"] is True, named


@pytest.mark.parametrize("blob,shown", [("mov rax, [rsp]\n ret", "[rsp]"), ("mov rax, [rsp-8]\n ret", "[rsp-8]")])
def test_machine_inputs_keep_their_register_names(tmp_path, blob, shown):
    r = _verdict(tmp_path, "x86_64", "x", "(= ret #x0000000000000000)", blob)
    assert (r["verdict"], r["reason"]) == ("refuted", "postcondition"), r
    inputs = r["counterexample"]["inputs"]
    assert shown in inputs and "rsp" in inputs and not any("$" in k for k in inputs), inputs

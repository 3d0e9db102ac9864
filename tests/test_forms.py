"""Instruction-form tier: instances of the verified forms (x86-64 on this CPU, AArch64 on qemu-user)
co-simulated from random entry states — random registers, flags, MXCSR and x87 control word,
memory operand contents — between nverify's symbolic model and the CPU oracle: every GPR, the
defined flags, vector registers, the FP control state and memory must agree, and a flag a form
lists as undefined must be a fresh unknown in the model. A deterministic sample runs here;
benchmarks/form_soak.py runs every instance many times."""

from __future__ import annotations

import random

import pytest

from verifier.isa import aarch64, x86_64
from verifier.oracle import available, forms, host

X86 = forms.instances("x86_64")
A64 = forms.instances("aarch64")
# Always in the sample: forms with a correction, undefined flags, faults or the FP control state.
PINNED = ["adc rcx, qword ptr [rdi + 16]", "div rcx", "bsf ecx, edx", "shl rcx, cl", "imul rcx, rdx",
          "ldmxcsr dword ptr [rdi + 16]", "movdqa xmm1, xmmword ptr [rdi + 16]", "vpaddd ymm1, ymm2, ymm3",
          "push rcx", "bt ecx, 1"]
A64_PINNED = ["sbc x2, xzr, x4", "adds w2, w3, #1", "ldp x2, x3, [x1, #16]", "addv s1, v2.4s"]


def _sample(pool: list, pinned: list[str], n: int) -> list:
    keep = [p for p in pool if p[1] in pinned]
    rest = [p for p in pool if p[1] not in pinned]
    return keep + random.Random(17).sample(rest, max(0, min(len(rest), n - len(keep))))


@pytest.mark.parametrize("form,line", _sample(X86, PINNED, 20), ids=lambda v: v if isinstance(v, str) else "")
def test_x86_form_agrees_with_the_cpu(form, line):
    r = forms.check(forms.harness("x86_64", line, form, host.has_avx()), form, 4, seed=1)
    if r.unsupported:
        pytest.skip(f"nverify's engine refuses it (a proof that uses it is UNKNOWN): {r.unsupported}")
    assert not r.error, r.error
    assert r.states >= 2, r
    assert not r.mismatches, "\n".join(m.show() for m in r.mismatches)


@pytest.mark.skipif(available("aarch64") is None, reason="no qemu-aarch64")
@pytest.mark.parametrize("form,line", _sample(A64, A64_PINNED, 6), ids=lambda v: v if isinstance(v, str) else "")
def test_aarch64_form_agrees_with_qemu(form, line):
    r = forms.check(forms.harness("aarch64", line, form), form, 3, seed=1)
    if r.unsupported:
        pytest.skip(f"nverify's engine refuses it (a proof that uses it is UNKNOWN): {r.unsupported}")
    assert not r.error, r.error
    assert r.states >= 2, r
    assert not r.mismatches, "\n".join(m.show() for m in r.mismatches)


def test_most_forms_have_an_instance():
    for arch, pool, table in (("x86_64", X86, x86_64.TABLE), ("aarch64", A64, aarch64.TABLE)):
        named = {m for m, fs in table.items() if any(f.group not in ("control flow", "hints") for f in fs)}
        covered = {f.mnemonic for f, _ in pool}
        assert len(covered) >= 0.85 * len(named), (arch, sorted(named - covered))


def test_a_wrong_model_is_caught():
    """The tier sees a difference: a flag the model wrongly leaves defined is reported, and so is an
    output that differs (here: the form claims CF is undefined after add, which it is not)."""
    add = x86_64.TABLE["add"][0]
    wrong = forms.Form(add.mnemonic, add.shapes, add.widths, prefixes=add.prefixes, undefined="C")
    r = forms.check(forms.harness("x86_64", "add ecx, edx", wrong, host.has_avx()), wrong, 2, seed=3)
    assert r.mismatches and "flag C is undefined" in r.mismatches[0].what, r


def test_sbc_family_matches_the_cpu():
    """angr computes sbcs's carry from the subtrahend, not the carry in: with x3 == x4 and C clear
    the CPU gives C = 0, angr's model C = 1; `mov x2, #0; cmp x2, #0; sbcs x1, xzr, x0; sbc x0, xzr, xzr`
    returns 0 for x0 = 0 on the CPU and all ones under angr. nverify's own flag thunk (vexops.py)
    must agree with the CPU on every one of these."""
    if available("aarch64") is None:
        pytest.skip("no AArch64 oracle (qemu-aarch64)")
    for line in ("sbcs x2, x3, x4", "sbcs x1, xzr, x0", "ngcs x2, x3", "sbcs w2, w3, w3", "adcs x2, x3, x4"):
        form = aarch64.TABLE[line.split()[0]][0]
        r = forms.check(forms.harness("aarch64", line, form), form, 8, seed=5)
        assert not r.mismatches, (line, r.mismatches[:2])


def test_adcx_with_its_mandatory_prefix_is_admitted_and_agrees_with_the_cpu():
    """adcx is 66 0F 38 F6: its 66 is part of the opcode, not an operand-size prefix (it was once
    refuted as one: a false REFUTED of correct code)."""
    from verifier.oracle.host import _field

    lines = [(f, line) for f, line in X86 if f.mnemonic == "adcx"]
    assert {line.split(",")[0] for _, line in lines} >= {"adcx ecx", "adcx rcx"}, lines
    if "adx" not in _field("flags").split():
        pytest.skip("no ADX on this CPU")
    for form, line in lines:
        r = forms.check(forms.harness("x86_64", line, form, host.has_avx()), form, 4, seed=1)
        assert not r.error and not r.unsupported and r.states >= 2 and not r.mismatches, (line, r)

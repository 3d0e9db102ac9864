"""Soundness tier: booby-trapped blobs that random testing misses must never come out PROVEN."""

from __future__ import annotations

import pytest

from verifier import prove
from verifier.pipeline import Options

from .build import asm_file
from .kernels import sort3

TRIGGERS = {
    "magic-input": ("postcondition", {
        "x86_64": "cmp dword ptr [rdi+4], 0x1337\n jne ok\n mov dword ptr [rdi], 0x7fffffff\n ok: ret",
        "aarch64": "ldr w5, [x0, #4]\n mov w6, #0x1337\n cmp w5, w6\n b.ne ok\n mov w7, #0x7fffffff\n"
                   " str w7, [x0]\n ok: ret"}),
    "pointer-keyed": ("postcondition", {
        "x86_64": "cmp rdi, 0x123450\n jne ok\n mov dword ptr [rdi], 7\n ok: ret",
        "aarch64": "movz x5, #0x12, lsl #16\n movk x5, #0x3450\n cmp x0, x5\n b.ne ok\n mov w7, #7\n"
                   " str w7, [x0]\n ok: ret"}),
    "stack-keyed": ("postcondition", {
        "x86_64": "mov rax, rsp\n and eax, 0xfff0\n cmp eax, 0x1230\n jne ok\n mov dword ptr [rdi], 1\n ok: ret",
        "aarch64": "mov x5, sp\n and x5, x5, #0xfff0\n cmp x5, #0x230\n b.ne ok\n mov w7, #7\n"
                   " str w7, [x0]\n ok: ret"}),
    "uninitialised-register": ("postcondition", {
        "x86_64": "cmp r11, 0x99\n jne ok\n mov dword ptr [rdi], 1\n ok: ret",
        "aarch64": "cmp x11, #0x99\n b.ne ok\n mov w7, #7\n str w7, [x0]\n ok: ret"}),
    "timestamp": ("policy", {
        "x86_64": "rdtsc\n cmp eax, 5\n jne ok\n mov dword ptr [rdi], 1\n ok: ret",
        "aarch64": "mrs x5, cntvct_el0\n cmp x5, #5\n b.ne ok\n mov w7, #7\n str w7, [x0]\n ok: ret"}),
    "syscall-on-one-input": ("policy", {
        "x86_64": "cmp edx, 77\n jne ok\n syscall\n ok: ret",
        "aarch64": "cmp w3, #77\n b.ne ok\n svc #0\n ok: ret"}),
    "write-one-past": ("memory-safety", {
        "x86_64": "mov [rdi+12], edx\n ret",
        "aarch64": "str w3, [x0, #12]\n ret"}),
    "absolute-read": ("memory-safety", {
        "x86_64": "mov eax, [0x601000]\n ret",
        "aarch64": "movz x5, #0x60, lsl #16\n movk x5, #0x1000\n ldr w6, [x5]\n ret"}),
    "clobbered-callee-saved": ("frame", {
        "x86_64": "mov rbx, 5\n ret",
        "aarch64": "mov x19, #5\n ret"}),
    "rewritten-return-address": ("frame", {
        "x86_64": "mov qword ptr [rsp], 0x400000\n ret",
        "aarch64": "movz x30, #0x40, lsl #16\n ret"}),
    "self-modifying": ("memory-safety", {
        "x86_64": "mov byte ptr [0x400000], 0x90\n ret",
        "aarch64": "movz x5, #0x40, lsl #16\n strb w1, [x5]\n ret"}),
    "below-the-stack": ("memory-safety", {
        "x86_64": "mov [rsp-200], eax\n ret",
        "aarch64": "str w1, [sp, #-16]\n ret"}),
    "callers-stack": ("memory-safety", {
        "x86_64": "mov [rsp+16], eax\n ret",
        "aarch64": "str w1, [sp, #8]\n ret"}),
}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
def test_trigger_is_refuted_with_replayed_counterexample(tmp_path, arch, trigger):
    reason, tails = TRIGGERS[trigger]
    blob = asm_file(tmp_path, arch, sort3(arch, tails[arch]))
    r = prove(str(blob), "sort3", Options(arch=arch, jobs=1)).to_json()
    assert r["verdict"] == "refuted", r
    assert r["reason"] == reason, r
    assert r["counterexample"]["replayed"] is True


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
def test_trigger_is_refuted_when_every_state_is_merged(tmp_path, arch, trigger):
    """State merging (symexec, from the first fork on here) loses no behaviour: same verdicts."""
    reason, tails = TRIGGERS[trigger]
    blob = asm_file(tmp_path, arch, sort3(arch, tails[arch]))
    r = prove(str(blob), "sort3", Options(arch=arch, jobs=1, merge_threshold=1)).to_json()
    assert r["verdict"] == "refuted", r
    assert r["reason"] == reason, r


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_infinite_loop_on_one_input_is_never_proven(tmp_path, arch):
    tail = {"x86_64": "cmp edx, 5\n jne ok\n spin: jmp spin\n ok: ret",
            "aarch64": "cmp w3, #5\n b.ne ok\n spin: b spin\n ok: ret"}[arch]
    blob = asm_file(tmp_path, arch, sort3(arch, tail))
    r = prove(str(blob), "sort3", Options(arch=arch, jobs=1)).to_json()
    assert r["verdict"] in ("unknown", "refuted")
    if r["verdict"] == "unknown":
        assert r["reason"] == "loop-bound"
        ins = r["counterexample"]["inputs"]
        values = [int(ins[f"p.{i}"], 16) for i in range(3)]
        assert max(v - (1 << 32) if v >> 31 else v for v in values) == 5   # the spinning input


WIDEN = """(set-info :nverify-signature "int64_t widen(int32_t x)")
(define-fun post () Bool (= ret ((_ sign_extend 32) x)))
"""


@pytest.mark.parametrize("arch,good,bad", [
    ("x86_64", "movsxd rax, edi\n ret", "mov rax, rdi\n ret"),
    ("aarch64", "sxtw x0, w0\n ret", "ret"),
])
def test_upper_bits_of_32_bit_arguments_are_arbitrary(tmp_path, arch, good, bad):
    spec = tmp_path / "widen.smt"
    spec.write_text(WIDEN)
    ok = prove(str(asm_file(tmp_path, arch, good, "good")), str(spec), Options(arch=arch, jobs=1))
    assert str(ok.verdict) == "proven", ok.to_json()
    r = prove(str(asm_file(tmp_path, arch, bad, "bad")), str(spec), Options(arch=arch, jobs=1)).to_json()
    assert r["verdict"] == "refuted" and r["reason"] == "postcondition", r
    reg = "rdi" if arch == "x86_64" else "x0"
    upper = int(r["counterexample"]["inputs"][reg], 16) >> 32
    sign = (int(r["counterexample"]["inputs"]["x"], 16) >> 31) & 1
    assert upper != (0xFFFFFFFF if sign else 0)

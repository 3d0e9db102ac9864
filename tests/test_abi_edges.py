"""Legitimate calling-convention idioms must not be mistaken for violations: each is PROVEN."""

from __future__ import annotations

import pytest

from verifier import prove
from verifier.pipeline import Options

from .build import asm_file, compile_c
from .kernels import SORT3, sort3

EDGES = {
    ("x86_64", "push-pop-callee-saved"): "push rbx\n push r12\n mov ebx, 1\n mov r12d, 2\n"
        + SORT3["x86_64"] + " pop r12\n pop rbx\n ret",
    ("x86_64", "red-zone"): "mov [rsp-8], rbx\n mov [rsp-128], r12\n" + SORT3["x86_64"]
        + " mov rbx, [rsp-8]\n mov r12, [rsp-128]\n ret",
    ("x86_64", "endbr64"): ".byte 0xf3, 0x0f, 0x1e, 0xfa\n" + sort3("x86_64"),
    ("x86_64", "rbp-frame"): "push rbp\n mov rbp, rsp\n sub rsp, 32\n mov [rbp-4], edi\n"
        + SORT3["x86_64"] + " leave\n ret",
    ("aarch64", "stp-ldp-frame"): "stp x29, x30, [sp, #-32]!\n mov x29, sp\n str x19, [sp, #16]\n"
        " mov x19, #3\n" + SORT3["aarch64"] + " ldr x19, [sp, #16]\n ldp x29, x30, [sp], #32\n ret",
    ("aarch64", "callee-saved-vector"): "sub sp, sp, #16\n str d8, [sp]\n fmov d8, x1\n"
        + SORT3["aarch64"] + " ldr d8, [sp]\n add sp, sp, #16\n ret",
}


@pytest.mark.parametrize("arch,edge", sorted(EDGES))
def test_abi_edge_is_proven(tmp_path, arch, edge):
    blob = asm_file(tmp_path, arch, EDGES[(arch, edge)])
    r = prove(str(blob), "sort3", Options(arch=arch, jobs=1)).to_json()
    assert r["verdict"] == "proven", r


SORT3_C = """
#include <stdint.h>
void sort3(int32_t p[3]) {
  int32_t a = p[0], b = p[1], c = p[2], t;
  if (a > b) { t = a; a = b; b = t; }
  if (b > c) { t = b; b = c; c = t; }
  if (a > b) { t = a; a = b; b = t; }
  p[0] = a; p[1] = b; p[2] = c;
}
"""


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("opt", ["O0", "O2"])
def test_gcc_frames_are_proven(tmp_path, arch, opt, cc=None):
    obj = compile_c(tmp_path, arch, SORT3_C, opt)
    r = prove(str(obj), "sort3", Options(jobs=1)).to_json()
    assert r["verdict"] == "proven", r
    assert r["blob"]["format"] == "elf" and r["blob"]["arch"] == arch

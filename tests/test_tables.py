"""Jump tables (issue 18, part B): gcc -O2's dense `switch` jumps through a table of the function's
own code addresses in .rodata; it proves on both ISAs, co-simulated on the CPU with the code and the
table linked where each state puts them. A code address is `$code + offset`, never a number the
code could return; an index that can leave the table, a target that is not an instruction of the
unit, or an entry returned as data never prove."""

from __future__ import annotations

import subprocess

import pytest

from verifier import prove
from verifier.blob import load

from .build import ARCHES, CC, GAS, emit_signed

CASES = ["(bvmul y #x00000003)", "(bvxor y #x00000055)", "(bvadd y #x00000007)", "(bvlshr y #x00000001)",
         "(bvnot y)", "(bvsub y #x00000009)", "(bvshl y #x00000003)", "(bvor y #x00000100)",
         "(bvmul y #x00000005)", "(bvxor y #x00000099)", "(bvadd y #x00000046)", "(bvlshr y #x00000003)"]
SWITCH = """#include <stdint.h>
uint32_t sw(uint32_t x, uint32_t y) {
  switch (x) {
  case 0: return y * 3; case 1: return y ^ 0x55; case 2: return y + 7; case 3: return y >> 1;
  case 4: return ~y; case 5: return y - 9; case 6: return y << 3; case 7: return y | 0x100;
  case 8: return y * 5; case 9: return y ^ 0x99; case 10: return y + 70; case 11: return y >> 3;
  default: return 0;
  }
}
"""


def _switch_spec() -> str:
    body = "#x00000000"
    for i in reversed(range(len(CASES))):
        body = f"(ite (= x #x{i:08x}) {CASES[i]} {body})"
    return ('; a dense switch on x, each case its own function of y\n'
            '(set-info :nverify-signature "uint32_t sw(uint32_t x, uint32_t y)")\n'
            f"(define-fun post () Bool (= ret {body}))\n")


def _spec(tmp_path, name: str, text: str) -> str:
    p = tmp_path / f"{name}.smt"
    p.write_text(text)
    return str(p)


# x86-64: gcc moves the default case to .text.unlikely (`sw.cold`), a part of the unit too
FLAGS = {"x86_64": ["-fcf-protection=none"], "aarch64": []}


def _compile(tmp_path, arch: str, flags: list[str], edit=None):
    """gcc -O2 -S, optionally edited, then assembled: every fixture is readable source."""
    src = tmp_path / "sw.c"
    src.write_text(SWITCH)
    asm = tmp_path / f"sw_{arch}_{len(flags)}.s"
    subprocess.run([CC[arch], "-O2", *flags, *FLAGS[arch], "-S", str(src), "-o", str(asm)], check=True,
                   capture_output=True)
    if edit is not None:
        asm.write_text(edit(asm.read_text()))
    obj = asm.with_suffix(".o")
    subprocess.run([GAS[arch], str(asm), "-o", str(obj)], check=True, capture_output=True)
    return obj


@pytest.mark.parametrize("arch,flags", [("x86_64", ["-fpie"]), ("x86_64", ["-fno-pic"]), ("aarch64", [])])
def test_a_switch_compiled_to_a_jump_table_proves(tmp_path, arch, flags):
    obj = _compile(tmp_path, arch, flags)
    blob = load(obj, symbol="sw")
    assert blob.rodata and (arch == "aarch64" or blob.rodata[0].links), blob.rodata
    if arch == "x86_64":
        assert "sw.cold" in (blob.extent_note or ""), blob.extent_note
    out = prove(str(obj), _spec(tmp_path, "sw", _switch_spec())).to_json()
    assert out["verdict"] == "proven", out
    assert out["paths"] >= len(CASES) and out["cosim"]["states"] > 0 and out["cosim"]["mismatches"] == 0


def _unbounded(arch: str):
    """The same code without the bounds check in front of the table."""
    if arch == "x86_64":
        return lambda s: "\n".join(ln for ln in s.splitlines() if not ln.strip().startswith(("cmpl\t$11", "ja\t")))
    return lambda s: s.replace("\tbls\t.L18", "\tb\t.L18")


@pytest.mark.parametrize("arch", ARCHES)
def test_an_index_that_can_leave_the_table_is_refuted(tmp_path, arch):
    obj = _compile(tmp_path, arch, ["-fpie"] if arch == "x86_64" else [], _unbounded(arch))
    out = prove(str(obj), _spec(tmp_path, "sw", _switch_spec())).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out
    assert "outside read-only data .rodata" in out["message"], out["message"]


LEAK = ("uint64_t leak(uint64_t x)", """
.intel_syntax noprefix
.text
.globl leak
leak:
lea rdx, [rip + .L4]
movsxd rax, dword ptr [rdx]
add rax, rdx
ret
.L1:
ret
.section .rodata
.balign 4
.L4:
.long .L1 - .L4
""", """
.text
.globl leak
leak:
adr x0, .L1
ret
.L1:
ret
""")


@pytest.mark.parametrize("arch", ARCHES)
def test_a_code_address_returned_as_data_never_proves(tmp_path, arch):
    """A table entry (x86) or an `adr` of a label (AArch64) is the code's address: where the linker
    puts the function is not known, so no value of it is proven."""
    src = tmp_path / f"leak_{arch}.s"
    src.write_text(LEAK[1] if arch == "x86_64" else LEAK[2])
    obj = src.with_suffix(".o")
    subprocess.run([GAS[arch], str(src), "-o", str(obj)], check=True, capture_output=True)
    at = {"x86_64": 0x400000 + 14, "aarch64": 0x400000 + 8}[arch]
    spec = f'(set-info :nverify-signature "{LEAK[0]}")\n(define-fun post () Bool (= ret #x{at:016x}))\n'
    out = prove(str(obj), _spec(tmp_path, "leak", spec)).to_json()
    assert out["verdict"] != "proven", out


MIDDLE = """
.intel_syntax noprefix
.text
.globl sw
sw:
cmp edi, 1
ja .Ldef
lea rdx, [rip + .L4]
mov edi, edi
movsxd rax, dword ptr [rdx + rdi*4]
add rax, rdx
jmp rax
.L0:
mov eax, esi
ret
.L1:
movabs rax, 0xc3f089
ret
.Ldef:
xor eax, eax
ret
.section .rodata
.balign 4
.L4:
.long .L0 - .L4
.long .L1 + 2 - .L4
"""


def test_a_target_inside_an_instruction_is_refuted(tmp_path):
    """Entry 1 points two bytes into the movabs, whose immediate decodes as `mov eax, esi; ret`:
    a jump into the middle of an instruction is a policy violation."""
    src = tmp_path / "mid.s"
    src.write_text(MIDDLE)
    obj = src.with_suffix(".o")
    subprocess.run([GAS["x86_64"], str(src), "-o", str(obj)], check=True, capture_output=True)
    spec = ('(set-info :nverify-signature "uint32_t sw(uint32_t x, uint32_t y)")\n'
            '(define-fun post () Bool (= ret (ite (bvule x #x00000001) y #x00000000)))\n')
    out = prove(str(obj), _spec(tmp_path, "mid", spec)).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "policy", out
    assert "not an instruction of the unit" in out["message"], out["message"]


def test_emit_carries_the_table_and_its_links(tmp_path):
    obj = _compile(tmp_path, "x86_64", ["-fpie", "-fno-reorder-blocks-and-partition"])
    spec = _spec(tmp_path, "sw", _switch_spec())
    out = emit_signed(tmp_path, obj, spec)
    again = load(out / "sw.o", symbol="sw")
    assert again.sha256 == load(obj, symbol="sw").sha256 and again.rodata[0].links
    assert prove(str(out / "sw.o"), spec).verdict.value == 0

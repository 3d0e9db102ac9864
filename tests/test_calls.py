"""Calls within the object (issue 18, part C): a kernel that calls or tail-jumps to a static
`noinline` helper of its object proves at gcc -O0 and -O2 on both ISAs; the helper is part of the
unit, its stack use is checked like the caller's, and the return address a call leaves is the
code's own address, `$code + offset`, which nothing can be proven from."""

from __future__ import annotations

import pytest

from verifier import prove
from verifier.blob import load

from .build import ARCHES, compile_c, emit_signed, gas_object

HELPER = """#include <stdint.h>
static __attribute__((noinline)) uint32_t helper(uint32_t x, uint32_t y) { return x * 3 + (y ^ 0x55); }
uint32_t kern(uint32_t x, uint32_t y) { return helper(x, y) + 1; }
uint32_t tail(uint32_t x, uint32_t y) { return helper(y, x); }
"""
SPECS = {"kern": "(bvadd (bvadd (bvmul x #x00000003) (bvxor y #x00000055)) #x00000001)",
         "tail": "(bvadd (bvmul y #x00000003) (bvxor x #x00000055))"}


def _spec(tmp_path, name: str, sig: str, post: str) -> str:
    p = tmp_path / f"{name}.smt"
    p.write_text(f'(set-info :nverify-signature "{sig}")\n(define-fun post () Bool {post})\n')
    return str(p)


@pytest.mark.parametrize("opt", ["O0", "O2"])
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("fn", ["kern", "tail"])
def test_a_kernel_calling_a_static_helper_proves(tmp_path, arch, opt, fn):
    obj = compile_c(tmp_path, arch, HELPER, opt, "helper")
    blob = load(obj, symbol=fn)
    assert "holds helper" in (blob.extent_note or ""), blob.extent_note
    spec = _spec(tmp_path, fn, f"uint32_t {fn}(uint32_t x, uint32_t y)", f"(= ret {SPECS[fn]})")
    out = prove(str(obj), spec).to_json()
    assert out["verdict"] == "proven", out
    assert out["cosim"]["states"] > 0 and out["cosim"]["mismatches"] == 0


# a static function: the assembler resolves calls to it, with no relocation
LOCAL = {"x86_64": ".type g, @function", "aarch64": ".type g, %function"}
OWN_RETURN = {"x86_64": ".text\n.globl f\nf:\ncall g\nret\n{local}\ng:\nmov rax, qword ptr [rsp]\nret\n",
              "aarch64": ".text\n.globl f\nf:\nstp x29, x30, [sp, #-16]!\nbl g\nldp x29, x30, [sp], #16\nret\n"
                         "{local}\ng:\nmov x0, x30\nret\n"}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_callee_returning_its_return_address_never_proves(tmp_path, arch):
    """The return address is where the linker puts the code plus an offset: `ret = 0x400005` (where
    the proof lifts it) must not prove."""
    obj = gas_object(tmp_path, arch, OWN_RETURN[arch].format(local=LOCAL[arch]), "own")
    at = 0x400000 + {"x86_64": 5, "aarch64": 8}[arch]
    out = prove(str(obj), _spec(tmp_path, "f", "uint64_t f(uint64_t x)", f"(= ret #x{at:016x})")).to_json()
    # refuted on the CPU with the code placed elsewhere, as the counterexample's $code says
    assert out["verdict"] == "refuted" and out["counterexample"]["replayed"], out


CALLERS_STACK = {"x86_64": ".text\n.globl f\nf:\ncall g\nret\n{local}\ng:\nmov qword ptr [rsp + 16], rdi\n"
                           "mov rax, rdi\nret\n",
                 "aarch64": ".text\n.globl f\nf:\nstp x29, x30, [sp, #-16]!\nbl g\nldp x29, x30, [sp], #16\nret\n"
                            "{local}\ng:\nstr x0, [sp, #16]\nret\n"}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_callee_writing_its_callers_callers_stack_is_refuted(tmp_path, arch):
    obj = gas_object(tmp_path, arch, CALLERS_STACK[arch].format(local=LOCAL[arch]), "stack")
    out = prove(str(obj), _spec(tmp_path, "f", "uint64_t f(uint64_t x)", "(= ret x)")).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out


def test_a_call_out_of_the_object_stays_refused(tmp_path):
    from verifier.errors import UnsupportedError

    obj = gas_object(tmp_path, "x86_64", ".text\n.globl f\nf:\ncall ext\nret\n", "ext")
    with pytest.raises(UnsupportedError, match=r"needs a relocation at \+0x1 \(to ext\)"):
        load(obj, symbol="f")


def test_emit_writes_the_helper_and_the_entry(tmp_path):
    """The helper lies before the kernel: raw bytes cannot say where the entry is, so only the
    .o is written, with the function at its offset; it loads back as the same unit."""
    obj = compile_c(tmp_path, "x86_64", HELPER, "O2", "helper")
    spec = _spec(tmp_path, "kern", "uint32_t kern(uint32_t x, uint32_t y)", f"(= ret {SPECS['kern']})")
    out = emit_signed(tmp_path, obj, spec)
    assert sorted(p.name for p in out.iterdir()) == ["kern.o", "kern.o.intoto.json"]
    again, first = load(out / "kern.o", symbol="kern"), load(obj, symbol="kern")
    assert again.sha256 == first.sha256 and again.entry - again.base == first.entry - first.base > 0
    assert prove(str(out / "kern.o"), spec).verdict.value == 0


COLD = """.text
.globl f
.type f, %function
f:
cmp w0, #10
b.hi .Lcold
add w0, w0, #1
.Lback:
ret
.size f, .-f
.section .text.unlikely,"ax",%progbits
.type f.cold, %function
f.cold:
.Lcold:
mov w0, #0
b .Lback
.size f.cold, .-f.cold
"""
COLD_SPEC = "(= ret (ite (bvugt x #x0000000a) #x00000000 (bvadd x #x00000001)))"


def test_a_part_in_another_section_is_part_of_the_unit(tmp_path):
    """gcc's `f.cold` in .text.unlikely, reached and left by jumps the linker relocates (AArch64
    CONDBR19 and JUMP26 here; x86's PC32 in tests/test_tables.py)."""
    obj = gas_object(tmp_path, "aarch64", COLD, "cold")
    blob = load(obj, symbol="f")
    assert "f.cold" in (blob.extent_note or "") and blob.span < blob.size
    out = prove(str(obj), _spec(tmp_path, "f", "uint32_t f(uint32_t x)", COLD_SPEC)).to_json()
    assert out["verdict"] == "proven", out
    assert out["cosim"]["states"] > 0 and out["cosim"]["mismatches"] == 0


def test_a_part_taking_a_code_address_is_refused(tmp_path):
    from verifier.errors import UnsupportedError

    src = COLD.replace("mov w0, #0\n", "adr x1, .\nmov w0, #0\n")
    with pytest.raises(UnsupportedError, match=r"f's part f\.cold \(\.text\.unlikely\) holds adr"):
        load(gas_object(tmp_path, "aarch64", src, "coldadr"), symbol="f")


def test_a_jump_past_its_own_piece_is_refuted(tmp_path):
    """Past the function's own span lies, once linked, other code: a jump the assembler resolved
    there does not reach the part the proof lays out after it."""
    src = COLD.replace("add w0, w0, #1\n", "add w0, w0, #1\ncmp w0, #5\nb.eq .+64\n")
    obj = gas_object(tmp_path, "aarch64", src, "past")
    out = prove(str(obj), _spec(tmp_path, "f", "uint32_t f(uint32_t x)", COLD_SPEC)).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "policy", out
    assert "past the end of its section's part of the unit" in out["message"], out["message"]


# --- -ffunction-sections: the helper is in a section of its own, reached through a relocation ------

def _sections_cc(tmp_path, arch: str, opt: str):
    from .test_rodata import _cc

    return _cc(tmp_path, arch, HELPER, [f"-{opt}", "-ffunction-sections"], f"fsec{opt}")


@pytest.mark.parametrize("opt", ["O0", "O2"])
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("fn", ["kern", "tail"])
def test_a_helper_in_a_section_of_its_own_proves(tmp_path, arch, opt, fn):
    """gcc -ffunction-sections: `call .text.helper-4` (R_X86_64_PC32), `bl` (CALL26), `jmp`/`b`
    (JUMP26): the helper is laid out after the kernel and each branch linked for the layout;
    co-simulation runs it linked so."""
    obj = _sections_cc(tmp_path, arch, opt)
    blob = load(obj, symbol=fn)
    assert "holds helper, parts of it in other sections" in (blob.extent_note or ""), blob.extent_note
    assert blob.span < blob.size and blob.fixups, blob
    spec = _spec(tmp_path, fn, f"uint32_t {fn}(uint32_t x, uint32_t y)", f"(= ret {SPECS[fn]})")
    out = prove(str(obj), spec).to_json()
    assert out["verdict"] == "proven", out
    assert out["cosim"]["states"] > 0 and out["cosim"]["mismatches"] == 0


SECTION = {"x86_64": '.section .text.g,"ax",@progbits\n', "aarch64": '.section .text.g,"ax",%progbits\n'}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_callee_in_another_section_returning_its_return_address_never_proves(tmp_path, arch):
    src = OWN_RETURN[arch].replace("{local}\n", SECTION[arch] + "{local}\n").format(local=LOCAL[arch])
    obj = gas_object(tmp_path, arch, src, "ownsec")
    assert load(obj, symbol="f").fixups
    at = 0x400000 + {"x86_64": 5, "aarch64": 8}[arch]
    out = prove(str(obj), _spec(tmp_path, "f", "uint64_t f(uint64_t x)", f"(= ret #x{at:016x})")).to_json()
    assert out["verdict"] != "proven", out


@pytest.mark.parametrize("binding", [".globl g", ".weak g"])
def test_a_call_to_a_global_or_weak_function_of_another_section_stays_refused(tmp_path, binding):
    """A global helper may be interposed (a shared library's call binds to the program's `g`), a weak
    one replaced by another object's: the callee is not known to be these bytes."""
    from verifier.errors import UnsupportedError

    src = OWN_RETURN["x86_64"].replace("{local}\n", SECTION["x86_64"] + binding + "\n{local}\n")
    obj = gas_object(tmp_path, "x86_64", src.format(local=LOCAL["x86_64"]), "glob")
    with pytest.raises(UnsupportedError, match=r"needs a relocation at \+0x1 \(to g\)"):
        load(obj, symbol="f")


# A `bl` to a helper beyond +-128 MiB goes through a linker veneer that may clobber x16/x17 (AAPCS64's
# IP0/IP1), as for `b` (tests/test_unit_attacks.py): f keeps x in x16 across `bl g`.
VENEER_CALL = (".text\n.globl f\n.type f, %function\nf:\nstp x29, x30, [sp, #-16]!\nmov x16, x0\nbl g\n"
               "ldp x29, x30, [sp], #16\nret\n.size f, .-f\n.section .text.g,\"ax\",%progbits\n"
               ".type g, %function\ng:\nadd x0, x16, #1\nret\n.size g, .-g\n")


def test_a_veneer_on_a_call_to_another_section_is_not_proven_away(tmp_path):
    obj = gas_object(tmp_path, "aarch64", VENEER_CALL, "vcall")
    spec = _spec(tmp_path, "f", "uint64_t f(uint64_t x)", "(= ret (bvadd x #x0000000000000001))")
    out = prove(str(obj), spec).to_json()
    assert out["verdict"] != "proven", out
    # without the clobber it would be: the same function keeping x in x9 proves
    ok = gas_object(tmp_path, "aarch64", VENEER_CALL.replace("x16", "x9"), "vcall9")
    assert prove(str(ok), spec).verdict.value == 0


KERN_MAIN = """#include <stdio.h>
#include <stdint.h>
uint32_t kern(uint32_t, uint32_t);
int main(void) {
  uint32_t x = 0x9e3779b9, y = 7;
  for (int i = 0; i < 1000; i++) {
    uint32_t want = x * 3 + (y ^ 0x55) + 1;
    if (kern(x, y) != want) { printf("bad %u %u\\n", x, y); return 1; }
    x = x * 1664525 + 1013904223; y ^= x >> 7;
  }
  puts("ok");
  return 0;
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_emit_writes_the_parts_as_sections_of_their_own(tmp_path, arch):
    """The .o holds the span in .text and each part in a section of its own, linked by relocations:
    it loads as the same unit (the emitter checks that before writing) and, linked with C by gcc
    and run, computes the spec."""
    import shutil
    import subprocess

    from .build import CC

    obj = _sections_cc(tmp_path, arch, "O2")
    spec = _spec(tmp_path, "kern", "uint32_t kern(uint32_t x, uint32_t y)", f"(= ret {SPECS['kern']})")
    out = emit_signed(tmp_path, obj, spec)
    assert sorted(p.name for p in out.iterdir()) == ["kern.o", "kern.o.intoto.json"]
    again = load(out / "kern.o", symbol="kern")
    assert again.sha256 == load(obj, symbol="kern").sha256 and again.parts
    assert prove(str(out / "kern.o"), spec).verdict.value == 0
    runner = [] if arch == "x86_64" else ["qemu-aarch64"]
    if runner and shutil.which(runner[0]) is None:
        return
    main_c = tmp_path / "main.c"
    main_c.write_text(KERN_MAIN)
    exe = tmp_path / "prog"
    subprocess.run([CC[arch], "-O1", "-static", str(main_c), str(out / "kern.o"), "-o", str(exe)], check=True,
                   capture_output=True)
    ran = subprocess.run([*runner, str(exe)], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and ran.stdout.strip() == "ok", ran


def test_emit_writes_a_cold_part_jumping_back(tmp_path):
    """gcc's f.cold shape: a conditional jump out and a jump back into the span."""
    obj = gas_object(tmp_path, "aarch64", COLD, "cold")
    out = emit_signed(tmp_path, obj, _spec(tmp_path, "f", "uint32_t f(uint32_t x)", COLD_SPEC))
    again = load(out / "f.o", symbol="f")
    assert again.sha256 == load(obj, symbol="f").sha256 and len(again.fixups) == 2


def test_the_digest_covers_where_the_pieces_are_cut(tmp_path):
    """The same bytes and fixups cut into other pieces are another program: a jump the assembler
    resolved from one part into the next is sound when they are one section and runs into other
    code when they are two. The unit's sha256, which the gate and attestations name, must differ."""
    from dataclasses import replace

    blob = load(gas_object(tmp_path, "aarch64", COLD, "cold"), symbol="f")
    (a, b), = blob.parts
    assert replace(blob, parts=((a, b - 4),)).sha256 != blob.sha256
    assert replace(blob, span=blob.span - 4).sha256 != blob.sha256

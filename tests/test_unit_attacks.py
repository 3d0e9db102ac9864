"""Attacks on the verified unit of issue 18 (read-only data, jump tables, calls within the object):
each builds an object from reviewable assembly, links it for real with a small C driver in a
layout the linker accepts, runs it, and shows it breaks the spec there; nverify must not prove it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from verifier import prove
from verifier.blob import load
from verifier.errors import UnsupportedError

from .build import CC, emit_signed, gas_object

DRIVER = """#include <stdint.h>
#include <stdio.h>
uint64_t f(uint64_t);
int main(void) { uint64_t r = f(2); printf("%lu\\n", (unsigned long)r); return 0; }
"""


def _run(tmp_path, arch: str, obj, flags: list[str]) -> subprocess.CompletedProcess | None:
    """`obj` linked with DRIVER by gcc (AArch64: static, run under qemu-aarch64); None when the
    tools are missing."""
    runner = [] if arch == "x86_64" else ["qemu-aarch64"]
    if shutil.which(CC[arch]) is None or (runner and shutil.which(runner[0]) is None):
        return None
    src = tmp_path / "driver.c"
    src.write_text(DRIVER)
    exe = tmp_path / f"driver_{arch}"
    extra = ["-no-pie"] if arch == "x86_64" else ["-static"]
    subprocess.run([CC[arch], *extra, *flags, str(src), str(obj), "-o", str(exe)], check=True, capture_output=True)
    return subprocess.run([*runner, str(exe)], capture_output=True, text=True, timeout=60)


# --- a reference into a constant-merging section with an addend (fixed) ----------------------------
# `.LC0 + 4` names the second 4-byte entity, but ld and lld keep the reference to the entity
# holding .LC0 and add 4 from where that entity ends up: here the second entity equals the first
# and is merged away, so the load reads whatever follows (in practice .eh_frame_hdr's bytes).
MERGED = {"x86_64": ".text\n.globl f\n.type f,@function\nf:\nmov eax, dword ptr [rip + .LC0 + 4]\nret\n"
                    ".size f, .-f\n.section .rodata.cst4,\"aM\",@progbits,4\n.balign 4\n.LC0:\n.long 7\n.long 7\n",
          "aarch64": ".text\n.globl f\n.type f,@function\nf:\nadrp x1, .LC0+4\nldr w0, [x1, :lo12:.LC0+4]\nret\n"
                     ".size f, .-f\n.section .rodata.cst4,\"aM\",@progbits,4\n.balign 4\n.LC0:\n.word 7\n.word 7\n"}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_an_addend_past_a_merged_entity_is_not_the_next_entity(tmp_path, arch):
    obj = gas_object(tmp_path, arch, MERGED[arch], "merged")
    run = _run(tmp_path, arch, obj, [])
    if run is not None:
        assert run.returncode != 0 or int(run.stdout) & 0xFFFFFFFF != 7, run     # the spec says 7
    with pytest.raises(UnsupportedError, match="the linker keeps to its entity at"):
        load(obj, symbol="f")


# --- R_X86_64_32 in a memory operand's displacement (fixed) ------------------------------------
# (The data lies in a section of its own, `hiro`, to be placed apart: since the .ctors attack
# below, only .rodata* sections are read-only data of a unit, so these are refused twice over;
# with .rodata at 2.25 GiB the C runtime's own relocations overflow.)
# ld fills it with any address below 4 GiB; the CPU sign-extends the displacement, so with the
# data at 2.25 GiB the load goes to 0xffffffff90000008 and the program dies of SIGSEGV.
ABS32 = (".text\n.globl f\n.type f,@function\nf:\nmov eax, dword ptr [rdi*4 + 0x11223344]\nret\n.size f, .-f\n"
         ".reloc f+3, R_X86_64_32, .LC0\n.section hiro,\"a\",@progbits\n.balign 4\n.LC0:\n.long 7, 7, 7, 7\n")


# --- adrp with R_AARCH64_ADR_PREL_PG_HI21_NC (fixed) ---------------------------------------------
# The linker does not check that the page difference fits 21 bits: with the data 5 GiB away the
# page wraps and the load faults.
ADRP_NC = (".text\n.globl f\n.type f,@function\nf:\nadrp x1, :pg_hi21_nc:.LC0\nldr w0, [x1, :lo12:.LC0]\nret\n"
           ".size f, .-f\n.section hiro,\"a\",@progbits\n.balign 4\n.LC0:\n.word 7\n")


@pytest.mark.parametrize("arch,source,layout,name", [
    ("x86_64", ABS32, "hiro=0x90000000", "R_X86_64_32"),
    ("aarch64", ADRP_NC, "hiro=0x140000000", "R_AARCH64_ADR_PREL_PG_HI21_NC")])
def test_a_field_the_linker_fills_out_of_reach_is_refused(tmp_path, arch, source, layout, name):
    obj = gas_object(tmp_path, arch, source, "far")
    run = _run(tmp_path, arch, obj, [f"-Wl,--section-start={layout}"])
    if run is not None:
        assert run.returncode != 0, run         # SIGSEGV
    with pytest.raises(UnsupportedError, match=f"{name} rewrites"):
        load(obj, symbol="f")


# --- a jump table whose entries name global symbols (fixed) --------------------------------------
# In a shared library `.quad case0` is a dynamic relocation against the name: the program's own
# case0 (or an LD_PRELOAD's) interposes, and f(0) runs it instead of returning 10.
TABLE_GLOBAL = (".text\n.globl f\n.type f,@function\nf:\ncmp rdi, 1\nja .Ldef\nlea rax, [rip + tab]\n"
                "mov rax, qword ptr [rax + rdi*8]\njmp rax\n.globl case0\ncase0:\nmov eax, 10\nret\n"
                ".globl case1\ncase1:\nmov eax, 11\nret\n.Ldef:\nmov eax, 12\nret\n.size f, .-f\n"
                ".section .rodata\n.balign 8\ntab:\n.quad case0\n.quad case1\n")
INTERPOSER = """#include <stdint.h>
#include <stdio.h>
uint32_t f(uint64_t);
uint32_t case0(void) { return 666; }
int main(void) { printf("%u\\n", f(0)); return 0; }
"""


def test_a_table_entry_naming_a_global_symbol_is_refused(tmp_path):
    obj = gas_object(tmp_path, "x86_64", TABLE_GLOBAL, "tglobal")
    if shutil.which("gcc"):
        lib = tmp_path / "libtg.so"
        subprocess.run(["gcc", "-shared", str(obj), "-o", str(lib)], check=True, capture_output=True)
        src = tmp_path / "interposer.c"
        src.write_text(INTERPOSER)
        exe = tmp_path / "interposer"
        subprocess.run(["gcc", str(src), str(lib), f"-Wl,-rpath,{tmp_path}", "-o", str(exe)], check=True,
                       capture_output=True)
        assert subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip() == "666"
    with pytest.raises(UnsupportedError, match="holds a relocation itself"):
        load(obj, symbol="f")
    # the same table through local labels proves as before
    assert load(gas_object(tmp_path, "x86_64", TABLE_GLOBAL.replace(".globl case0\n", "").replace(
        ".globl case1\n", ""), "tlocal"), symbol="f").rodata[0].links


# --- the code's own address folded by VEX's optimiser (fixed) ------------------------------------
# `lea rax, [rip + .Lf]` leaves `$code + 0`, replaced after the instruction; in an optimised block
# the `and` took the lifting address straight from the lea, so ret = 0x400000 & 0x80000000 = 0
# was proven; co-simulation places the code low, where bit 31 is 0 as well. A PIE run returns
# 0x80000000 whenever the code's address has bit 31 set.
FOLDED = (".text\n.globl f\n.type f,@function\nf:\n.Lf:\nmov eax, 5\njmp .L1\n.L1:\nlea rax, [rip + .Lf]\n"
          "and eax, 0x80000000\nret\n.size f, .-f\n")
ZERO_SPEC = '(set-info :nverify-signature "uint32_t f(void)")\n(define-fun post () Bool (= ret #x00000000))\n'


def _spec(tmp_path, text: str) -> str:
    p = tmp_path / "f.smt"
    p.write_text(text)
    return str(p)


def test_a_code_address_is_not_folded_into_the_next_instruction(tmp_path):
    obj = gas_object(tmp_path, "x86_64", FOLDED, "folded")
    out = prove(str(obj), _spec(tmp_path, ZERO_SPEC)).to_json()
    assert out["verdict"] == "refuted", out


# --- the emitted .o loses the alignment the proof assumed (fixed) --------------------------------
# f lies 16 bytes into a 64-aligned .text, so its address is 16 mod 64 wherever it is linked:
# `lea rax, [rip + f]; and eax, 63` is 16. The emitted .o put f at the start of a 16-aligned
# .text: linked, it returned 32.
ALIGNED = (".text\n.balign 64\n.fill 16, 1, 0xcc\n.globl f\n.type f,@function\nf:\n.Lf:\nlea rax, [rip + .Lf]\n"
           "and eax, 63\nret\n.size f, .-f\n")
SIXTEEN_SPEC = ZERO_SPEC.replace("#x00000000", "#x00000010")


def test_the_emitted_object_keeps_the_code_where_the_proof_put_it(tmp_path):
    obj = gas_object(tmp_path, "x86_64", ALIGNED, "aligned")
    out = emit_signed(tmp_path, obj, _spec(tmp_path, SIXTEEN_SPEC))
    assert sorted(p.name for p in out.iterdir()) == ["f.o", "f.o.intoto.json"]    # no raw bytes
    for o in (obj, out / "f.o"):
        run = _run(tmp_path, "x86_64", o, [])
        if run is not None:
            assert int(run.stdout) == 16, run


# --- an indirect jump to a fixed number (fixed) --------------------------------------------------
# With the code's address a symbol, indirect jumps are allowed (tables); `jmp rax` with rax =
# 0x400014, the lifting address of `mov eax, 7`, was followed there. It is an absolute address:
# the PIE run (code far above bit 40, so the fixed jump is taken; co-simulation places the code
# low and never takes it) dies of SIGSEGV.
FIXED_JUMP = (".text\n.globl f\n.type f,@function\nf:\n.Lf:\nlea rcx, [rip + .Lf]\nshr rcx, 40\njz .Lok\n"
              "mov eax, 0x400014\njmp rax\n.Lok:\nmov eax, 7\nret\n.size f, .-f\n")


def test_an_indirect_jump_to_a_fixed_address_is_refuted(tmp_path):
    obj = gas_object(tmp_path, "x86_64", FIXED_JUMP, "fixed")
    assert load(obj, symbol="f").base + 0x14 == 0x400014
    if shutil.which("gcc"):
        src = tmp_path / "d.c"
        src.write_text(DRIVER)
        exe = tmp_path / "pie"
        subprocess.run(["gcc", "-pie", "-fpie", str(src), str(obj), "-o", str(exe)], check=True, capture_output=True)
        assert subprocess.run([str(exe)], capture_output=True).returncode != 0       # SIGSEGV
    out = prove(str(obj), _spec(tmp_path, ZERO_SPEC.replace("#x00000000", "#x00000007"))).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "policy", out


def test_the_digest_covers_the_alignment_the_proof_assumed(tmp_path):
    """The same bytes at the same offset of a .text aligned 1 lie anywhere once linked, so the
    attested unit of ALIGNED (proven 16) must not vouch for them: the gate compares the sha256,
    the section and the offset, not the section's alignment."""
    proven = load(gas_object(tmp_path, "x86_64", ALIGNED, "a64"), symbol="f")
    loose = load(gas_object(tmp_path, "x86_64", ALIGNED.replace(".balign 64\n", ""), "a1"), symbol="f")
    assert proven.code == loose.code and proven.offset == loose.offset == 16
    assert proven.place == (64, 16) and loose.place == (1, 0)
    assert proven.sha256 != loose.sha256


# --- executing part of a relocated field (fixed) -------------------------------------------------
# A direct jump into `mov eax, [rip+.LC0]` at its last displacement byte runs that byte and the
# next as one instruction: with the data above the code (the proof's lifting layout) the byte is
# 00, `add al, al` (3 -> 6); with the data below the code it is ff, `inc eax` (3 -> 4).
MID_FIELD = (".text\n.globl f\n.type f,@function\nf:\nmov eax, 3\njmp .Lins + 5\n.Lins:\n"
             "mov eax, dword ptr [rip + .LC0]\n.byte 0xc0\nret\n.size f, .-f\n"
             ".section .rodata\n.balign 4\n.LC0:\n.long 7\n")


def test_running_part_of_a_relocated_field_is_not_proven(tmp_path):
    obj = gas_object(tmp_path, "x86_64", MID_FIELD, "midfield")
    for layout, value in (("0x2000000", 6), ("0x300000", 4)):
        run = _run(tmp_path, "x86_64", obj, [f"-Wl,--section-start=.rodata={layout}"])
        if run is not None:
            assert int(run.stdout) == value, run
    out = prove(str(obj), _spec(tmp_path, ZERO_SPEC.replace("#x00000000", "#x00000006"))).to_json()
    assert out["verdict"] != "proven" and "holds only part of" in out["message"], out


# --- an ALU instruction's result taken for a relocated address (fixed) ---------------------------
# `add rax, [rip+.LC0]` holds a PC32 relocation; its sum (3 + 7) was rewritten as if it were the
# address the field gives, `$ro.0 + (10 - placeholder)`, so `- &.LC0` proved 10 - placeholder.
# The path runs only when the data lies above bit 40 (co-simulation places it low): the PIE run
# returns 10 - &.LC0.
ALU = (".text\n.globl f\n.type f,@function\nf:\nlea rcx, [rip + .LC0]\nshr rcx, 40\njz .Lok\nmov eax, 3\n"
       "add rax, qword ptr [rip + .LC0]\nlea rcx, [rip + .LC0]\nsub rax, rcx\nret\n.Lok:\nmovabs rax, {P}\nret\n"
       ".size f, .-f\n.section .rodata\n.balign 8\n.LC0:\n.quad 7\n")


def test_an_alu_result_is_not_taken_for_the_relocated_address(tmp_path):
    ph = load(gas_object(tmp_path, "x86_64", ALU.replace("{P}", "0"), "alu0"), symbol="f").rodata[0].placeholder
    want = (10 - ph) % (1 << 64)
    obj = gas_object(tmp_path, "x86_64", ALU.replace("{P}", hex(want)), "alu")
    assert load(obj, symbol="f").rodata[0].placeholder == ph
    spec = _spec(tmp_path, '(set-info :nverify-signature "uint64_t f(void)")\n'
                           f"(define-fun post () Bool (= ret #x{want:016x}))\n")
    out = prove(str(obj), spec).to_json()
    assert out["verdict"] == "refuted", out


# --- read-only data in a section the linker or the C library gives meaning (fixed) -----------
# A PROGBITS "a" section named .ctors is a list of constructors: ld folds it into .init_array
# and the C runtime calls its entries before main. f, proven, reads its table from there; the
# program dies of SIGSEGV at start, calling 0x700000007.
CTORS = (".text\n.globl f\n.type f,@function\nf:\nmov eax, dword ptr [rdi*4 + .LC0]\nret\n.size f, .-f\n"
         ".section .ctors,\"a\",@progbits\n.balign 4\n.LC0:\n.long 7, 7, 7, 7\n")


def test_data_in_a_section_the_runtime_calls_is_refused(tmp_path):
    obj = gas_object(tmp_path, "x86_64", CTORS, "ctors")
    run = _run(tmp_path, "x86_64", obj, [])
    if run is not None:
        assert run.returncode != 0, run
    with pytest.raises(UnsupportedError, match=r"\(to \.ctors\): R_X86_64_32S rewrites"):
        load(obj, symbol="f")


def _post(sig: str, post: str) -> str:
    return f'(set-info :nverify-signature "{sig}")\n(define-fun post () Bool {post})\n'


def _not_proven(tmp_path, obj, spec: str, why: str = "") -> None:
    out = prove(str(obj), _spec(tmp_path, spec)).to_json()
    assert out["verdict"] != "proven" and why in (out.get("message") or ""), out


# --- a code address taken in a part, hidden from the part's linear sweep (fixed) -----------------
# symbols.py refused a part holding `lea r, [rip+d]`/call/adr by a linear sweep of its bytes. After
# `jmp .+3` and a 0xb8 byte the sweep reads `mov eax, imm32` where the CPU runs `lea rax, [rip-38]`:
# in the proof's layout (the part 48 bytes after f) that is f's `.Lland`, a `$code + offset` the
# part's `jmp rax` was allowed to take. Linked, the part lies elsewhere: f(2) died of SIGSEGV
# (-no-pie, -pie, --section-start), yet f was PROVEN to return 2. Now the instruction is judged where
# it runs (isa._flow): a code address taken in a part is unsupported.
HIDDEN_LEA = """.text
.globl f
.type f, @function
f:
call g
cmp edi, 1
ja f.cold
mov eax, 1
ret
.Lland:
mov eax, 2
ret
.type g, @function
g:
ret
.size g, .-g
.size f, .-f
.section .text.unlikely,"ax",@progbits
.type f.cold, @function
f.cold:
.byte 0xeb, 0x01, 0xb8
.byte 0x48, 0x8d, 0x05, 0xda, 0xff, 0xff, 0xff
jmp rax
.size f.cold, .-f.cold
"""
HIDDEN_SPEC = _post("uint64_t f(uint64_t x)",
                    "(= ret (ite (bvugt ((_ extract 31 0) x) #x00000001) #x0000000000000002 #x0000000000000001))")


@pytest.mark.parametrize("flags", [[], ["-pie"], ["-Wl,--section-start=.text.unlikely=0x800000"]])
def test_a_code_address_hidden_from_a_parts_sweep_is_not_proven(tmp_path, flags):
    obj = gas_object(tmp_path, "x86_64", HIDDEN_LEA, "hidden")
    if flags == ["-pie"]:
        ran = _run(tmp_path, "x86_64", obj, ["-pie", "-fpie"]) if shutil.which("gcc") else None
    else:
        ran = _run(tmp_path, "x86_64", obj, flags)
    if ran is not None:
        assert ran.returncode != 0 and ran.stdout.strip() != "2", ran      # SIGSEGV, not 2
    _not_proven(tmp_path, obj, HIDDEN_SPEC, "takes a code address in a part")


# --- a linker veneer on a jump to a part clobbers x16/x17 (fixed) --------------------------------
# AArch64 `b` to a part in another section is a JUMP26 the proof links directly; ld reaches a part
# beyond +-128 MiB through a veneer (`adrp x16; add x16; br x16`), which AAPCS64 lets clobber IP0/IP1.
# f keeps x in x16 across `b f.cold` and was PROVEN to return x + 1: linked with the part at
# 0x20000000, f(2) returned 0x20000001. Now a relocated `b` leaves x16/x17 unknown (symexec).
VENEER = (".text\n.globl f\n.type f, %function\nf:\nmov x16, x0\nb f.cold\n.Lback:\nret\n.size f, .-f\n"
          ".section .text.unlikely,\"ax\",%progbits\n.type f.cold, %function\nf.cold:\nadd x0, x16, #1\n"
          "b .Lback\n.size f.cold, .-f.cold\n")
PLUS_ONE_SPEC = _post("uint64_t f(uint64_t x)", "(= ret (bvadd x #x0000000000000001))")


def test_a_veneer_on_a_jump_to_a_part_is_not_proven_away(tmp_path):
    obj = gas_object(tmp_path, "aarch64", VENEER, "veneer")
    script = tmp_path / "far.ld"
    script.write_text("SECTIONS { .unl 0x20000000 : { *veneer_aarch64.o(.text.unlikely) } } INSERT AFTER .text;\n")
    runs = [_run(tmp_path, "aarch64", obj, flags) for flags in ([], [f"-Wl,-T,{script}"])]
    if runs[0] is not None:
        assert runs[0].stdout.strip() == "3", runs[0]
        assert runs[1] is not None and runs[1].stdout.strip() == str(0x20000001), runs[1]
    _not_proven(tmp_path, obj, PLUS_ONE_SPEC)


# --- an instruction running past the end of the function's span into the layout's padding (fixed) --
# f ends in `cmp eax, eax; je` with the rel8 byte past `.size f`. In the proof's layout (f's span, then
# int3 padding before the part) the byte read 0xcc: `je .-52`, to f's `mov eax, 2; ret`, PROVEN. Linked,
# the byte is the section's next one (0x00): the jump ran `ud2`, SIGILL. isa._flow now refuses an
# instruction whose bytes run past its piece.
CROSSING = (".text\n.globl f\n.type f, @function\nf:\ncmp edi, 10\nja f.cold\njmp .Lmain\n.Lland:\nmov eax, 2\nret\n"
            + "nop\n" * 42 + ".Lmain:\ncmp eax, eax\n.byte 0x74\n.size f, .-f\n.byte 0x00\nud2\n"
            ".section .text.unlikely,\"ax\",@progbits\n.type f.cold, @function\nf.cold:\nmov eax, 5\nret\n"
            ".size f.cold, .-f.cold\n")
CROSSING_SPEC = _post("uint32_t f(uint32_t x)", "(= ret (ite (bvugt x #x0000000a) #x00000005 #x00000002))")


def test_an_instruction_past_the_spans_end_is_not_proven(tmp_path):
    obj = gas_object(tmp_path, "x86_64", CROSSING, "crossing")
    ran = _run(tmp_path, "x86_64", obj, [])
    if ran is not None:
        assert ran.returncode != 0 and ran.stdout.strip() != "2", ran            # SIGILL
    _not_proven(tmp_path, obj, CROSSING_SPEC, "runs past the end of its section's part")

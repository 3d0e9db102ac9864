"""Attacks on calls to a part of the function in another section (HEAD: `call`/`bl` with
PC32/PLT32/CALL26 to a local function of another executable section takes it into the unit).
Each builds an object from reviewable assembly, links it with the real linker (gcc/ld; AArch64
static, run under qemu-aarch64), runs it, and shows it breaks the spec there; nverify must not
prove it."""

from __future__ import annotations

import pytest

from verifier import prove
from verifier.errors import UnsupportedError

from .build import gas_object
from .test_unit_attacks import _run


def _spec(tmp_path, sig: str, post: str) -> str:
    p = tmp_path / "f.smt"
    p.write_text(f'(set-info :nverify-signature "{sig}")\n(define-fun post () Bool {post})\n')
    return str(p)


PLUS = {n: f"(= ret (bvadd x #x{n:016x}))" for n in (1, 2)}


def _not_proven(tmp_path, obj, sig: str, post: str) -> None:
    """Refused while loading (UnsupportedError) or any verdict but proven."""
    try:
        out = prove(str(obj), _spec(tmp_path, sig, post)).to_json()
    except UnsupportedError:
        return
    assert out["verdict"] != "proven", out


# --- a part in a section the linker or the C runtime gives meaning ----------------------------
# f calls g, a local function of another executable section: any name was taken for a part. But
# ld places `.init`/`.fini` between crti's and crtn's halves of _init/_fini (g's bytes run at
# start, and its `ret` returns from _init with the frame unbalanced), `.init_array` is a table of
# constructors the runtime calls (g's bytes taken for pointers), and a
# `.gnu.warning` section is a linker warning's text, dropped from the output (the call lands on
# whatever follows f: x86 f(2) printed 4198694, AArch64 ran into udf). PROVEN `ret = x + 1` for
# each; linked, the program dies or f(2) is not 3. (The same holds for a jump to such a part,
# gcc's `f.cold`, since before HEAD: the readonly-data rule of elfload._rodata has no twin here.)
CALL_G = {"x86_64": ".text\n.globl f\n.type f,@function\nf:\ncall g\nret\n.size f, .-f\n"
                    ".section {sec},\"ax\",@progbits\n.type g,@function\ng:\nlea rax, [rdi + 1]\nret\n.size g, .-g\n",
          "aarch64": ".text\n.globl f\n.type f,%function\nf:\nstp x29, x30, [sp, #-16]!\nbl g\n"
                     "ldp x29, x30, [sp], #16\n"
                     "ret\n.size f, .-f\n.section {sec},\"ax\",%progbits\n.type g,%function\ng:\nadd x0, x0, #1\nret\n"
                     ".size g, .-g\n"}


@pytest.mark.parametrize("arch,section", [
    ("x86_64", ".init"), ("x86_64", ".fini"), ("x86_64", ".init_array"), ("x86_64", ".gnu.warning"),
    ("aarch64", ".init_array"), ("aarch64", ".gnu.warning")])
def test_a_part_in_a_section_the_linker_gives_meaning_is_not_proven(tmp_path, arch, section):
    obj = gas_object(tmp_path, arch, CALL_G[arch].replace("{sec}", section), "special")
    ran = _run(tmp_path, arch, obj, [])
    if ran is not None:
        assert ran.returncode != 0 or ran.stdout.strip() != "3", ran
    _not_proven(tmp_path, obj, "uint64_t f(uint64_t x)", PLUS[1])


# --- a part in a constant-merging executable section ----------------------------------------
# `.section .text.g,"axM",@progbits,4`: ld (and gold, lld) cut an SHF_MERGE section into
# entities of its entry size and keep one of each value. g's two `add eax, 1` (each padded to 4
# bytes) are one entity to them: linked, g adds 1 once; x86 f(2) returns 3 with ld and gold, 0
# with lld; AArch64 (every instruction an entity) returns 3. PROVEN `ret = x + 2`. (rodata.py
# takes merged read-only data entity by entity; parts are taken whole, whatever their flags.)
MERGED = {"x86_64": ".text\n.globl f\n.type f,@function\nf:\ncall g\nret\n.size f, .-f\n"
                    ".section .text.g,\"axM\",@progbits,4\n.type g,@function\ng:\nmov eax, edi\nnop\nnop\n"
                    "add eax, 1\nnop\nadd eax, 1\nnop\nret\nnop\nnop\nnop\n.size g, .-g\n",
          "aarch64": ".text\n.globl f\n.type f,%function\nf:\nstp x29, x30, [sp, #-16]!\nbl g\n"
                     "ldp x29, x30, [sp], #16\n"
                     "ret\n.size f, .-f\n.section .text.g,\"axM\",%progbits,4\n.type g,%function\ng:\n"
                     "add w0, w0, #1\nadd w0, w0, #1\nret\n.size g, .-g\n"}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_a_part_the_linker_merges_is_not_proven(tmp_path, arch):
    obj = gas_object(tmp_path, arch, MERGED[arch], "merged")
    ran = _run(tmp_path, arch, obj, [])
    if ran is not None:
        assert ran.returncode == 0 and ran.stdout.strip() == "3", ran       # spec: 2 + 2
    _not_proven(tmp_path, obj, "uint32_t f(uint32_t x)", "(= ret (bvadd x #x00000002))")


# --- a part whose symbol runs past its section's end -------------------------------------------
# g1's `.size` says 64 bytes; .text.g1 holds 2. The function's own extent past its section is an
# input error (symbols.unit), a part's was not checked: the piece of g1 in the proof's layout ran
# over the padding and g2, laid out after it, so g1's `jmp .+0x20` (the assembler resolved it:
# no relocation) stayed "inside its piece" and landed on g2's `lea rax, [rdi + 1]`. PROVEN
# `ret = x + 1`; linked, .text.g2 follows .text.g1 at once, and the jump goes 30 bytes past g2,
# into _fini: SIGSEGV.
OVERSIZED = (".text\n.globl f\n.type f,@function\nf:\ncall g1\nret\njmp g2\n.size f, .-f\n"
             ".section .text.g1,\"ax\",@progbits\n.type g1,@function\ng1:\njmp .+0x20\n.size g1, 64\n"
             ".section .text.g2,\"ax\",@progbits\n.type g2,@function\ng2:\nlea rax, [rdi + 1]\nret\n.size g2, .-g2\n")


def test_a_part_whose_size_runs_past_its_section_is_not_proven(tmp_path):
    obj = gas_object(tmp_path, "x86_64", OVERSIZED, "oversized")
    ran = _run(tmp_path, "x86_64", obj, [])
    if ran is not None:
        assert ran.returncode != 0 or ran.stdout.strip() != "3", ran      # SIGSEGV
    _not_proven(tmp_path, obj, "uint64_t f(uint64_t x)", PLUS[1])


# --- two objects, one digest: the span is not in the unit's sha256 -----------------------------
# The layout pads the function's span with int3 up to a 16-byte boundary (at least 16 bytes) before
# the part. B's f ends `cmp eax, eax; je .-0x32` with the rel8 0xcc inside .size f: PROVEN
# `ret = 2`. A is the same source with `.size f` one byte shorter: its je's rel8 is past the span,
# where the layout has the same 0xcc padding, and the part lands at the same offset (80). Same
# code, fixups, entry, place, section, offset and size: the same sha256, so the gate passes A on
# B's attestation. A alone is refuted (the je runs past its piece); linked, its je reads the
# section's next byte (0x00) and runs into ud2: SIGILL.
SPAN = (".text\n.globl f\n.type f, @function\nf:\ncall g\njmp .Lmain\n.Lland:\nmov eax, 2\nret\n"
        + "nop\n" * 42 + ".Lmain:\ncmp eax, eax\n.byte 0x74\n{extra}.size f, .-f\n.byte 0x00\nud2\n"
        ".section .text.g,\"ax\",@progbits\n.type g, @function\ng:\nmov eax, 5\nret\n.size g, .-g\n")


def test_the_digest_covers_where_the_functions_span_ends(tmp_path, capsys):
    from verifier import attest
    from verifier.blob import load
    from verifier.cli import main
    from verifier.emit import emit

    a = gas_object(tmp_path, "x86_64", SPAN.replace("{extra}", ""), "spanA")
    b = gas_object(tmp_path, "x86_64", SPAN.replace("{extra}", ".byte 0xcc\n"), "spanB")
    spec = _spec(tmp_path, "uint32_t f(uint32_t x)", "(= ret #x00000002)")
    ran = _run(tmp_path, "x86_64", a, [])
    if ran is not None:
        assert ran.returncode != 0, ran                                    # SIGILL
    assert prove(str(a), spec).to_json()["verdict"] == "refuted"
    result = prove(str(b), spec)
    assert result.to_json()["verdict"] == "proven"
    attest.keygen(str(tmp_path / "k"))
    emit(str(tmp_path / "att"), result.code, result.to_json(), result.spec_text,
         attest.load_private_key(str(tmp_path / "k.key")), unit=result.unit)
    att = next((tmp_path / "att").glob("*.intoto.json"))
    (tmp_path / "nverify.toml").write_text(
        f'[gate]\nkey = "k.pub"\n\n[[blob]]\npath = "{a.name}"\nspec = "{spec}"\nsymbol = "f"\n'
        f'attestation = "{att.relative_to(tmp_path)}"\n')
    code = main(["gate", "--manifest", str(tmp_path / "nverify.toml")])
    out = capsys.readouterr().out
    assert code != 0, out                                  # PASS spanA_x86_64.o [attested]
    assert load(a, symbol="f").sha256 != load(b, symbol="f").sha256


# --- a call to a local IFUNC ------------------------------------------------------------------
# `call g` / `bl g` with g a local STT_GNU_IFUNC: the linker routes the call through an IPLT entry
# to whatever g's resolver returns at load time (the function itself refuses an IFUNC:
# symbols._check_code). The relocation's symbol kind was not looked at, only that some function
# symbol (gi, at the same address) covers its target: g's bytes were taken for the callee. PROVEN
# `ret = x + 1`; linked (-no-pie, static; AArch64 static), the resolver returned its garbage
# rdi/x0 + 1 and f(2) jumped there: SIGSEGV.
IFUNC = {"x86_64": ".text\n.globl f\n.type f,@function\nf:\ncall g\nret\n.size f, .-f\n"
                   ".section .text.g,\"ax\",@progbits\n.type g, @gnu_indirect_function\n.type gi, @function\ng:\ngi:\n"
                   "lea rax, [rdi + 1]\nret\n.size gi, .-gi\n",
         "aarch64": ".text\n.globl f\n.type f,%function\nf:\nstp x29, x30, [sp, #-16]!\nbl g\nldp x29, x30, [sp], #16\n"
                    "ret\n.size f, .-f\n.section .text.g,\"ax\",%progbits\n.type g, %gnu_indirect_function\n"
                    ".type gi, %function\ng:\ngi:\nadd x0, x0, #1\nret\n.size gi, .-gi\n"}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_a_call_to_a_local_ifunc_is_not_proven(tmp_path, arch):
    obj = gas_object(tmp_path, arch, IFUNC[arch], "ifunc")
    ran = _run(tmp_path, arch, obj, [])
    if ran is not None:
        assert ran.returncode != 0, ran                                    # SIGSEGV
    _not_proven(tmp_path, obj, "uint64_t f(uint64_t x)", PLUS[1])


# --- (older than HEAD) the function itself in such a section --------------------------------------
# The same two holes without any part: f alone in `.init` (PROVEN `ret = x + 1`; linked -no-pie, f's
# bytes run inside _init at start and its `ret` leaves _init's frame unbalanced: SIGSEGV), and f in
# an "axM" section of entry size 4 (PROVEN `ret = x + 2`; ld keeps one `add w0, w0, #1`: f(2) = 3).
OWN_SECTION = {"init": ("x86_64", ".section .init,\"ax\",@progbits\n.globl f\n.type f,@function\nf:\n"
                                  "lea rax, [rdi + 1]\nret\n.size f, .-f\n", 1),
               "merged": ("aarch64", ".section .text.f,\"axM\",%progbits,4\n.globl f\n.type f,%function\nf:\n"
                                     "add x0, x0, #1\nadd x0, x0, #1\nret\n.size f, .-f\n", 2)}


@pytest.mark.parametrize("case", sorted(OWN_SECTION))
def test_a_function_in_a_section_the_linker_gives_meaning_is_not_proven(tmp_path, case):
    arch, src, n = OWN_SECTION[case]
    obj = gas_object(tmp_path, arch, src, case)
    ran = _run(tmp_path, arch, obj, [])
    if ran is not None:
        assert ran.returncode != 0 or ran.stdout.strip() != str(2 + n), ran
    _not_proven(tmp_path, obj, "uint64_t f(uint64_t x)", PLUS[n])


# --- a branch relocation of another instruction's type (AArch64) --------------------------------
# `.reloc ., R_AARCH64_CONDBR19, g` on `tbz w0, #0, .`: ld writes the 19-bit field at bits 5..23,
# which in tbz is imm14 *and* b40, the number of the bit tested. relocated._jump_problem only
# checks the word decoded for the proof's layout (g after f, a small positive displacement: b40 stays
# 0, the target is g): PROVEN `ret = bit0(x) == 0 ? 9 : 7`. ld's default script puts .text.unlikely
# before .text: the displacement is negative, its top bits land in b40, and the linked f is
# `tbz w0, #31, g`; f(1) returns 9. The rodata path re-decodes a relocated instruction with its
# target moved (relocated.problem: `moved`); jumps to parts are not, nor is their type matched to
# the instruction (CONDBR19: b.cond/cbz/cbnz; TSTBR14: tbz/tbnz; JUMP26/CALL26: b/bl).
TBZ = (".text\n.globl f\n.type f,%function\nf:\n.reloc ., R_AARCH64_CONDBR19, g\ntbz w0, #0, .\nmov w0, #7\n"
       "ret\n.size f, .-f\n.section .text.unlikely,\"ax\",%progbits\n.type g,%function\ng:\nmov w0, #9\nret\n"
       ".size g, .-g\n")
TBZ_DRIVER = ('#include <stdint.h>\n#include <stdio.h>\nuint32_t f(uint32_t);\n'
              'int main(void) { printf("%u\\n", f(1)); return 0; }\n')


def test_a_branch_relocation_of_another_instructions_type_is_not_proven(tmp_path):
    import shutil
    import subprocess

    obj = gas_object(tmp_path, "aarch64", TBZ, "tbz")
    if shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64"):
        (tmp_path / "d.c").write_text(TBZ_DRIVER)
        subprocess.run(["aarch64-linux-gnu-gcc", "-static", str(tmp_path / "d.c"), str(obj), "-o",
                        str(tmp_path / "d")], check=True, capture_output=True)
        ran = subprocess.run(["qemu-aarch64", str(tmp_path / "d")], capture_output=True, text=True, timeout=60)
        assert ran.stdout.strip() == "9", ran                              # the spec says 7
    _not_proven(tmp_path, obj, "uint32_t f(uint32_t x)",
                "(= ret (ite (= ((_ extract 0 0) x) #b0) #x00000009 #x00000007))")

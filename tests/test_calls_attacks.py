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
          "aarch64": ".text\n.globl f\n.type f,%function\nf:\nstp x29, x30, [sp, #-16]!\nbl g\nldp x29, x30, [sp], #16\n"
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
          "aarch64": ".text\n.globl f\n.type f,%function\nf:\nstp x29, x30, [sp, #-16]!\nbl g\nldp x29, x30, [sp], #16\n"
                     "ret\n.size f, .-f\n.section .text.g,\"axM\",%progbits,4\n.type g,%function\ng:\n"
                     "add w0, w0, #1\nadd w0, w0, #1\nret\n.size g, .-g\n"}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_a_part_the_linker_merges_is_not_proven(tmp_path, arch):
    obj = gas_object(tmp_path, arch, MERGED[arch], "merged")
    ran = _run(tmp_path, arch, obj, [])
    if ran is not None:
        assert ran.returncode == 0 and ran.stdout.strip() == "3", ran       # spec: 2 + 2
    _not_proven(tmp_path, obj, "uint32_t f(uint32_t x)", "(= ret (bvadd x #x00000002))")

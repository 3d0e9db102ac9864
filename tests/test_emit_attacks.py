"""Attacks on --emit (verifier/emit.py): each proves a unit from reviewable source, emits the signed
NAME.o, links that object for real with a small C driver and runs it; the program must compute
what was proven."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .build import gas_object


def _spec(tmp_path, sig: str, post: str) -> str:
    p = tmp_path / "f.smt"
    p.write_text(f'(set-info :nverify-signature "{sig}")\n(define-fun post () Bool {post})\n')
    return str(p)


def _lld_aarch64(tmp_path) -> list[str] | None:
    """gcc options linking AArch64 with ld.lld (Debian's cross gcc looks for the prefixed name)."""
    lld = shutil.which("ld.lld")
    if lld is None or shutil.which("aarch64-linux-gnu-gcc") is None or shutil.which("qemu-aarch64") is None:
        return None
    d = tmp_path / "lldbin"
    d.mkdir(exist_ok=True)
    for n in ("ld.lld", "aarch64-linux-gnu-ld.lld"):
        if not (d / n).exists():
            (d / n).symlink_to(lld)
    return ["-B", str(d), "-fuse-ld=lld"]


# --- lld relaxes `adrp x1, tab; add x1, x1, :lo12:tab` into `nop; adr x1, tab` --------------------
# (lld 14+, on by default: AArch64Relaxer::tryRelaxAdrpAdd, when both relocations name the same symbol
# with addend 0 and the region lies within 1 MiB). The `add` no longer adds its page offset to x1: a
# jump straight to it, with x1 holding something else than the page, computes another value. The proof
# (relocated.Relocated._lo12) rightly models `add` as x1 + lo12(tab), which ld.bfd keeps: f(x) = lo12(tab)
# < 4096 proves; linked by lld it returned &tab - x.
ADRP_ADD = """.text
.globl f
.type f, %function
f:
mov x1, x0
b 1f
adrp x1, tab
1:
add x1, x1, :lo12:tab
sub x0, x1, x0
ret
.size f, .-f
.section .rodata
.p2align 3
tab:
.quad 42
"""
ADRP_DRIVER = """#include <stdio.h>
#include <stdint.h>
uint64_t f(uint64_t);
int main(void) {
  uint64_t a = f(0), b = f(12345);
  printf("%llx %llx\\n", (unsigned long long)a, (unsigned long long)b);
  return a < 4096 && b < 4096 ? 0 : 1;
}
"""


def test_lld_relaxing_an_adrp_add_pair_keeps_a_jump_to_the_add(tmp_path):
    lld = _lld_aarch64(tmp_path)
    if lld is None:
        pytest.skip("needs ld.lld, aarch64-linux-gnu-gcc and qemu-aarch64")
    from verifier import attest
    from verifier.cli import main

    obj = gas_object(tmp_path, "aarch64", ADRP_ADD, "adrpadd")
    attest.keygen(str(tmp_path / "key"), "ed25519")
    out = tmp_path / "out"
    spec = _spec(tmp_path, "uint64_t f(uint64_t x)", "(bvult ret #x0000000000001000)")
    if main(["prove", str(obj), "--spec", spec, "--sign", str(tmp_path / "key.key"), "--emit", str(out), "-q"]):
        assert not out.exists()
        return          # not proven (the proof does not know which linker relaxes the pair): nothing emitted
    main_c = tmp_path / "main.c"
    main_c.write_text(ADRP_DRIVER)
    for flags in ([], lld):
        exe = tmp_path / "prog"
        subprocess.run(["aarch64-linux-gnu-gcc", "-O1", "-static", *flags, str(main_c), str(out / "f.o"), "-o",
                        str(exe)], check=True, capture_output=True)
        ran = subprocess.run(["qemu-aarch64", str(exe)], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, (flags, ran.stdout)


def test_an_adrp_add_pair_lld_relaxes_is_not_proven_in_the_object_itself(tmp_path):
    """The same unit in the object gcc/gas wrote (the section symbol on both relocations, addend 0):
    linked by lld, `f(0)` returns &tab. Either the proof models the relaxation (the `add` of such a
    pair, reached by a jump, as `adr`) or it does not prove; here it proves (fails now)."""
    from verifier import prove

    lld = _lld_aarch64(tmp_path)
    if lld is None:
        pytest.skip("needs ld.lld, aarch64-linux-gnu-gcc and qemu-aarch64")
    obj = gas_object(tmp_path, "aarch64", ADRP_ADD, "adrpadd")
    main_c = tmp_path / "main.c"
    main_c.write_text(ADRP_DRIVER)
    exe = tmp_path / "prog"
    subprocess.run(["aarch64-linux-gnu-gcc", "-O1", "-static", *lld, str(main_c), str(obj), "-o", str(exe)],
                   check=True, capture_output=True)
    ran = subprocess.run(["qemu-aarch64", str(exe)], capture_output=True, text=True, timeout=60)
    out = prove(str(obj), _spec(tmp_path, "uint64_t f(uint64_t x)", "(bvult ret #x0000000000001000)")).to_json()
    assert ran.returncode == 0 or out["verdict"] != "proven", (ran.stdout, out["verdict"])

"""verifier/rewrite.py: the permutation lemma and products of halves prove what they claim, and
never turn a wrong blob into PROVEN; merging keeps branchy sorts provable."""

from __future__ import annotations

import pytest
import z3

from verifier import prove, rewrite
from verifier.pipeline import Options

from .asm_library import ASM
from .build import asm_file, compile_c

ARCHES = ["x86_64", "aarch64"]


def _solvers(r: dict) -> dict[str, str]:
    return {o["name"]: o.get("detail", "") for o in r["obligations"]}


@pytest.mark.parametrize("arch", ARCHES)
def test_network_permutation_conjuncts_go_through_the_lemma(tmp_path, arch):
    r = prove(str(asm_file(tmp_path, arch, ASM[arch]["sort5"])), "sort5", Options(arch=arch, jobs=1)).to_json()
    assert r["verdict"] == "proven", r
    solvers = _solvers(r)
    assert all("permutation lemma on p" in solvers[f"post#{i}"] for i in range(5, 10)), solvers
    assert not any("lemma" in solvers[f"post#{i}"] for i in range(1, 5)), solvers   # sortedness: not symmetric


# A compare-exchange that copies instead of swapping: outputs are not a permutation (a value is lost).
LOSSY = {"x86_64": ("cmovg ecx, r9d", "cmovg ecx, eax"), "aarch64": ("mov w2, w9", "mov w2, w1")}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_network_that_loses_a_value_is_refuted(tmp_path, arch):
    old, new = LOSSY[arch]
    text = ASM[arch]["sort5"].replace(old, new, 1)
    assert text != ASM[arch]["sort5"]
    r = prove(str(asm_file(tmp_path, arch, text)), "sort5", Options(arch=arch, jobs=1)).to_json()
    assert r["verdict"] == "refuted", r
    assert r["counterexample"]["replayed"] is True


def test_exchange_rewriting():
    a, b, c = z3.BitVecs("a b c", 32)
    lo, hi = z3.If(a < b, a, b), z3.If(a < b, b, a)
    assert rewrite.is_permutation([hi, c, lo], [a, b, c])
    assert not rewrite.is_permutation([lo, lo, c], [a, b, c])            # min twice: not a permutation
    assert not rewrite.is_permutation([z3.If(a < b, a, b), z3.If(b < c, b, a), c], [a, b, c])
    # min and max written with <= and > share one normal form (equal where a = b)
    assert rewrite.canonical(z3.If(z3.ULE(a, b), a, b)).eq(rewrite.canonical(z3.If(z3.ULT(a, b), a, b)))
    assert rewrite.canonical(z3.If(a > b, a, b)).eq(rewrite.canonical(z3.If(a < b, b, a)))


@pytest.mark.parametrize("arch", ARCHES)
def test_p25_is_proven_by_halves_and_a_wrong_shift_is_not(tmp_path, arch):
    good = ASM[arch]["p25"]
    r = prove(str(asm_file(tmp_path, arch, good)), "p25", Options(arch=arch, jobs=1, timeout=30)).to_json()
    assert r["verdict"] == "proven", r
    assert "16-bit halves" in r["obligations"][0]["detail"]
    shift = "shr eax, 16\n add eax, ecx" if arch == "x86_64" else "add w0, w0, w2, lsr #16"
    bad = good.replace(shift, shift.replace("16", "15"))
    assert bad != good
    r = prove(str(asm_file(tmp_path, arch, bad, "bad")), "p25", Options(arch=arch, jobs=1, timeout=30)).to_json()
    assert r["verdict"] == "refuted", r


def test_mulhu_by_halves_against_the_64_bit_product_spec(tmp_path):
    r = prove(str(asm_file(tmp_path, "x86_64", ASM["x86_64"]["p25"])), "mulhu",
              Options(arch="x86_64", jobs=1, timeout=30)).to_json()
    assert r["verdict"] == "proven", r


BRANCHY = """
#include <stdint.h>
void sort4(int32_t p[4]) {
  for (int i = 0; i < 4; i++) for (int j = 0; j + 1 < 4 - i; j++)
    if (p[j] > p[j + 1]) { int32_t t = p[j]; p[j] = p[j + 1]; p[j + 1] = t; }
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_merged_branchy_sort_is_still_proven(tmp_path, arch):
    obj = compile_c(tmp_path, arch, BRANCHY, "O2", "branchy")
    split = prove(str(obj), "sort4", Options(jobs=1)).to_json()
    merged = prove(str(obj), "sort4", Options(jobs=1, merge_threshold=1)).to_json()
    assert split["verdict"] == merged["verdict"] == "proven", merged
    assert merged["paths"] < split["paths"]

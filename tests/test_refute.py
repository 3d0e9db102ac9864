"""Refute fast (verifier/refute.py) and the obligation cache (solve.Cache)."""

from __future__ import annotations

import json

import pytest

from verifier import prove
from verifier.pipeline import Options

from .asm_library import ASM
from .build import asm_file

ARCHES = ["x86_64", "aarch64"]
WRONG = {"x86_64": ("rdi-1", "rdi-2"), "aarch64": ("#1", "#2")}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_wrong_blob_is_refuted_by_testing_and_replayed(tmp_path, arch):
    old, new = WRONG[arch]
    text = ASM[arch]["p01"].replace(old, new)
    assert text != ASM[arch]["p01"]
    blob = str(asm_file(tmp_path, arch, text))
    fast = prove(blob, "p01", Options(arch=arch, jobs=1)).to_json()
    assert fast["verdict"] == "refuted" and fast["counterexample"]["replayed"] is True, fast
    assert fast["obligations"][0]["solver"] == "concrete testing"
    slow = prove(blob, "p01", Options(arch=arch, jobs=1, refute_fast=False)).to_json()
    assert slow["verdict"] == "refuted" and slow["obligations"][0]["solver"] != "concrete testing", slow


def test_a_magic_input_is_left_to_the_solvers(tmp_path):
    text = "cmp edi, 0x12345678\n jne ok\n mov eax, 1\n ret\n ok: " + ASM["x86_64"]["p01"]
    r = prove(str(asm_file(tmp_path, "x86_64", text)), "p01", Options(arch="x86_64", jobs=1)).to_json()
    assert r["verdict"] == "refuted", r
    assert r["obligations"][0]["solver"] != "concrete testing"
    assert r["counterexample"]["inputs"]["x"] == "0x12345678"


def test_cache_reuses_proven_obligations_only(tmp_path):
    cache = tmp_path / "cache"
    blob = str(asm_file(tmp_path, "x86_64", ASM["x86_64"]["p01"]))
    first = prove(blob, "p01", Options(arch="x86_64", jobs=1, cache=str(cache))).to_json()
    again = prove(blob, "p01", Options(arch="x86_64", jobs=1, cache=str(cache))).to_json()
    assert first["verdict"] == again["verdict"] == "proven"
    assert all(o.get("detail") == "cached" for o in again["obligations"]), again
    entries = list(cache.glob("*.json"))
    assert entries and all(json.loads(e.read_text())["result"] == "unsat" for e in entries)
    bad = str(asm_file(tmp_path, "x86_64", ASM["x86_64"]["p01"].replace("rdi-1", "rdi-2"), "bad"))
    r = prove(bad, "p01", Options(arch="x86_64", jobs=1, cache=str(cache), refute_fast=False)).to_json()
    assert r["verdict"] == "refuted"   # another query: another key

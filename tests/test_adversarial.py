"""Adversarial tier (issue 16): blobs a VEX-following proof gets wrong, run on the real CPU.

For every case in tests/adversarial_x86.py and tests/adversarial_a64.py, two tests:
`test_<case>_cpu_shows_it` runs the blob natively (x86-64) or under qemu-aarch64 and shows what the
model must capture (a fault, a system call, a result that breaks the spec on an input `pre`
allows); `test_<case>_is_never_proven` proves it and requires a verdict other than PROVEN (or the
one issue 16 names). A case that a regression lets through again can be marked xfail(strict)
with its class while it is fixed; none is today."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier import prove
from verifier.pipeline import Options

from . import adversarial_a64, adversarial_x86
from .adversarial_cases import Case, Ctx
from .build import assemble
from .native import can_run, cpu_flags

CASES: list[Case] = adversarial_x86.ALL + adversarial_a64.ALL


def _files(case: Case, tmp: Path) -> tuple[bytes, Path, Path]:
    code = assemble(case.arch, case.asm)
    blob = tmp / f"{case.name}.bin"
    blob.write_bytes(code)
    spec = tmp / f"{case.name}.smt"
    spec.write_text(case.spec)
    return code, blob, spec


def _cpu_test(case: Case):
    def test(tmp_path):
        if not can_run(case.arch):
            pytest.skip(f"cannot run {case.arch} code here")
        if case.cpu_skip:
            pytest.skip(case.cpu_skip)
        missing = [f for f in case.needs if f not in cpu_flags()]
        if missing:
            pytest.skip(f"this CPU lacks {', '.join(missing)}")
        code, _, spec = _files(case, tmp_path)
        case.cpu(Ctx(case, code, tmp_path, spec))
    test.__doc__ = f"{case.cls}: the CPU shows what the model must capture."
    return test


def _proof_test(case: Case):
    def test(tmp_path):
        _, blob, spec = _files(case, tmp_path)
        options = Options(arch=case.arch, jobs=1)
        if case.ref is not None:
            ref = tmp_path / f"{case.name}.ref.bin"
            ref.write_bytes(assemble(case.arch, case.ref))
            options = Options(arch=case.arch, jobs=1, ref=str(ref))
        r = prove(str(blob), str(spec), options).to_json()
        assert r["verdict"] != "proven", r["message"]
        assert r["verdict"] in case.verdicts or f"{r['verdict']}:{r['reason']}" in case.verdicts, \
            (r["verdict"], r["reason"], r["message"])
    test.__doc__ = f"{case.cls}: never PROVEN" + (f" (expected {'/'.join(sorted(case.verdicts))})")
    if case.xfail:
        test = pytest.mark.xfail(strict=True, reason=case.xfail)(test)
    return test


for _case in CASES:
    globals()[f"test_{_case.name}_cpu_shows_it"] = _cpu_test(_case)
    globals()[f"test_{_case.name}_is_never_proven"] = _proof_test(_case)


def test_case_names_are_unique_and_name_their_isa():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert all(c.name.endswith(f"_{c.arch}") for c in CASES)


def test_every_class_of_issue_16_is_covered_on_each_isa_it_applies_to():
    covered = {(c.cls.split()[0], c.arch) for c in CASES}
    for cls in "1234567":
        assert (cls, "x86_64") in covered, cls
    for cls in "134567":   # 2: fixed-width decoding, covered by one guard case; 5: see adversarial_a64
        assert (cls, "aarch64") in covered or cls == "5", cls

"""Audit reports: for proven, refuted (memory-safety, postcondition) and unknown results on both
ISAs every section is present with the right values; the HTML is well-formed and references
nothing outside itself; the Markdown matches golden files; reports agree with the terminal."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from verifier.cli import main

from .build import asm_file
from .kernels import sort3

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "proven": (lambda a: sort3(a), None),
    "memory-safety": (lambda a: sort3(a, "mov dword ptr [rdi+12], edx\n ret" if a == "x86_64"
                                      else "str w3, [x0, #12]\n ret"), "memory-safety"),
    "postcondition": (lambda a: "mov dword ptr [rdi], 7\n ret" if a == "x86_64" else "mov w1, #7\n str w1, [x0]\n ret",
                      "postcondition"),
    "unknown": (lambda a: sort3(a, "cmp edx, 5\n jne ok\n spin: jmp spin\n ok: ret" if a == "x86_64"
                                else "cmp w3, #5\n b.ne ok\n spin: b spin\n ok: ret"), "loop-bound"),
}
VERDICT = {"proven": "proven", "memory-safety": "refuted", "postcondition": "refuted", "unknown": "unknown"}
SECTIONS = ["verdict", "identity", "model", "spec", "disassembly", "cfg", "vex", "decompiled", "obligations",
            "reproduce"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """(case, arch) -> (result JSON, its HTML, its Markdown), made through the CLI."""
    out = {}
    for arch in ("x86_64", "aarch64"):
        for case, (asm, _) in CASES.items():
            d = tmp_path_factory.mktemp(f"{case}_{arch}")
            blob = asm_file(d, arch, asm(arch), name=case.replace("-", "_"))
            main(["prove", str(blob), "--spec", "sort3", "--arch", arch, "--json", str(d / "r.json"),
                  "--report", str(d / "r.html"), "-q"])
            assert main(["report", str(d / "r.json"), "--out", str(d / "r.md")]) == 0
            out[case, arch] = (json.loads((d / "r.json").read_text()), (d / "r.html").read_text(),
                               (d / "r.md").read_text())
    return out


class _Checker(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr", "path", "line", "rect", "col", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id":
                self.ids.add(v or "")
            if k in ("src", "href", "xlink:href", "action") and v and not v.startswith("#"):
                self.external.append(f"{tag} {k}={v}")
        if tag in ("script", "link", "iframe", "object", "embed", "img"):
            self.external.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("case", list(CASES))
def test_html_report_sections_and_values(results, case, arch):
    r, page, _ = results[case, arch]
    assert r["verdict"] == VERDICT[case] and r.get("reason") == CASES[case][1]
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    assert not checker.external, checker.external
    assert "@import" not in page and "url(http" not in page
    assert set(SECTIONS) <= checker.ids
    assert f'class="banner {r["verdict"]}"' in page and r["verdict"].upper() in page
    assert r["blob"]["sha256"] in page and r["spec"]["sha256"] in page
    assert "<svg" in page and "Untrusted aid" in page and "IRSB" in page
    for o in r["obligations"]:
        assert f"<td>{o['name']}</td>" in page.replace("&gt;", ">").replace("&lt;", "<") or o["name"] in page
    regs = {"x86_64": "rdi", "aarch64": "x0"}[arch]
    assert f"its address, in {regs}" in page and "12 bytes (3 elements), read-write" in page
    assert "not</em> prove" in page and "VEX (angr/pyvex) models each executed instruction correctly" in page
    if r["verdict"] == "refuted":
        assert 'id="counterexample"' in page and 'class="path"' in page and 'class="hot"' in page
        for name, value in r["counterexample"]["inputs"].items():
            assert name in page and value in page
    else:
        assert ('id="counterexample"' in page) == ("counterexample" in r)
        if "counterexample" in r:     # unknown: the input that reaches the undecided point
            assert "An input that reaches it" in page
    assert f"--arch {arch}" in page and "--spec sort3" in page


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("case", list(CASES))
def test_markdown_report_sections(results, case, arch):
    r, _, md = results[case, arch]
    assert ("### What was proven" in md) == (r["verdict"] == "proven")
    for heading in ("### Identity", "### What wa", "### Spec", "### Obligations", "### Disassembly",
                    "### Reproduce"):
        assert heading in md
    assert ("### Counterexample" in md) == (r["verdict"] == "refuted")
    assert ("### An input that reaches it" in md) == (r["verdict"] == "unknown" and "counterexample" in r)
    assert r["blob"]["sha256"] in md and f"**{r['verdict'].upper()}**" in md
    assert "<svg" not in md and len(md) < 60_000      # a pull-request comment holds 65,536 characters


def test_report_agrees_with_the_terminal(results, tmp_path, capsys):
    """One source of truth: every figure the terminal prints appears in the report."""
    r, page, md = results["memory-safety", "x86_64"]
    from rich.console import Console

    from reports import terminal

    console = Console(record=True, width=200)
    terminal.render(r, console)
    text = console.export_text()
    figures = set(re.findall(r"\b\d+\.\d+ s\b|\b0x[0-9a-f]+\b|\b\d+ paths\b|\b\d+ bytes\b", text))
    figures |= {f"{o['seconds']:.3f}" for o in r["obligations"]}
    assert figures
    for f in figures:
        plain = f.replace(" paths", "").replace(" bytes", " bytes at")
        assert f in page or plain in page or f.rstrip("0").rstrip(".") in page, f


def _stable(result: dict) -> dict:
    """The figures that change between runs, fixed, so the Markdown can be compared with a golden file."""
    r = json.loads(json.dumps(result))
    r["seconds"] = 1.0
    r["blob"]["path"] = f"k_{r['blob']['arch']}.bin"
    r["spec"]["path"] = "specs/sort3.smt"
    for o in r["obligations"]:
        o["seconds"], o["solver"] = 0.1, "z3"
    r["options"]["solvers"] = {"z3": "4.13.0"}
    return r


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("case", ["proven", "postcondition"])
def test_markdown_golden(results, case, arch):
    from reports import content, markdown

    r = _stable(results[case, arch][0])
    if case == "postcondition":     # the counterexample the solver picks is one of many: fix it too
        r["counterexample"] = {"inputs": {"p.0": "0x1", "p.1": "0x2", "p.2": "0x3"}, "replayed": True,
                               "expected": {"violates": "(bvsle p.0.out p.1.out)"},
                               "actual": {"p.0.out": "0x7", "p.1.out": "0x2", "p.2.out": "0x3"}}
    text = markdown.render(content.build(r))
    golden = GOLDEN / f"report_{case}_{arch}.md"
    if os.environ.get("NVERIFY_REGOLD"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), f"Markdown differs from {golden} (NVERIFY_REGOLD=1 rewrites it)"


def test_report_from_an_attestation(tmp_path, capsys):
    from verifier import attest

    attest.keygen(str(tmp_path / "k"))
    blob = asm_file(tmp_path, "aarch64", sort3("aarch64"))
    assert main(["prove", str(blob), "--spec", "sort3", "--arch", "aarch64", "--sign", str(tmp_path / "k.key"),
                 "--emit", str(tmp_path / "out"), "-q"]) == 0
    att = tmp_path / "out" / "sort3.bin.intoto.json"
    assert main(["report", str(att), "--out", str(tmp_path / "a.html")]) == 0
    page = (tmp_path / "a.html").read_text()
    assert attest.sha256_file(att) in page
    assert attest.fingerprint(attest.load_public_key(str(tmp_path / "k.pub"))) in page
    assert "PROVEN" in page and "x0" in page


@pytest.mark.parametrize("argv,expect", [
    (["report", "missing.json", "--out", "r.html"], "cannot read"),
    (["report", "{bad}", "--out", "r.txt"], "use .html, .md or .pdf"),
    (["report", "{bad}", "--out", "r.md"], "not a complete nverify result"),
])
def test_report_input_errors(tmp_path, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    if argv[1] == "{bad}":
        (tmp_path / "r.json").write_text(json.dumps({"verdict": "proven", "blob": {}}))
        argv = ["report", "r.json", *argv[2:]]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and expect in err and "Traceback" not in err

"""Generators: the registry and `nverify generators`, the hand generator's input forms and
errors, the synth loop (proven, nothing proven, signed with provenance), and a third-party
plugin found through its entry point."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.cli import main

from .build import assemble, compile_c

P01 = {"x86_64": "lea eax, [rdi-1]  ; x - 1\nand eax, edi\nret\n",
       "aarch64": "sub w1, w0, #1  // x - 1\nand w0, w0, w1\nret\n"}
ROOT = Path(__file__).parent.parent


def _synth(tmp_path, capsys, arch, source, *extra):
    out = tmp_path / "synth.json"
    code = main(["synth", "--spec", "p01", "--arch", arch, "--generator", "hand", "--from", str(source),
                 "--json", str(out), "-q", *extra])
    err = capsys.readouterr().err
    return code, (json.loads(out.read_text()) if out.exists() else None), err


def test_registry_lists_the_built_ins(capsys):
    from generators import Generator, create, registry

    assert "hand" in registry() and isinstance(create("hand"), Generator)
    assert main(["generators"]) == 0
    assert "hand" in capsys.readouterr().out
    assert main(["synth", "--spec", "p01", "--arch", "x86_64", "--generator", "nosuch"]) == 2
    assert "no generator 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("form", ["asm", "hex", "raw", "object", "stdin"])
def test_hand_input_forms(tmp_path, capsys, monkeypatch, arch, form):
    code_bytes = assemble(arch, P01[arch])
    src = tmp_path / f"p01.{form}"
    if form == "asm":
        src.write_text(P01[arch])
    elif form == "hex":
        src.write_text(" ".join(f"0x{b:02x}," for b in code_bytes))
    elif form == "raw":
        src.write_bytes(code_bytes)
    elif form == "object":
        src = compile_c(tmp_path, arch, "unsigned p01(unsigned x) { return x & (x - 1); }", "O2", name="p01")
    else:       # a real file as standard input (the solver worker processes inherit it)
        fed = tmp_path / "stdin.s"
        fed.write_text(P01[arch])
        stdin = open(fed)  # noqa: SIM115 - closed below
        monkeypatch.setattr(sys, "stdin", stdin)
        src = Path("-")
    code, data, err = _synth(tmp_path, capsys, arch, src)
    assert code == 0, (err, data and data["tried"])
    assert data["verdict"] == "proven" and data["result"]["verdict"] == "proven"
    assert data["provenance"]["generator"] == "hand" and data["provenance"]["verified"] == 1
    assert data["result"]["blob"]["arch"] == arch
    if form == "stdin":
        stdin.close()


@pytest.mark.parametrize("arch,text,line", [
    ("x86_64", "lea eax, [rdi-1]\n\nfrob eax, edi\nret\n", 3),
    ("x86_64", "jmp done\nand eax, [[rdi]\ndone: ret\n", 2),
    ("aarch64", "sub w1, w0, #1\nand w0, w0, w1\nret x0, x1\n", 3),
    # keystone answers an unknown shift name with no code and no error
    ("aarch64", "top:\nsub w1, w0, #1\nmovk w1, #0x0101, lol #16\nret\n", 3),
])
def test_malformed_assembly_names_the_line(tmp_path, capsys, arch, text, line):
    src = tmp_path / "bad.s"
    src.write_text(text)
    code, data, err = _synth(tmp_path, capsys, arch, src)
    assert code == 2 and data is None and f"bad.s:{line}:" in err and "Traceback" not in err, err


def test_hand_input_errors(tmp_path, capsys):
    empty = tmp_path / "empty.s"
    empty.write_text("  \n")
    assert _synth(tmp_path, capsys, "x86_64", empty)[0] == 2
    assert main(["synth", "--spec", "p01", "--arch", "x86_64", "--generator", "hand"]) == 2
    assert "needs --from FILE" in capsys.readouterr().err


def test_nothing_proven_is_exit_3_with_what_was_tried(tmp_path, capsys):
    src = tmp_path / "wrong.s"
    src.write_text("mov eax, edi\nret\n")
    code, data, _ = _synth(tmp_path, capsys, "x86_64", src)
    assert code == 3 and data["verdict"] == "unknown" and data["result"] is None
    assert [t["verdict"] for t in data["tried"]] == ["refuted"] and data["tried"][0]["reason"] == "postcondition"


def test_synth_signs_with_the_generator_provenance(tmp_path, capsys):
    from verifier import attest

    attest.keygen(str(tmp_path / "k"))
    src = tmp_path / "p01.s"
    src.write_text(P01["x86_64"])
    code, data, _ = _synth(tmp_path, capsys, "x86_64", src, "--sign", str(tmp_path / "k.key"),
                           "--emit", str(tmp_path / "out"), "--seed", "7", "--budget", "30")
    assert code == 0
    env = json.loads((tmp_path / "out" / "p01.bin.intoto.json").read_text())
    gen = json.loads(base64.b64decode(env["payload"]))["predicate"]["generator"]
    assert gen["generator"] == "hand" and gen["seed"] == 7 and gen["budget"] == 30.0 and gen["iterations"] == 1
    assert main(["check", str(tmp_path / "out" / "p01.bin"), "--attestation",
                 str(tmp_path / "out" / "p01.bin.intoto.json"), "--key", str(tmp_path / "k.pub")]) == 0


def test_plugin_is_found_through_its_entry_point(tmp_path):
    """Install tests/plugin_example (a real package) into a directory and run nverify with it."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                    "--target", str(target), str(ROOT / "tests" / "plugin_example")], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": f"{target}{os.pathsep}{ROOT}"}
    listing = subprocess.run([sys.executable, "-m", "verifier.cli", "generators"], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert "snippets" in listing and "nverify-example-generator" in listing
    snippets = tmp_path / "snippets.s"
    snippets.write_text("mov eax, edi\nret\n---\nlea eax, [rdi-1]\nand eax, edi\nret\n")
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "verifier.cli", "synth", "--spec", "p01", "--arch", "x86_64",
                        "--generator", "snippets", "--from", str(snippets), "--json", str(out), "-q"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert [t["verdict"] for t in data["tried"]] == ["refuted", "proven"]
    assert data["provenance"]["generator"] == "snippets" and data["provenance"]["version"] == "0.1.0"

"""`nverify gate` over a manifest of 24 blobs on both ISAs: attested ones pass, stale and missing
ones fail closed with their reason, --prove-missing proves (and caches), SARIF validates against
the SARIF 2.1.0 schema, JUnit parses, and a malformed manifest is exit 2 naming its line."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from verifier import attest, prove
from verifier.cli import main
from verifier.emit import emit
from verifier.pipeline import Options

from .asm_library import ASM
from .build import assemble, compile_c, gas_object

SCHEMA = Path(__file__).parent / "data" / "sarif-2.1.0.schema.json"
FUNCTIONS = ["p01", "p02", "p04", "p05", "p07", "p08", "p09", "p13", "p16", "abs", "min"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A repository with 22 raw blobs and 2 ELF objects, all attested, and its manifest."""
    root = tmp_path_factory.mktemp("repo")
    attest.keygen(str(root / "signing"))
    key = attest.load_private_key(str(root / "signing.key"))
    (root / "keys").mkdir()
    shutil.move(root / "signing.pub", root / "keys" / "nverify.pub")
    entries = []
    for arch in ("x86_64", "aarch64"):
        for fn in FUNCTIONS:
            raw = root / f"{fn}_{arch}.raw"
            raw.write_bytes(assemble(arch, ASM[arch][fn]))
            result = prove(str(raw), fn, Options(arch=arch))
            assert result.verdict.value == 0, result
            emit(str(root / "kernels" / arch), result.code, result.to_json(), result.spec_text, key)
            raw.unlink()
            entries.append({"path": f"kernels/{arch}/{fn}.bin", "spec": fn, "arch": arch})
        lib = compile_c(root, arch, (Path(__file__).parent / "c" / "library.c").read_text(), "O2",
                        name=f"library_{arch}")
        result = prove(str(lib), "clamp")
        emit(str(root / "attested" / arch), result.code, result.to_json(), result.spec_text, key)
        shutil.move(root / "attested" / arch / "clamp.bin.intoto.json", root / f"clamp_{arch}.intoto.json")
        entries.append({"path": lib.name, "spec": "clamp", "symbol": "clamp",
                        "attestation": f"clamp_{arch}.intoto.json"})
    return root, entries


def _manifest(root: Path, entries: list[dict], name: str = "nverify.toml") -> Path:
    lines = ["[gate]", 'key = "keys/nverify.pub"', ""]
    for e in entries:
        lines.append("[[blob]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in e.items()]
        lines.append("")
    p = root / name
    p.write_text("\n".join(lines))
    return p


def _gate(capsys, manifest: Path, *extra: str) -> tuple[int, dict[str, str], str]:
    code = main(["gate", "--manifest", str(manifest), *extra])
    out, err = capsys.readouterr()
    status = {ln.split()[1]: ln.split()[0] + " " + ln.split()[2] for ln in out.splitlines()
              if ln.startswith(("PASS", "FAIL"))}
    return code, status, out + err


def test_all_attested_blobs_pass(tree, capsys):
    root, entries = tree
    assert len(entries) >= 20
    code, status, out = _gate(capsys, _manifest(root, entries))
    assert code == 0, out
    assert len(status) == len(entries) and all(s == "PASS [attested]" for s in status.values()), out
    assert f"{len(entries)}/{len(entries)} blobs pass" in out


@pytest.fixture
def spoiled(tree, tmp_path):
    """A copy of the tree where two blobs changed a byte, one lost its attestation, one blob's
    spec was edited, and one is attested for the other ISA."""
    root, entries = tree
    work = tmp_path / "repo"
    shutil.copytree(root, work)
    for rel in ("kernels/x86_64/p01.bin", "kernels/aarch64/p02.bin"):
        data = bytearray((work / rel).read_bytes())
        data[0] ^= 0x40
        (work / rel).write_bytes(bytes(data))
    (work / "kernels/x86_64/p04.bin.intoto.json").unlink()
    spec = (Path(__file__).parent.parent / "specs" / "p05.smt").read_text()
    (work / "p05.smt").write_text(spec + "\n; edited\n")
    entries = [dict(e) for e in entries]
    for e in entries:
        if e["path"] == "kernels/aarch64/p05.bin":
            e["spec"] = "p05.smt"
        if e["path"] == "kernels/x86_64/p07.bin":
            e["abi"] = "win64"
    expect = {"kernels/x86_64/p01.bin": "FAIL [stale]", "kernels/aarch64/p02.bin": "FAIL [stale]",
              "kernels/x86_64/p04.bin": "FAIL [missing]", "kernels/aarch64/p05.bin": "FAIL [stale]",
              "kernels/x86_64/p07.bin": "FAIL [stale]"}
    return work, entries, expect


def test_stale_and_missing_blobs_fail_closed(spoiled, capsys):
    work, entries, expect = spoiled
    sarif, junit = work / "gate.sarif", work / "gate.xml"
    code, status, out = _gate(capsys, _manifest(work, entries), "--sarif", str(sarif), "--junit", str(junit))
    assert code == 1, out
    for e in entries:
        name = str(work / e["path"]) + (f"#{e['symbol']}" if "symbol" in e else "")
        assert status[name] == expect.get(e["path"], "PASS [attested]"), (name, out)
    assert "is not a subject" in out or "changed" in out
    assert "is not the spec the attestation proved against" in out
    assert "the attestation is for ABI sysv, not win64" in out
    _valid_sarif(json.loads(sarif.read_text()), failures=len(expect))
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(entries)) and suite.get("failures") == str(len(expect))
    assert len(suite.findall("testcase/failure")) == len(expect)


def _valid_sarif(log: dict, failures: int) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)
    results = log["runs"][0]["results"]
    assert len(results) == failures
    rules = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
    for r in results:
        assert r["ruleId"] in rules and r["level"] == "error"
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".smt")


def test_prove_missing_proves_and_caches(spoiled, capsys):
    work, entries, _ = spoiled
    manifest = _manifest(work, entries)
    sarif = work / "gate.sarif"
    code, status, out = _gate(capsys, manifest, "--prove-missing", "--jobs", "2", "--sarif", str(sarif))
    name = str(work / "kernels/x86_64/p04.bin")
    assert status[name] == "PASS [proven]", out
    assert status[str(work / "kernels/aarch64/p05.bin")] == "PASS [proven]"    # the edit is a comment
    # the changed bytes are proven again, and are wrong now
    assert status[str(work / "kernels/x86_64/p01.bin")] in ("FAIL [refuted]", "FAIL [unknown]"), out
    assert code == 1
    log = json.loads(sarif.read_text())
    _valid_sarif(log, failures=sum(1 for s in status.values() if s.startswith("FAIL")))
    refuted = [r for r in log["runs"][0]["results"] if r["properties"].get("verdict") == "refuted"]
    assert refuted and all("counterexample" in r["properties"] for r in refuted)
    code2, status2, out2 = _gate(capsys, manifest, "--prove-missing")
    assert status2[name] == "PASS [proven-cached]", out2
    assert code2 == code


@pytest.mark.parametrize("text,line,expect", [
    ('[gate]\nkey = "k.pub"\n\n[[blob]]\npath = "a.bin"\n', 4, "needs spec"),
    ('[gate]\nkey = "k.pub"\n[[blob]]\npath = "a.bin"\nspec = "p01"\n[[blob]]\npath = "b.bin"\nspec = 3\n', 6,
     "needs spec"),
    ('[gate]\nkey = "k.pub"\n[[blob]]\npath = "a.bin"\nspec = "p01"\nflavour = "x"\n', 3, "unknown [[blob]] setting"),
    ('[gate]\nkey = "k.pub"\n[[blob]]\npath = "a.bin"\nspec = "p01"\narch = "mips"\n', 3, "unknown architecture"),
    ('[gate]\nkey = "k.pub"\n[[blob]]\npath = "a.bin"\nspec = "p01"\n[[blob]]\npath = "a.bin"\nspec = "p02"\n', 6,
     "listed twice"),
    ('[gate]\nkey = "k.pub"\n[[blob]\npath = "a.bin"\n', 3, "not valid TOML"),
    ('[gate]\n\n[[blob]]\npath = "a.bin"\nspec = "p01"\n', 1, "[gate] needs key"),
])
def test_malformed_manifest_is_exit_2_naming_the_line(tmp_path, capsys, text, line, expect):
    m = tmp_path / "nverify.toml"
    m.write_text(text)
    code = main(["gate", "--manifest", str(m)])
    err = capsys.readouterr().err
    assert code == 2 and f"{m}:{line}:" in err and expect in err and "Traceback" not in err, err


def test_raw_blob_without_arch_fails(tree, tmp_path, capsys):
    root, entries = tree
    m = _manifest(root, [{k: v for k, v in entries[0].items() if k != "arch"}], name="noarch.toml")
    code, status, out = _gate(capsys, m)
    assert code == 1 and "must say its arch" in out


def test_gate_input_errors(tmp_path, capsys, tree):
    assert main(["gate", "--manifest", str(tmp_path / "none.toml")]) == 2
    assert "cannot read the manifest" in capsys.readouterr().err
    root, entries = tree
    m = _manifest(root, entries[:1], name="nokey.toml")
    m.write_text(m.read_text().replace("keys/nverify.pub", "keys/absent.pub"))
    assert main(["gate", "--manifest", str(m)]) == 2
    assert "cannot read public key" in capsys.readouterr().err


def test_action_and_pre_commit_hook_run_the_gate(tree, tmp_path):
    """The composite action's gate step and the pre-commit hook's entry, run as CI would run them."""
    import os
    import subprocess
    import sys

    import yaml

    root, entries = tree
    repo = Path(__file__).parent.parent
    _manifest(root, entries)
    hook = yaml.safe_load((repo / ".pre-commit-hooks.yaml").read_text())[0]
    assert hook["id"] == "nverify-gate" and hook["pass_filenames"] is False
    nverify = shutil.which("nverify") or f"{sys.executable} -m verifier.cli"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = hook["entry"].replace("nverify", nverify, 1)
    assert subprocess.run(cmd, shell=True, cwd=root, env=env, capture_output=True).returncode == 0

    action = yaml.safe_load((repo / "action.yml").read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "gate")
    script = step["run"].replace("nverify ", f"{nverify} ", 1)
    sarif = tmp_path / "out.sarif"
    run_env = {**env, "MANIFEST": str(root / "nverify.toml"), "PROVE_MISSING": "false", "SARIF": str(sarif),
               "JUNIT": ""}
    r = subprocess.run(["bash", "-c", script], env=run_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    assert json.loads(sarif.read_text())["runs"][0]["results"] == []
    stale = tmp_path / "stale"
    shutil.copytree(root, stale)
    (stale / "kernels/x86_64/p09.bin").write_bytes(b"\x90" + (stale / "kernels/x86_64/p09.bin").read_bytes()[1:])
    run_env["MANIFEST"] = str(stale / "nverify.toml")
    r = subprocess.run(["bash", "-c", script], env=run_env, capture_output=True, text=True)
    assert r.returncode == 1 and "p09.bin" in r.stdout


# --- every parameter of a proof is bound -----------------------------------------------------

WIN64_P01 = "lea eax, [rcx-1]\n and eax, ecx\n ret"


@pytest.fixture(scope="module")
def bound(tmp_path_factory):
    """Attested blobs whose proofs had a parameter a manifest entry may not match: an ABI, a
    reference, a function in an object, a spec (for an object file)."""
    root = tmp_path_factory.mktemp("bound")
    attest.keygen(str(root / "signing"))
    key = attest.load_private_key(str(root / "signing.key"))
    (root / "keys").mkdir()
    shutil.move(root / "signing.pub", root / "keys" / "nverify.pub")

    def emit_as(result, name: str) -> None:
        assert result.verdict.value == 0, result
        emit(str(root / name), result.code, result.to_json(), result.spec_text, key)

    (root / "w.raw").write_bytes(assemble("x86_64", WIN64_P01))
    emit_as(prove(str(root / "w.raw"), "p01", Options(arch="x86_64", abi="win64")), "win64")
    (root / "new.raw").write_bytes(assemble("x86_64", ASM["x86_64"]["p01"]))
    (root / "ref.bin").write_bytes(assemble("x86_64", "mov eax, edi\n sub eax, 1\n and eax, edi\n ret"))
    (root / "other.bin").write_bytes(assemble("x86_64", "lea eax, [rdi-1]\n and eax, edi\n nop\n ret"))
    emit_as(prove(str(root / "new.raw"), "p01", Options(arch="x86_64", ref=str(root / "ref.bin"))), "ref")
    p01 = f".text\n.globl p01\np01:\n{ASM['x86_64']['p01']}\n"
    emit_as(prove(str(gas_object(root, "x86_64", p01, "alone")), "p01"), "object")
    return root, key


def _attested(root: Path, name: str, entry: dict, **extra) -> dict:
    return {"spec": "p01", "attestation": f"{name}/p01.bin.intoto.json", **entry, **extra}


def test_an_abi_the_manifest_does_not_name_fails(bound, capsys):
    root, _ = bound
    entry = _attested(root, "win64", {"path": "win64/p01.bin", "arch": "x86_64"})
    code, _, out = _gate(capsys, _manifest(root, [entry], "noabi.toml"))
    assert code == 1 and "the attestation is for ABI win64, not sysv" in out, out
    code, status, out = _gate(capsys, _manifest(root, [dict(entry, abi="win64")], "win64.toml"))
    assert code == 0 and list(status.values()) == ["PASS [attested]"], out


def test_the_reference_of_an_equivalence_proof_is_bound(bound, capsys):
    root, _ = bound
    entry = _attested(root, "ref", {"path": "ref/p01.bin", "arch": "x86_64"})
    code, _, out = _gate(capsys, _manifest(root, [entry], "noref.toml"))
    assert code == 1 and "the attestation is for reference sha256 " in out and ", not none" in out, out
    code, _, out = _gate(capsys, _manifest(root, [dict(entry, ref="other.bin")], "otherref.toml"))
    assert code == 1 and "the attestation is for reference sha256 " in out, out
    code, status, out = _gate(capsys, _manifest(root, [dict(entry, ref="ref.bin")], "ref.toml"))
    assert code == 0 and list(status.values()) == ["PASS [attested]"], out
    code, status, out = _gate(capsys, _manifest(root, [dict(entry, ref="other.bin")], "otherref.toml"),
                              "--prove-missing")
    assert list(status.values()) == ["PASS [proven]"], out          # proven now, against other.bin


def test_the_loop_bound_is_bound(bound, capsys):
    root, key = bound
    envelope = json.loads((root / "win64/p01.bin.intoto.json").read_text())
    statement = attest.open_envelope(envelope, attest.load_public_key(str(root / "keys/nverify.pub")))
    statement["predicate"]["options"]["loop_bound"] = 7
    (root / "loop.intoto.json").write_text(json.dumps(attest.sign_envelope(statement, key)))
    entry = {"path": "win64/p01.bin", "arch": "x86_64", "abi": "win64", "spec": "p01",
             "attestation": "loop.intoto.json"}
    code, _, out = _gate(capsys, _manifest(root, [entry], "loop.toml"))
    assert code == 1 and "the attestation is for loop bound 7, not 100" in out, out


def test_the_extent_of_a_function_is_bound(bound, capsys):
    """The same bytes at another offset of another object are not the attested function."""
    root, _ = bound
    moved = gas_object(root, "x86_64", f".text\n.globl q\nq:\nret\n.globl p01\np01:\n{ASM['x86_64']['p01']}\n",
                       "moved")
    entry = _attested(root, "object", {"path": moved.name, "symbol": "p01"})
    code, _, out = _gate(capsys, _manifest(root, [entry], "moved.toml"))
    assert code == 1 and "the attestation is for offset 0x0, not 0x1" in out, out


def test_a_local_namesake_does_not_carry_the_attestation(bound, capsys):
    """An object with the attested p01 as a local and another p01 as the global: the linker binds
    the global, so the gate checks the global's bytes."""
    root, _ = bound
    parts = {"benign": f".text\np01:\n{ASM['x86_64']['p01']}\n",
             "evil": f".text\n.globl p01\np01:\n{ASM['x86_64']['p02']}\n"}
    objs = [gas_object(root, "x86_64", text, name) for name, text in parts.items()]
    subprocess.run(["ld", "-r", *map(str, objs), "-o", str(root / "both.o")], check=True)
    entry = _attested(root, "object", {"path": "both.o", "symbol": "p01"})
    code, _, out = _gate(capsys, _manifest(root, [entry], "both.toml"))
    assert code == 1 and "the function's bytes (p01)" in out and "changed since they were proven" in out, out


def test_an_object_file_is_checked_against_the_manifest_spec(bound, capsys):
    """The function of an object is not a subject of its attestation: the spec is compared all the same."""
    root, _ = bound
    weak = root / "weak.smt"
    weak.write_text('(set-info :nverify-signature "uint32_t p01(uint32_t x)")\n(define-fun post () Bool true)\n')
    entry = _attested(root, "object", {"path": "alone_x86_64.o", "symbol": "p01"}, spec=weak.name)
    code, _, out = _gate(capsys, _manifest(root, [entry], "weak.toml"))
    assert code == 1 and "is not the spec the attestation proved against" in out, out
    code, status, out = _gate(capsys, _manifest(root, [dict(entry, spec="p01")], "strong.toml"))
    assert code == 0 and list(status.values()) == ["PASS [attested]"], out

"""The trust chain: keys, DSSE envelopes checked against the DSSE spec's own test vector and an
independent implementation (securesystemslib), in-toto Statement v1 validation
(in-toto-attestation), sign -> check round trips, tampering, and emitted objects that link and run."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from verifier import attest
from verifier.cli import main

from .build import compile_c

LIBRARY_C = (Path(__file__).parent / "c" / "library.c").read_text()
HELLO = ("http://example.com/HelloWorld", b"hello world")
# The DSSE protocol's test vector (protocol.md): ECDSA P-256, SHA-256, RFC 6979, raw r||s.
VECTOR_KEY = (46950820868899156662930047687818585632848591499744589407958293238635476079160,
              5640078356564379163099075877009565129882514886557779369047442380624545832820,
              97358161215184420915383655311931858321456579547487070936769975997791359926199)
VECTOR_SIG = "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_pae_matches_the_dsse_test_vector():
    assert attest.pae(*HELLO) == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_signature_of_the_dsse_test_vector():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    x, y, d = VECTOR_KEY
    private = ec.derive_private_key(d, ec.SECP256R1())
    assert private.public_key().public_numbers() == ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1())
    raw = base64.b64decode(VECTOR_SIG)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert attest.verify_signature(private.public_key(), attest.pae(*HELLO), der)
    assert not attest.verify_signature(private.public_key(), attest.pae(HELLO[0], b"hello world!"), der)
    # deterministic signing over our PAE reproduces the reference implementation's bytes exactly
    ours = private.sign(attest.pae(*HELLO), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(ours)
    assert r.to_bytes(32, "big") + s.to_bytes(32, "big") == raw


@pytest.mark.parametrize("kind", attest.KEY_TYPES)
def test_keygen_writes_a_private_key_0600_and_never_overwrites(tmp_path, capsys, kind):
    prefix = str(tmp_path / "k")
    assert run(["keygen", "--out", prefix, "--type", kind], capsys)[0] == 0
    key, pub = Path(prefix + ".key"), Path(prefix + ".pub")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = key.read_bytes()
    code, _, err = run(["keygen", "--out", prefix], capsys)
    assert code == 2 and "--force" in err and key.read_bytes() == before
    assert run(["keygen", "--out", prefix, "--force", "--type", kind], capsys)[0] == 0
    assert key.read_bytes() != before and stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("lib")
    return {arch: compile_c(d, arch, LIBRARY_C, "O2", name="library") for arch in ("x86_64", "aarch64")}


@pytest.fixture(scope="module", params=attest.KEY_TYPES)
def signed(request, tmp_path_factory, library):
    """sort3 (x86-64) proven, signed and emitted with one key of each type."""
    d = tmp_path_factory.mktemp(f"signed_{request.param}")
    prefix = str(d / "key")
    attest.keygen(prefix, request.param)
    out = d / "out"
    provenance = d / "prov.json"
    provenance.write_text(json.dumps({"generator": "hand", "by": "test"}))
    code = main(["prove", str(library["x86_64"]), "--spec", "sort3", "--sign", prefix + ".key", "--emit", str(out),
                 "--provenance", str(provenance), "-q"])
    assert code == 0
    return {"dir": out, "key": prefix + ".key", "pub": prefix + ".pub", "type": request.param}


def _check(capsys, signed, file=None, att=None, key=None, spec=None):
    argv = ["check", str(file or signed["dir"] / "sort3.bin"),
            "--attestation", str(att or signed["dir"] / "sort3.bin.intoto.json"), "--key", str(key or signed["pub"])]
    return run(argv + (["--spec", spec] if spec else []), capsys)


def test_emit_writes_the_three_files_and_check_accepts_both(signed, capsys):
    names = sorted(p.name for p in signed["dir"].iterdir())
    assert names == ["sort3.bin", "sort3.bin.intoto.json", "sort3.o"]
    for f in ("sort3.bin", "sort3.o"):
        code, out, err = _check(capsys, signed, file=signed["dir"] / f, spec="sort3")
        assert code == 0, err
        assert "proven sort3" in out


def test_envelope_and_statement_contents(signed):
    env = json.loads((signed["dir"] / "sort3.bin.intoto.json").read_text())
    assert env["payloadType"] == "application/vnd.in-toto+json" and env["signatures"][0]["keyid"] == ""
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == attest.PREDICATE_TYPE
    digests = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
    assert digests == {f: attest.sha256_file(signed["dir"] / f) for f in ("sort3.bin", "sort3.o")}
    p = st["predicate"]
    assert p["verdict"] == "proven" and p["arch"] == "x86_64" and p["abi"] == "sysv"
    spec = Path(__file__).parent.parent / "specs" / "sort3.smt"
    assert p["spec"]["text"] == spec.read_bytes().decode() and p["spec"]["sha256"] == attest.sha256_file(spec)
    assert p["generator"] == {"generator": "hand", "by": "test"}
    assert p["cosim"]["states"] > 0 and p["cosim"]["mismatches"] == 0 and p["cosim"]["cpu"]
    assert {"nverify", "angr", "pyvex", "claripy", "z3-solver", "capstone", "lief"} <= set(p["tools"])
    assert all(p["tools"][t] for t in ("angr", "pyvex", "claripy", "z3-solver", "capstone", "lief"))
    assert p["obligations"] and all(o["solver"] and o["seconds"] >= 0 for o in p["obligations"])
    assert p["options"]["timeout"] == 60.0 and "loop_bound" in p["options"]
    assert p["timestamp"].endswith("Z") and "T" in p["timestamp"]


def test_envelope_verifies_with_securesystemslib(signed):
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    def sslib_key(pem: Path) -> SSlibKey:
        # keyid "" as in the envelope (cosign leaves it empty); from_crypto would derive one
        k = SSlibKey.from_crypto(serialization.load_pem_public_key(pem.read_bytes()))
        return SSlibKey("", k.keytype, k.scheme, k.keyval)

    env = Envelope.from_dict(json.loads((signed["dir"] / "sort3.bin.intoto.json").read_text()))
    assert set(env.verify([sslib_key(Path(signed["pub"]))], 1)) == {""}
    wrong = sslib_key(attest.keygen(str(signed["dir"].parent / "other"), signed["type"], force=True)[1])
    with pytest.raises(Exception, match="(?i)verif|threshold"):
        env.verify([wrong], 1)


def test_statement_validates_with_in_toto_attestation(signed):
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement, statement_pb2

    env = json.loads((signed["dir"] / "sort3.bin.intoto.json").read_text())
    pb = json_format.Parse(base64.b64decode(env["payload"]), statement_pb2.Statement())
    statement.Statement.copy_from_pb(pb).validate()
    assert attest.statement_problems(json.loads(base64.b64decode(env["payload"]))) == []


def _tampered(tmp_path, signed, what: str) -> tuple[Path, Path]:
    """Copies of sort3.bin and its envelope with one byte changed in `what`."""
    blob, att = tmp_path / "sort3.bin", tmp_path / "sort3.bin.intoto.json"
    shutil.copy(signed["dir"] / "sort3.bin", blob)
    env = json.loads((signed["dir"] / "sort3.bin.intoto.json").read_text())
    if what == "blob":
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))
    elif what == "payload":
        body = bytearray(base64.b64decode(env["payload"]))
        i = body.index(b'"verdict":"proven"') + len('"verdict":"')
        body[i] = ord("P")
        env["payload"] = base64.b64encode(bytes(body)).decode()
    elif what == "signature":
        sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
        sig[len(sig) // 2] ^= 0x01
        env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    att.write_text(json.dumps(env))
    return blob, att


@pytest.mark.parametrize("what,reason", [
    ("blob", "is not a subject of the attestation"),
    ("payload", "no signature in the envelope verifies"),
    ("signature", "no signature in the envelope verifies"),
])
def test_tampering_is_caught(signed, tmp_path, capsys, what, reason):
    blob, att = _tampered(tmp_path, signed, what)
    code, _, err = _check(capsys, signed, file=blob, att=att)
    assert code == 1 and reason in err, err


def test_other_spec_and_other_key_are_refused(signed, tmp_path, capsys):
    spec = tmp_path / "sort3.smt"
    text = (Path(__file__).parent.parent / "specs" / "sort3.smt").read_text()
    spec.write_text(text + " ")                       # one byte more
    code, _, err = _check(capsys, signed, spec=str(spec))
    assert code == 1 and "is not the spec the attestation proved against" in err
    _, other = attest.keygen(str(tmp_path / "other"), signed["type"])
    code, _, err = _check(capsys, signed, key=other)
    assert code == 1 and "no signature in the envelope verifies with this key" in err


def test_check_input_errors(signed, tmp_path, capsys):
    code, _, err = _check(capsys, signed, key=tmp_path / "missing.pub")
    assert code == 2 and "cannot read public key" in err
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    code, _, err = _check(capsys, signed, att=junk)
    assert code == 1 and "is not JSON" in err
    code, _, err = _check(capsys, signed, att=signed["pub"])     # a PEM file, not an envelope
    assert code == 1


def test_nothing_is_emitted_unless_proven(library, tmp_path, capsys):
    prefix = str(tmp_path / "k")
    attest.keygen(prefix)
    blob = tmp_path / "bad.bin"
    from .build import assemble
    blob.write_bytes(assemble("x86_64", "mov dword ptr [rdi+12], 0\n ret"))
    out = tmp_path / "out"
    code = main(["prove", str(blob), "--arch", "x86_64", "--spec", "sort3", "--sign", prefix + ".key",
                 "--emit", str(out), "-q"])
    assert code == 1 and not out.exists()
    code, _, err = run(["prove", str(blob), "--arch", "x86_64", "--spec", "sort3", "--sign", prefix + ".key"],
                       capsys)
    assert code == 2 and "go together" in err
    code, _, err = run(["prove", str(blob), "--arch", "x86_64", "--spec", "sort3", "--sign", str(blob),
                        "--emit", str(out)], capsys)
    assert code == 2 and "not an unencrypted PEM private key" in err and not out.exists()


def test_a_failure_half_way_leaves_no_files(library, tmp_path, monkeypatch):
    prefix = str(tmp_path / "k")
    attest.keygen(prefix)
    out = tmp_path / "out"
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(attest.os, "replace", flaky)
    code = main(["prove", str(library["x86_64"]), "--spec", "clamp", "--sign", prefix + ".key", "--emit",
                 str(out), "-q"])
    assert code != 0 and len(calls) == 2
    assert not out.exists() or list(out.iterdir()) == []


HARNESS = r"""
#include <stdio.h>
#include <stdint.h>
void sort3(int32_t p[3]);
int32_t clamp(int32_t x, int32_t lo, int32_t hi);
int main(void) {
    int32_t p[3], x, lo, hi;
    while (scanf("%d %d %d %d %d %d", &p[0], &p[1], &p[2], &x, &lo, &hi) == 6) {
        sort3(p);
        printf("%d %d %d %d\n", p[0], p[1], p[2], clamp(x, lo, hi));
    }
    return 0;
}
"""


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_emitted_objects_link_with_c_and_run(library, tmp_path, arch):
    prefix = str(tmp_path / "k")
    attest.keygen(prefix)
    out = tmp_path / "out"
    for fn in ("sort3", "clamp"):
        assert main(["prove", str(library[arch]), "--spec", fn, "--sign", prefix + ".key", "--emit", str(out),
                     "-q"]) == 0
    main_c = tmp_path / "main.c"
    main_c.write_text(HARNESS)
    exe = tmp_path / "prog"
    cc = "gcc" if arch == "x86_64" else "aarch64-linux-gnu-gcc"
    subprocess.run([cc, "-O1", "-static", str(main_c), str(out / "sort3.o"), str(out / "clamp.o"), "-o", str(exe)],
                   check=True, capture_output=True)
    rng = random.Random(arch)
    edges = [0, 1, -1, 2**31 - 1, -2**31, 7, -7]
    cases = [[rng.choice(edges) if rng.random() < 0.3 else rng.randrange(-2**31, 2**31) for _ in range(6)]
             for _ in range(500)]
    stdin = "".join(" ".join(map(str, c)) + "\n" for c in cases)
    cmd = [str(exe)] if arch == "x86_64" else ["qemu-aarch64", str(exe)]
    lines = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=True, timeout=60).stdout.split("\n")
    for c, line in zip(cases, lines, strict=False):
        x, lo, hi = c[3:]
        assert list(map(int, line.split())) == sorted(c[:3]) + [lo if x < lo else hi if x > hi else x], c
    assert len([ln for ln in lines if ln]) == len(cases)

"""Keys, DSSE envelopes and in-toto statements (DESIGN §6), in the forms cosign reads.

- Keys: ECDSA P-256 (cosign's default) or Ed25519. Private keys are unencrypted PKCS#8 PEM,
  written 0600; public keys are SubjectPublicKeyInfo PEM ("PUBLIC KEY"), which
  `cosign verify-blob-attestation --key` loads.
- Envelope: DSSE v1. The signature covers PAE(payloadType, payload) exactly; ECDSA signatures
  are ASN.1 DER over SHA-256, Ed25519 signatures the raw 64 bytes; base64 is standard with
  padding. `keyid` is left empty, as cosign writes it, so no verifier filters on it.
- Payload: an in-toto Statement v1 whose subjects are the emitted files.

Only `cryptography` is imported here: `nverify check` must answer well within half a second.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://nverify.dev/attestation/proof/v1"
KEY_TYPES = ("ecdsa-p256", "ed25519")


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- keys ----------------------------------------------------------------------------------------

def keygen(prefix: str, kind: str = "ecdsa-p256", force: bool = False) -> tuple[Path, Path]:
    """Write PREFIX.key (0600) and PREFIX.pub; neither is overwritten unless `force`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if kind not in KEY_TYPES:
        raise UsageError(f"unknown key type {kind!r}: use {' or '.join(KEY_TYPES)}")
    key_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    parent = key_path.resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--out {prefix}: directory {parent} does not exist")
    if not force:
        for p in (key_path, pub_path):
            if p.exists():
                raise UsageError(f"{p} exists; pass --force to replace it (the old key is lost)")
    private = ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa-p256" \
        else ed25519.Ed25519PrivateKey.generate()
    key_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    pub_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    write_files({key_path: (key_pem, 0o600), pub_path: (pub_pem, 0o644)})
    return key_path, pub_path


def load_private_key(path: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{path}: not an unencrypted PEM private key ({e}); make one with "
                         "'nverify keygen --out PREFIX'") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1) \
            or isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise UsageError(f"{path}: only ECDSA P-256 and Ed25519 keys are supported")


def load_public_key(path: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{path}: not a PEM public key ({e})") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1) \
            or isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise UsageError(f"{path}: only ECDSA P-256 and Ed25519 keys are supported")


def fingerprint(public_key) -> str:
    """sha256 of the DER SubjectPublicKeyInfo: names the signer in reports and results."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read {what}: {e.strerror or e}") from None


# --- envelopes -----------------------------------------------------------------------------------

def sign_envelope(statement: dict, private_key) -> dict:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    body = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    message = pae(PAYLOAD_TYPE, body)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        sig = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    else:
        sig = private_key.sign(message)
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(body).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}


def verify_signature(public_key, message: bytes, sig: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(sig, message)
        return True
    except (InvalidSignature, ValueError):
        return False


class CheckFailed(Exception):
    """An attestation does not vouch for the file: the message says why (exit 1)."""


def _b64(text, what: str) -> bytes:
    """DSSE allows standard or URL-safe base64; verifiers must accept both."""
    if not isinstance(text, str):
        raise CheckFailed(f"the envelope's {what} is not a base64 string")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise CheckFailed(f"the envelope's {what} is not valid base64") from None


def open_envelope(envelope, public_key) -> dict:
    """The statement inside `envelope` if one of its signatures verifies under `public_key`."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("signatures"), list):
        raise CheckFailed("not a DSSE envelope (no payloadType/payload/signatures)")
    ptype = envelope.get("payloadType")
    if not isinstance(ptype, str):
        raise CheckFailed("not a DSSE envelope (no payloadType)")
    body = _b64(envelope.get("payload"), "payload")
    message = pae(ptype, body)
    sigs = [s for s in envelope["signatures"] if isinstance(s, dict)]
    if not any(verify_signature(public_key, message, _b64(s.get("sig"), "signature")) for s in sigs):
        raise CheckFailed("no signature in the envelope verifies with this key (wrong key, or the "
                          "envelope was altered)")
    if ptype != PAYLOAD_TYPE:
        raise CheckFailed(f"payloadType is {ptype!r}, not {PAYLOAD_TYPE!r}")
    try:
        statement = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CheckFailed("the signed payload is not JSON") from None
    problems = statement_problems(statement)
    if problems:
        raise CheckFailed(f"the signed payload is not an nverify in-toto Statement v1: {problems[0]}")
    return statement


def statement_problems(st) -> list[str]:
    """in-toto Statement v1's rules (its spec's field requirements), plus our predicate type."""
    out = []
    if not isinstance(st, dict):
        return ["not a JSON object"]
    if st.get("_type") != STATEMENT_TYPE:
        out.append(f"_type must be {STATEMENT_TYPE}")
    subjects = st.get("subject")
    if not isinstance(subjects, list) or not subjects:
        out.append("subject must be a non-empty list")
    else:
        for s in subjects:
            if not isinstance(s, dict) or not isinstance(s.get("digest"), dict) or not s["digest"]:
                out.append("every subject needs a non-empty digest set")
                continue
            for alg, value in s["digest"].items():
                if not isinstance(value, str) or (alg == "sha256" and not _is_hex(value, 64)):
                    out.append(f"digest {alg} of subject {s.get('name')!r} is malformed")
            if "name" in s and not isinstance(s["name"], str):
                out.append("subject names must be strings")
    if st.get("predicateType") != PREDICATE_TYPE:
        out.append(f"predicateType must be {PREDICATE_TYPE}")
    if not isinstance(st.get("predicate"), dict):
        out.append("predicate must be a JSON object")
    return out


def _is_hex(s: str, n: int) -> bool:
    return len(s) == n and all(c in "0123456789abcdef" for c in s)


@dataclass
class CheckResult:
    statement: dict
    subject: str          # the name of the subject FILE matched


def check(file: str, attestation: str, key: str, spec: str | None = None) -> CheckResult:
    """Exit-0 conditions of `nverify check`; anything else raises CheckFailed with the reason."""
    public_key = load_public_key(key)
    try:
        envelope = json.loads(Path(attestation).read_bytes())
    except OSError as e:
        raise UsageError(f"{attestation}: cannot read attestation: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError):
        raise CheckFailed(f"{attestation} is not JSON") from None
    statement = open_envelope(envelope, public_key)
    try:
        digest = sha256_file(file)
    except OSError as e:
        raise UsageError(f"{file}: cannot read: {e.strerror or e}") from None
    names = [s.get("name", "") for s in statement["subject"] if s["digest"].get("sha256") == digest]
    if not names:
        raise CheckFailed(f"{file} (sha256 {digest[:16]}…) is not a subject of the attestation: "
                          "the file changed since it was proven, or it is another file")
    pred = statement["predicate"]
    if pred.get("verdict") != "proven":
        raise CheckFailed(f"the attested verdict is {pred.get('verdict')!r}, not proven")
    if spec is not None:
        from .spec import resolve

        want = sha256_file(resolve(spec))
        got = (pred.get("spec") or {}).get("sha256")
        if got != want:
            raise CheckFailed(f"spec {spec} (sha256 {want[:16]}…) is not the spec the attestation "
                              f"proved against (sha256 {str(got)[:16]}…)")
    return CheckResult(statement, names[0])


# --- files ---------------------------------------------------------------------------------------

def write_files(files: dict[Path, tuple[bytes, int]]) -> None:
    """Write every file or none: all go to temporaries in their directories first, then are
    renamed into place; on any failure the temporaries and anything already renamed are removed."""
    temps: list[tuple[str, Path]] = []
    placed: list[Path] = []
    try:
        for path, (data, mode) in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in temps:
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        for path in placed:
            path.unlink(missing_ok=True)
        raise

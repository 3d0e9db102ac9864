"""`nverify gate`: every blob in a manifest must carry a valid attestation (or, with
--prove-missing, be proven now); fails closed; SARIF 2.1.0 and JUnit reports (DESIGN §6).

A blob passes when its attestation verifies with the manifest's key, vouches for the blob's
current bytes (the file is a subject, or the function loaded from it has the attested sha256),
and binds every parameter of the proof to what `prove` would use for the manifest's entry: the
spec's bytes and loop bound, the arch, the ABI (defaulted as `prove` defaults it), the load
address and extent (symbol, section, offset, size), and the reference's digest of an equivalence
proof. Anything else is a failure with its reason; nothing is assumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import tomllib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import attest
from .errors import UsageError
from .verdict import VERSION

BLOB_KEYS = {"path", "spec", "arch", "symbol", "abi", "base", "attestation", "timeout", "ref"}
GATE_KEYS = {"key", "cache"}
_LOADING = threading.Lock()


class ManifestError(UsageError):
    """A malformed manifest: exit 2, naming the line."""


@dataclass(frozen=True)
class Entry:
    index: int
    line: int
    path: Path
    spec: Path
    arch: str | None
    symbol: str | None
    abi: str | None
    base: int | None
    attestation: Path
    timeout: float
    ref: Path | None = None      # the reference blob of an equivalence proof (prove --ref)

    @property
    def name(self) -> str:
        return f"{self.path}" + (f"#{self.symbol}" if self.symbol else "")


@dataclass(frozen=True)
class Manifest:
    path: Path
    key: Path
    cache: Path
    blobs: list[Entry]


@dataclass
class Outcome:
    entry: Entry
    passed: bool
    status: str                  # attested | proven | proven-cached | stale | missing | refuted | unknown | error
    message: str
    result: dict | None = None   # the proof result, when one was run
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


# --- the manifest ----------------------------------------------------------------------------

def load_manifest(path: str) -> Manifest:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read the manifest: {getattr(e, 'strerror', None) or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        where = f"{path}:{m.group(1)}" if m else path
        raise ManifestError(f"{where}: not valid TOML: {e}") from None
    blob_lines = [i + 1 for i, ln in enumerate(text.splitlines()) if re.match(r"\s*\[\[\s*blob\s*\]\]", ln)]
    gate_line = next((i + 1 for i, ln in enumerate(text.splitlines()) if re.match(r"\s*\[\s*gate\s*\]", ln)), 1)
    root = p.resolve().parent
    unknown = set(data) - {"gate", "blob"}
    if unknown:
        raise ManifestError(f"{path}: unknown table {sorted(unknown)[0]!r}: a manifest has [gate] and [[blob]]")
    gate = data.get("gate")
    if not isinstance(gate, dict) or not isinstance(gate.get("key"), str):
        raise ManifestError(f"{path}:{gate_line}: [gate] needs key = \"PATH\" (the public key attestations "
                            "must verify against)")
    extra = set(gate) - GATE_KEYS
    if extra:
        raise ManifestError(f"{path}:{gate_line}: unknown [gate] setting {sorted(extra)[0]!r} "
                            f"(known: {', '.join(sorted(GATE_KEYS))})")
    blobs = data.get("blob", [])
    if not isinstance(blobs, list) or not blobs:
        raise ManifestError(f"{path}: no [[blob]] entries: list the blobs the gate must check")
    entries = [_entry(path, root, i, b, blob_lines[i] if i < len(blob_lines) else 1) for i, b in enumerate(blobs)]
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.name in seen:
            raise ManifestError(f"{path}:{entry.line}: {entry.name} is listed twice "
                                f"(first at line {seen[entry.name]})")
        seen[entry.name] = entry.line
    cache = root / gate.get("cache", ".nverify-cache")
    return Manifest(p, root / gate["key"], cache, entries)


def _entry(path: str, root: Path, i: int, b, line: int) -> Entry:
    where = f"{path}:{line}"
    if not isinstance(b, dict):
        raise ManifestError(f"{where}: [[blob]] must be a table")
    extra = set(b) - BLOB_KEYS
    if extra:
        raise ManifestError(f"{where}: unknown [[blob]] setting {sorted(extra)[0]!r} "
                            f"(known: {', '.join(sorted(BLOB_KEYS))})")
    for k in ("path", "spec"):
        if not isinstance(b.get(k), str) or not b[k]:
            raise ManifestError(f"{where}: [[blob]] #{i + 1} needs {k} = \"…\"")
    for k in ("arch", "symbol", "abi", "attestation", "ref"):
        if k in b and not isinstance(b[k], str):
            raise ManifestError(f"{where}: {k} must be a string")
    base = b.get("base")
    if base is not None:
        try:
            base = int(base, 0) if isinstance(base, str) else int(base)
        except (TypeError, ValueError):
            raise ManifestError(f"{where}: base must be a number (0x… for hex)") from None
    timeout = b.get("timeout", 60)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ManifestError(f"{where}: timeout must be a positive number of seconds")
    arch = b.get("arch")
    if arch is not None:
        from .arch import canonical_arch

        try:
            arch = canonical_arch(arch)
        except UsageError as e:
            raise ManifestError(f"{where}: {e}") from None
    blob_path = root / b["path"]
    spec = b["spec"]
    from .spec import SPEC_DIR

    spec_path = root / spec if (root / spec).exists() or "/" in spec or spec.endswith(".smt") \
        else SPEC_DIR / f"{spec}.smt"
    att = root / b["attestation"] if "attestation" in b else Path(f"{blob_path}.intoto.json")
    ref = root / b["ref"] if "ref" in b else None
    return Entry(i, line, blob_path, spec_path, arch, b.get("symbol"), b.get("abi"), base, att, float(timeout), ref)


# --- checking one blob -----------------------------------------------------------------------

def check_attested(entry: Entry, key: Path) -> Outcome:
    """Does a valid attestation vouch for this blob, with every parameter of its proof as the
    manifest asks for it (defaulted as `prove` defaults it)?"""
    if not entry.path.is_file():
        return Outcome(entry, False, "error", f"{entry.path}: no such file")
    if not entry.spec.is_file():
        return Outcome(entry, False, "error", f"{entry.spec}: no such spec file")
    if entry.ref is not None and not entry.ref.is_file():
        return Outcome(entry, False, "error", f"{entry.ref}: no such reference blob")
    if entry.arch is None and _is_raw(entry.path):
        return Outcome(entry, False, "error", f"{entry.path} is a raw blob: the manifest must say its arch "
                       f"(arch = \"x86_64\" or \"aarch64\") at line {entry.line}")
    if not entry.attestation.is_file():
        return Outcome(entry, False, "missing", f"no attestation ({entry.attestation.name} does not exist)")
    try:
        pred = _predicate(entry, key)
    except UsageError as e:
        return Outcome(entry, False, "error", str(e))
    if isinstance(pred, str):
        return Outcome(entry, False, "stale", pred)
    from .errors import NVerifyError

    try:
        mismatch = unbound(entry, pred)
    except NVerifyError as e:
        return Outcome(entry, False, "error", f"cannot load it as the manifest describes it: {e}")
    if mismatch:
        return Outcome(entry, False, "stale", mismatch)
    return Outcome(entry, True, "attested", f"attested proven ({pred.get('arch')}, {pred.get('abi')})",
                   extra={"predicate": pred})


def _is_raw(path: Path) -> bool:
    """Raw code (no object-file format), for which the manifest must give the arch."""
    from .blob import _container

    try:
        return _container(path.read_bytes()) is None
    except OSError:
        return False


def _predicate(entry: Entry, key: Path) -> dict | str:
    """The attested predicate, if the signature verifies and the file is a subject or (an object
    file) holds a function; else why not. What it vouches for is compared by `unbound`."""
    try:
        return attest.check(str(entry.path), str(entry.attestation), str(key), str(entry.spec)) \
            .statement["predicate"]
    except attest.CheckFailed as e:
        if "is not a subject" not in str(e):
            return str(e)
    try:
        envelope = json.loads(entry.attestation.read_bytes())
        return attest.open_envelope(envelope, attest.load_public_key(str(key)))["predicate"]
    except (attest.CheckFailed, ValueError, OSError) as e:
        return f"{entry.path} is not a subject of the attestation ({e})"


def unbound(entry: Entry, pred: dict) -> str:
    """The first parameter of the attested proof that differs from the manifest's entry, as a
    sentence, or "". Each is computed as `prove` computes it from the entry: the spec, its loop
    bound, the blob as loaded (bytes, arch, load address, symbol, section and offset), the ABI
    (`--abi`, else the format's), and the reference's digest for an equivalence proof."""
    from .arch import select_abi
    from .blob import load
    from .spec import load as load_spec

    if pred.get("verdict") != "proven":
        return f"the attestation is for verdict {pred.get('verdict')}"
    spec_digest = attest.sha256_file(entry.spec)
    if _dict(pred.get("spec")).get("sha256") != spec_digest:
        return f"spec {entry.spec} (sha256 {spec_digest[:16]}…) is not the spec the attestation proved against"
    with _LOADING:      # z3's parser and LIEF are not safe in threads; both take milliseconds here
        spec = load_spec(str(entry.spec), need_post=entry.ref is None)
        blob = load(str(entry.path), arch=entry.arch, base=entry.base, symbol=entry.symbol,
                    default_symbol=spec.signature.name)
        ref = None
        if entry.ref is not None:
            ref = load(str(entry.ref), arch=entry.arch or blob.arch, base=entry.base, symbol=entry.symbol,
                       default_symbol=spec.signature.name).sha256
    proven, options = _dict(pred.get("blob")), _dict(pred.get("options"))
    if blob.sha256 != proven.get("sha256"):
        what = "bytes" if blob.fmt == "raw" else f"function's bytes ({blob.name})"
        return f"{entry.path}: the {what} (sha256 {blob.sha256[:16]}…) changed since they were proven"
    rows: list[tuple[str, object, object]] = [
        ("arch", blob.arch, pred.get("arch")),
        ("ABI", select_abi(blob.arch, blob.fmt, entry.abi).name, pred.get("abi"))]
    if blob.fmt != "raw":       # a raw file is its whole extent; a function, where it lies in its file
        rows += [(k, v, proven.get(k)) for k, v in (("format", blob.fmt), ("symbol", blob.name),
                                                    ("section", blob.section), ("offset", hex(blob.offset)))]
    rows += [("base", hex(blob.base), proven.get("base")), ("size", blob.size, proven.get("size")),
             ("loop bound", spec.loop_bound, options.get("loop_bound")),
             ("reference", ref, _dict(options.get("ref")).get("sha256"))]
    for what, now, then in rows:
        if now != then:
            return f"the attestation is for {what} {_shown(then)}, not {_shown(now)}"
    return ""


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _shown(value) -> str:
    if value is None:
        return "none"
    return f"sha256 {value[:16]}…" if isinstance(value, str) and len(value) == 64 else str(value)


# --- proving what is not attested ------------------------------------------------------------

def cache_key(entry: Entry) -> str:
    h = hashlib.sha256()
    for part in (entry.path.read_bytes(), entry.spec.read_bytes(),
                 entry.ref.read_bytes() if entry.ref is not None else b"",
                 json.dumps([entry.arch, entry.symbol, entry.abi, entry.base, entry.timeout,
                             entry.ref is not None]).encode(),
                 VERSION.encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def prove_entry(entry: Entry, cache: Path | None) -> Outcome:
    """Prove one blob now (in a worker process); results are cached by content hash."""
    from .errors import NVerifyError
    from .pipeline import Options, prove

    try:
        key = cache_key(entry)
    except OSError as e:
        return Outcome(entry, False, "error", f"cannot read: {e}")
    hit = cache / f"{key}.json" if cache is not None else None
    if hit is not None and hit.is_file():
        try:
            data = json.loads(hit.read_text())
            return _from_result(entry, data, cached=True)
        except (OSError, ValueError):
            pass
    try:
        result = prove(str(entry.path), str(entry.spec),
                       Options(arch=entry.arch, base=entry.base, symbol=entry.symbol, abi=entry.abi,
                               timeout=entry.timeout, jobs=1, ref=str(entry.ref) if entry.ref else None))
    except NVerifyError as e:
        return Outcome(entry, False, "error", str(e))
    data = result.to_json()
    if hit is not None and data["verdict"] != "unknown":     # unknown may change with a longer timeout
        try:
            hit.parent.mkdir(parents=True, exist_ok=True)
            attest.write_files({hit: ((json.dumps(data) + "\n").encode(), 0o644)})
        except OSError:
            pass    # a cache that cannot be written is only slower
    return _from_result(entry, data, cached=False)


def _from_result(entry: Entry, data: dict, cached: bool) -> Outcome:
    verdict = data.get("verdict")
    if verdict == "proven":
        return Outcome(entry, True, "proven-cached" if cached else "proven",
                       "proven now" + (" (cached result)" if cached else ""), result=data)
    why = f"{verdict}: {data.get('reason')}: {data.get('message')}"
    return Outcome(entry, False, verdict if verdict in ("refuted", "unknown") else "error", why, result=data)


# --- the gate --------------------------------------------------------------------------------

def _timed(fn, *args) -> Outcome:
    import time

    t0 = time.monotonic()
    out = fn(*args)
    out.seconds = time.monotonic() - t0
    return out


def run(manifest: Manifest, jobs: int | None = None, prove_missing: bool = False, progress=None) -> list[Outcome]:
    attest.load_public_key(str(manifest.key))     # a bad key is an input error, before any work
    jobs = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(lambda e: _timed(check_attested, e, manifest.key), manifest.blobs))
    todo = [o for o in outcomes if not o.passed and o.status in ("missing", "stale")] if prove_missing else []
    if todo:
        with ProcessPoolExecutor(max_workers=jobs) as procs:
            futures = {o.entry.index: procs.submit(_timed, prove_entry, o.entry, manifest.cache) for o in todo}
            for o in todo:
                fresh = futures[o.entry.index].result()
                fresh.message = f"{o.message}; {fresh.message}"
                outcomes[o.entry.index] = fresh
                if progress:
                    progress(fresh)
    return outcomes

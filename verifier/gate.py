"""`nverify gate`: every blob in a manifest must carry a valid attestation (or, with
--prove-missing, be proven now); fails closed; SARIF 2.1.0 and JUnit reports (DESIGN §6).

A blob passes when its attestation verifies with the manifest's key, vouches for the blob's
current bytes (the file is a subject, or the function loaded from it has the attested sha256),
for the spec's current bytes, and for the same arch, ABI, symbol and load address as the
manifest asks. Anything else is a failure with its reason; nothing is assumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import attest
from .errors import UsageError
from .verdict import VERSION

BLOB_KEYS = {"path", "spec", "arch", "symbol", "abi", "base", "attestation", "timeout"}
GATE_KEYS = {"key", "cache"}


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
    for k in ("arch", "symbol", "abi", "attestation"):
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
    return Entry(i, line, blob_path, spec_path, arch, b.get("symbol"), b.get("abi"), base, att, float(timeout))


# --- checking one blob -----------------------------------------------------------------------

def check_attested(entry: Entry, key: Path) -> Outcome:
    """Does a valid attestation vouch for this blob as the manifest describes it?"""
    if not entry.path.is_file():
        return Outcome(entry, False, "error", f"{entry.path}: no such file")
    if not entry.spec.is_file():
        return Outcome(entry, False, "error", f"{entry.spec}: no such spec file")
    if entry.arch is None and _is_raw(entry.path):
        return Outcome(entry, False, "error", f"{entry.path} is a raw blob: the manifest must say its arch "
                       f"(arch = \"x86_64\" or \"aarch64\") at line {entry.line}")
    if not entry.attestation.is_file():
        return Outcome(entry, False, "missing", f"no attestation ({entry.attestation.name} does not exist)")
    try:
        r = attest.check(str(entry.path), str(entry.attestation), str(key), str(entry.spec))
        pred = r.statement["predicate"]
    except attest.CheckFailed as e:
        if "is not a subject" not in str(e):
            return Outcome(entry, False, "stale", str(e))
        pred = _predicate_for_function(entry, key)
        if isinstance(pred, str):
            return Outcome(entry, False, "stale", pred)
    except UsageError as e:
        return Outcome(entry, False, "error", str(e))
    mismatch = _options_mismatch(entry, pred)
    if mismatch:
        return Outcome(entry, False, "stale", f"the attestation is for {mismatch}")
    return Outcome(entry, True, "attested", f"attested proven ({pred.get('arch')}, {pred.get('abi')})",
                   extra={"predicate": pred})


def _is_raw(path: Path) -> bool:
    """Raw code (no object-file format), for which the manifest must give the arch."""
    from .blob import _container

    try:
        return _container(path.read_bytes()) is None
    except OSError:
        return False


def _predicate_for_function(entry: Entry, key: Path) -> dict | str:
    """For an object file: the function's bytes, loaded again, must be the attested blob."""
    from .blob import load
    from .errors import NVerifyError

    try:
        envelope = json.loads(entry.attestation.read_bytes())
        statement = attest.open_envelope(envelope, attest.load_public_key(str(key)))
        pred = statement["predicate"]
        blob = load(str(entry.path), arch=entry.arch, base=entry.base, symbol=entry.symbol,
                    default_symbol=pred.get("function"))
    except (attest.CheckFailed, NVerifyError, ValueError, OSError) as e:
        return f"{entry.path} is not a subject of the attestation ({e})"
    if blob.sha256 != (pred.get("blob") or {}).get("sha256"):
        return (f"{entry.path}: the function's bytes (sha256 {blob.sha256[:16]}…) changed since they were "
                "proven")
    return pred


def _options_mismatch(entry: Entry, pred: dict) -> str:
    blob = pred.get("blob") or {}
    if entry.arch and pred.get("arch") != entry.arch:
        return f"arch {pred.get('arch')}, not {entry.arch}"
    if entry.abi and pred.get("abi") != entry.abi.lower():
        return f"ABI {pred.get('abi')}, not {entry.abi}"
    if entry.symbol and blob.get("symbol") not in (entry.symbol, f"_{entry.symbol}"):
        return f"symbol {blob.get('symbol')}, not {entry.symbol}"
    if entry.base is not None and blob.get("base") != hex(entry.base):
        return f"base {blob.get('base')}, not {hex(entry.base)}"
    if pred.get("verdict") != "proven":
        return f"verdict {pred.get('verdict')}"
    return ""


# --- proving what is not attested ------------------------------------------------------------

def cache_key(entry: Entry) -> str:
    h = hashlib.sha256()
    for part in (entry.path.read_bytes(), entry.spec.read_bytes(),
                 json.dumps([entry.arch, entry.symbol, entry.abi, entry.base, entry.timeout]).encode(),
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
                               timeout=entry.timeout, jobs=1))
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

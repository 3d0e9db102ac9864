"""Renderers of a result (its JSON form): the terminal summary, and audit reports in HTML,
Markdown and PDF (`write`)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

FORMATS = (".html", ".md", ".pdf")
CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ReportError(Exception):
    """The report cannot be written (unknown extension, no Chromium for PDF, bad input)."""


def check_target(path: str) -> str:
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise ReportError(f"--report {path}: the extension decides the format; use .html, .md or .pdf")
    if ext == ".pdf" and chromium() is None:
        raise ReportError(f"--report {path}: PDF is printed by headless Chromium, which is not installed "
                          "(Debian: apt-get install chromium); write .html or .md instead")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise ReportError(f"--report {path}: directory {parent} does not exist")
    return ext


def chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM) if p), None)


def load_input(path: str) -> tuple[dict[str, Any], dict | None]:
    """A saved result JSON, or an attestation (DSSE envelope): (result, attestation facts or None).

    An attestation's signature is not checked here — `nverify check` does that; the report says
    whose key signed it (the fingerprint recorded in the statement) and the envelope's digest."""
    try:
        raw = Path(path).read_bytes()
        data = json.loads(raw)
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError:
        raise ReportError(f"{path}: not JSON: give a result saved with --json, or an attestation") from None
    if isinstance(data, dict) and "payloadType" in data and "payload" in data:
        try:
            statement = json.loads(base64.b64decode(data["payload"]))
            pred = statement["predicate"]
        except (ValueError, KeyError, TypeError):
            raise ReportError(f"{path}: an envelope without an nverify statement inside") from None
        result = {"nverify": (pred.get("tools") or {}).get("nverify"), "verdict": pred.get("verdict"),
                  "reason": None, "message": pred.get("message", ""), "blob": pred.get("blob"),
                  "spec": {**(pred.get("spec") or {}), "function": pred.get("function")},
                  "abi": pred.get("abi"), "obligations": pred.get("obligations", []),
                  "paths": pred.get("paths"), "options": pred.get("options", {}), "model": pred.get("model"),
                  "seconds": pred.get("seconds")}
        facts = {"sha256": hashlib.sha256(raw).hexdigest(), "signer": (pred.get("signer") or {}).get("sha256", "?"),
                 "timestamp": pred.get("timestamp"), "tools": pred.get("tools")}
        return result, facts
    if not isinstance(data, dict) or "verdict" not in data or "blob" not in data:
        raise ReportError(f"{path}: not an nverify result (no verdict/blob)")
    return data, None


def write(result: dict[str, Any], path: str, attestation: dict | None = None) -> None:
    """Render `result` to `path` (format by extension), atomically."""
    from . import content, html, markdown

    ext = check_target(path)
    try:
        rep = content.build(result, attestation, decompile=ext != ".md")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ReportError(f"not a complete nverify result ({type(e).__name__}: {e}); "
                          "give a result saved with --json, or an attestation") from None
    if ext == ".md":
        data = markdown.render(rep).encode()
    else:
        page = html.render(rep)
        data = page.encode() if ext == ".html" else _pdf(page)
    from verifier.attest import write_files

    write_files({Path(path): (data, 0o644)})     # all or nothing: never half a report


def _pdf(page: str) -> bytes:
    exe = chromium()
    if exe is None:
        raise ReportError("PDF is printed by headless Chromium, which is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "report.html", Path(d) / "report.pdf"
        src.write_text(page)
        cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--no-pdf-header-footer",
               f"--user-data-dir={d}/profile", f"--print-to-pdf={out}", src.as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError("Chromium did not finish printing the PDF within 120 s") from None
        if not out.is_file() or out.stat().st_size == 0:
            raise ReportError("Chromium did not write the PDF")
        return out.read_bytes()

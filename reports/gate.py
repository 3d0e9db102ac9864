"""The gate's machine-readable reports: SARIF 2.1.0 (GitHub code scanning) and JUnit XML."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/nverify/nverify"
# status -> (rule id, name, short description, level)
RULES = {
    "missing": ("NV001", "UnattestedBlob", "The blob has no attestation and was not proven", "error"),
    "stale": ("NV002", "StaleAttestation",
              "The attestation does not vouch for the blob's current bytes, spec or options", "error"),
    "refuted": ("NV003", "RefutedBlob", "The blob does not meet its spec: a counterexample exists", "error"),
    "unknown": ("NV004", "UnprovenBlob", "nverify could not decide whether the blob meets its spec", "error"),
    "error": ("NV005", "GateInputError", "The blob, its spec or its attestation could not be read", "error"),
}


def _uri(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def sarif(outcomes, root: Path, version: str) -> dict[str, Any]:
    rules = [{"id": rid, "name": name, "shortDescription": {"text": text}, "fullDescription": {"text": text},
              "defaultConfiguration": {"level": level}, "helpUri": f"{INFO_URI}/blob/main/docs/gate.md"}
             for rid, name, text, level in RULES.values()]
    index = {status: i for i, status in enumerate(RULES)}
    results = []
    for o in outcomes:
        if o.passed:
            continue
        rid, _, _, level = RULES[o.status]
        props: dict[str, Any] = {"blob": _uri(o.entry.path, root), "status": o.status}
        if o.result:
            props["verdict"] = o.result.get("verdict")
            props["reason"] = o.result.get("reason")
            if o.result.get("counterexample"):
                props["counterexample"] = o.result["counterexample"]
        results.append({
            "ruleId": rid, "ruleIndex": index[o.status], "level": level,
            "message": {"text": f"{o.entry.name}: {o.message}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(o.entry.spec, root), "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 1}}}],
            "partialFingerprints": {"nverifyBlob/v1": _uri(o.entry.path, root) + (f"#{o.entry.symbol}"
                                                                                   if o.entry.symbol else "")},
            "properties": props,
        })
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "nverify", "version": version, "semanticVersion": version,
                                          "informationUri": INFO_URI, "rules": rules}},
                      "originalUriBaseIds": {"%SRCROOT%": {"uri": root.resolve().as_uri() + "/"}},
                      "results": results}]}


def junit(outcomes, seconds: float) -> bytes:
    failures = sum(1 for o in outcomes if not o.passed and o.status != "error")
    errors = sum(1 for o in outcomes if o.status == "error")
    suites = ET.Element("testsuites", name="nverify gate", tests=str(len(outcomes)), failures=str(failures),
                        errors=str(errors), time=f"{seconds:.3f}")
    suite = ET.SubElement(suites, "testsuite", name="nverify gate", tests=str(len(outcomes)),
                          failures=str(failures), errors=str(errors), skipped="0", time=f"{seconds:.3f}")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname="nverify.gate", name=o.entry.name,
                             time=f"{o.seconds:.3f}")
        if not o.passed:
            tag = "error" if o.status == "error" else "failure"
            el = ET.SubElement(case, tag, message=o.message[:500], type=o.status)
            el.text = o.message
        else:
            ET.SubElement(case, "system-out").text = o.message
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)

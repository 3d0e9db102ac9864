"""`nverify synth`: the loop between a generator and the verifier (CEGIS).

Every candidate the generator puts forward is verified by the full pipeline — the generator
is never trusted — and what the verifier says (verdict, reason, counterexample inputs) goes
back to the generator. The loop ends when the generator has nothing more to offer or the
budget is spent; the answer is the best PROVEN candidate (fewest bytes), if any.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import Candidate, Feedback, Generator, Task


@dataclass
class Outcome:
    best: Any | None                      # verifier Result of the best proven candidate
    best_candidate: Candidate | None
    tried: list[dict[str, Any]] = field(default_factory=list)
    proposals: int = 0                    # what the generator reports it proposed (internal ones too)
    verified: int = 0                     # candidates run through the full pipeline
    seconds: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)


def run(gen: Generator, task: Task, *, abi: str | None = None, timeout: float = 60.0,
        progress: Callable[[dict], None] | None = None) -> Outcome:
    from verifier.pipeline import Options, prove

    t0 = time.monotonic()
    deadline = t0 + task.budget
    gen.start(task)
    out = Outcome(None, None)
    names = set(task.spec.names)
    with tempfile.TemporaryDirectory() as d:
        while time.monotonic() < deadline:
            cand = gen.propose()
            if cand is None:
                break
            out.verified += 1
            path = Path(d) / f"candidate{out.verified}.bin"
            path.write_bytes(cand.code)
            remaining = max(1.0, deadline - time.monotonic())
            result = prove(str(path), task.spec.path, Options(arch=task.arch, abi=abi, jobs=task.jobs,
                                                             timeout=min(timeout, remaining)))
            result.blob["path"] = f"<{gen.name} candidate {out.verified}>"   # the temporary file is gone
            data = result.to_json()
            cex = data.get("counterexample")
            inputs = {k: int(v, 16) for k, v in ((cex or {}).get("inputs") or {}).items()
                      if k in names and isinstance(v, str) and v.startswith("0x")}
            gen.feedback(cand, Feedback(data["verdict"], data.get("reason"), data.get("message", ""), cex, inputs))
            out.tried.append({"sha256": hashlib.sha256(cand.code).hexdigest(), "size": len(cand.code),
                              "verdict": data["verdict"], "reason": data.get("reason"),
                              "message": data.get("message", "")[:300], "note": cand.note[:300]})
            if data["verdict"] == "proven" and (out.best_candidate is None
                                                or len(cand.code) < len(out.best_candidate.code)):
                out.best, out.best_candidate = result, cand
            out.proposals = int((_stats(gen) or {}).get("proposals", out.verified))
            if progress:
                progress(status(gen, out, t0))
    out.seconds = time.monotonic() - t0
    out.proposals = int((_stats(gen) or {}).get("proposals", out.verified))
    out.provenance = {"generator": gen.name, "version": getattr(gen, "version", "?"), "seed": task.seed,
                      "budget": task.budget, "iterations": out.proposals, "verified": out.verified,
                      "seconds": round(out.seconds, 3), **({"source": task.source} if task.source else {})}
    return out


def _stats(gen: Generator) -> dict | None:
    stats = getattr(gen, "stats", None)
    try:
        return stats() if callable(stats) else None
    except Exception:  # noqa: BLE001 - statistics are for display only
        return None


def status(gen: Generator, out: Outcome, t0: float) -> dict:
    elapsed = max(time.monotonic() - t0, 1e-9)
    stats = _stats(gen) or {}
    proposals = int(stats.get("proposals", out.verified))
    return {"elapsed": elapsed, "proposals": proposals, "rate": proposals / elapsed,
            "best_cost": stats.get("best_cost"), "verified": out.verified,
            "proven": sum(1 for t in out.tried if t["verdict"] == "proven")}

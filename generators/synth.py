"""`nverify synth`: the loop between a generator and the verifier (CEGIS).

Every candidate the generator puts forward is verified by the full pipeline — the generator
is never trusted — and what the verifier says (verdict, reason, counterexample inputs) goes
back to the generator. The loop ends when the generator has nothing more to offer or the
budget is spent; the answer is the best PROVEN candidate (fewest bytes), if any.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
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
    transcript: bytes | None = None       # what the generator says happened (llm: the conversation)


def run(gen: Generator, task: Task, *, abi: str | None = None, timeout: float = 60.0,
        progress: Callable[[dict], None] | None = None) -> Outcome:
    t0 = time.monotonic()
    deadline = t0 + task.budget
    gen.start(task)
    try:
        return _loop(gen, task, abi, timeout, progress, t0, deadline)
    finally:
        close = getattr(gen, "close", None)         # optional: a generator holding processes
        if callable(close):
            close()


def _loop(gen: Generator, task: Task, abi: str | None, timeout: float,
          progress: Callable[[dict], None] | None, t0: float, deadline: float) -> Outcome:
    out = Outcome(None, None)
    names = set(task.spec.names)
    with tempfile.TemporaryDirectory() as d:
        while time.monotonic() < deadline:
            batch = _next(gen)
            if not batch:
                break
            numbers = range(out.verified + 1, out.verified + len(batch) + 1)
            out.verified += len(batch)
            paths = [Path(d) / f"candidate{n}.bin" for n in numbers]
            for cand, path in zip(batch, paths, strict=True):
                path.write_bytes(cand.code)
            remaining = max(1.0, deadline - time.monotonic())
            results = _verify(paths, task, abi, min(timeout, remaining))
            for n, cand, result in zip(numbers, batch, results, strict=True):
                result.blob["path"] = f"<{gen.name} candidate {n}>"      # the temporary file is gone
                data = result.to_json()
                cex = data.get("counterexample")
                inputs = {k: int(v, 16) for k, v in ((cex or {}).get("inputs") or {}).items()
                          if k in names and isinstance(v, str) and v.startswith("0x")}
                gen.feedback(cand, Feedback(data["verdict"], data.get("reason"), data.get("message", ""), cex,
                                            inputs))
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
                      "budget": task.budget, **({"max_iterations": task.iterations} if task.iterations else {}),
                      "iterations": out.proposals, "verified": out.verified,
                      "seconds": round(out.seconds, 3), **({"source": task.source} if task.source else {})}
    extra = getattr(gen, "provenance", None)       # optional: what else an attestation should record
    if callable(extra):
        out.provenance.update(extra())
    transcript = getattr(gen, "transcript", None)  # optional: the generator's conversation, as bytes
    if callable(transcript):
        out.transcript = transcript()
    return out


def _next(gen: Generator) -> list[Candidate]:
    """The next candidates: a batch where the generator offers one (verified in parallel)."""
    batch = getattr(gen, "propose_batch", None)
    if callable(batch):
        return list(batch())
    cand = gen.propose()
    return [] if cand is None else [cand]


def _prove_one(path: Path, task: Task, abi: str | None, timeout: float, jobs: int):
    from verifier.pipeline import Options, prove

    return prove(str(path), task.spec.path, Options(arch=task.arch, abi=abi, jobs=jobs, timeout=timeout))


def _verify(paths: list[Path], task: Task, abi: str | None, timeout: float) -> list:
    """Verify each candidate with the full pipeline; a batch in worker processes, one per core."""
    if len(paths) == 1:
        return [_prove_one(paths[0], task, abi, timeout, task.jobs)]
    workers = max(1, min(len(paths), os.cpu_count() or 1))
    # fork, as the solver portfolio does; each candidate's obligations then run one at a time
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_prove_one, paths, [task] * len(paths), [abi] * len(paths),
                             [timeout] * len(paths), [1] * len(paths)))


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

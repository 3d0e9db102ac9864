"""Verdicts and the result record (DESIGN §5): outcomes + replay -> `Result`, and its JSON form."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import EXIT_PROVEN, EXIT_REFUTED, EXIT_UNKNOWN

VERSION = "0.1.0"

# Reason codes (DESIGN §5), plus `unplaceable-access` for a memory access the model cannot
# place in one region (DESIGN §4: "a memory access it cannot place" is UNKNOWN).
REFUTING = ("policy", "undecodable", "memory-safety", "frame", "postcondition")
UNKNOWN_REASONS = ("loop-bound", "timeout", "unsupported-instruction", "unplaceable-access",
                   "lifter-mismatch", "solver-unknown", "reference")


class Verdict(enum.IntEnum):
    """Ordered so that the worst wins: one confirmed refutation beats any number of unknowns."""

    PROVEN = 0
    UNKNOWN = 1
    REFUTED = 2

    @property
    def exit_code(self) -> int:
        return {Verdict.PROVEN: EXIT_PROVEN, Verdict.REFUTED: EXIT_REFUTED,
                Verdict.UNKNOWN: EXIT_UNKNOWN}[self]

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class ObligationRow:
    name: str
    kind: str
    result: str
    solver: str
    seconds: float
    detail: str = ""


@dataclass
class Result:
    verdict: Verdict
    reason: str | None
    message: str
    blob: dict[str, Any]
    spec: dict[str, Any]
    abi: str
    obligations: list[ObligationRow]
    seconds: float
    counterexample: dict[str, Any] | None = None
    paths: int = 0
    trace: list[int] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)   # the machine model, instantiated (describe.py)
    cosim: dict[str, Any] | None = None   # co-simulation on the CPU oracle (verifier/oracle/cosim.py)
    # Not part of the result JSON: what emission and attestation need besides it.
    code: bytes = field(default=b"", repr=False)
    spec_text: str = field(default="", repr=False)
    unit: tuple = field(default=((), (), 0), repr=False)   # read-only data, fixups, entry offset

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nverify": VERSION, "verdict": str(self.verdict), "reason": self.reason,
            "message": self.message, "blob": self.blob, "spec": self.spec, "abi": self.abi,
        }
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample
        out["obligations"] = [
            {"name": o.name, "kind": o.kind, "result": o.result, "solver": o.solver,
             "seconds": round(o.seconds, 4), **({"detail": o.detail} if o.detail else {})}
            for o in self.obligations]
        out["paths"] = self.paths
        if self.trace:
            out["trace"] = [hex(a) for a in self.trace]
        out["options"] = self.options
        if self.model:
            out["model"] = self.model
        if self.cosim is not None:
            out["cosim"] = self.cosim
        out["seconds"] = round(self.seconds, 3)
        return out


def hexval(v: int) -> str:
    return hex(v)

"""What symbolic execution hands to the obligations stage: plain data, formulas as SMT-LIB text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PathResult:
    index: int
    status: str                  # returned, violation, loop-bound, unsupported-instruction, ...
    pc: str                      # path condition (SMT-LIB), beyond the entry assumptions and pre
    outputs: dict[str, str]      # returned paths: spec exit name / ret -> term
    trace: tuple[int, ...]       # instruction addresses, in order (a merged path: one side's)
    addr: int                    # where the path ended
    message: str


@dataclass(frozen=True)
class Violation:
    kind: str                    # memory-safety, frame, policy, undecodable
    key: str                     # obligations group violations by kind and address
    addr: int
    message: str
    cond: str                    # path condition and violation, as one SMT-LIB formula
    path: int
    trace: tuple[int, ...]


@dataclass(frozen=True)
class Exploration:
    arch: str
    abi: str
    paths: tuple[PathResult, ...]
    violations: tuple[Violation, ...]
    truncated: bool              # the path budget ran out: never a proof
    assumptions: tuple[str, ...] # the machine model's entry assumptions (DESIGN §4)
    symbols: dict[str, int]      # every symbol in any formula above -> bit width
    seconds: float
    entry_registers: dict[str, str]   # register -> entry value in terms of symbols
    # name, register, elem bits, length (largest, for T p[n]), const, length parameter (T p[n]) or None
    arrays: tuple[tuple[str, str, int, int, bool, str | None], ...]
    return_address: str
    merges: int = 0              # states merged at join points (each removes one path)
    # the unit's read-only regions: base symbol -> the addresses a concrete run may place it at
    rodata: dict[str, tuple[int, int]] = field(default_factory=dict)

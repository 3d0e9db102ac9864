"""Turns paths × spec into obligations: SMT-LIB formulas that are satisfiable iff something fails."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .exploration import Exploration
from .smt import quote
from .spec import Spec

UNKNOWN_STATUSES = {"loop-bound", "unsupported-instruction", "unplaceable-access"}


@dataclass(frozen=True)
class Obligation:
    name: str          # post#1, memory-safety@0x400010, frame@0x40002e, loop-bound@0x400008 …
    kind: str          # postcondition, memory-safety, frame, policy, undecodable, or an UNKNOWN reason
    formula: str       # satisfiable iff the obligation fails; a model is the counterexample
    symbols: dict[str, int]
    message: str       # what failing means, in words
    paths: tuple[int, ...]   # which paths contribute (for replay and the trace)
    conjunct: str | None = None   # for postcondition obligations: the conjunct's text


def build(spec: Spec, ex: Exploration, ref: Exploration | None = None) -> list[Obligation]:
    links, internal = _array_links(ex)
    base = _and([*ex.assumptions, *(ref.assumptions if ref else ()), *links, spec.pre])
    symbols = {**internal, **ex.symbols, **(ref.symbols if ref else {}), **spec.names}
    out: list[Obligation] = []
    if ref is not None:
        out += _equivalence(spec, ex, ref, base, symbols)
    returned = [p for p in ex.paths if p.status == "returned"]
    for i, conj in enumerate(spec.post, 1):
        cases = [_and([p.pc, _let({**p.outputs, **_array_outputs(ex, p.outputs)}, f"(not {conj})")])
                 for p in returned]
        out.append(Obligation(
            name=f"post#{i}", kind="postcondition", formula=_and([base, _or(cases)]), symbols=symbols,
            message=f"postcondition conjunct {i} fails: {' '.join(conj.split())}",
            paths=tuple(p.index for p in returned), conjunct=conj))
    groups: dict[str, list] = defaultdict(list)
    for v in ex.violations:
        groups[v.key].append(v)
    for key, vs in groups.items():
        out.append(Obligation(
            name=key, kind=vs[0].kind, formula=_and([base, _or([v.cond for v in vs])]), symbols=symbols,
            message=vs[0].message, paths=tuple(v.path for v in vs)))
    for p in ex.paths:
        if p.status in UNKNOWN_STATUSES:
            out.append(Obligation(
                name=f"{p.status}@{p.addr:#x}#{p.index}", kind=p.status, formula=_and([base, p.pc]),
                symbols=symbols, message=p.message, paths=(p.index,)))
    return out


def _equivalence(spec: Spec, ex: Exploration, ref: Exploration, base: str,
                 symbols: dict[str, int]) -> list[Obligation]:
    """Reference mode (DESIGN §3): on every pair of paths both can take from one entry state,
    every output equals the reference's. The reference must itself be well-behaved."""
    out: list[Obligation] = []
    mine = [p for p in ex.paths if p.status == "returned"]
    theirs = [p for p in ref.paths if p.status == "returned"]
    names = sorted({k for p in theirs for k in p.outputs})
    for name in names:
        cases = [_and([p.pc, q.pc, f"(distinct {p.outputs[name]} {q.outputs[name]})"])
                 for p in mine for q in theirs if name in p.outputs and name in q.outputs]
        out.append(Obligation(
            name=f"equiv:{name}", kind="postcondition", formula=_and([base, _or(cases)]), symbols=symbols,
            message=f"{name} differs from the reference's", paths=tuple(p.index for p in mine),
            conjunct=f"(= {name} ref.{name})"))
    bad = [v.cond for v in ref.violations] + [q.pc for q in ref.paths if q.status != "returned"]
    if bad:
        out.append(Obligation(
            name="reference", kind="reference", formula=_and([base, _or(bad)]), symbols=symbols,
            message="the reference blob itself does not behave on some input allowed by pre "
                    "(a violation, or a path that does not return), so it cannot define the right outputs",
            paths=()))
    return out


def _array_links(ex: Exploration) -> tuple[list[str], dict[str, int]]:
    """For T p[n], the spec's array `p` and the explorer's element symbols p.0 … p.N-1 (N the
    largest n pre allows) are one thing: element i of p is p.i."""
    links, names = [], {}
    for name, _reg, bits, length, _const, count in ex.arrays:
        if count is None:
            continue
        for i in range(length):
            links.append(f"(= {quote(f'{name}.{i}')} (select {quote(name)} (_ bv{i} 64)))")
            names[f"{name}.{i}"] = bits
    return links, names


def _array_outputs(ex: Exploration, outputs: dict[str, str]) -> dict[str, str]:
    """The spec's p.out for each non-const T p[n]: p with elements 0 … N-1 replaced by what the
    path left in memory there; indices past N, which no access can reach, keep p's values."""
    out = {}
    for name, _reg, _bits, length, const, count in ex.arrays:
        if count is None or const:
            continue
        arr = quote(name)
        for i in range(length):
            arr = f"(store {arr} (_ bv{i} 64) {outputs[f'{name}.{i}.out']})"
        out[f"{name}.out"] = arr
    return out


def _and(parts: list[str]) -> str:
    parts = [p for p in parts if p != "true"]
    if not parts:
        return "true"
    return parts[0] if len(parts) == 1 else "(and " + " ".join(parts) + ")"


def _or(parts: list[str]) -> str:
    if not parts:
        return "false"
    return parts[0] if len(parts) == 1 else "(or " + " ".join(parts) + ")"


def _let(bindings: dict[str, str], body: str) -> str:
    """Bind the spec's exit names to one path's terms; `let` shadows the declared names."""
    if not bindings:
        return body
    return "(let (" + " ".join(f"({quote(k)} {v})" for k, v in bindings.items()) + f") {body})"

"""Discharges obligations with z3 in parallel worker processes: obligation -> `Outcome`."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .obligations import Obligation

DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Outcome:
    name: str
    kind: str
    result: str                   # proven | refuted | unknown
    solver: str
    seconds: float
    model: dict[str, int] | None  # the counterexample, when refuted
    detail: str = ""              # why unknown


def solve_one(ob: Obligation, timeout: float, extra: str | None = None) -> Outcome:
    import z3

    from . import smt

    t0 = time.monotonic()
    s = z3.SolverFor("QF_BV") if "forall" not in ob.formula else z3.Solver()
    s.set("timeout", max(1, int(timeout * 1000)))
    s.set("random_seed", smt.Z3_SEED)
    text = smt.declare_text(ob.symbols) + f"(assert {ob.formula})\n"
    if extra:
        text += f"(assert {extra})\n"
    s.from_string(text)
    r = s.check()
    dt = time.monotonic() - t0
    if r == z3.unsat:
        return Outcome(ob.name, ob.kind, "proven", "z3", dt, None)
    if r == z3.sat:
        m = s.model()
        values = {}
        for d in m.decls():
            v = m[d]
            if z3.is_bv_value(v):
                values[d.name()] = v.as_long()
        return Outcome(ob.name, ob.kind, "refuted", "z3", dt, values)
    why = s.reason_unknown()
    detail = "timeout" if ("timeout" in why or "canceled" in why) else f"solver-unknown: {why}"
    return Outcome(ob.name, ob.kind, "unknown", "z3", dt, None, detail)


def _work(args: tuple[Obligation, float]) -> Outcome:
    return solve_one(*args)


def solve_all(obs: list[Obligation], *, jobs: int | None = None, timeout: float = DEFAULT_TIMEOUT,
              on_done=None) -> list[Outcome]:
    jobs = jobs or os.cpu_count() or 1
    results: dict[str, Outcome] = {}
    if jobs <= 1 or len(obs) <= 1:
        for ob in obs:
            results[ob.name] = solve_one(ob, timeout)
            if on_done:
                on_done(results[ob.name])
    else:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(jobs, len(obs)), mp_context=ctx) as pool:
            futures = {pool.submit(_work, (ob, timeout)): ob for ob in obs}
            for fut in futures:
                out = fut.result()
                results[out.name] = out
                if on_done:
                    on_done(out)
    return [results[ob.name] for ob in obs]

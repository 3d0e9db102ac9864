"""Discharges obligations by racing SMT solvers in worker processes: obligation -> `Outcome`.

Scheduling (DESIGN §8): obligations are taken in order, each given to every solver of the portfolio
in priority order, `jobs` solver processes at a time (on 2 cores: Bitwuzla and Z3 race each
obligation, and cvc5 joins when one of them gives up). The first definite answer (unsat = holds,
sat = fails) wins and the losers are killed. Each solver run is its own forked process, so a solver
that ignores its time limit, hangs or crashes costs only its own run: it is killed at the deadline,
and a crash reads as `unknown`, never as an answer.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import cast

from .obligations import Obligation
from .solvers import Answer, Backend, available

DEFAULT_TIMEOUT = 60.0
GRACE = 2.0   # seconds past --timeout before a solver that ignores its own limit is killed


@dataclass(frozen=True)
class Outcome:
    name: str
    kind: str
    result: str                   # proven | refuted | unknown
    solver: str
    seconds: float
    model: dict[str, int] | None  # the counterexample, when refuted
    detail: str = ""              # why unknown


def query_text(ob: Obligation, extra: str | None = None) -> str:
    from . import smt

    text = smt.declare_text(ob.symbols) + f"(assert {ob.formula})\n"
    if extra:
        text += f"(assert {extra})\n"
    return text


def run_backend(backend: Backend, ob: Obligation, timeout: float, extra: str | None = None) -> Answer:
    """One solver on one obligation, in this process. A `sat` model is checked against the query
    with z3's evaluator before it is believed."""
    from . import smt

    try:
        ans = backend.run(query_text(ob, extra), ob.symbols, timeout)
    except Exception as e:   # a solver that cannot parse or crashes in Python decides nothing
        return Answer("unknown", None, f"{backend.name} failed: {type(e).__name__}: {e}"[:300])
    if ans.result == "sat":
        formula = ob.formula if extra is None else f"(and {ob.formula} {extra})"
        f = smt.parse_asserts(f"(assert {formula})", ob.symbols)[0]
        # Solvers differ in which names a model lists; keep those the query mentions, so that a
        # counterexample shows what matters whichever solver found it.
        used = smt.free_names(f)
        model = {n: v for n, v in (ans.model or {}).items() if n in used}
        if not smt.satisfied_by(f, ob.symbols, model, timeout):
            return Answer("unknown", None, f"{backend.name} returned a model that does not satisfy the query")
        return Answer("sat", model)
    return ans


def _outcome(ob: Obligation, backend: str, ans: Answer, seconds: float) -> Outcome:
    result = {"unsat": "proven", "sat": "refuted"}.get(ans.result, "unknown")
    return Outcome(ob.name, ob.kind, result, backend, seconds, ans.model, ans.detail)


def solve_one(ob: Obligation, timeout: float, extra: str | None = None,
              solvers: list[str] | None = None) -> Outcome:
    """Solvers one after the other, in this process, until one decides (used for follow-up queries)."""
    t0 = time.monotonic()
    details = []
    for b in available(solvers):
        ans = run_backend(b, ob, timeout, extra)
        if ans.result != "unknown":
            return _outcome(ob, b.name, ans, time.monotonic() - t0)
        details.append((b.name, ans.detail))
    return _unknown(ob, details, time.monotonic() - t0)


def _unknown(ob: Obligation, details: list[tuple[str, str]], seconds: float) -> Outcome:
    if details and all(d == "timeout" for _, d in details):
        detail = "timeout"
    else:
        detail = "solver-unknown: " + "; ".join(f"{n}: {d}" for n, d in details)
    return Outcome(ob.name, ob.kind, "unknown", "+".join(n for n, _ in details), seconds, None, detail)


def _child(conn, backend: Backend, ob: Obligation, timeout: float) -> None:
    try:
        conn.send(run_backend(backend, ob, timeout))
    finally:
        conn.close()
        os._exit(0)   # skip the parent's atexit handlers inherited through fork


@dataclass
class _Run:
    proc: multiprocessing.process.BaseProcess
    conn: Connection
    ob: int
    backend: Backend
    start: float


class Cache:
    """Proven obligations on disk, keyed by the SHA-256 of the normalised query (declarations and
    formula, whitespace collapsed), so an unchanged obligation (re-verifying a blob, the same
    kernel in another build) is not solved again. Only `unsat` answers are kept: a refutation
    needs its model replayed anyway. Whoever can write the directory can make nverify believe
    an obligation holds: it is off unless asked for (--cache DIR), and should be private."""

    def __init__(self, root: str):
        self.root = Path(root)

    @staticmethod
    def key(ob: Obligation) -> str:
        return hashlib.sha256(" ".join(query_text(ob).split()).encode()).hexdigest()

    def get(self, ob: Obligation) -> str | None:
        try:
            entry = json.loads((self.root / f"{self.key(ob)}.json").read_text())
        except (OSError, ValueError):
            return None
        return entry.get("solver") if entry.get("result") == "unsat" else None

    def put(self, ob: Obligation, solver: str) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{self.key(ob)}.{os.getpid()}"
            tmp.write_text(json.dumps({"result": "unsat", "solver": solver, "obligation": ob.name}))
            os.replace(tmp, self.root / f"{self.key(ob)}.json")
        except OSError:
            pass   # a cache that cannot be written only costs time


def solve_all(obs: list[Obligation], *, jobs: int | None = None, timeout: float = DEFAULT_TIMEOUT,
              on_done=None, solvers: list[str] | None = None, cache: Cache | None = None) -> list[Outcome]:
    if cache is not None:
        got = {i: cache.get(ob) for i, ob in enumerate(obs)}
        hits = {i: h for i, h in got.items() if h is not None}
        rest = [i for i in range(len(obs)) if i not in hits]
        found = {i: Outcome(obs[i].name, obs[i].kind, "proven", h, 0.0, None, "cached") for i, h in hits.items()}
        for o in found.values():
            if on_done:
                on_done(o)
        solved = solve_all([obs[i] for i in rest], jobs=jobs, timeout=timeout, on_done=on_done, solvers=solvers)
        for i, o in zip(rest, solved, strict=True):
            found[i] = o
            if o.result == "proven":
                cache.put(obs[i], o.solver)
        return [found[i] for i in range(len(obs))]
    backends = available(solvers)
    if not backends:
        raise RuntimeError("no SMT solver available")
    jobs = max(1, jobs or os.cpu_count() or 1)
    # Obligation by obligation, each raced by the whole portfolio: no solver wins everywhere
    # (docs/benchmarks.md), and a trivial obligation costs a few forks before its losers die.
    queue = [(i, b) for i in range(len(obs)) for b in backends]
    queue.reverse()   # pop() from the end
    ctx = multiprocessing.get_context("fork")
    running: dict[Connection, _Run] = {}
    done: dict[int, Outcome] = {}
    tried: dict[int, list[tuple[str, str]]] = {i: [] for i in range(len(obs))}
    first_start: dict[int, float] = {}

    def finish(i: int, out: Outcome) -> None:
        done[i] = out
        for r in [r for r in running.values() if r.ob == i]:
            _kill(r)
            del running[r.conn]
        if on_done:
            on_done(out)

    def settle_if_exhausted(i: int) -> None:
        if i in done or len(tried[i]) < len(backends):
            return
        finish(i, _unknown(obs[i], tried[i], time.monotonic() - first_start[i]))

    try:
        while len(done) < len(obs):
            while queue and len(running) < jobs:
                i, b = queue.pop()
                if i in done:
                    continue
                parent, child = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_child, args=(child, b, obs[i], timeout), daemon=True)
                p.start()
                child.close()
                now = time.monotonic()
                first_start.setdefault(i, now)
                running[parent] = _Run(p, parent, i, b, now)
            if not running:
                break
            now = time.monotonic()
            wake = min(r.start + timeout + GRACE for r in running.values()) - now
            for conn in wait(list(running), timeout=max(0.0, wake)):
                r = running.pop(cast(Connection, conn), None)
                if r is None:   # a sibling of an obligation decided earlier in this batch: killed
                    continue
                try:
                    ans: Answer = r.conn.recv()
                    _reap(r)
                except (EOFError, OSError):
                    _reap(r)
                    ans = Answer("unknown", None, f"{r.backend.name} crashed (exit code {r.proc.exitcode})")
                if r.ob in done:
                    continue
                if ans.result in ("sat", "unsat"):
                    finish(r.ob, _outcome(obs[r.ob], r.backend.name, ans, time.monotonic() - first_start[r.ob]))
                else:
                    tried[r.ob].append((r.backend.name, ans.detail))
                    settle_if_exhausted(r.ob)
            now = time.monotonic()
            for r in [r for r in running.values() if now > r.start + timeout + GRACE]:
                if r.conn not in running:   # killed meanwhile: its obligation was settled
                    continue
                _kill(r)
                del running[r.conn]
                tried[r.ob].append((r.backend.name, "timeout"))
                settle_if_exhausted(r.ob)
    finally:
        for r in running.values():
            _kill(r)
    for i in range(len(obs)):   # only reachable if the loop broke with work left: never silently
        if i not in done:
            done[i] = _unknown(obs[i], tried[i] or [("scheduler", "not run")], 0.0)
    return [done[i] for i in range(len(obs))]


def _kill(r: _Run) -> None:
    if r.proc.is_alive():
        r.proc.kill()
    _reap(r)


def _reap(r: _Run) -> None:
    r.proc.join(timeout=5)
    try:
        r.conn.close()
    except OSError:
        pass

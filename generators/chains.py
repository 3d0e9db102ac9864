"""Independent search chains in worker processes (`nverify synth --jobs N`).

Chain i is the generator class started on the task with seed `seed + i * SEED_STEP` and one job:
exactly the search `--jobs 1 --seed (that seed)` runs, so each chain is deterministic for its
seed. Chains share nothing; each waits for the verdict on its own candidate and learns only from
it (the coordinator verifies one candidate at a time). What `--jobs` changes is which chain's
candidate reaches the verifier first, and so, under a time budget, which proof ends the search.

A candidate some chain already put forward is not verified again: that chain gets the verdict
the first one got.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import Any

from . import Candidate, Feedback, Task

SEED_STEP = 7919


def _chain(conn: Connection, cls: str, task: Task) -> None:
    """A worker: propose, send, wait for the verdict, feed it back; until done or stopped."""
    module, name = cls.rsplit(".", 1)
    try:
        gen = getattr(importlib.import_module(module), name)()
        gen.start(task)
        while True:
            cand = gen.propose()
            if cand is None:
                conn.send(("done", gen.stats()))
                return
            conn.send(("candidate", cand, gen.stats()))
            msg = conn.recv()
            if msg[0] != "feedback":
                return
            gen.feedback(cand, msg[1])
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    except Exception as e:  # noqa: BLE001 - reported to the coordinator, which raises it
        try:
            conn.send(("error", f"{type(e).__name__}: {e}"))
        except (BrokenPipeError, OSError):
            pass
    finally:
        conn.close()
        os._exit(0)           # skip the parent's atexit handlers inherited through fork


class Chains:
    """Runs `cls` (a "module.Class" path) as `task.jobs` chains and serves their candidates."""

    def __init__(self, cls: str, task: Task, *, stop_on_proof: bool) -> None:
        # fork, as the solver portfolio does (verifier/solve.py): a chain needs only the generator
        # and Z3, and spawn would re-run the parent's __main__, which need not be importable
        ctx = multiprocessing.get_context("fork")
        self.stop_on_proof = stop_on_proof
        self.conns: list[Connection] = []
        self.procs = []
        for i in range(task.jobs):
            parent, child = ctx.Pipe()
            sub = replace(task, seed=task.seed + i * SEED_STEP, jobs=1)
            p = ctx.Process(target=_chain, args=(child, cls, sub), daemon=True, name=f"nverify-chain-{i}")
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        self.deadline = time.monotonic() + task.budget + 30        # chains keep their own deadlines
        self.stats_by_chain: dict[int, dict[str, Any]] = {}
        self.waiting: set[int] = set()           # chains waiting for the verdict on their candidate
        self.live = set(range(task.jobs))
        self.owner: dict[int, int] = {}          # id(candidate) -> chain
        self.verdicts: dict[bytes, Feedback] = {}
        self.stopped = False

    def propose(self) -> Candidate | None:
        while not self.stopped and self.live - self.waiting and time.monotonic() < self.deadline:
            ready = wait([self.conns[i] for i in sorted(self.live - self.waiting)], timeout=0.5)
            for i in [i for i, c in enumerate(self.conns) if c in ready]:    # in chain order
                conn = self.conns[i]
                try:
                    msg: tuple[Any, ...] = conn.recv()
                except (EOFError, OSError):
                    self.close()
                    raise RuntimeError(f"search chain {i} exited without finishing") from None
                if msg[0] == "error":
                    self.close()
                    raise RuntimeError(f"search chain {i} failed: {msg[1]}")
                self.stats_by_chain[i] = msg[-1]
                if msg[0] == "done":
                    self.live.discard(i)
                    continue
                cand: Candidate = msg[1]
                if cand.code in self.verdicts:               # verified already, for another chain
                    conn.send(("feedback", self.verdicts[cand.code]))
                    continue
                self.waiting.add(i)
                self.owner[id(cand)] = i
                return cand
        return None

    def feedback(self, candidate: Candidate, fb: Feedback) -> None:
        self.verdicts[candidate.code] = fb
        i = self.owner.pop(id(candidate), None)
        if fb.verdict == "proven" and self.stop_on_proof:
            self.close()
            return
        if i is not None and i in self.live:
            self.waiting.discard(i)
            try:
                self.conns[i].send(("feedback", fb))
            except (BrokenPipeError, OSError):
                self.live.discard(i)

    def stats(self) -> dict[str, Any]:
        per = list(self.stats_by_chain.values())
        costs = [s["best_cost"] for s in per if s.get("best_cost") is not None]
        lengths = [s["best_length"] for s in per if s.get("best_length") is not None]
        return {"proposals": sum(s.get("proposals", 0) for s in per), "best_cost": min(costs, default=None),
                "tests": max((s.get("tests", 0) for s in per), default=0),
                "best_length": min(lengths, default=None), "chains": len(self.procs)}

    def close(self) -> None:
        self.stopped = True
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(timeout=5)
        for c in self.conns:
            c.close()

"""The CPU as an oracle: an entry state -> what the real CPU (or qemu-user) does with it.

`run(state)` maps the state's code, regions and registers at their exact addresses in a forked
child of a small runner process (runner_<arch>.s), runs the blob there under confinement, and
returns the final registers and pages, or the signal it raised. docs/oracle.md explains it.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import host, layout, process, result
from .host import available, cpu_name
from .layout import region_pages
from .state import EntryState, Region, Run, StateError

__all__ = ["EntryState", "Region", "Run", "StateError", "available", "cpu_name", "initial_pages", "run", "run_many",
           "start"]

GRACE = {"native": 5.0, "qemu": 20.0}       # on top of the blob's time: startup and copying pages


def initial_pages(state: EntryState) -> dict[int, bytes]:
    """The bytes every page of the state's regions holds before the blob runs (compare Run.pages)."""
    return {p: bytes(b) for p, b in region_pages(state).items()}


def start(arch: str) -> None:
    """Start the runner for `arch` now, if the oracle can run it here (run_many starts it when
    needed; co-simulation starts it first, so that qemu boots while the solver is set up)."""
    how = available(arch)
    if how is not None:
        process.started(arch, how)


def run(state: EntryState, timeout: float = 5.0) -> Run:
    """Run `state` on the CPU: natively, or under qemu-user for AArch64 on another host."""
    return run_many([state], timeout)[0]


def run_many(states: Sequence[EntryState], timeout: float = 5.0) -> list[Run]:
    """Run several states (one forked child each, `timeout` seconds each), pipelined through one
    runner per architecture: what co-simulation should call."""
    runs: dict[int, Run] = {}
    for arch in dict.fromkeys(s.arch for s in states):
        group = [i for i, s in enumerate(states) if s.arch == arch]
        for i, r in zip(group, _run_arch(arch, [states[i] for i in group], timeout), strict=True):
            runs[i] = r
    return [runs[i] for i in range(len(states))]


def _run_arch(arch: str, states: list[EntryState], timeout: float) -> list[Run]:
    how = available(arch)
    if how is None:
        return [Run("none", "", error=f"no oracle for {arch} on this {host.host_arch()} machine "
                                      "(AArch64 needs qemu-aarch64: apt-get install qemu-user)")] * len(states)
    cpu = cpu_name(arch)
    avx = arch == "x86_64" and host.has_avx()
    out: list[Run | None] = [None] * len(states)
    good: list[int] = []

    def build(r: process.Runner) -> list[layout.Request]:
        reqs = []
        for i, s in enumerate(states):
            try:
                reqs.append(layout.request(s, r.base, r.landing, avx, qemu=how == "qemu",
                                           seccomp=how == "native", timeout=timeout))
                good.append(i)
            except StateError as e:
                out[i] = Run(how, cpu, error=str(e))
        return reqs
    runner, reqs, raws = process.call(arch, how, build, len(states) * timeout + GRACE[how])
    lost = {"timeout": "the runner did not answer in time and was stopped",
            "exited": "the runner exited without answering"}.get(runner.failure, "")
    for i, req, raw in zip(good, reqs, raws, strict=True):
        out[i] = Run(how, cpu, timeout=runner.failure == "timeout", error=lost) if raw is None \
            else result.decode(arch, how, cpu, avx, req, raw)
    return [r for r in out if r is not None]

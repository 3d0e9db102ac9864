"""The CPU as an oracle: an entry state -> what the real CPU (or qemu-user) does with it.

`run(state)` maps the state's code, regions and registers at their exact addresses in a forked
child of a small runner process (runner_<arch>.s), runs the blob there under confinement, and
returns the final registers and pages, or the signal it raised. docs/oracle.md explains it.
"""

from __future__ import annotations

from . import host, layout, process, result
from .host import available, cpu_name
from .layout import region_pages
from .state import EntryState, Region, Run, StateError

__all__ = ["EntryState", "Region", "Run", "StateError", "available", "cpu_name", "initial_pages", "run"]

GRACE = {"native": 5.0, "qemu": 20.0}       # on top of the blob's time: startup and copying pages


def initial_pages(state: EntryState) -> dict[int, bytes]:
    """The bytes every page of the state's regions holds before the blob runs (compare Run.pages)."""
    return {p: bytes(b) for p, b in region_pages(state).items()}


def run(state: EntryState, timeout: float = 5.0) -> Run:
    """Run `state` on the CPU: natively, or under qemu-user for AArch64 on another host."""
    how = available(state.arch)
    if how is None:
        return Run("none", "", error=f"no oracle for {state.arch} on this {host.host_arch()} machine "
                                     "(AArch64 needs qemu-aarch64: apt-get install qemu-user)")
    cpu = cpu_name(state.arch)
    avx = state.arch == "x86_64" and host.has_avx()

    def build(r: process.Runner) -> layout.Request:
        return layout.request(state, r.base, r.landing, avx, qemu=how == "qemu", seccomp=how == "native",
                              timeout=timeout)
    try:
        req, raw = process.call(state.arch, how, build, timeout + GRACE[how])
    except StateError as e:
        return Run(how, cpu, error=str(e))
    if raw is None:
        return Run(how, cpu, timeout=True, error="the runner did not answer in time and was stopped")
    return result.decode(state.arch, how, cpu, avx, req, raw)

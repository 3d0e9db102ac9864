"""Generators propose machine code; the verifier decides (DESIGN §7).

A generator is any object with this shape (see docs/generators.md):

    class MyGenerator:
        name = "mine"; version = "1.0"; description = "one line"
        def start(self, task: Task) -> None: ...
        def propose(self) -> Candidate | None: ...           # None: nothing more to offer
        def feedback(self, candidate: Candidate, fb: Feedback) -> None: ...
        def stats(self) -> dict: ...                          # optional: proposals, best cost …

Built-ins are registered here; third-party ones through the `nverify.generators`
entry-point group (the entry point names a class, or a factory, taking no arguments).
A generator is never trusted: everything it proposes goes through the full pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "nverify.generators"


@dataclass(frozen=True)
class Task:
    """What a generator is asked for: code for `spec` on `arch`."""
    spec: Any                       # verifier.spec.Spec
    arch: str
    seed: int = 0
    budget: float = 60.0            # seconds
    iterations: int | None = None   # proposals at most: a budget that does not depend on the machine
    jobs: int = 1
    source: str | None = None       # --from: a file (hand input, or the program to optimise)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Candidate:
    code: bytes
    note: str = ""                  # e.g. the assembly text, for people
    cost: float | None = None       # the generator's own estimate, lower is better


@dataclass
class Feedback:
    verdict: str                    # proven | refuted | unknown
    reason: str | None
    message: str
    counterexample: dict[str, Any] | None = None   # the result JSON's counterexample
    inputs: dict[str, int] = field(default_factory=dict)   # spec names -> values, when refuted


@runtime_checkable
class Generator(Protocol):
    name: str
    version: str
    description: str

    def start(self, task: Task) -> None: ...

    def propose(self) -> Candidate | None: ...

    def feedback(self, candidate: Candidate, fb: Feedback) -> None: ...


@dataclass(frozen=True)
class Entry:
    name: str
    origin: str                     # "built-in" or the distribution providing it
    load: Callable[[], Generator]
    error: str | None = None


def _builtins() -> dict[str, Entry]:
    from .hand import Hand
    from .llm import Llm
    from .stoke import Stoke

    return {"hand": Entry("hand", "built-in", Hand), "llm": Entry("llm", "built-in", Llm),
            "stoke": Entry("stoke", "built-in", Stoke)}


def registry() -> dict[str, Entry]:
    """Built-ins, then every installed plugin; a plugin that fails to load is listed with its error."""
    found = _builtins()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue            # built-ins cannot be shadowed by a plugin of the same name
        dist = ep.dist.name if ep.dist is not None else "?"
        try:
            factory = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break the others
            found[ep.name] = Entry(ep.name, dist, lambda: None, f"cannot load {ep.value}: {e}")  # type: ignore
            continue
        found[ep.name] = Entry(ep.name, dist, factory)
    return found


def create(name: str) -> Generator:
    from verifier.errors import UsageError

    reg = registry()
    entry = reg.get(name)
    if entry is None:
        raise UsageError(f"no generator {name!r}; installed: {', '.join(sorted(reg))} "
                         "(see 'nverify generators')")
    if entry.error:
        raise UsageError(f"generator {name!r} ({entry.origin}) {entry.error}")
    gen = entry.load()
    missing = [m for m in ("name", "version", "start", "propose", "feedback") if not hasattr(gen, m)]
    if missing:
        raise UsageError(f"generator {name!r} ({entry.origin}) is not a generator: it lacks {', '.join(missing)}")
    return gen

"""Refute fast: concrete testing of postcondition obligations before any SMT call.

An obligation's formula is satisfiable iff the blob fails (verifier/obligations.py), so a point
where it evaluates to true is a counterexample, found without a solver. Points are drawn the way
the pipeline wants counterexamples anyway (arrays in bands of their own, the stack above them,
the return address in a page of its own), with the spec's inputs random or at edge values; formulas are
compiled once to Python closures (verifier/evaluate.py) and evaluated until a point hits or the
budget is spent. A hit is then treated exactly like a solver's model: checked by Z3's evaluator
against the query, replayed on unicorn, and reported the same way. A miss concludes nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import z3

from . import names, smt
from .evaluate import NotCompilable, compile_together
from .exploration import Exploration
from .obligations import Obligation

TRIES = 256
BUDGET = 0.25            # seconds of sampling for all the obligations of one proof together
EDGES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
         0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF)


def counterexample(obs: list[Obligation], ex: Exploration, timeout: float,
                   seed: int = 0) -> tuple[Obligation, dict[str, int]] | None:
    """An obligation of `obs` and a point where it fails, confirmed by Z3's evaluator, or None
    (none found, or the formulas are not scalar). The obligations of one exploration share their
    path terms, so they are parsed and compiled together, and each point is tried on all of them."""
    t0 = time.monotonic()
    symbols: dict[str, int] = {}
    for ob in obs:
        for n, w in ob.symbols.items():
            if symbols.setdefault(n, w) != w:
                return None                  # not one exploration's: nothing shared to test with
    try:
        fs = smt.parse_asserts("".join(f"(assert {ob.formula})\n" for ob in obs), symbols)
        used: set[str] = set()
        prog = compile_together(fs, used)
    except (NotCompilable, smt.ParseError, z3.Z3Exception):
        return None
    free = {n: w for n, w in symbols.items() if n in used and w > 0}
    fixed = _placement(ex)
    rng = random.Random(seed)
    for k in range(TRIES):
        env = {n: fixed[n](rng) if n in fixed else _value(rng, w, edge=k % 3 == 1) for n, w in free.items()}
        try:
            values = prog(env)
        except (ZeroDivisionError, ValueError, OverflowError, MemoryError):
            continue
        for ob, f, value in zip(obs, fs, values, strict=True):
            if value is True:
                return (ob, env) if smt.satisfied_by(f, ob.symbols, env, timeout) else None
        if time.monotonic() - t0 > BUDGET:
            break
    return None


def _value(rng: random.Random, bits: int, edge: bool) -> int:
    return (rng.choice(EDGES) if edge else rng.getrandbits(bits)) & ((1 << bits) - 1)


def _placement(ex: Exploration):
    """Entry stack pointer, array addresses and return address as the pipeline prefers them
    (pipeline._replayable_model): a hit then replays without another solver call."""
    from .pipeline import RET_BAND, STACK_BAND, USER_LO

    band = 1 << 40
    align = 8 if ex.arch == "x86_64" else 0
    out: dict[str, Callable[[random.Random], int]] = {
        names.stack_pointer(ex.arch): lambda rng: STACK_BAND + (1 << 32) + (rng.randrange(1, 1 << 20) << 4) + align,
        names.return_address(ex.arch): lambda rng: RET_BAND[0] + 4 * rng.randrange(0x3C00)}
    for i, (_name, reg, *_rest) in enumerate(ex.arrays):
        out[names.register(reg)] = _array_base(USER_LO + i * band)
    return out


def _array_base(lo: int) -> Callable[[random.Random], int]:
    return lambda rng: lo + (rng.randrange(1, 1 << 24) << 4)

"""A path of an exploration -> concrete entry states that satisfy its condition, for co-simulation.

Each state is a solver model of (entry assumptions, pre, the path's condition) in which the
placement the oracle needs is fixed (stack, arrays and return address in bands the runner can
map) and every other input is pushed towards a value of its own: random bits, a boundary value,
or a literal that occurs in the path's terms (a model that special-cases one value shows it in
its terms, so that value is tried). The solver keeps what it can of those wishes.
"""

from __future__ import annotations

import random
import re

import z3

from .. import names, smt
from ..exploration import Exploration, PathResult
from ..obligations import _array_links
from ..spec import Spec
from .concrete import UNLOADABLE

EDGES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
         0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF)
CHECK_MS = 2000
LITERAL = re.compile(r"#x([0-9a-fA-F]+)|\(_ bv(\d+) (\d+)\)")


def states(spec: Spec, ex: Exploration, path: PathResult, count: int, seed: int,
           terms: dict[str, str]) -> list[tuple[dict[str, int], dict[str, int]]]:
    """Up to `count` models of the path (fewer if the solver cannot find them in time), each with
    the values of `terms` (SMT-LIB text, parsed once) in it."""
    links, internal = _array_links(ex)
    names = {**internal, **ex.symbols, **spec.names}
    base = smt.parse_asserts("".join(f"(assert {f})\n" for f in (*ex.assumptions, *links, spec.pre, path.pc,
                                                                 *_placement(ex))), names)
    s = z3.Solver()
    s.set("timeout", CHECK_MS)
    s.set("random_seed", seed)
    s.add(*base)
    decl = smt.declarations(names)
    keys = list(terms)
    exprs = [f.arg(0) for f in smt.parse_asserts("".join(f"(assert (= {terms[k]} {terms[k]}))\n" for k in keys),
                                                 names)] if keys else []
    free = [n for n, w in names.items() if not smt.is_array(w) and n not in _fixed(ex)]
    # Names no constraint mentions take their wish as is; only the others are the solver's business.
    bound = set().union(*(smt.free_names(f) for f in base))
    literals = _literals(path)
    rng = random.Random(seed)
    out: list[tuple[dict[str, int], dict[str, int]]] = []
    for k in range(count):
        wish = {n: _wish(rng, names[n], literals, k) for n in free}
        model = _solve(s, decl, {n: v for n, v in wish.items() if n in bound}, rng)
        if model is None:
            break
        for n in wish.keys() - bound:
            model.update_value(decl[n], z3.BitVecVal(wish[n], decl[n].size()))
        values = {k: _int(model.eval(e, model_completion=True)) for k, e in zip(keys, exprs, strict=True)}
        out.append((_values(model, decl, names), values))
    return out


def _fixed(ex: Exploration) -> set[str]:
    m = names.machine
    return {m("rsp"), m("sp"), names.RETADDR, m("x30"), *(m(a[1]) for a in ex.arrays), *ex.rodata,
            *(m(u) for u in UNLOADABLE[ex.arch]), m("cpu.daz"), m("cpu.fpcr")}


def _placement(ex: Exploration) -> list[str]:
    """Where the oracle can map things (pipeline._replayable_model's bands), and the state it loads."""
    from ..pipeline import RET_BAND, STACK_BAND, STACK_TOP, USER_LO

    def within(n: str, lo: int, hi: int) -> str:
        return f"(and (bvuge {n} #x{lo:016x}) (bvule {n} #x{hi:016x}))"
    m = names.machine
    sp, ra = names.stack_pointer(ex.arch), names.return_address(ex.arch)
    out = [within(sp, STACK_BAND + (1 << 32), STACK_TOP)]
    out += [within(ra, *RET_BAND)] if ra in ex.symbols else []
    if ex.arch == "aarch64" and ra in ex.symbols:    # the oracle maps its landing stub at an instruction
        out.append(f"(= ((_ extract 1 0) {ra}) #b00)")
    out += [within(n, lo, hi) for n, (lo, hi) in ex.rodata.items()]
    band = 1 << 40
    out += [within(m(a[1]), USER_LO + i * band, USER_LO + (i + 1) * band - (1 << 32)) for i, a in enumerate(ex.arrays)]
    out += [f"(= {m(n)} (_ bv0 {ex.symbols[m(n)]}))" for n in UNLOADABLE[ex.arch] if m(n) in ex.symbols]
    if ex.arch == "x86_64":
        # this CPU has DAZ (every SSE2 CPU since the Pentium 4)
        out += [f"(= {m('cpu.daz')} #b1)"] if m("cpu.daz") in ex.symbols else []
        if m("fpcw") in ex.symbols:        # bits 7 and 13-15 read 0, bit 6 reads 1 on the CPU
            out.append(f"(= (bvand {m('fpcw')} #xe0c0) #x0040)")
    elif m("fpcr") in ex.symbols:
        from ..isa.corrections import FPCR_CORE
        out.append(f"(= (bvand {m('fpcr')} #x{0xFFFFFFFF ^ FPCR_CORE:08x}) #x00000000)")
    return out


def _literals(path: PathResult) -> dict[int, list[int]]:
    """Bit-vector literals of the path's terms, by width: the literals themselves first (those the
    edge values do not already cover), then their neighbours."""
    exact: dict[int, list[int]] = {}
    for m in LITERAL.finditer(" ".join([path.pc, *path.outputs.values()])):
        width, value = (len(m.group(1)) * 4, int(m.group(1), 16)) if m.group(1) else (int(m.group(3)), int(m.group(2)))
        exact.setdefault(width, []).append(value)
    out: dict[int, list[int]] = {}
    for width, values in exact.items():
        mask = (1 << width) - 1
        edges = {e & mask for e in EDGES}
        first = [v for v in dict.fromkeys(values) if v not in edges]
        near = [n for v in first for n in ((v + 1) & mask, (v - 1) & mask)]
        out[width] = list(dict.fromkeys(first + near)) or sorted(set(values))
    return out


def _wish(rng: random.Random, width: int, literals: dict[int, list[int]], k: int) -> int:
    pool = literals.get(width, [])
    if k % 3 == 1 and pool:
        return pool[(k // 3) % len(pool)]
    if k % 3 == 2:
        return rng.choice(EDGES) & ((1 << width) - 1)
    return rng.getrandbits(width)


def _solve(s: z3.Solver, decl: dict, wish: dict[str, int], rng: random.Random) -> z3.ModelRef | None:
    """A model keeping the wishes the solver allows: each is an assumption literal, and those in an
    unsat core are dropped until the rest are satisfiable (or none are left)."""
    s.push()
    lits = {}
    for i, n in enumerate(wish):
        lits[f"wish.{i}"] = z3.Bool(f"wish.{i}")
        s.add(z3.Implies(lits[f"wish.{i}"], decl[n] == z3.BitVecVal(wish[n], decl[n].size())))
    try:
        for _ in range(8):
            r = s.check(*lits.values())
            if r == z3.sat:
                return s.model()
            if r != z3.unsat or not lits:
                break
            core = {c.decl().name() for c in s.unsat_core()}
            lits = {k: v for k, v in lits.items() if k not in core}
        return s.model() if s.check() == z3.sat else None
    finally:
        s.pop()


def _values(model: z3.ModelRef, decl: dict, names: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, w in names.items():
        if not smt.is_array(w):
            out[n] = model.eval(decl[n], model_completion=True).as_long()
    return out


def _int(v: z3.ExprRef) -> int:
    return int(z3.is_true(v)) if z3.is_bool(v) else v.as_long()

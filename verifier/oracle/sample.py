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
from collections.abc import Sequence

import z3

from .. import names, smt
from ..evaluate import Fn, NotCompilable, compile_terms
from ..exploration import Exploration, PathResult
from ..obligations import _array_links
from ..spec import Spec
from .concrete import UNLOADABLE

EDGES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
         0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF)
CHECK_MS = 2000
LITERAL = re.compile(r"#x([0-9a-fA-F]+)|\(_ bv(\d+) (\d+)\)")
SYMBOL = re.compile(r"\|([^|]*)\||([^\s()|]+)")


class Sampler:
    """Entry states for the paths of one exploration. Everything the paths share is done once: the
    names are declared and every formula and term is parsed in one call, and one solver holds the
    entry assumptions, pre and the placement, with each path's condition behind a literal of its
    own that a check assumes."""

    def __init__(self, spec: Spec, ex: Exploration, paths: Sequence[PathResult],
                 terms: Sequence[dict[str, str]], seed: int) -> None:
        links, internal = _array_links(ex)
        self.names = {**internal, **ex.symbols, **spec.names}
        common = (*ex.assumptions, *links, spec.pre, *_placement(ex))
        keys = [list(t) for t in terms]
        text = "".join(f"(assert {f})\n" for f in (*common, *(p.pc for p in paths)))
        text += "".join(f"(assert (= {t[k]} {t[k]}))\n" for t in terms for k in t)
        parsed = smt.parse_asserts(text, self.names)
        self.decl = smt.declarations(self.names)
        self.solver = z3.Solver()
        self.solver.set("timeout", CHECK_MS)
        self.solver.set("random_seed", seed)
        self.solver.set("smt.relevancy", 0)        # about a tenth less a check; a model still satisfies all
        self.solver.add(*parsed[:len(common)])
        self.unary = _unary(parsed[:len(common)])
        self.lits = [z3.Bool(f"path.{i}") for i in range(len(paths))]
        for lit, pc in zip(self.lits, parsed[len(common):len(common) + len(paths)], strict=True):
            self.solver.add(z3.Implies(lit, pc))
        flat = iter(f.arg(0) for f in parsed[len(common) + len(paths):])
        self.terms = [[(k, next(flat)) for k in ks] for ks in keys]
        self.paths = list(paths)
        shared = _mentioned(" ".join(common), self.names)
        # Names no constraint or term mentions take their wish as is; the others are the solver's
        # business. Mentioned is read off the text: a name that only looks mentioned costs an
        # assumption, never a state off the path.
        self.bound = [shared | _mentioned(" ".join([p.pc, *t.values()]), self.names)
                      for p, t in zip(paths, terms, strict=True)]
        self.scalars = [n for n, w in self.names.items() if not smt.is_array(w)]
        self.free = [n for n in self.scalars if n not in _fixed(ex)]

    def states(self, i: int, count: int, seed: int) -> list[tuple[dict[str, int], dict[str, int]]]:
        """Up to `count` models of path `i` (fewer if the solver cannot find them in time), each with
        the values of the path's terms in it."""
        path, bound = self.paths[i], self.bound[i]
        literals = _literals(path)
        rng = random.Random(seed)
        out: list[tuple[dict[str, int], dict[str, int]]] = []
        for k in range(count):
            wish = {n: _wish(rng, self.names[n], literals, k) for n in self.free}
            model = self._solve(i, {n: v for n, v in wish.items() if n in bound and self._allowed(n, v)})
            if model is None:
                break
            values = self._read(model, [n for n in self.scalars if n not in wish or n in bound])
            values.update((n, v) for n, v in wish.items() if n not in bound)
            out.append((values, {k: _int(model.eval(e, model_completion=True)) for k, e in self.terms[i]}))
        return out

    def _read(self, model: z3.ModelRef, names: list[str]) -> dict[str, int]:
        """The model's values of `names` (0 where it leaves one open), read in one evaluation of their
        concatenation."""
        if not names:
            return {}
        whole = model.eval(z3.Concat(*(self.decl[n] for n in names)) if len(names) > 1 else self.decl[names[0]],
                           model_completion=True).as_long()
        out = {}
        for n in reversed(names):
            out[n] = whole & ((1 << self.names[n]) - 1)
            whole >>= self.names[n]
        return out

    def _allowed(self, name: str, value: int) -> bool:
        """False if a constraint on `name` alone rules `value` out (mxcsr's reserved bits, say): the
        solver would drop that wish anyway, at the price of a check."""
        return all(f({name: value}) for f in self.unary.get(name, ()))

    def _solve(self, i: int, wish: dict[str, int]) -> z3.ModelRef | None:
        """A model of path `i` keeping the wishes the solver allows: each is an assumption, and those
        in an unsat core are dropped until the rest are satisfiable (or none are left)."""
        s = self.solver
        eqs = {}
        for n, v in wish.items():
            eq = _equal(self.decl[n], v)
            eqs[eq.get_id()] = eq
        for _ in range(8):
            r = s.check(self.lits[i], *eqs.values())
            if r == z3.sat:
                return s.model()
            if r != z3.unsat or not eqs:
                break
            for c in s.unsat_core():
                eqs.pop(c.get_id(), None)
        return s.model() if s.check(self.lits[i]) == z3.sat else None


def _equal(x: z3.BitVecRef, v: int) -> z3.BoolRef:
    """x = v, built through the C API (z3's `==` coerces and checks both sides in several Python
    calls: about a tenth of sampling's time on sort5)."""
    ctx = x.ctx
    num = z3.Z3_mk_numeral(ctx.ref(), str(v), z3.Z3_get_sort(ctx.ref(), x.as_ast()))
    return z3.BoolRef(z3.Z3_mk_eq(ctx.ref(), x.as_ast(), num), ctx)


def _unary(fs: list[z3.BoolRef]) -> dict[str, list[Fn]]:
    """The conjuncts of `fs` that read one name, compiled, by that name (those the evaluator does
    not model are left to the solver)."""
    out: dict[str, list[Fn]] = {}
    for f in fs:
        for c in smt.conjuncts(f):
            read: set[str] = set()
            try:
                fn = compile_terms([c], read)[0]
            except NotCompilable:
                continue
            if len(read) == 1:
                out.setdefault(read.pop(), []).append(fn)
    return out


def _mentioned(text: str, names: dict[str, int]) -> set[str]:
    """The declared names among the symbols of SMT-LIB `text` (|quoted| or not)."""
    return {m.group(1) if m.group(1) is not None else m.group(2) for m in SYMBOL.finditer(text)} & names.keys()


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


def _int(v: z3.ExprRef) -> int:
    return int(z3.is_true(v)) if z3.is_bool(v) else v.as_long()

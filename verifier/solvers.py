"""The SMT solvers nverify can race, behind one interface: SMT-LIB text in, a verdict and a model out.

Every backend gets the same query text (declarations + one assert, QF_BV or with quantifiers) and
answers `unsat` (the obligation holds), `sat` with a model (it fails), or `unknown` with why.
Z3 is always there (angr needs it); Bitwuzla and cvc5 are dependencies too, and skipped if missing.

Trust: a PROVEN obligation rests on the one solver that answered `unsat` first; the report and the
result JSON name it. A `sat` answer is never trusted on its own: the model is checked against the
query by Z3's evaluator here, and later replayed on unicorn by the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SEED = 0


@dataclass(frozen=True)
class Answer:
    result: str                    # sat | unsat | unknown
    model: dict[str, int] | None   # for sat: every declared name's value
    detail: str = ""               # for unknown: timeout, or the solver's reason


def _logic(text: str) -> str:
    quantified = "forall" in text or "exists" in text
    arrays = "(Array " in text
    return ("" if quantified else "QF_") + ("A" if arrays else "") + "BV"


def _z3(text: str, names: dict[str, int], timeout: float) -> Answer:
    import z3

    s = z3.SolverFor("QF_BV") if _logic(text) == "QF_BV" else z3.Solver()
    s.set("timeout", max(1, int(timeout * 1000)))
    s.set("random_seed", SEED)
    s.from_string(text)
    r = s.check()
    if r == z3.unsat:
        return Answer("unsat", None)
    if r == z3.sat:
        m = s.model()
        return Answer("sat", {d.name(): m[d].as_long() for d in m.decls() if z3.is_bv_value(m[d])})
    why = s.reason_unknown()
    return Answer("unknown", None, "timeout" if ("timeout" in why or "canceled" in why) else why)


def _bitwuzla(text: str, names: dict[str, int], timeout: float) -> Answer:
    import bitwuzla as bw

    tm = bw.TermManager()
    opts = bw.Options()
    opts.set(bw.Option.PRODUCE_MODELS, True)
    opts.set(bw.Option.SEED, SEED)
    opts.set(bw.Option.TIME_LIMIT_PER, max(1, int(timeout * 1000)))
    parser = bw.Parser(tm, opts)
    parser.parse(text, True, False)
    solver = parser.bitwuzla()
    r = solver.check_sat()
    if r == bw.Result.UNSAT:
        return Answer("unsat", None)
    if r == bw.Result.SAT:
        model = {}
        for t in parser.get_declared_funs():
            if t.sort().is_bv():
                model[t.symbol().strip("|")] = int(solver.get_value(t).value(10))
        return Answer("sat", model)
    return Answer("unknown", None, "timeout")


def _cvc5(text: str, names: dict[str, int], timeout: float) -> Answer:
    import cvc5

    tm = cvc5.TermManager()
    s = cvc5.Solver(tm)
    s.setOption("produce-models", "true")
    s.setOption("seed", str(SEED))
    s.setOption("tlimit-per", str(max(1, int(timeout * 1000))))
    sm = cvc5.SymbolManager(tm)
    p = cvc5.InputParser(s, sm)
    logic = _logic(text)
    p.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, f"(set-logic {'ALL' if logic == 'BV' else logic})\n" + text,
                     "obligation")
    while True:
        cmd = p.nextCommand()
        if cmd.isNull():
            break
        cmd.invoke(s, sm)
    r = s.checkSat()
    if r.isUnsat():
        return Answer("unsat", None)
    if r.isSat():
        model = {}
        for t in sm.getDeclaredTerms():
            if t.getSort().isBitVector():
                model[t.getSymbol().strip("|")] = int(s.getValue(t).getBitVectorValue(10))
        return Answer("sat", model)
    why = str(r.getUnknownExplanation())
    return Answer("unknown", None, "timeout" if "TIMEOUT" in why.upper() or "RESOURCE" in why.upper() else why)


def _z3_version() -> str | None:
    import z3
    return z3.get_version_string()


def _dist_version(dist: str) -> Callable[[], str | None]:
    def version() -> str | None:
        from importlib import metadata, util
        if util.find_spec(dist) is None:
            return None
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"
    return version


@dataclass(frozen=True)
class Backend:
    name: str
    module: str                                      # what to pip install
    run: Callable[[str, dict[str, int], float], Answer]
    version: Callable[[], str | None]                # None when not installed


# Order is priority: each obligation is handed to the backends in this order while fewer than
# --jobs solver processes run (solve.solve_all). No backend wins everywhere (docs/benchmarks.md);
# Bitwuzla and Z3, first, are the pair that covers the library best on 2 cores.
BACKENDS = {
    "bitwuzla": Backend("bitwuzla", "bitwuzla", _bitwuzla, _dist_version("bitwuzla")),
    "z3": Backend("z3", "z3-solver", _z3, _z3_version),
    "cvc5": Backend("cvc5", "cvc5", _cvc5, _dist_version("cvc5")),
}


def available(wanted: list[str] | None = None) -> list[Backend]:
    """The installed backends among `wanted` (default: all), in priority order."""
    out = []
    for name in wanted or list(BACKENDS):
        b = BACKENDS[name]
        if b.version() is not None:
            out.append(b)
    return out

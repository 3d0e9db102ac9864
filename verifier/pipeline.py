"""The library entry point: `prove(blob, spec) -> Result`, the whole of DESIGN §2 in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import blob as blob_mod
from . import names, smt
from . import obligations as ob_mod
from . import spec as spec_mod
from .arch import Abi, select_abi
from .blob import Blob
from .describe import machine_model
from .errors import UsageError
from .exploration import Exploration
from .obligations import Obligation
from .solve import DEFAULT_TIMEOUT, Cache, Outcome, solve_all, solve_one
from .solvers import available
from .spec import Spec
from .verdict import REFUTING, ObligationRow, Result, Verdict

USER_LO, USER_HI = 0x10000, 0x7FFF_0000_0000
STACK_BAND = 0x4000_0000_0000   # counterexample stacks live above this, arrays below
STACK_TOP = 0x6000_0000_0000    # ... and below this, away from the oracle's own stack, vDSO and libraries
# The return address: in the unused top of the last array band, below the oracle's runner window
# (docs/oracle.md) and above mmap_min_addr, so the CPU oracle can map its landing stub there.
RET_BAND = (0x3EFF_1000_0000, 0x3EFF_1000_F000)


@dataclass(frozen=True)
class Options:
    arch: str | None = None
    base: int | None = None
    symbol: str | None = None
    jobs: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    replay: bool = True
    ref: str | None = None
    solvers: tuple[str, ...] | None = None   # portfolio, in priority order; None = every installed one
    abi: str | None = None                   # None: the file format's ABI, else the ISA's default
    merge_threshold: int | None = None       # None: symexec.MERGE_THRESHOLD (live paths before merging)
    refute_fast: bool = True                 # concrete testing of postconditions before SMT
    cache: str | None = None                 # directory of proven obligations (solve.Cache); None: off
    cosim: int | None = None                 # entry states co-simulated on the CPU per PROVEN (None: default)
    max_paths: int | None = None             # None: symexec.MAX_PATHS (paths per exploration)


Progress = Callable[[str, dict], None]


def prove(blob_path: str, spec_name: str, options: Options = Options(),
          progress: Progress | None = None) -> Result:
    t0 = time.monotonic()
    say = progress or (lambda stage, info: None)
    spec = spec_mod.load(spec_name, need_post=options.ref is None)
    blob = blob_mod.load(blob_path, arch=options.arch, base=options.base, symbol=options.symbol,
                         default_symbol=spec.signature.name)
    ref_blob = None
    if options.ref is not None:
        ref_blob = blob_mod.load(options.ref, arch=options.arch or blob.arch, base=options.base,
                                 symbol=options.symbol, default_symbol=spec.signature.name)
        if ref_blob.arch != blob.arch:
            raise UsageError(f"--ref {options.ref} is {ref_blob.arch} but {blob_path} is {blob.arch}: "
                             "compare blobs of one ISA")
    abi = select_abi(blob.arch, blob.fmt, options.abi)
    try:
        result = _verify(blob, spec, abi, options, say, ref_blob)
    except RecursionError:
        result = _too_deep(blob, spec, abi, options, ref_blob)
    result.seconds = time.monotonic() - t0
    result.code, result.spec_text = blob.code, spec.text
    # and where the code must lie: a proof that treats the code's address as `$code` assumes it
    # lies as its section does, `offset` bytes past an `align` boundary (entry._code_base)
    result.unit = (blob.rodata, blob.fixups, blob.entry - blob.base, blob.place, blob.span, blob.parts)
    return result


def _verify(blob: Blob, spec: Spec, abi: Abi, options: Options, say: Progress,
            ref_blob: Blob | None) -> Result:
    say("explore", {})
    from . import symexec  # angr is imported only when a proof is actually run

    kw = {} if options.merge_threshold is None else {"merge_threshold": options.merge_threshold}
    if options.max_paths is not None:
        kw["max_paths"] = options.max_paths
    ex = symexec.explore(blob, spec, abi, progress=lambda n, w: say("paths", {"done": n, "queued": w}), **kw)
    ref = symexec.explore(ref_blob, spec, abi, **kw) if ref_blob is not None else None
    obs = ob_mod.build(spec, ex, ref)
    say("solve", {"total": len(obs)})
    # A concrete refutation settles every postcondition conjunct, so the rewrites are not tried then.
    done = refute_fast(ex, obs, options) or lemmas(spec, ex, obs, options)
    for o in done.values():
        say("solved", {"name": o.name, "result": o.result})
    rest = [ob for ob in obs if ob.name not in done]
    solved = solve_all(rest, jobs=options.jobs, timeout=options.timeout, solvers=_solvers(options),
                       on_done=lambda o: say("solved", {"name": o.name, "result": o.result}),
                       cache=Cache(options.cache) if options.cache else None)
    by_name = {**done, **{o.name: o for o in solved}}
    outcomes = [by_name[ob.name] for ob in obs]
    return decide(blob, spec, abi, ex, obs, outcomes, options, ref_blob, ref)


def _too_deep(blob: Blob, spec: Spec, abi: Abi, options: Options, ref_blob: Blob | None) -> Result:
    """UNKNOWN for formulas nested deeper than some step can take (Python's recursion limit). The
    evaluators walk terms without recursion; this is the net under every other step."""
    res = _result(blob, spec, abi, options, ref_blob, [], 0)
    res.verdict, res.reason = Verdict.UNKNOWN, "solver-unknown"
    res.message = ("the formulas of this blob are nested too deeply to process (a long loop builds "
                   "terms thousands of operators deep); lower the loop bound or shorten the loop")
    return res


LEMMA_TIMEOUT = 10.0
CONCRETE = "concrete testing"   # the `solver` of an obligation refuted by verifier/refute.py


def lemmas(spec: Spec, ex: Exploration, obs: list[Obligation], options: Options) -> dict[str, Outcome]:
    """Obligations proven by a rewrite (verifier/rewrite.py: the permutation lemma, products of
    halves): the rewritten query is discharged by the solvers here, and only an unsat answer is
    used; anything else leaves the obligation to the portfolio, unchanged."""
    from . import rewrite

    out: dict[str, Outcome] = {}
    fact1: dict[str, bool] = {}
    for ob in obs:
        t0 = time.monotonic()
        try:
            lemma = rewrite.permutation_obligations(spec, ex, ob, fact1)
            query, how = (lemma[0], f"permutation lemma on {lemma[1]}") if lemma else \
                (rewrite.products_of_halves(spec, ob), "products split into 16-bit halves")
        except Exception:  # noqa: BLE001 - a term the rewriter cannot read: the solvers get it as is
            query = None
        if query is None:
            continue
        got = solve_one(query, min(options.timeout, LEMMA_TIMEOUT), solvers=_solvers(options))
        if got.result == "proven":
            out[ob.name] = Outcome(ob.name, ob.kind, "proven", got.solver, time.monotonic() - t0, None, how)
    return out


def refute_fast(ex: Exploration, obs: list[Obligation], options: Options) -> dict[str, Outcome]:
    """Postcondition obligations tried on concrete points first (verifier/refute.py). A point
    that Z3's evaluator confirms is a counterexample like a solver's; the other postcondition
    conjuncts are then not needed for the verdict and are left unchecked (every other kind of
    obligation is still solved: those outrank a postcondition failure)."""
    from . import refute

    if not options.refute_fast:
        return {}
    posts = [ob for ob in obs if ob.kind == "postcondition" and not ob.name.startswith("equiv:")]
    t0 = time.monotonic()
    hit = refute.counterexample(posts, ex, options.timeout) if posts else None
    if hit is None:
        return {}
    ob, model = hit
    out = {ob.name: Outcome(ob.name, ob.kind, "refuted", CONCRETE, time.monotonic() - t0, model)}
    for other in posts:
        if other.name != ob.name:
            out[other.name] = Outcome(other.name, other.kind, "unknown", "-", 0.0, None,
                                      f"not checked: {ob.name} is refuted")
    return out


def decide(blob: Blob, spec: Spec, abi: Abi, ex: Exploration, obs: list[Obligation],
           outcomes: list[Outcome], options: Options, ref_blob: Blob | None = None,
           ref: Exploration | None = None) -> Result:
    rows = [ObligationRow(o.name, o.kind, o.result if o.kind in REFUTING else _unknown_row(o),
                          o.solver, o.seconds, o.detail) for o in outcomes]
    res = _result(blob, spec, abi, options, ref_blob, rows, len(ex.paths))
    by_name = {o.name: o for o in obs}
    refuted = sorted((o for o in outcomes if o.result == "refuted" and o.kind in REFUTING),
                     key=lambda o: REFUTING.index(o.kind))
    mismatch: str | None = None
    for out in refuted:
        ob = by_name[out.name]
        model = (out.model or {}) if out.solver == CONCRETE else \
            _replayable_model(ob, out, ex, options.timeout, _solvers(options))
        cex, confirmed, why = _confirm(blob, spec, abi, ex, ob, model, options, ref_blob, ref)
        if confirmed:
            res.verdict, res.reason, res.message = Verdict.REFUTED, ob.kind, ob.message
            res.counterexample = cex
            res.trace = list(ex.paths[_path_for(ob, ex, model)].trace) if ob.paths else []
            return res
        mismatch = mismatch or why
        res.counterexample = res.counterexample or cex
    if mismatch is not None:
        res.verdict, res.reason, res.message = Verdict.UNKNOWN, "lifter-mismatch", mismatch
        return res
    unknown = [o for o in outcomes if o.result == "unknown" or (o.kind not in REFUTING and o.result == "refuted")]
    if unknown:
        o = unknown[0]
        ob = by_name[o.name]
        if o.result == "unknown":
            reason = "timeout" if o.detail == "timeout" else "solver-unknown"
            res.verdict, res.reason = Verdict.UNKNOWN, reason
            res.message = f"{o.name}: the solver could not decide ({o.detail})"
        else:
            res.verdict, res.reason, res.message = Verdict.UNKNOWN, o.kind, ob.message
            res.counterexample = {"inputs": _inputs(spec, ex, o.model or {}), "note": "an input that reaches it"}
        return res
    # Reference mode compares against the reference's paths: a reference explored only in part
    # leaves entry states with nothing to compare to, so either exploration stopping early is UNKNOWN.
    for which, e in (("", ex), ("the reference's ", ref)):
        if e is not None and e.truncated:
            res.verdict, res.reason = Verdict.UNKNOWN, "timeout"
            res.message = f"more than {len(e.paths)} paths: {which}exploration stopped before covering them all"
            return res
    if not any(p.status == "returned" for p in ex.paths):
        res.verdict, res.reason = Verdict.UNKNOWN, "loop-bound"
        res.message = "no path returns"
        return res
    if not _cosimulated(blob, spec, abi, ex, options, res):
        return res
    res.message = (f"{spec.signature.name} meets its spec on every entry state allowed by pre "
                   f"({len(ex.paths)} paths, {len(obs)} obligations)")
    return res


def _cosimulated(blob: Blob, spec: Spec, abi: Abi, ex: Exploration, options: Options, res: Result) -> bool:
    """Co-simulate a would-be PROVEN on the CPU oracle (verifier/oracle/cosim.py); a difference between
    the CPU and the symbolic model makes it UNKNOWN(lifter-mismatch)."""
    from .oracle import cosim

    total = cosim.DEFAULT_STATES if options.cosim is None else options.cosim
    res.cosim = cosim.cosimulate(blob, abi, spec, ex, total) if total > 0 else \
        {"oracle": "none", "cpu": "", "states": 0, "mismatches": 0, "note": "--cosim 0: not co-simulated"}
    if res.cosim.get("mismatches"):
        res.verdict, res.reason = Verdict.UNKNOWN, "lifter-mismatch"
        res.message = "co-simulation on the CPU disagrees with the symbolic model: " + res.cosim["mismatch"]
        return False
    if total > 0 and res.cosim.get("available") and not res.cosim.get("states"):
        # The oracle is here but confirmed nothing: a PROVEN must not pass as co-simulated.
        res.verdict, res.reason = Verdict.UNKNOWN, "lifter-mismatch"
        res.message = ("co-simulation ran no entry state on the CPU oracle, so the symbolic model is "
                       f"unconfirmed: {res.cosim.get('setup_failed', 'no state could be set up')}")
        return False
    return True


def _result(blob: Blob, spec: Spec, abi: Abi, options: Options, ref_blob: Blob | None,
            rows: list[ObligationRow], paths: int) -> Result:
    """The result with everything but its verdict, which is PROVEN until the caller finds otherwise."""
    res = Result(verdict=Verdict.PROVEN, reason=None, message="", blob=_blob_info(blob),
                 spec={"sha256": spec.sha256, "path": spec.path, "function": spec.signature.name,
                       "text": spec.text},
                 abi=abi.name, obligations=rows, seconds=0.0, paths=paths,
                 options={"timeout": options.timeout, "loop_bound": spec.loop_bound,
                          "solvers": {b.name: b.version() for b in available(_solvers(options))}})
    res.model = machine_model(spec, abi, blob.arch)
    if ref_blob is not None:
        res.options["ref"] = {"path": ref_blob.source, "sha256": ref_blob.sha256}
    return res


def _unknown_row(o: Outcome) -> str:
    return "unknown" if o.result == "refuted" else ("proven" if o.result == "proven" else "unknown")


def _blob_info(blob: Blob) -> dict:
    info = {"sha256": blob.sha256, "arch": blob.arch, "size": blob.size, "path": blob.source,
            "base": hex(blob.base), "format": blob.fmt, "code": blob.code.hex()}
    if blob.name:
        info["symbol"] = blob.name
    info.update(blob.extent())
    if blob.rodata:      # the read-only data of the unit; `sha256` above covers it and its links
        import hashlib

        info["rodata"] = [{"section": r.name, "size": len(r.data), "sha256": hashlib.sha256(r.data).hexdigest()}
                          for r in blob.rodata]
    return info


def _solvers(options: Options) -> list[str] | None:
    return list(options.solvers) if options.solvers else None


def _replayable_model(ob: Obligation, out: Outcome, ex: Exploration, timeout: float,
                      solvers: list[str] | None) -> dict[str, int]:
    """Prefer a counterexample unicorn can map and judge as the symbolic model does: canonical
    user-space addresses, each array in a band of its own and the stack above all of them (so that
    an access the model places by its base — an overflow of one array, a write to the caller's
    stack — does not land in another region by coincidence, which replay would rightly allow), and
    a return address in a low page that holds no code. Preferences are dropped one tier at a time
    when the failure needs other values (a pointer-keyed trigger)."""
    sp, ra = names.stack_pointer(ex.arch), names.return_address(ex.arch)
    band = 1 << 40
    arrays = [(names.register(reg), USER_LO + i * band, USER_LO + (i + 1) * band - (1 << 32))
              for i, (_name, reg, *_) in enumerate(ex.arrays[:STACK_BAND // band - 1])]
    rodata = [(n, lo, hi) for n, (lo, hi) in ex.rodata.items()]
    tiers = [arrays + rodata, [(sp, STACK_BAND + (1 << 32), STACK_TOP)], [(ra, *RET_BAND)]]
    for drop in range(len(tiers)):
        ranges = [r for tier in tiers[drop:] for r in tier]
        parts = [f"(bvuge {n} #x{lo:016x}) (bvule {n} #x{hi:016x})" for n, lo, hi in ranges
                 if n in ob.symbols]
        if not parts:
            break
        again = solve_one(ob, timeout, extra="(and " + " ".join(parts) + ")", solvers=solvers)
        if again.model is not None:
            return again.model
    return out.model or {}


def _path_for(ob: Obligation, ex: Exploration, model: dict[str, int]) -> int:
    symbols = ex.symbols
    for i in ob.paths:
        try:
            if smt.evaluate(ex.paths[i].pc, symbols, model) if i < len(ex.paths) else False:
                return i
        except ValueError:
            continue
    return ob.paths[0] if ob.paths and ob.paths[0] < len(ex.paths) else 0


def _inputs(spec: Spec, ex: Exploration, model: dict[str, int]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for p in spec.signature.params:
        if p.is_variable:   # T p[n]: the n elements that exist, as p[0] …
            for i in range(_count(spec, p.name, model)):
                inputs[f"{p.name}[{i}]"] = hex(model.get(f"{p.name}.{i}", 0))
            continue
        for n in p.entry_names():
            inputs[n] = hex(model.get(n, 0))
    # Machine symbols ($…, verifier/names.py) are shown under the names users know: a register's
    # entry value under the register's name, a stack byte as [rsp+8], the return address as [rsp].
    symbols = {**ex.symbols, **spec.names}
    shown = {n for n in model if names.is_machine(n)}
    for reg, term in ex.entry_registers.items():
        if smt.free_names_text(term, symbols) & shown or reg in {a[1] for a in ex.arrays} or reg in ("rsp", "sp"):
            inputs[reg] = hex(smt.evaluate(term, symbols, model))
    sp = "rsp" if ex.arch == "x86_64" else "sp"
    for n in sorted(shown, key=lambda n: names.stack_offset(n) or 0):
        off = names.stack_offset(n)
        if off is not None:
            inputs[f"[{sp}{off:+d}]"] = hex(model[n])
    if names.RETADDR in model:
        inputs["[rsp]"] = hex(model[names.RETADDR])
    return inputs


def _existing(spec: Spec, model: dict[str, int], outputs: dict[str, int]) -> dict[str, int]:
    """The outputs that exist on this input: a T p[n] has n elements, the rest are not its memory
    (the CPU oracle maps only those; unicorn maps them all)."""
    def exists(name: str) -> bool:
        parts = name.split(".")
        if len(parts) == 3 and parts[0] in spec.lengths and parts[1].isdigit():
            return int(parts[1]) < _count(spec, parts[0], model)
        return True
    return {k: v for k, v in outputs.items() if exists(k)}


def _count(spec: Spec, array: str, model: dict[str, int]) -> int:
    p = spec.signature.param(array)
    n = model.get(str(p.length), 0) if p is not None else 0
    return min(n, spec.lengths.get(array, 0))


def _spec_values(spec: Spec, model: dict[str, int], outputs: dict[str, int]) -> dict:
    """Values of the spec's names: scalars and fixed-array elements from the model and the outputs;
    a T p[n]'s `p` and `p.out` as {index: element} over the elements that were modelled."""
    values: dict = {**{n: model.get(n, 0) for n in spec.names}, **outputs}
    for array, largest in spec.lengths.items():
        values[array] = {i: model.get(f"{array}.{i}", 0) for i in range(largest)}
        values[f"{array}.out"] = {i: outputs.get(f"{array}.{i}.out", model.get(f"{array}.{i}", 0))
                                  for i in range(largest)}
    return values


def _confirm(blob: Blob, spec: Spec, abi: Abi, ex: Exploration, ob: Obligation, model: dict[str, int],
             options: Options, ref_blob: Blob | None = None,
             ref: Exploration | None = None) -> tuple[dict, bool, str]:
    from .oracle import cosim

    cex: dict = {"inputs": _inputs(spec, ex, model)}
    path = ex.paths[_path_for(ob, ex, model)] if ex.paths else None
    symbols = {**ex.symbols, **spec.names}
    predicted: dict[str, int] = {}
    if path is not None and ob.kind == "postcondition":
        predicted = {k: smt.evaluate(t, symbols, model) for k, t in path.outputs.items()}
        cex["expected"] = {"violates": " ".join((ob.conjunct or "").split())}
    if ref is not None and ref_blob is not None and ob.name.startswith("equiv:"):
        return _confirm_equivalence(blob, spec, abi, ex, ob, model, ref_blob, ref, cex, predicted)
    if not options.replay:
        cex["replayed"] = False
        cex["actual"] = {k: hex(v) for k, v in predicted.items()}
        return cex, True, ""
    r = cosim.replay(blob, abi, ex, model, spec.loop_bound, spec.names, ob.kind)
    cex["oracle"] = r.oracle
    if r.error:
        cex["replayed"] = False
        cex["replay"] = r.error
        cex["actual"] = {k: hex(v) for k, v in predicted.items()}
        return cex, True, ""
    cex["replayed"] = True
    if ob.kind == "postcondition":
        predicted = _existing(spec, model, predicted)
        actual = {k: v for k, v in _replayed_outputs(spec, r).items() if k in predicted}
        cex["actual"] = {k: hex(v) for k, v in actual.items()}
        if not r.returned or r.events:
            return cex, False, _mismatch("the emulator did not return normally", r, predicted)
        if actual != predicted:
            cex["symbolic"] = {k: hex(v) for k, v in predicted.items()}
            return cex, False, _mismatch("the emulator's outputs differ from the symbolic model's", r, predicted)
        if smt.evaluate(ob.conjunct or "true", spec.names, _spec_values(spec, model, actual)):
            return cex, False, "lifter-mismatch: the replayed outputs satisfy the postcondition"
        return cex, True, ""
    if ob.kind == "frame":
        bad = _frame_breaks(r, abi, blob, ex, model, symbols)
        cex["replay"] = bad or "no frame violation seen"
        return cex, bool(bad), "" if bad else _mismatch("the emulator saw no frame violation", r, {})
    seen = [e for e in r.events if e[0] == ob.kind]
    cex["replay"] = seen[0][2] if seen else (r.events[0][2] if r.events else "returned normally")
    if seen:
        return cex, True, ""
    return cex, False, _mismatch(f"the emulator saw no {ob.kind} violation", r, {})


def _confirm_equivalence(blob, spec, abi, ex, ob, model, ref_blob, ref, cex, predicted):
    """Both blobs are replayed: the difference must show on the oracle, on both sides."""
    from .oracle import cosim

    symbols = {**ex.symbols, **ref.symbols, **spec.names}
    rpath = next((q for q in ref.paths if q.status == "returned" and smt.evaluate(q.pc, symbols, model)), None)
    expected = {k: smt.evaluate(t, symbols, model) for k, t in rpath.outputs.items()} if rpath else {}
    cex["expected"] = {k: hex(v) for k, v in expected.items()}
    mine = cosim.replay(blob, abi, ex, model, spec.loop_bound, spec.names, "postcondition")
    theirs = cosim.replay(ref_blob, abi, ref, model, spec.loop_bound, spec.names, "postcondition")
    cex["oracle"] = mine.oracle
    if mine.error or theirs.error:
        cex["replayed"] = False
        cex["actual"] = {k: hex(v) for k, v in predicted.items()}
        return cex, True, ""
    cex["replayed"] = True
    predicted, expected = _existing(spec, model, predicted), _existing(spec, model, expected)
    actual = {k: v for k, v in _replayed_outputs(spec, mine).items() if k in predicted}
    ref_actual = {k: v for k, v in _replayed_outputs(spec, theirs).items() if k in expected}
    cex["actual"] = {k: hex(v) for k, v in actual.items()}
    name = ob.name.split(":", 1)[1]
    if not (mine.returned and theirs.returned) or actual != predicted or ref_actual != expected:
        side = mine if not mine.returned or actual != predicted else theirs
        return cex, False, _mismatch("the emulator disagrees with the symbolic model of one of the blobs", side, {})
    if actual.get(name) == ref_actual.get(name):
        return cex, False, "lifter-mismatch: on the emulator both blobs produce the same " + name
    return cex, True, ""


def _replayed_outputs(spec: Spec, r) -> dict[str, int]:
    """The replay's outputs by spec name; `ret` is the low bits of the return register."""
    got = {k: v for k, v in r.outputs.items() if k != "$ret"}
    if spec.signature.ret is not None:
        got["ret"] = r.outputs["$ret"] & ((1 << spec.signature.ret.bits) - 1)
    return got


def _frame_breaks(r, abi: Abi, blob: Blob, ex: Exploration, model, symbols) -> str:
    if any(k == "frame" for k, _, _ in r.events):
        return next(m for k, _, m in r.events if k == "frame")
    if not r.returned:
        return ""
    from .oracle.cosim import frame_breaks

    return frame_breaks(r, abi)


def _mismatch(what: str, r, predicted: dict) -> str:
    ev = "; ".join(m for _, _, m in r.events) or "no events"
    return f"{what} (replay: {ev})"

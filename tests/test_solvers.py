"""The solver portfolio: every backend answers the same SMT-LIB the same way, and the race is robust
to solvers that hang, crash or lie (a `sat` whose model does not satisfy the query)."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier import solvers
from verifier.obligations import Obligation
from verifier.solve import GRACE, solve_all, solve_one
from verifier.solvers import Answer, Backend, available

NAMES = [b.name for b in available()]


def ob(formula: str, symbols: dict[str, int], name: str = "post#1") -> Obligation:
    return Obligation(name=name, kind="postcondition", formula=formula, symbols=symbols,
                      message="test", paths=(0,))


def test_all_three_solvers_are_installed():
    # pyproject requires them; a missing one would silently shrink the portfolio.
    assert NAMES == ["bitwuzla", "z3", "cvc5"]


@pytest.mark.parametrize("name", NAMES)
def test_backend_sat_model_uses_spec_names(name):
    # Names as the pipeline makes them: dotted spec names and ones that need |quoting|.
    o = ob("(and (= (bvadd |p.0| x) #x0000002a) (bvult x #x00000010) (= |odd name| #b1))",
           {"p.0": 32, "x": 32, "odd name": 1})
    out = solve_one(o, 10, solvers=[name])
    assert out.result == "refuted" and out.solver == name
    m = out.model
    assert (m["p.0"] + m["x"]) % 2**32 == 42 and m["x"] < 16 and m["odd name"] == 1


@pytest.mark.parametrize("name", NAMES)
def test_backend_unsat(name):
    o = ob("(not (= (bvmul x #x00000002) (bvshl x #x00000001)))", {"x": 32})
    assert solve_one(o, 10, solvers=[name]).result == "proven"


@pytest.mark.parametrize("name", NAMES)
def test_backend_quantified(name):
    # VLA postconditions use forall (next issue); every backend must at least not mis-answer.
    o = ob("(and (bvult x #x10) (forall ((i (_ BitVec 8))) (=> (bvult i x) (bvult i #x10))) (= x #x05))",
           {"x": 8})
    out = solve_one(o, 10, solvers=[name])
    assert out.result in ("refuted", "unknown")
    if out.result == "refuted":
        assert out.model["x"] == 5


_OPS = ["bvadd", "bvsub", "bvmul", "bvand", "bvor", "bvxor", "bvshl", "bvlshr", "bvudiv", "bvurem"]


@st.composite
def terms(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(["a", "b", "c", f"#x{draw(st.integers(0, 255)):02x}"]))
    op = draw(st.sampled_from(_OPS))
    return f"({op} {draw(terms(depth - 1))} {draw(terms(depth - 1))})"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lhs=terms(), rhs=terms(), rel=st.sampled_from(["=", "bvult", "bvsle", "distinct"]))
def test_backends_agree_with_each_other(lhs, rhs, rel):
    """Differential: on random 8-bit queries every solver gives the same answer, and every
    model really satisfies the query (checked independently here with z3's evaluator)."""
    o = ob(f"({rel} {lhs} {rhs})", {"a": 8, "b": 8, "c": 8})
    answers = {n: solve_one(o, 10, solvers=[n]) for n in NAMES}
    assert len({a.result for a in answers.values()}) == 1, answers
    for a in answers.values():
        if a.result == "refuted":
            env = [(z3.BitVec(k, 8), z3.BitVecVal(a.model.get(k, 0), 8)) for k in "abc"]
            f = z3.parse_smt2_string(
                "(declare-const a (_ BitVec 8))(declare-const b (_ BitVec 8))(declare-const c (_ BitVec 8))"
                f"(assert {o.formula})")[0]
            assert z3.is_true(z3.simplify(z3.substitute(f, *env)))


# ---- the race: fake backends are real processes that hang, crash or lie --------------------------

def _hang(text, names, timeout):
    time.sleep(3600)
    return Answer("unknown", None, "never")


def _crash(text, names, timeout):
    os._exit(7)


def _liar(text, names, timeout):
    return Answer("sat", {n: 0 for n in names})


def _unsat_liar(text, names, timeout):
    return Answer("unsat", None)


@pytest.fixture
def fake(monkeypatch):
    def add(name, fn):
        monkeypatch.setitem(solvers.BACKENDS, name, Backend(name, name, fn, lambda: "test"))
    return add


def test_race_kills_a_hanging_solver_when_another_decides(fake):
    fake("hang", _hang)
    o = ob("(= (bvadd x #x01) #x00)", {"x": 8})
    t0 = time.monotonic()
    [out] = solve_all([o], jobs=2, timeout=30, solvers=["hang", "z3"])
    assert out.result == "refuted" and out.solver == "z3" and out.model == {"x": 0xFF}
    assert time.monotonic() - t0 < 20          # not the hanging solver's 30 s budget
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_a_solver_that_ignores_its_time_limit_is_killed_at_the_deadline(fake):
    fake("hang", _hang)
    o = ob("(= x #x01)", {"x": 8})
    t0 = time.monotonic()
    [out] = solve_all([o], jobs=1, timeout=0.5, solvers=["hang"])
    assert out.result == "unknown" and out.detail == "timeout"
    assert time.monotonic() - t0 < 0.5 + GRACE + 3


@pytest.mark.parametrize("bad,fn,why,honest", [
    ("crash", _crash, "crash", "bitwuzla"),                 # dies without answering
    ("liar", _liar, "does not satisfy", "cvc5"),            # sat with a model that is no model
])
def test_a_broken_solver_decides_nothing(fake, bad, fn, why, honest):
    fake(bad, fn)
    o = ob("(= x #x01)", {"x": 8})
    [out] = solve_all([o], jobs=2, timeout=10, solvers=[bad])
    assert out.result == "unknown" and why in out.detail
    [out] = solve_all([o], jobs=1, timeout=10, solvers=[bad, honest])
    assert out.result == "refuted" and out.solver == honest and out.model == {"x": 1}


def test_the_winner_is_named(fake):
    # An unsat answer cannot be checked by evaluation: the outcome names the solver that gave it,
    # so a report shows exactly what the proof trusts.
    fake("yes", _unsat_liar)
    [out] = solve_all([ob("(= x #x01)", {"x": 8})], jobs=1, timeout=10, solvers=["yes", "z3"])
    assert out.solver == "yes"


def _instant(text, names, timeout):
    return Answer("sat", {n: 1 for n in names})


def test_siblings_that_answer_together_are_both_handled(fake):
    # Two solvers answering one obligation at the same moment: the second answer arrives for an
    # obligation already settled (and a worker already reaped). Repeated to make the overlap likely.
    fake("a", _instant)
    fake("b", _instant)
    for _ in range(15):
        outs = solve_all([ob("(= x #x01)", {"x": 8}, name=f"o{k}") for k in range(3)], jobs=4,
                         timeout=10, solvers=["a", "b"])
        assert all(o.result == "refuted" and o.model == {"x": 1} for o in outs)
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_many_obligations_keep_their_order_and_each_is_decided():
    obs = [ob(f"(= (bvmul x #x{k:02x}) #x{(3 * k) % 256:02x})", {"x": 8}, name=f"o{k}") for k in range(1, 12)]
    obs.append(ob("(not (= (bvadd x x) (bvshl x #x01)))", {"x": 8}, name="holds"))
    outs = solve_all(obs, jobs=2, timeout=10)
    assert [o.name for o in outs] == [o.name for o in obs]
    for o in outs[:-1]:
        assert o.result == "refuted"
    assert outs[-1].result == "proven"

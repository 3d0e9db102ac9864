"""One meaning for the spec: every SMT-LIB bit-vector operator means the same to every consumer.

A spec's `pre` prunes branches during exploration, goes into the obligations the solvers decide,
and is evaluated on concrete points by refute fast and by the replay's checks. Each consumer is
run here on concrete values of every operator, and each must agree with Z3's own evaluation; a
consumer that read `bvsmod` as a remainder once pruned a feasible branch, and the blob below,
wrong only on negative inputs, was PROVEN.
"""

from __future__ import annotations

import claripy
import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import prove, smt, solvers, spec
from verifier.evaluate import compile_term
from verifier.pipeline import Options
from verifier.symexec import _Feasibility, _path_pre

from .build import ARCHES, asm_file

# name -> (SMT-LIB text over a and b, of width w), and whether the result is Boolean
BINARY = ["bvadd", "bvsub", "bvmul", "bvudiv", "bvurem", "bvsdiv", "bvsrem", "bvsmod", "bvshl",
          "bvlshr", "bvashr", "bvand", "bvor", "bvxor", "bvnand", "bvnor", "bvxnor", "bvcomp"]
COMPARE = ["bvult", "bvule", "bvugt", "bvuge", "bvslt", "bvsle", "bvsgt", "bvsge", "=", "distinct"]


def _ops(w: int) -> list[tuple[str, bool]]:
    ops = [(f"({op} a b)", False) for op in BINARY] + [(f"({op} a b)", True) for op in COMPARE]
    ops += [("(bvnot a)", False), ("(bvneg a)", False),
            (f"((_ rotate_left {w // 3}) a)", False), (f"((_ rotate_right {w - 1}) a)", False),
            ("((_ repeat 2) a)", False), (f"((_ extract {w - 1} {w // 2}) a)", False),
            ("(concat a b)", False), ("((_ sign_extend 7) a)", False), ("((_ zero_extend 9) b)", False),
            ("(ite (bvslt a b) (bvsmod b a) (bvsrem a b))", False)]
    return ops


WIDTHS = {8: "uint8_t", 16: "uint16_t", 32: "uint32_t", 64: "uint64_t"}
VALUES = st.one_of(st.integers(0, 3), st.sampled_from([-1, -2, 7, 8, 9, 63, 64, 65]),
                   st.integers(0, (1 << 64) - 1))


def _z3_value(term: str, w: int, a: int, b: int) -> z3.ExprRef:
    """Z3's own evaluation of `term` at a, b: the reference every consumer must agree with."""
    t = smt.parse_asserts(f"(assert (= {term} {term}))", {"a": w, "b": w})[0].arg(0)
    av, bv = z3.BitVecVal(a, w), z3.BitVecVal(b, w)
    return z3.simplify(z3.substitute(t, (z3.BitVec("a", w), av), (z3.BitVec("b", w), bv)))


def _literal(v: z3.ExprRef) -> str:
    if z3.is_bool(v):
        return "true" if z3.is_true(v) else "false"
    return f"(_ bv{v.as_long()} {v.size()})"


def _wrong(v: z3.ExprRef) -> z3.ExprRef:
    return z3.BoolVal(not z3.is_true(v)) if z3.is_bool(v) else z3.BitVecVal(v.as_long() ^ 1, v.size())


def _spec(w: int, pre: str) -> spec.Spec:
    ty = WIDTHS[w]
    return spec.parse(f'(set-info :nverify-signature "{ty} f({ty} a, {ty} b)")\n'
                      f"(define-fun pre () Bool {pre})\n(define-fun post () Bool true)\n")


def _pruning_allows(sp: spec.Spec, w: int, a: int, b: int) -> bool:
    """Would exploration keep a branch taken exactly at (a, b) under this spec's pre?"""
    x, y = claripy.BVS("a", w, explicit_name=True), claripy.BVS("b", w, explicit_name=True)
    return _Feasibility([], _path_pre(sp)).satisfiable([], claripy.And(x == a, y == b)) is not None


def _solver_allows(name: str, sp: spec.Spec, w: int, a: int, b: int) -> bool:
    """Does an obligation's solver find pre satisfiable at (a, b)? The text is what obligations.py
    writes: the spec's pre, conjoined with the path's condition."""
    query = (smt.declare_text(sp.names) +
             f"(assert (and {sp.pre} (= a (_ bv{a} {w})) (= b (_ bv{b} {w}))))\n")
    ans = solvers.BACKENDS[name].run(query, sp.names, 30.0)
    assert ans.result in ("sat", "unsat"), (name, ans)
    return ans.result == "sat"


def _allowed_by_every_consumer(w: int, a: int, b: int, pre: str) -> dict[str, bool]:
    sp = _spec(w, pre)
    # Z3's incremental solver, which pruning uses, takes seconds over 64-bit divisions: pruning is
    # checked up to 32 bits (its terms are the obligations' own, so no width can tell them apart)
    out = {"pruning": _pruning_allows(sp, w, a, b)} if w <= 32 else {}
    out.update({name: _solver_allows(name, sp, w, a, b) for name in [be.name for be in solvers.available()]})
    return out


@settings(max_examples=15)
@given(w=st.sampled_from(sorted(WIDTHS)), a=VALUES, b=VALUES)
def test_every_operator_means_the_same_to_every_consumer(w, a, b):
    a, b = a & ((1 << w) - 1), b & ((1 << w) - 1)
    right, wrong = [], []
    for term, _is_bool in _ops(w):
        want = _z3_value(term, w, a, b)
        # refute fast's compiled evaluator, and smt.evaluate (replay's checks, path selection)
        got = compile_term(smt.parse_asserts(f"(assert (= {term} {term}))", {"a": w, "b": w})[0].arg(0))
        value = got({"a": a, "b": b})
        assert (value is True or value is False) == z3.is_bool(want), term
        assert int(value) == (int(z3.is_true(want)) if z3.is_bool(want) else want.as_long()), (term, a, b)
        assert smt.evaluate(term, {"a": w, "b": w}, {"a": a, "b": b}) == int(value), (term, a, b)
        right.append(f"(= {term} {_literal(want)})")
        wrong.append(f"(= {term} {_literal(_wrong(want))})")
    # pruning and the obligations' solvers: pre allows (a, b) where every term has Z3's value,
    # and nowhere else (two queries a consumer, each over every operator; one by one on failure)
    for pre, holds in ((f"(and {' '.join(right)})", True), (f"(or {' '.join(wrong)})", False)):
        got = _allowed_by_every_consumer(w, a, b, pre)
        if set(got.values()) != {holds}:
            parts = right if holds else wrong
            culprits = [(p, c) for p in parts for c, ok in _allowed_by_every_consumer(w, a, b, p).items()
                        if ok != holds]
            pytest.fail(f"at a={a:#x} b={b:#x}: {culprits}")


# pre: x ≡ 3 (mod 5), negative x included (bvsmod takes the divisor's sign: -2 smod 5 = 3). Read
# as bvsrem, pre would exclude every negative x, and with it the branch that returns 1.
SMOD_SPEC = """(set-info :nverify-signature "uint32_t f(int32_t x)")
(define-fun pre () Bool (= (bvsmod x #x00000005) #x00000003))
(define-fun post () Bool (= ret #x00000000))
"""
SIGN_BRANCH = {
    "x86_64": "xor eax, eax\n test edi, edi\n jns done\n mov eax, 1\n done: ret",
    "aarch64": "mov w1, w0\n mov w0, #0\n tbz w1, #31, done\n mov w0, #1\n done: ret",
}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_branch_only_bvsmod_allows_is_explored(tmp_path, arch):
    sp = tmp_path / "smod.smt"
    sp.write_text(SMOD_SPEC)
    r = prove(str(asm_file(tmp_path, arch, SIGN_BRANCH[arch])), str(sp), Options(arch=arch, jobs=1)).to_json()
    assert (r["verdict"], r["reason"]) == ("refuted", "postcondition"), r
    x = int(r["counterexample"]["inputs"]["x"], 16)
    assert x >> 31 and (x - (1 << 32)) % 5 == 3
    assert r["counterexample"]["replayed"] is True and r["counterexample"]["actual"]["ret"] == "0x1"

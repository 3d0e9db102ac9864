"""The concrete spec evaluator agrees with Z3, on points where post holds and where it fails."""

import random

import pytest
import z3

from verifier import smt
from verifier.evaluate import NotCompilable, compile_term
from verifier.spec import load

SCALAR = [f"p{i:02d}" for i in range(1, 25)] + ["abs", "bswap32", "clamp", "max", "min", "mulhu", "popcount"]


def _formula(name):
    sp = load(name)
    names = dict(sp.names)
    conj = [smt.parse_asserts(f"(assert {t})", names)[0] for t in [sp.pre, *sp.post]]
    return z3.And(*conj), names


@pytest.mark.parametrize("name", SCALAR)
def test_agrees_with_z3(name):
    f, names = _formula(name)
    fn = compile_term(f)
    vs = {k: z3.BitVec(k, w) for k, w in names.items()}
    rng = random.Random(name)
    holds = total = 0
    for _ in range(25):
        env = {k: rng.choice([rng.getrandbits(w), 0, 1, (1 << w) - 1, 1 << (w - 1)]) for k, w in names.items()}
        s = z3.Solver()                     # a ret that satisfies post at these inputs, and one beside it
        s.add(f, *[vs[k] == v for k, v in env.items() if k != "ret"])
        if s.check() == z3.sat:
            env["ret"] = s.model().eval(vs["ret"], model_completion=True).as_long()
        for e in (env, {**env, "ret": env["ret"] ^ 1}):
            point = [(vs[k], z3.BitVecVal(v, names[k])) for k, v in e.items()]
            want = z3.is_true(z3.simplify(z3.substitute(f, *point)))
            assert fn(e) == want, (name, e)
            holds, total = holds + want, total + 1
    assert 0 < holds < total                 # the points exercised both outcomes


def test_signed_division_and_shifts_follow_smtlib():
    a, b = z3.BitVecs("a b", 8)
    rng = random.Random(0)
    for op in (lambda: a / b, lambda: z3.SRem(a, b), lambda: z3.UDiv(a, b), lambda: z3.URem(a, b),
               lambda: a >> b, lambda: z3.LShR(a, b), lambda: a << b, lambda: z3.SignExt(8, a),
               lambda: z3.Concat(a, b), lambda: z3.Extract(6, 2, a)):
        t = op()
        fn = compile_term(t)
        for _ in range(200):
            x = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.getrandbits(8)])
            y = rng.choice([0, 1, 7, 8, 9, 0xFF, rng.getrandbits(8)])
            want = z3.simplify(z3.substitute(t, (a, z3.BitVecVal(x, 8)), (b, z3.BitVecVal(y, 8)))).as_long()
            assert fn({"a": x, "b": y}) == want, (t, x, y)


def test_arrays_are_not_compilable():
    arr = z3.Array("a", z3.BitVecSort(64), z3.BitVecSort(8))
    with pytest.raises(NotCompilable):
        compile_term(z3.Select(arr, z3.BitVecVal(0, 64)) == 0)

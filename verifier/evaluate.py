"""Concrete evaluation of spec formulas: a Z3 term compiled to a Python closure over integers.

The verifier evaluates terms at a point with `smt.evaluate` (Z3 substitution and
simplification, arrays and quantifiers included): exact, and what verdicts rely on, but about
100-400 µs a call, far too slow to score tens of thousands of candidate programs a second.
`compile_term` walks a term once and returns a function of an environment {name: int}
(bit-vectors as unsigned ints, Booleans as bool). Only scalar bit-vector and Boolean operators
are compiled (division by zero as SMT-LIB defines it); anything else, arrays and quantifiers
among them, raises `NotCompilable`. Nothing here decides a verdict: it only steers searches, so
a mistake costs time, never soundness — and a test checks it against Z3 on random points.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

Env = dict[str, int]
Fn = Callable[[Env], Any]


class NotCompilable(Exception):
    """The term uses an operator this evaluator does not model."""


def _signed(v: int, w: int) -> int:
    return v - (1 << w) if v >> (w - 1) & 1 else v


def _sdiv(a: int, b: int, w: int) -> int:
    m = (1 << w) - 1
    if b == 0:
        return m if _signed(a, w) >= 0 else 1        # SMT-LIB: bvsdiv by 0 is -1 or 1
    sa, sb = _signed(a, w), _signed(b, w)
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & m


def _srem(a: int, b: int, w: int) -> int:
    if b == 0:
        return a
    sa, sb = _signed(a, w), _signed(b, w)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & ((1 << w) - 1)


def _binary(k: int, w: int) -> Callable[[int, int], Any] | None:
    m = (1 << w) - 1
    return {
        z3.Z3_OP_BSUB: lambda a, b: (a - b) & m,
        z3.Z3_OP_BUDIV: lambda a, b: m if b == 0 else a // b,
        z3.Z3_OP_BUDIV_I: lambda a, b: m if b == 0 else a // b,
        z3.Z3_OP_BUREM: lambda a, b: a if b == 0 else a % b,
        z3.Z3_OP_BUREM_I: lambda a, b: a if b == 0 else a % b,
        z3.Z3_OP_BSDIV: lambda a, b: _sdiv(a, b, w),
        z3.Z3_OP_BSDIV_I: lambda a, b: _sdiv(a, b, w),
        z3.Z3_OP_BSREM: lambda a, b: _srem(a, b, w),
        z3.Z3_OP_BSREM_I: lambda a, b: _srem(a, b, w),
        z3.Z3_OP_BSHL: lambda a, b: (a << b) & m if b < w else 0,
        z3.Z3_OP_BLSHR: lambda a, b: a >> b if b < w else 0,
        z3.Z3_OP_BASHR: lambda a, b: (_signed(a, w) >> min(b, w)) & m,
        z3.Z3_OP_ULEQ: lambda a, b: a <= b, z3.Z3_OP_ULT: lambda a, b: a < b,
        z3.Z3_OP_UGEQ: lambda a, b: a >= b, z3.Z3_OP_UGT: lambda a, b: a > b,
        z3.Z3_OP_SLEQ: lambda a, b: _signed(a, w) <= _signed(b, w),
        z3.Z3_OP_SLT: lambda a, b: _signed(a, w) < _signed(b, w),
        z3.Z3_OP_SGEQ: lambda a, b: _signed(a, w) >= _signed(b, w),
        z3.Z3_OP_SGT: lambda a, b: _signed(a, w) > _signed(b, w),
        z3.Z3_OP_IMPLIES: lambda a, b: (not a) or b,
    }.get(k)


def _nary(k: int, w: int) -> Callable[[list[int]], Any] | None:
    m = (1 << w) - 1

    def fold(f):
        def g(vs):
            acc = vs[0]
            for v in vs[1:]:
                acc = f(acc, v)
            return acc
        return g

    return {
        z3.Z3_OP_BADD: lambda vs: sum(vs) & m,
        z3.Z3_OP_BMUL: fold(lambda a, b: (a * b) & m),
        z3.Z3_OP_BAND: fold(lambda a, b: a & b),
        z3.Z3_OP_BOR: fold(lambda a, b: a | b),
        z3.Z3_OP_BXOR: fold(lambda a, b: a ^ b),
        z3.Z3_OP_AND: all, z3.Z3_OP_OR: any,
        z3.Z3_OP_XOR: fold(lambda a, b: a != b),
        z3.Z3_OP_DISTINCT: lambda vs: len(set(vs)) == len(vs),
    }.get(k)


def compile_term(e: z3.ExprRef) -> Fn:
    """A function env -> value computing `e`; shared subterms are compiled once."""
    memo: dict[int, Fn] = {}

    def go(t: z3.ExprRef) -> Fn:
        key = t.get_id()
        if key not in memo:
            memo[key] = _compile(t, go)
        return memo[key]

    return go(e)


def _compile(t: z3.ExprRef, go: Callable[[z3.ExprRef], Fn]) -> Fn:
    if z3.is_bv_value(t):
        v = t.as_long()
        return lambda env: v
    if z3.is_true(t):
        return lambda env: True
    if z3.is_false(t):
        return lambda env: False
    if z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED:
        if not (z3.is_bv(t) or z3.is_bool(t)):
            raise NotCompilable(f"{t} is not a bit-vector or Boolean")
        name = t.decl().name()
        return lambda env: env[name]
    if not z3.is_app(t) or not (z3.is_bv(t) or z3.is_bool(t)):
        raise NotCompilable(f"cannot evaluate {str(t)[:60]}")
    k = t.decl().kind()
    kids = [go(c) for c in t.children()]
    w = t.size() if z3.is_bv(t) else (t.arg(0).size() if t.num_args() and z3.is_bv(t.arg(0)) else 1)
    m = (1 << w) - 1
    if k == z3.Z3_OP_ITE:
        c, a, b = kids
        return lambda env: a(env) if c(env) else b(env)
    if k == z3.Z3_OP_EQ:
        a, b = kids
        return lambda env: a(env) == b(env)
    if k == z3.Z3_OP_NOT:
        (a,) = kids
        return lambda env: not a(env)
    if k == z3.Z3_OP_BNOT:
        (a,) = kids
        return lambda env: ~a(env) & m
    if k == z3.Z3_OP_BNEG:
        (a,) = kids
        return lambda env: -a(env) & m
    if k == z3.Z3_OP_EXTRACT:
        hi, lo = t.params()
        (a,) = kids
        em = (1 << (hi - lo + 1)) - 1
        return lambda env: a(env) >> lo & em
    if k == z3.Z3_OP_ZERO_EXT:
        (a,) = kids
        return a
    if k == z3.Z3_OP_SIGN_EXT:
        (a,) = kids
        inner = t.arg(0).size()
        return lambda env: _signed(a(env), inner) & m
    if k == z3.Z3_OP_CONCAT:
        widths = [c.size() for c in t.children()]

        def concat(env, kids=kids, widths=widths):
            acc = 0
            for f, cw in zip(kids, widths, strict=True):
                acc = acc << cw | f(env)
            return acc
        return concat
    if len(kids) == 2 and (f2 := _binary(k, w)) is not None:
        a, b = kids
        return lambda env: f2(a(env), b(env))
    if (fn := _nary(k, w)) is not None:
        return lambda env: fn([f(env) for f in kids])
    raise NotCompilable(f"operator {t.decl().name()} is not modelled")

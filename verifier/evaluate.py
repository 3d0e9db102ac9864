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

import functools
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


@functools.cache
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


@functools.cache
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
    return compile_terms([e])[0]


def compile_terms(es: list[z3.ExprRef], names: set[str] | None = None) -> list[Fn]:
    """compile_term for several terms, subterms shared among them compiled once; the names of
    the variables they read are added to `names`."""
    memo: dict[int, Fn] = {}
    seen = set() if names is None else names

    def go(t: z3.ExprRef) -> Fn:
        key = t.get_id()
        if key not in memo:
            memo[key] = _compile(t, go, seen)
        return memo[key]

    return [go(e) for e in es]


def _compile(t: z3.ExprRef, go: Callable[[z3.ExprRef], Fn], names: set[str]) -> Fn:
    # Z3's C API directly: the Python wrappers (is_true, is_const, decl() ...) each make several
    # calls, and terms have thousands of nodes
    ctx, a = t.ctx_ref(), t.as_ast()
    ast_kind = z3.Z3_get_ast_kind(ctx, a)
    sort_kind = z3.Z3_get_sort_kind(ctx, z3.Z3_get_sort(ctx, a)) if ast_kind != z3.Z3_QUANTIFIER_AST else None
    if sort_kind not in (z3.Z3_BV_SORT, z3.Z3_BOOL_SORT) or ast_kind not in (z3.Z3_NUMERAL_AST, z3.Z3_APP_AST):
        raise NotCompilable(f"cannot evaluate {str(t)[:60]}")
    if ast_kind == z3.Z3_NUMERAL_AST:
        v = t.as_long()
        return lambda env: v
    k = z3.Z3_get_decl_kind(ctx, z3.Z3_get_app_decl(ctx, a))
    if k == z3.Z3_OP_TRUE:
        return lambda env: True
    if k == z3.Z3_OP_FALSE:
        return lambda env: False
    n_args = z3.Z3_get_app_num_args(ctx, a)
    if k == z3.Z3_OP_UNINTERPRETED:
        if n_args:
            raise NotCompilable(f"cannot evaluate {str(t)[:60]}")
        name = t.decl().name()
        names.add(name)
        return lambda env: env[name]
    children = t.children()
    kids = [go(c) for c in children]
    if sort_kind == z3.Z3_BV_SORT:
        w = t.size()
    else:
        w = children[0].size() if n_args and z3.is_bv(children[0]) else 1
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

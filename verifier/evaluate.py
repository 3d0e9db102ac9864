"""Concrete evaluation of spec formulas: Z3 terms compiled to straight-line Python over integers.

The verifier evaluates terms at a point with `smt.evaluate` (Z3 substitution and
simplification, arrays and quantifiers included): exact, and what verdicts rely on, but about
100-400 µs a call, far too slow to score tens of thousands of candidate programs a second.
`compile_terms` walks the terms' DAG once, without recursion (a loop that runs 1000 times
builds terms 1000s of operators deep), and writes one Python function with one assignment per
distinct subterm, in dependency order: evaluating it costs one step per node whatever the
depth or the sharing. Bit-vectors are unsigned ints, Booleans bools; every SMT-LIB bit-vector
operator has its SMT-LIB meaning (division by zero, shifts by more than the width, bvsmod's
sign ...). Anything else, arrays and quantifiers among them, raises `NotCompilable`. Nothing
here decides a verdict: a hit is confirmed by Z3 (verifier/refute.py), and a test checks every
operator against Z3's own evaluation.
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
    """bvsrem: the remainder takes the dividend's sign; by 0 it is the dividend."""
    if b == 0:
        return a
    sa, sb = _signed(a, w), _signed(b, w)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & ((1 << w) - 1)


def _smod(a: int, b: int, w: int) -> int:
    """bvsmod: the remainder takes the divisor's sign (Python's %); by 0 it is the dividend."""
    if b == 0:
        return a
    return (_signed(a, w) % _signed(b, w)) & ((1 << w) - 1)


def _rotl(a: int, k: int, w: int) -> int:
    k %= w
    return ((a << k) | (a >> (w - k))) & ((1 << w) - 1) if k else a


def _repeat(a: int, w: int, n: int) -> int:
    out = 0
    for _ in range(n):
        out = out << w | a
    return out


_HELPERS = {"_signed": _signed, "_sdiv": _sdiv, "_srem": _srem, "_smod": _smod, "_rotl": _rotl,
            "_repeat": _repeat}

# Binary operators as Python expression templates over {a}, {b}, the width {w} and mask {m}.
_BINARY = {
    z3.Z3_OP_BSUB: "({a} - {b}) & {m}",
    z3.Z3_OP_BUDIV: "({m} if {b} == 0 else {a} // {b})",
    z3.Z3_OP_BUDIV_I: "({m} if {b} == 0 else {a} // {b})",
    z3.Z3_OP_BUREM: "({a} if {b} == 0 else {a} % {b})",
    z3.Z3_OP_BUREM_I: "({a} if {b} == 0 else {a} % {b})",
    z3.Z3_OP_BSDIV: "_sdiv({a}, {b}, {w})",
    z3.Z3_OP_BSDIV_I: "_sdiv({a}, {b}, {w})",
    z3.Z3_OP_BSREM: "_srem({a}, {b}, {w})",
    z3.Z3_OP_BSREM_I: "_srem({a}, {b}, {w})",
    z3.Z3_OP_BSMOD: "_smod({a}, {b}, {w})",
    z3.Z3_OP_BSMOD_I: "_smod({a}, {b}, {w})",
    z3.Z3_OP_BSHL: "(({a} << {b}) & {m} if {b} < {w} else 0)",
    z3.Z3_OP_BLSHR: "({a} >> {b} if {b} < {w} else 0)",
    z3.Z3_OP_BASHR: "(_signed({a}, {w}) >> min({b}, {w})) & {m}",
    z3.Z3_OP_BNAND: "~({a} & {b}) & {m}",
    z3.Z3_OP_BNOR: "~({a} | {b}) & {m}",
    z3.Z3_OP_BXNOR: "~({a} ^ {b}) & {m}",
    z3.Z3_OP_BCOMP: "int({a} == {b})",
    z3.Z3_OP_EXT_ROTATE_LEFT: "_rotl({a}, {b} % {w}, {w})",
    z3.Z3_OP_EXT_ROTATE_RIGHT: "_rotl({a}, -({b} % {w}), {w})",
    z3.Z3_OP_ULEQ: "{a} <= {b}", z3.Z3_OP_ULT: "{a} < {b}",
    z3.Z3_OP_UGEQ: "{a} >= {b}", z3.Z3_OP_UGT: "{a} > {b}",
    z3.Z3_OP_SLEQ: "_signed({a}, {w}) <= _signed({b}, {w})",
    z3.Z3_OP_SLT: "_signed({a}, {w}) < _signed({b}, {w})",
    z3.Z3_OP_SGEQ: "_signed({a}, {w}) >= _signed({b}, {w})",
    z3.Z3_OP_SGT: "_signed({a}, {w}) > _signed({b}, {w})",
    z3.Z3_OP_IMPLIES: "(not {a}) or {b}",
}
# N-ary operators: the arguments joined by the separator, then the template around them.
_NARY = {
    z3.Z3_OP_BADD: (" + ", "({}) & {m}"),
    z3.Z3_OP_BMUL: (" * ", "({}) & {m}"),
    z3.Z3_OP_BAND: (" & ", "({})"),
    z3.Z3_OP_BOR: (" | ", "({})"),
    z3.Z3_OP_BXOR: (" ^ ", "({})"),
    z3.Z3_OP_AND: (" and ", "({})"),
    z3.Z3_OP_OR: (" or ", "({})"),
    z3.Z3_OP_XOR: (" ^ ", "({})"),
}


def compile_term(e: z3.ExprRef) -> Fn:
    """A function env -> value computing `e`."""
    return compile_terms([e])[0]


def compile_terms(es: list[z3.ExprRef], names: set[str] | None = None) -> list[Fn]:
    """compile_term for each of `es`; the names of the variables they read are added to `names`.
    Each function computes only its own term (see `compile_together` to share the work)."""
    return [_first(compile_together([e], names)) for e in es]


def _first(prog: Callable[[Env], tuple]) -> Fn:
    return lambda env: prog(env)[0]


def compile_together(es: list[z3.ExprRef], names: set[str] | None = None) -> Callable[[Env], tuple]:
    """One function env -> (value of each of `es`), every shared subterm computed once a call;
    the names of the variables the terms read are added to `names`."""
    seen = set() if names is None else names
    if not es:
        return lambda env: ()
    ctx = es[0].ctx_ref()
    lines: list[str] = []
    var: dict[int, str] = {}
    for key, a, args in _postorder(ctx, [e.as_ast() for e in es]):
        v = f"v{len(var)}"
        lines.append(f"    {v} = {_expression(ctx, a, args, var, seen)}")
        var[key] = v
    ret = ", ".join(var[e.get_id()] for e in es)
    src = "def _prog(env):\n" + "\n".join(lines) + f"\n    return ({ret},)\n"
    scope: dict[str, Any] = dict(_HELPERS)
    exec(compile(src, "<nverify.evaluate>", "exec"), scope)   # noqa: S102 - our own generated code
    return scope["_prog"]


# Z3's C API directly, on raw ASTs (the parents own their arguments, and the callers' terms own the
# parents): the Python wrappers make several calls each, and terms have thousands of nodes.

def _args(ctx, a) -> list:
    if z3.Z3_get_ast_kind(ctx, a) != z3.Z3_APP_AST:
        return []
    return [z3.Z3_get_app_arg(ctx, a, i) for i in range(z3.Z3_get_app_num_args(ctx, a))]


def _postorder(ctx, roots: list):
    """(id, term, its arguments) for every subterm of `roots`, after its arguments, each once,
    without recursion."""
    done: set[int] = set()
    stack: list[tuple[Any, list | None]] = [(r, None) for r in reversed(roots)]
    while stack:
        a, args = stack.pop()
        key = z3.Z3_get_ast_id(ctx, a)
        if key in done:
            continue
        if args is None:
            args = _args(ctx, a)
            todo = [c for c in args if z3.Z3_get_ast_id(ctx, c) not in done]
            if todo:
                stack.append((a, args))
                stack.extend((c, None) for c in reversed(todo))
                continue
        done.add(key)
        yield key, a, args


def _width(ctx, a) -> int:
    return z3.Z3_get_bv_sort_size(ctx, z3.Z3_get_sort(ctx, a))


def _expression(ctx, a, args: list, var: dict[int, str], names: set[str]) -> str:
    """Python source for the term `a`, its arguments already assigned to the variables `var` names."""
    ast_kind = z3.Z3_get_ast_kind(ctx, a)
    if ast_kind not in (z3.Z3_NUMERAL_AST, z3.Z3_APP_AST):
        raise NotCompilable(f"cannot evaluate {z3.Z3_ast_to_string(ctx, a)[:60]}")
    sort_kind = z3.Z3_get_sort_kind(ctx, z3.Z3_get_sort(ctx, a))
    if sort_kind not in (z3.Z3_BV_SORT, z3.Z3_BOOL_SORT):
        raise NotCompilable(f"cannot evaluate {z3.Z3_ast_to_string(ctx, a)[:60]}")
    if ast_kind == z3.Z3_NUMERAL_AST:
        return z3.Z3_get_numeral_string(ctx, a)
    decl = z3.Z3_get_app_decl(ctx, a)
    k = z3.Z3_get_decl_kind(ctx, decl)
    if k in (z3.Z3_OP_TRUE, z3.Z3_OP_FALSE):
        return str(k == z3.Z3_OP_TRUE)
    if k == z3.Z3_OP_UNINTERPRETED:
        if args:
            raise NotCompilable(f"cannot evaluate {z3.Z3_ast_to_string(ctx, a)[:60]}")
        name = z3.Z3_get_symbol_string(ctx, z3.Z3_get_decl_name(ctx, decl))
        names.add(name)
        return f"env[{name!r}]"
    kids = [var[z3.Z3_get_ast_id(ctx, c)] for c in args]
    if sort_kind == z3.Z3_BV_SORT:
        w = _width(ctx, a)
    else:
        w = _width(ctx, args[0]) if args and z3.Z3_get_sort_kind(ctx, z3.Z3_get_sort(ctx, args[0])) == z3.Z3_BV_SORT \
            else 1
    m = (1 << w) - 1
    got = _structural(ctx, k, decl, args, kids, w, m)
    if got is not None:
        return got
    if len(kids) == 2 and k in _BINARY:
        return _BINARY[k].format(a=kids[0], b=kids[1], w=w, m=m)
    if k in _NARY and kids:
        sep, around = _NARY[k]
        return around.format(sep.join(kids), m=m)
    raise NotCompilable(f"operator {z3.Z3_get_symbol_string(ctx, z3.Z3_get_decl_name(ctx, decl))} is not modelled")


def _structural(ctx, k: int, decl, args: list, kids: list[str], w: int, m: int) -> str | None:
    """Operators whose meaning depends on the term's shape (parameters, argument widths)."""
    if k == z3.Z3_OP_ITE:
        return f"({kids[1]} if {kids[0]} else {kids[2]})"
    if k == z3.Z3_OP_EQ:
        return f"{kids[0]} == {kids[1]}"
    if k == z3.Z3_OP_DISTINCT:
        return f"len({{{', '.join(kids)}}}) == {len(kids)}"
    if k == z3.Z3_OP_NOT:
        return f"not {kids[0]}"
    if k == z3.Z3_OP_BNOT:
        return f"~{kids[0]} & {m}"
    if k == z3.Z3_OP_BNEG:
        return f"-{kids[0]} & {m}"
    if k == z3.Z3_OP_EXTRACT:
        hi, lo = (z3.Z3_get_decl_int_parameter(ctx, decl, i) for i in (0, 1))
        return f"{kids[0]} >> {lo} & {(1 << (hi - lo + 1)) - 1}"
    if k == z3.Z3_OP_ZERO_EXT:
        return kids[0]
    if k == z3.Z3_OP_SIGN_EXT:
        return f"_signed({kids[0]}, {_width(ctx, args[0])}) & {m}"
    if k == z3.Z3_OP_CONCAT:
        acc, shift = [], 0
        for c, v in reversed(list(zip(args, kids, strict=True))):
            acc.append(f"{v} << {shift}" if shift else v)
            shift += _width(ctx, c)
        return "(" + " | ".join(acc) + ")"
    if k == z3.Z3_OP_REPEAT:
        inner = _width(ctx, args[0])
        return f"_repeat({kids[0]}, {inner}, {w // inner})"
    if k in (z3.Z3_OP_ROTATE_LEFT, z3.Z3_OP_ROTATE_RIGHT):
        n = z3.Z3_get_decl_int_parameter(ctx, decl, 0)
        return f"_rotl({kids[0]}, {n if k == z3.Z3_OP_ROTATE_LEFT else -n}, {w})"
    if k in (z3.Z3_OP_BREDOR, z3.Z3_OP_BREDAND):
        full = (1 << _width(ctx, args[0])) - 1
        return f"int({kids[0]} != 0)" if k == z3.Z3_OP_BREDOR else f"int({kids[0]} == {full})"
    return None

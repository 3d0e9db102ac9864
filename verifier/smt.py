"""The one door to z3: parsing SMT-LIB text over declared bit-vector names, and printing it back."""

from __future__ import annotations

import re
from collections.abc import Mapping

import z3


def version() -> str:
    return z3.get_version_string()


# A name's sort: an int is a bit-vector width; ARRAY(w) is an array from 64-bit indices to w-bit
# elements (the spec's variable-length arrays, DESIGN §3), encoded as -w so a sort stays an int.
Sort = int


def ARRAY(w: int) -> Sort:
    return -w


def is_array(sort: Sort) -> bool:
    return sort < 0


def sort_text(sort: Sort) -> str:
    if is_array(sort):
        return f"(Array (_ BitVec 64) (_ BitVec {-sort}))"
    return f"(_ BitVec {sort})"


def _z3_const(name: str, sort: Sort) -> z3.ExprRef:
    if is_array(sort):
        return z3.Array(name, z3.BitVecSort(64), z3.BitVecSort(-sort))
    return z3.BitVec(name, sort)


def declarations(names: Mapping[str, Sort]) -> dict[str, z3.ExprRef]:
    return {n: _z3_const(n, w) for n, w in names.items()}


def declare_text(names: Mapping[str, Sort]) -> str:
    return "".join(f"(declare-fun {quote(n)} () {sort_text(w)})\n" for n, w in names.items())


def quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z~!@$%^&*_+=<>.?/\-][A-Za-z0-9~!@$%^&*_+=<>.?/\-]*", name) \
        else f"|{name}|"


class ParseError(ValueError):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


def parse_asserts(text: str, names: Mapping[str, Sort]) -> list[z3.BoolRef]:
    """Parse SMT-LIB `text` in which `names` are declared; return its asserted formulas."""
    try:
        vec = z3.parse_smt2_string(text, decls=declarations(names))
    except z3.Z3Exception as e:
        msg = e.value.decode() if isinstance(e.value, bytes) else str(e.value)
        m = re.search(r'line (\d+) column \d+: (.*?)"?\)?\s*$', msg.strip().splitlines()[0])
        if m:
            raise ParseError(m.group(2).strip().rstrip('")'), int(m.group(1))) from None
        raise ParseError(msg.strip(), None) from None
    return list(vec)


def conjuncts(f: z3.BoolRef) -> list[z3.BoolRef]:
    if z3.is_and(f):
        return [c for c in f.children()]
    return [f]


def to_text(f: z3.ExprRef) -> str:
    return f.sexpr()


def is_bool(f: z3.ExprRef) -> bool:
    return z3.is_bool(f)


def bv_width(f: z3.ExprRef) -> int | None:
    return f.size() if z3.is_bv(f) else None


def subterms(f: z3.ExprRef):
    """Every distinct subterm of f (f included), each once."""
    seen: set[int] = set()
    todo = [f]
    while todo:
        e = todo.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        yield e
        todo.extend(e.children())


def free_names(f: z3.ExprRef) -> set[str]:
    return {e.decl().name() for e in subterms(f) if z3.is_const(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED}


Values = Mapping[str, "int | Mapping[int, int]"]


def _substitution(names: Mapping[str, Sort], values: Values) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
    """Concrete values for every name (missing: 0); an array's value is {index: element}, 0 elsewhere."""
    out = []
    for n, w in names.items():
        v = values.get(n, 0)
        if is_array(w):
            arr: z3.ExprRef = z3.K(z3.BitVecSort(64), z3.BitVecVal(0, -w))
            for i, e in sorted(v.items()) if isinstance(v, Mapping) else ():
                arr = z3.Store(arr, z3.BitVecVal(i, 64), z3.BitVecVal(e, -w))
            out.append((_z3_const(n, w), arr))
        else:
            out.append((_z3_const(n, w), z3.BitVecVal(v if isinstance(v, int) else 0, w)))
    return out


def evaluate(term_text: str, names: Mapping[str, Sort], values: Values) -> int:
    """Evaluate a bit-vector or Bool term under concrete `values` (missing names read as 0).
    A closed Bool term that simplification leaves open (a quantifier) is decided by z3."""
    f = parse_asserts(f"(assert (= {term_text} {term_text}))", names)[0].arg(0)
    subst = _substitution(names, values)
    closed = z3.substitute(f, *subst) if subst else f
    r = z3.simplify(closed)
    if z3.is_true(r):
        return 1
    if z3.is_false(r):
        return 0
    if z3.is_bv_value(r):
        return r.as_long()
    if z3.is_bool(r):
        for want, probe in ((1, z3.Not(r)), (0, r)):
            s = z3.Solver()
            s.set("timeout", 30_000)
            s.add(probe)
            if s.check() == z3.unsat:
                return want
    raise ValueError(f"term did not evaluate to a constant: {r}")


def free_names_text(term_text: str, names: Mapping[str, Sort]) -> set[str]:
    f = parse_asserts(f"(assert (= {term_text} {term_text}))", names)[0]
    return free_names(f)


def satisfied_by(f: z3.BoolRef, names: Mapping[str, Sort], values: Values, timeout: float) -> bool:
    """Does the model `values` satisfy formula `f` (parsed over `names`)? Names without a value
    (arrays a solver's model does not list) stay free: the question is then whether some value
    of them does."""
    given = {n: w for n, w in names.items() if n in values or not is_array(w)}
    closed = z3.substitute(f, *_substitution(given, values))
    r = z3.simplify(closed)
    if z3.is_true(r) or z3.is_false(r):
        return z3.is_true(r)
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout * 1000)))
    s.add(closed)
    return s.check() == z3.sat

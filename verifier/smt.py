"""The one door to z3: parsing SMT-LIB text over declared bit-vector names, and printing it back."""

from __future__ import annotations

import re
from collections.abc import Mapping

import z3


def version() -> str:
    return z3.get_version_string()


def declarations(names: Mapping[str, int]) -> dict[str, z3.BitVecRef]:
    return {n: z3.BitVec(n, w) for n, w in names.items()}


def declare_text(names: Mapping[str, int]) -> str:
    return "".join(f"(declare-fun {quote(n)} () (_ BitVec {w}))\n" for n, w in names.items())


def quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z~!@$%^&*_+=<>.?/\-][A-Za-z0-9~!@$%^&*_+=<>.?/\-]*", name) \
        else f"|{name}|"


class ParseError(ValueError):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


def parse_asserts(text: str, names: Mapping[str, int]) -> list[z3.BoolRef]:
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


def free_names(f: z3.ExprRef) -> set[str]:
    seen: set[str] = set()
    out: set[str] = set()
    todo = [f]
    while todo:
        e = todo.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        if z3.is_const(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.add(e.decl().name())
        todo.extend(e.children())
    return out


def evaluate(term_text: str, names: Mapping[str, int], values: Mapping[str, int]) -> int:
    """Evaluate a bit-vector or Bool term under concrete `values` (missing names read as 0)."""
    f = parse_asserts(f"(assert (= {term_text} {term_text}))", names)[0].arg(0)
    subst = [(z3.BitVec(n, w), z3.BitVecVal(values.get(n, 0), w)) for n, w in names.items()]
    r = z3.simplify(z3.substitute(f, *subst)) if subst else z3.simplify(f)
    if z3.is_true(r):
        return 1
    if z3.is_false(r):
        return 0
    if z3.is_bv_value(r):
        return r.as_long()
    raise ValueError(f"term did not evaluate to a constant: {r}")


def free_names_text(term_text: str, names: Mapping[str, int]) -> set[str]:
    f = parse_asserts(f"(assert (= {term_text} {term_text}))", names)[0]
    return free_names(f)


def satisfied_by(formula_text: str, names: Mapping[str, int], values: Mapping[str, int], timeout: float) -> bool:
    """Does the model `values` satisfy `formula_text`? Quantifier-free: by evaluation. With
    quantifiers left after substitution: z3 decides the closed formula (False when it cannot)."""
    try:
        return evaluate(formula_text, names, values) == 1
    except ValueError:
        pass
    f = parse_asserts(f"(assert {formula_text})", names)[0]
    closed = z3.substitute(f, *[(z3.BitVec(n, w), z3.BitVecVal(values.get(n, 0), w)) for n, w in names.items()])
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout * 1000)))
    s.add(closed)
    return s.check() == z3.sat

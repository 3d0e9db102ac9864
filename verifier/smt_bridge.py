"""Moves formulas between claripy (the symbolic executor's language) and SMT-LIB text / z3.

Only the machine's terms go through claripy. The spec is never translated into claripy (claripy
reads `bvsmod` as a remainder): its one meaning is the Z3 terms `smt` parses (symexec._path_pre).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import claripy
import z3

_Z3 = claripy.backends.z3


def to_z3(ast: claripy.ast.Base) -> z3.ExprRef:
    return _Z3.convert(ast)


def to_text(ast: claripy.ast.Base) -> str:
    return to_z3(ast).sexpr()


def from_z3(expr: z3.ExprRef) -> claripy.ast.Base:
    return _Z3._abstract(expr)


def z3_simplify(ast: claripy.ast.BV) -> claripy.ast.BV | None:
    try:
        return cast(claripy.ast.BV, from_z3(z3.simplify(to_z3(ast))))
    except Exception:  # noqa: BLE001 - an expression z3 cannot round-trip simply stays unplaced
        return None


def widths(asts: Sequence[claripy.ast.Base]) -> dict[str, int]:
    """Name -> bit width of every symbol in `asts`."""
    out: dict[str, int] = {}
    for a in asts:
        for leaf in a.leaf_asts():
            if leaf.op == "BVS":
                out[str(leaf.args[0])] = cast(claripy.ast.BV, leaf).size()
    return out


def evaluate(model: z3.ModelRef, ast: claripy.ast.BV) -> int:
    """The value of a claripy bit-vector in a Z3 model (unconstrained symbols: 0)."""
    return model.eval(to_z3(ast), model_completion=True).as_long()

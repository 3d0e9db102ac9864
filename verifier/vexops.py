"""VEX operations angr's claripy layer does not implement, written here from the VEX definitions
(libvex_ir.h). Each one is tested differentially against unicorn through the instructions that
produce it (tests/test_simd.py)."""

from __future__ import annotations

import re
from collections.abc import Callable

import claripy

BV = claripy.ast.BV


def _zero_hi(hi: int, total: int) -> Callable[[list[BV]], BV]:
    # Iop_ZeroHI<hi>ofV<total>: keep the low total-hi bits, zero the rest.
    def op(args: list[BV]) -> BV:
        return claripy.ZeroExt(hi, claripy.Extract(total - hi - 1, 0, args[0]))
    return op


def lookup(op: str) -> Callable[[list[BV]], BV] | None:
    m = re.fullmatch(r"Iop_ZeroHI(\d+)ofV(\d+)", op)
    if m:
        return _zero_hi(int(m[1]), int(m[2]))
    return None

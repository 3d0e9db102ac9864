"""VEX operations and helper calls that angr's claripy layer lacks or gets wrong, written here from
VEX's own definitions (libvex_ir.h, guest_amd64_helpers.c, guest_arm64_helpers.c): an operation or
helper name and claripy arguments -> the claripy result. Each is checked against the CPU (x86-64
natively, AArch64 under qemu) by tests/test_vexops.py, through the instructions that produce it.

symexec asks `lookup(op)` before angr for every operation and `ccall(name)` before angr for every
helper call; None means angr's meaning stands. Anything here may raise `Unmodelled`, which the
path reports as an unsupported instruction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache

import claripy

BV = claripy.ast.BV
Op = Callable[[list[BV]], BV]


class Unmodelled(Exception):
    """An operand this module cannot give an exact meaning to (say, a flag thunk whose operation
    is not a known constant)."""


# --- lanes ----------------------------------------------------------------------------------


def _lanes(v: BV, width: int) -> list[BV]:
    """Lane 0 (the least significant bits) first."""
    return [claripy.Extract(i + width - 1, i, v) for i in range(0, v.size(), width)]


def _join(lanes: list[BV]) -> BV:
    return claripy.Concat(*reversed(lanes))


def _zero_hi(hi: int, total: int) -> Op:
    # Iop_ZeroHI<hi>ofV<total>: keep the low total-hi bits, zero the rest.
    def op(args: list[BV]) -> BV:
        return claripy.ZeroExt(hi, claripy.Extract(total - hi - 1, 0, args[0]))
    return op


def _popcount(v: BV, out_bits: int) -> BV:
    bits = [claripy.ZeroExt(out_bits - 1, claripy.Extract(i, i, v)) for i in range(v.size())]
    total = bits[0]
    for b in bits[1:]:
        total = total + b
    return total


def _cnt(width: int) -> Op:
    # Iop_Cnt8x16 / Cnt8x8: the number of set bits of each lane (AArch64 cnt).
    def op(args: list[BV]) -> BV:
        return _join([_popcount(lane, width) for lane in _lanes(args[0], width)])
    return op


def _avg(width: int, signed: bool) -> Op:
    # Iop_Avg<w>Ux<n> / Avg<w>Sx<n>: (a + b + 1) >> 1 per lane, computed one bit wider, so it
    # never wraps (x86 pavgb/pavgw, AArch64 urhadd/srhadd).
    ext = claripy.SignExt if signed else claripy.ZeroExt

    def op(args: list[BV]) -> BV:
        out = []
        for a, b in zip(_lanes(args[0], width), _lanes(args[1], width), strict=True):
            s = ext(1, a) + ext(1, b) + 1
            out.append(claripy.Extract(width, 1, s))
        return _join(out)
    return op


_OPS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Op]]] = [
    (re.compile(r"Iop_ZeroHI(\d+)ofV(\d+)"), lambda m: _zero_hi(int(m[1]), int(m[2]))),
    (re.compile(r"Iop_Cnt8x(8|16)"), lambda m: _cnt(8)),
    (re.compile(r"Iop_Avg(8|16|32)([US])x(\d+)"), lambda m: _avg(int(m[1]), m[2] == "S")),
]


@cache
def lookup(op: str) -> Op | None:
    for pattern, make in _OPS:
        m = pattern.fullmatch(op)
        if m:
            return make(m)
    return None


# --- amd64 helpers --------------------------------------------------------------------------


def _psadbw(args: list[BV]) -> BV:
    # amd64g_calculate_mmx_psadbw(xx, yy): the sum of |x_i - y_i| over the 8 unsigned bytes,
    # zero-extended from 16 bits (8 * 255 fits).
    total = claripy.BVV(0, 16)
    for x, y in zip(_lanes(args[0], 8), _lanes(args[1], 8), strict=True):
        total = total + claripy.ZeroExt(8, claripy.If(claripy.UGE(x, y), x - y, y - x))
    return claripy.ZeroExt(48, total)


def _below(mask: BV) -> list[BV]:
    """For each bit i of mask, the number of set bits below it, as a value of mask's width."""
    n = mask.size()
    counts, c = [], claripy.BVV(0, n)
    for i in range(n):
        counts.append(c)
        c = c + claripy.ZeroExt(n - 1, claripy.Extract(i, i, mask))
    return counts


def _pext(args: list[BV]) -> BV:
    # amd64g_calculate_pext(src_masked, mask): the bits of src at mask's set bits, packed to the
    # bottom in order. VEX passes src & mask; the 32-bit form is this on zero-extended operands.
    src, mask = args
    n = mask.size()
    picked = src & mask
    out = claripy.BVV(0, n)
    for i, below in enumerate(_below(mask)):
        out = out | (claripy.ZeroExt(n - 1, claripy.Extract(i, i, picked)) << below)
    return out


def _pdep(args: list[BV]) -> BV:
    # amd64g_calculate_pdep(src, mask): the low bits of src, in order, deposited at mask's set bits.
    src, mask = args
    bits = []
    for i, below in enumerate(_below(mask)):
        bits.append(claripy.Extract(i, i, mask) & claripy.Extract(0, 0, claripy.LShR(src, below)))
    return claripy.Concat(*reversed(bits))


# --- arm64 flags ----------------------------------------------------------------------------
# angr's arm64g_calculate_flag_c chooses the ADC/SBC carry by `cc_dep2 != 0` where VEX (and the
# architecture) use the carry in, cc_dep3: `sbcs x1, xzr, x0` with x0 = 0 and C set, or any
# `sbcs` with equal operands and C clear, gets the wrong carry. The thunk (cc_op, dep1, dep2,
# dep3) is evaluated here instead, every operation, from guest_arm64_helpers.c.

_A64_ADD, _A64_SUB, _A64_ADC, _A64_SBC, _A64_LOGIC = "add", "sub", "adc", "sbc", "logic"
_A64_OPS = {1: (_A64_ADD, 32), 2: (_A64_ADD, 64), 3: (_A64_SUB, 32), 4: (_A64_SUB, 64), 5: (_A64_ADC, 32),
            6: (_A64_ADC, 64), 7: (_A64_SBC, 32), 8: (_A64_SBC, 64), 9: (_A64_LOGIC, 32), 10: (_A64_LOGIC, 64)}
_A64_SHIFT = {"n": 31, "z": 30, "c": 29, "v": 28}


def _bit(b: claripy.ast.Bool) -> BV:
    return claripy.If(b, claripy.BVV(1, 1), claripy.BVV(0, 1))


def _a64_nzcv(cc_op: int, d1: BV, d2: BV, d3: BV) -> dict[str, BV]:
    """The four flags (1-bit values) of one thunk with a known operation."""
    if cc_op == 0:   # COPY: dep1 holds NZCV in bits 31..28
        return {f: claripy.Extract(s, s, d1) for f, s in _A64_SHIFT.items()}
    if cc_op not in _A64_OPS:
        raise Unmodelled(f"arm64 flag thunk with unknown operation {cc_op}")
    kind, w = _A64_OPS[cc_op]
    a, b = claripy.Extract(w - 1, 0, d1), claripy.Extract(w - 1, 0, d2)
    cin = claripy.ZeroExt(w - 1, claripy.Extract(0, 0, d3))   # oldC, in the LSB of dep3
    old_c = claripy.Extract(0, 0, d3) == 1
    if kind == _A64_LOGIC:
        res, c, v = a, claripy.false(), claripy.false()
    elif kind == _A64_ADD:
        res = a + b
        c, v = claripy.ULT(res, a), _msb((res ^ a) & (res ^ b), w)
    elif kind == _A64_SUB:
        res = a - b
        c, v = claripy.UGE(a, b), _msb((a ^ b) & (a ^ res), w)
    elif kind == _A64_ADC:
        res = a + b + cin
        c = claripy.If(old_c, claripy.ULE(res, a), claripy.ULT(res, a))
        v = _msb((res ^ a) & (res ^ b), w)
    else:   # SBC: a - b - (1 - oldC)
        res = a - b - (cin ^ 1)
        c = claripy.If(old_c, claripy.UGE(a, b), claripy.UGT(a, b))
        v = _msb((a ^ b) & (a ^ res), w)
    return {"n": claripy.Extract(w - 1, w - 1, res), "z": _bit(res == 0), "c": _bit(c), "v": _bit(v)}


def _msb(x: BV, w: int) -> claripy.ast.Bool:
    return claripy.Extract(w - 1, w - 1, x) == 1


def _a64_condition(cond: int, f: dict[str, BV]) -> BV:
    """ARM64Condcode cond (0 EQ … 13 LE, 14 AL, 15 NV) from the flags, as one bit."""
    if cond >= 14:
        return claripy.BVV(1, 1)
    n, z, c, v = f["n"], f["z"], f["c"], f["v"]
    base = [z, c, n, v, c & ~z, ~(n ^ v), ~z & ~(n ^ v)][cond >> 1]
    return base ^ claripy.BVV(cond & 1, 1)


def _cases(x: BV) -> list[tuple[claripy.ast.Bool, int]]:
    """The constant values an operation selector takes (merged paths give an if-then-else of
    constants), each with its condition."""
    if x.concrete:
        return [(claripy.true(), x.concrete_value)]
    e = claripy.excavate_ite(x)
    cases = list(claripy.reverse_ite_cases(e)) if e.op == "If" else []
    if not cases or any(not v.concrete for _, v in cases):
        raise Unmodelled("a flag thunk whose operation is not a constant")
    return [(c, v.concrete_value) for c, v in cases]


def _by_case(x: BV, f: Callable[[int], BV]) -> BV:
    cases = [(c, f(k)) for c, k in _cases(x)]
    if len(cases) == 1:
        return cases[0][1]
    return claripy.ite_cases(cases[:-1], cases[-1][1])


def _a64_flag(name: str) -> Op:
    def op(args: list[BV]) -> BV:
        cc_op, d1, d2, d3 = args
        return _by_case(cc_op, lambda k: claripy.ZeroExt(63, _a64_nzcv(k, d1, d2, d3)[name]))
    return op


def _a64_flags_nzcv(args: list[BV]) -> BV:
    cc_op, d1, d2, d3 = args

    def value(k: int) -> BV:
        f = _a64_nzcv(k, d1, d2, d3)
        return claripy.Concat(claripy.BVV(0, 32), f["n"], f["z"], f["c"], f["v"], claripy.BVV(0, 28))
    return _by_case(cc_op, value)


def _a64_calculate_condition(args: list[BV]) -> BV:
    # cond_n_op = (cond << 4) | cc_op
    sel, d1, d2, d3 = args
    return _by_case(sel, lambda k: claripy.ZeroExt(63, _a64_condition(k >> 4, _a64_nzcv(k & 0xF, d1, d2, d3))))


_CCALLS: dict[str, Op] = {
    "amd64g_calculate_mmx_psadbw": _psadbw,
    "amd64g_calculate_pext": _pext,
    "amd64g_calculate_pdep": _pdep,
    "arm64g_calculate_flag_n": _a64_flag("n"),
    "arm64g_calculate_flag_z": _a64_flag("z"),
    "arm64g_calculate_flag_c": _a64_flag("c"),
    "arm64g_calculate_flag_v": _a64_flag("v"),
    "arm64g_calculate_flags_nzcv": _a64_flags_nzcv,
    "arm64g_calculate_condition": _a64_calculate_condition,
}


def ccall(name: str) -> Op | None:
    return _CCALLS.get(name)


# --- compare-and-swap -----------------------------------------------------------------------


def compare_and_swap(addr: BV, expected: BV, new: BV, *, load: Callable[[BV, int], BV],
                     store: Callable[[BV, BV], None],
                     require: Callable[[claripy.ast.Bool, str], None]) -> BV:
    """VEX's CAS statement in the single-threaded machine model (no other agent writes memory):
    load the old value; where it equals `expected`, store `new`; the result is the old value.

    The store is placed (and checked) whether or not the values are equal: a locked
    read-modify-write writes its destination either way (Intel SDM, CMPXCHG), so a const array
    or an address outside every region is a violation. The operand must be naturally aligned:
    a locked access that splits a cache line raises #AC where the OS enables split-lock
    detection (Linux split_lock_detect=fatal: SIGBUS), and only natural alignment keeps it
    inside one line wherever the region starts.
    """
    n = new.size() // 8
    old = load(addr, n)
    store(addr, claripy.If(old == expected, new, old))
    if n > 1:
        low = claripy.Extract(n.bit_length() - 2, 0, addr)
        require(low == 0, f"is a locked {n}-byte access that may not be {n}-byte aligned "
                "(a split lock faults where split-lock detection is on)")
    return old


# --- x86 division ---------------------------------------------------------------------------


def divide_fits(signed: bool, num: BV, den: BV, bits: int) -> claripy.ast.Bool:
    """Where x86 div/idiv does not raise #DE (a zero divisor is VEX's own trap exit): the quotient
    fits the instruction's operand size `bits`. VEX computes 8- and 16-bit division with
    DivMod[US]64to32 on operands widened to 64/32 bits (ax, or dx:ax, over the divisor), so the
    quotient always fits the operation's 32 bits even where it overflows al or ax."""
    if bits <= 16 and _extension_of(num, 2 * bits, signed) and _extension_of(den, bits, signed):
        # The division at the instruction's own width (see narrow_divmod): a wrapped quotient
        # (-2^(2*bits-1) / -1) does not fit either.
        num, den = claripy.Extract(2 * bits - 1, 0, num), claripy.Extract(bits - 1, 0, den)
    wide = num.size()
    d = (claripy.SignExt if signed else claripy.ZeroExt)(wide - den.size(), den)
    q = num.SDiv(d) if signed else num // d
    if signed:
        fits = claripy.SignExt(wide - bits, claripy.Extract(bits - 1, 0, q)) == q
    else:
        fits = claripy.Extract(wide - 1, bits, q) == 0
    return claripy.Or(den == 0, fits)


@lru_cache(maxsize=1024)
def x86_operand_bits(raw: bytes) -> int:
    """The size in bits of the first operand of one x86-64 instruction (div's divisor)."""
    import capstone as cs

    md = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64)
    md.detail = True
    insn = next(md.disasm(raw, 0), None)
    if insn is None or not insn.operands:
        raise Unmodelled("an instruction capstone does not decode")
    return int(insn.operands[0].size) * 8


def _extension_of(v: BV, bits: int, signed: bool) -> bool:
    """v is, by construction, a sign (zero) extension of a value of at most `bits` bits."""
    kind = "SignExt" if signed else "ZeroExt"
    inner = v
    while inner.op == kind and isinstance(inner.args[1], BV):
        inner = inner.args[1]
    return inner.size() <= bits


def narrow_divmod(signed: bool, num: BV, den: BV, bits: int) -> BV | None:
    """DivMod[US]64to32 of an 8- or 16-bit x86 division, computed at the instruction's width:
    the numerator (ax, or dx:ax) over the divisor, in 2*bits bits. Where the instruction does not
    fault (den != 0, quotient fits in `bits`: divide_fits), the quotient and the remainder fit in
    `bits`, and extended back they are exactly VEX's 32-bit results (rem in the high half). The
    same division at one width in the spec and the model is what solvers decide quickly; a 64-bit
    division against a 32-bit one times out. None where the operands are not the extensions VEX
    builds (then VEX's own operation stands)."""
    wide = 2 * bits
    if bits > 16 or not (_extension_of(num, wide, signed) and _extension_of(den, bits, signed)):
        return None
    n, d = claripy.Extract(wide - 1, 0, num), claripy.Extract(bits - 1, 0, den)
    ext = claripy.SignExt if signed else claripy.ZeroExt
    dw = ext(bits, d)
    q, r = (n.SDiv(dw), n.SMod(dw)) if signed else (n // dw, n % dw)
    pad = den.size() - bits
    return claripy.Concat(ext(pad, claripy.Extract(bits - 1, 0, r)), ext(pad, claripy.Extract(bits - 1, 0, q)))

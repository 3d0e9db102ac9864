"""Word-level reasoning before bit-blasting: the permutation lemma.

A sorting kernel's spec says "the output is a permutation of the input", typically by counting
occurrences (specs/sort5.smt). Handed to a solver whole, that count over nested min/max terms is
the hardest part of the proof (1-4 s per conjunct for a 5-element network, far more for 8),
although the reason it holds is simple: every compare-exchange turns {a, b} into {min, max}.
This module proves such a conjunct φ from three facts, each checked:

1. On every returned path, the multiset of the array's output terms equals the multiset of its
   input symbols, for every input. Shown by rewriting alone: after z3's simplifier and a
   value-preserving normal form for min and max (below), a pair of outputs ite(B, a, b) and
   ite(B, b, a) with the same condition B is replaced by a and b (whatever B is, the pair holds
   the same two values), until only the inputs are left, or the attempt fails.
2. φ is symmetric in the outputs: swapping the first two and rotating all of them (which generate
   every permutation) does not change its value, for every input allowed by pre. A solver query.
3. φ holds when the outputs are the inputs in their original order, under pre. Same query.

From 1, every execution's outputs are some permutation of its inputs; by 2, φ has the same value
on every permutation; by 3, that value is true. Where any step fails, nothing is concluded and the
conjunct goes to the solvers as before. Only conjuncts whose exit names are the outputs of one
fixed-length array are tried.

Normal form for min and max: ite(x OP y, x, y) with OP one of < <= > >= (signed or unsigned)
selects min(x, y) or max(x, y); where x = y both choices are the same value, so < and <= (and
> and >=) are interchangeable. Each is rewritten to ite(a < b, a, b) or ite(a < b, b, a) with
(a, b) the pair in a fixed order, so min and max of one pair share one condition term.
"""

from __future__ import annotations

from collections import Counter

import z3

from . import smt
from .exploration import Exploration
from .obligations import Obligation
from .spec import Spec

_SIGNED = {z3.Z3_OP_SLT: True, z3.Z3_OP_SLEQ: True, z3.Z3_OP_SGT: False, z3.Z3_OP_SGEQ: False}
_UNSIGNED = {z3.Z3_OP_ULT: True, z3.Z3_OP_ULEQ: True, z3.Z3_OP_UGT: False, z3.Z3_OP_UGEQ: False}


def parse_terms(texts: list[str], names: dict[str, int], bits: int) -> list[z3.ExprRef]:
    """The `bits`-wide terms `texts` over `names`, parsed in one call (declaring the names is
    most of the cost of a parse)."""
    decls = {**smt.declarations(names), "nverify!term": z3.BitVec("nverify!term", bits)}
    asserts = "".join(f"(assert (= |nverify!term| {t}))\n" for t in texts)
    return [f.arg(1) for f in z3.parse_smt2_string(asserts, decls=decls)]


Memo = dict[int, tuple[z3.ExprRef, z3.ExprRef]]


def canonical(e: z3.ExprRef, memo: Memo | None = None) -> z3.ExprRef:
    """z3's simplifier, then min/max in the normal form above (value-preserving throughout);
    `memo` shares the work among terms."""
    return _minmax(z3.simplify(e), {} if memo is None else memo)


def _minmax(e: z3.ExprRef, memo: Memo) -> z3.ExprRef:
    # the memo keeps each term it is keyed by alive: Z3 reuses the id of a freed term
    key = e.get_id()
    got = memo.get(key)
    if got is not None:
        return got[1]
    r = e
    if z3.is_app(e) and e.num_args() > 0:
        kids = [_minmax(c, memo) for c in e.children()]
        if any(k.get_id() != c.get_id() for k, c in zip(kids, e.children(), strict=True)):
            r = e.decl()(*kids)
    if z3.is_app(r) and r.decl().kind() == z3.Z3_OP_ITE and z3.is_bv(r):
        r = _normal_ite(r)
    memo[key] = (e, r)
    return r


def _normal_ite(r: z3.ExprRef) -> z3.ExprRef:
    c, x, y = r.children()
    while z3.is_not(c):
        c, x, y = c.arg(0), y, x
    kind = c.decl().kind() if z3.is_app(c) else None
    table = _SIGNED if kind in _SIGNED else _UNSIGNED if kind in _UNSIGNED else None
    if table is None or c.num_args() != 2:
        return r
    lhs, rhs = c.children()
    ids = {lhs.get_id(), rhs.get_id()}
    if len(ids) != 2 or ids != {x.get_id(), y.get_id()}:
        return r
    smaller_when_true = lhs if table[kind] else rhs     # lhs < rhs (or <=): true picks the smaller
    is_min = smaller_when_true.get_id() == x.get_id()
    a, b = sorted((lhs, rhs), key=lambda t: t.get_id())
    lt = a < b if table is _SIGNED else z3.ULT(a, b)
    return z3.If(lt, a, b) if is_min else z3.If(lt, b, a)


def is_permutation(outputs: list[z3.ExprRef], inputs: list[z3.ExprRef]) -> bool:
    """Fact 1: the outputs' multiset is the inputs' for every valuation (exchange rewriting)."""
    pool = Counter(o.get_id() for o in outputs)
    terms = {o.get_id(): o for o in outputs}
    want = Counter(i.get_id() for i in inputs)
    changed = True
    while changed and pool != want:
        changed = False
        for k in list(pool):
            if pool[k] == 0 or k in want:
                continue
            u = terms[k]
            if not (z3.is_app(u) and u.decl().kind() == z3.Z3_OP_ITE):
                return False
            c, a, b = u.children()
            partner = z3.If(c, b, a).get_id()    # z3 hash-conses: the same term has the same id
            if pool.get(partner, 0) == 0 or partner == k:
                continue
            for gone in (k, partner):
                pool[gone] -= 1
                if pool[gone] == 0:
                    del pool[gone]
            for new in (a, b):
                pool[new.get_id()] += 1
                terms[new.get_id()] = new
            changed = True
            break
    return pool == want


def _fact1(spec: Spec, ex: Exploration, exits: list[str], ins: list[z3.ExprRef], bits: int) -> bool:
    returned = [p for p in ex.paths if p.status == "returned"]
    symbols = {**ex.symbols, **spec.names}
    simple = [z3.simplify(i) for i in ins]
    terms = parse_terms([p.outputs[n] for p in returned for n in exits], symbols, bits)
    memo: Memo = {}
    for k in range(len(returned)):
        outs = [canonical(t, memo) for t in terms[k * len(exits):(k + 1) * len(exits)]]
        if not is_permutation(outs, simple):
            return False
    return bool(returned)


def permutation_obligations(spec: Spec, ex: Exploration, ob: Obligation,
                            fact1: dict[str, bool] | None = None) -> tuple[Obligation, str] | None:
    """For a postcondition conjunct the lemma may prove: the solver query of facts 2 and 3 (it
    must be unsatisfiable) and the array it is about, once fact 1 holds on every returned path;
    None where the lemma does not apply. `fact1` remembers fact 1 per array across conjuncts."""
    if ob.kind != "postcondition" or ob.conjunct is None or ob.name.startswith("equiv:"):
        return None
    names = spec.names
    phi = smt.parse_asserts(f"(assert {ob.conjunct})", names)[0]
    exits = {n for n in smt.free_names(phi) if n.endswith(".out") or n == "ret"}
    arrays = [p for p in spec.signature.arrays if not p.is_variable and not p.const]
    array = next((p for p in arrays if exits and exits <= set(p.exit_names())), None)
    if array is None or not isinstance(array.length, int) or array.length < 2:
        return None
    outs = [z3.BitVec(n, array.bits) for n in array.exit_names()]
    ins = [z3.BitVec(n, array.bits) for n in array.entry_names()]
    memo = fact1 if fact1 is not None else {}
    if array.name not in memo:
        memo[array.name] = _fact1(spec, ex, array.exit_names(), ins, array.bits)
    if not memo[array.name]:
        return None
    xs = [z3.BitVec(f"nverify!x{i}", array.bits) for i in range(array.length)]
    at = lambda vals: z3.substitute(phi, *zip(outs, vals, strict=True))  # noqa: E731 - φ, outputs replaced
    swapped = [xs[1], xs[0], *xs[2:]]
    rotated = xs[1:] + xs[:1]
    pre = smt.parse_asserts(f"(assert {spec.pre})", names)[0]
    fails = z3.And(pre, z3.Or(at(xs) != at(swapped), at(xs) != at(rotated), z3.Not(at(ins))))
    symbols_q = {**names, **{str(x): array.bits for x in xs}}
    query = Obligation(name=ob.name, kind=ob.kind, formula=smt.to_text(fails), symbols=symbols_q,
                       message=ob.message, paths=ob.paths, conjunct=ob.conjunct)
    return query, array.name


# --- products of halves ---------------------------------------------------------------------
#
# Multiplier equivalence defeats bit-blasting: the high word of x*y computed from four 16x16-bit
# partial products (Hacker's Delight 8-2, p25) against the spec's 64-bit product times out in
# every solver. The rewrite below turns the query into one without multiplication, in steps that
# each keep or enlarge the set of models:
# 1. every 32-bit input x becomes concat(x.hi, x.lo) of two fresh 16-bit halves (a renaming);
# 2. z3's simplifier (equivalence-preserving) turns x & 0xffff, x >> 16 and the like into the halves;
# 3. each product whose operands are sums of shifted pieces is multiplied out (the ring identity
#    (a + b)(c + d) = ac + ad + bc + bd, exact modulo 2^w), and a product of two zero-extended
#    pieces of at most 16 bits is written as the zero-extension of their exact 32-bit product;
# 4. each distinct 32-bit partial product is replaced by a fresh variable bounded by the largest
#    value it can take: the only step that loses information, and it only adds models.
# An unsat answer for the result therefore proves the original query unsat; a sat answer says
# nothing and the solvers get the original query.

HALF = 16


def products_of_halves(spec: Spec, ob: Obligation) -> Obligation | None:
    """The obligation rewritten without its multiplications (above), when it multiplies
    variables and the spec has 32-bit scalar inputs to split; None otherwise."""
    if ob.kind != "postcondition" or "bvmul" not in ob.formula:
        return None
    inputs = [z3.BitVec(p.name, p.bits) for p in spec.signature.params if not p.is_array and p.bits == 2 * HALF]
    if not inputs:
        return None
    f = smt.parse_asserts(f"(assert {ob.formula})", ob.symbols)[0]
    if not has_variable_product(f):
        return None
    g = split_products(f, inputs)
    if g is None:
        return None
    symbols = {**ob.symbols, **{n: w for n, w in _widths(g).items() if n not in ob.symbols}}
    return Obligation(name=ob.name, kind=ob.kind, formula=smt.to_text(g), symbols=symbols, message=ob.message,
                      paths=ob.paths, conjunct=ob.conjunct)


def _widths(f: z3.ExprRef) -> dict[str, int]:
    return {str(e): e.size() for e in smt.subterms(f)
            if z3.is_const(e) and z3.is_bv(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED}


def has_variable_product(f: z3.ExprRef) -> bool:
    return any(z3.is_app(e) and e.decl().kind() == z3.Z3_OP_BMUL
               and sum(not z3.is_bv_value(a) for a in e.children()) > 1 for e in smt.subterms(f))


def split_products(f: z3.BoolRef, inputs: list[z3.BitVecRef]) -> z3.BoolRef | None:
    halves = [(x, z3.Concat(z3.BitVec(f"{x}!hi", HALF), z3.BitVec(f"{x}!lo", HALF)))
              for x in inputs if x.size() == 2 * HALF]
    if not halves:
        return None
    g = z3.simplify(z3.substitute(f, *halves))
    products: dict[int, tuple[z3.ExprRef, z3.ExprRef, int]] = {}
    g = z3.simplify(_distribute(g, {}, products))
    if not products:
        return None
    bounds = [z3.ULE(v, z3.BitVecVal(bound, 2 * HALF)) for _, v, bound in products.values()]
    return z3.And(*bounds, g)


def _pieces(t: z3.ExprRef) -> list[tuple[int, z3.ExprRef]] | None:
    """t as a sum of (shift, piece): t == sum of zext(piece) << shift, pieces not overlapping."""
    if z3.is_bv_value(t):
        v, out, pos = t.as_long(), [], 0
        while v:   # a constant's 16-bit chunks
            chunk = v & ((1 << HALF) - 1)
            if chunk:
                out.append((pos, z3.BitVecVal(chunk, HALF)))
            v >>= HALF
            pos += HALF
        return out
    if z3.is_app(t) and t.decl().kind() == z3.Z3_OP_CONCAT:
        out, pos = [], 0
        for part in reversed(t.children()):
            sub = _pieces(part)
            if sub is None:
                return None
            out += [(s + pos, p) for s, p in sub]
            pos += part.size()
        return out
    if z3.is_app(t) and t.decl().kind() == z3.Z3_OP_ZERO_EXT:
        return _pieces(t.arg(0))
    if t.size() <= HALF:
        return [(0, t)]
    return None


def _distribute(e: z3.ExprRef, memo: dict[int, z3.ExprRef], products) -> z3.ExprRef:
    key = e.get_id()
    if key in memo:
        return memo[key]
    r = e
    if z3.is_app(e) and e.num_args() > 0:
        kids = [_distribute(c, memo, products) for c in e.children()]
        if any(k.get_id() != c.get_id() for k, c in zip(kids, e.children(), strict=True)):
            r = e.decl()(*kids)
        if z3.is_app(r) and r.decl().kind() == z3.Z3_OP_BMUL and r.num_args() == 2:
            r = _multiply_out(r, products)
    memo[key] = r
    return r


def _multiply_out(r: z3.ExprRef, products) -> z3.ExprRef:
    a, b = (z3.simplify(c) for c in r.children())
    pa, pb = _pieces(a), _pieces(b)
    w = r.size()
    if pa is None or pb is None:
        return r
    terms = []
    for sa, x in pa:
        for sb, y in pb:
            if sa + sb >= w:
                continue
            xs, ys = sorted((x, y), key=lambda t: t.get_id())
            p = z3.ZeroExt(2 * HALF - xs.size(), xs) * z3.ZeroExt(2 * HALF - ys.size(), ys)
            p = z3.simplify(p)
            if not z3.is_bv_value(p):
                bound = ((1 << xs.size()) - 1) * ((1 << ys.size()) - 1)
                slot = products.setdefault(p.get_id(), (p, z3.BitVec(f"nverify!p{len(products)}", 2 * HALF), bound))
                p = slot[1]
            # the w-bit product is the full one's low w bits (w < 32: z3 narrows masked products)
            wide = z3.ZeroExt(w - 2 * HALF, p) if w > 2 * HALF else z3.Extract(w - 1, 0, p) if w < 2 * HALF else p
            terms.append(wide << (sa + sb) if sa + sb else wide)
    if not terms:
        return z3.BitVecVal(0, w)
    return terms[0] if len(terms) == 1 else z3.simplify(sum(terms[1:], terms[0]))

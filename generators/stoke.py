"""`stoke`: Markov-chain Monte Carlo over instruction sequences, after STOKE (Schkufza, Sharma,
Aiken, ASPLOS 2013), for specs over up to three 32-bit scalars and a 32-bit `ret`.

A program is a fixed number of slots, each an instruction from a per-ISA pool or UNUSED.
Moves: replace an opcode, replace an operand, insert/delete (use or free a slot), swap two.
Cost = Hamming distance of the outputs on the test cases + a latency estimate; a proposal is
accepted by the Metropolis rule with temperature 1/β. Test cases are edge values and random
inputs allowed by `pre`, their expected outputs solved from `post` by Z3. Where `post` allows
several results (p02: "ret is 0 exactly when…"), the test case instead checks `post` itself at
the output (verifier/evaluate.py) and costs a constant when it fails; every counterexample
the verifier returns becomes one more test case (CEGIS). Candidates are run on the test cases
by an evaluator of the pool's semantics in Python — no symbolic machinery; the verifier
decides, so an evaluator mistake costs time, never soundness. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from verifier.evaluate import NotCompilable, compile_term

from . import Candidate, Feedback, Task

M32 = 0xFFFFFFFF
EDGES = [0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x55555555, 0xAAAAAAAA, 16, 255, 256]
CONDS = ("e", "ne", "b", "ae", "be", "a", "l", "ge", "le", "g")


@dataclass(frozen=True)
class Insn:
    op: str
    d: int = 0
    s: int = 0
    imm: int = 0


def _cond(c: str, f: tuple[int, int, int, int]) -> bool:
    zf, sf, cf, of = f
    return {"e": zf == 1, "ne": zf == 0, "b": cf == 1, "ae": cf == 0, "be": cf == 1 or zf == 1,
            "a": cf == 0 and zf == 0, "l": sf != of, "ge": sf == of,
            "le": zf == 1 or sf != of, "g": zf == 0 and sf == of}[c]


def _sub_flags(a: int, b: int) -> tuple[int, int, int, int]:
    r = (a - b) & M32
    of = ((a ^ b) & (a ^ r)) >> 31 & 1
    return int(r == 0), r >> 31, int(a < b), of


def _logic_flags(r: int) -> tuple[int, int, int, int]:
    return int(r == 0), r >> 31, 0, 0


# op -> (uses s register, uses imm, latency); the same pool on both ISAs, rendered per ISA
POOL = {
    "mov": (True, False, 1), "movi": (False, True, 1), "add": (True, False, 1), "addi": (False, True, 1),
    "sub": (True, False, 1), "subi": (False, True, 1), "and": (True, False, 1), "andi": (False, True, 1),
    "or": (True, False, 1), "xor": (True, False, 1), "not": (False, False, 1), "neg": (False, False, 1),
    "shl": (False, True, 1), "shr": (False, True, 1), "sar": (False, True, 1), "mul": (True, False, 3),
    "cmp": (True, False, 1), "cmpi": (False, True, 1), "popcnt": (True, False, 3), "lea": (True, True, 1),
    **{f"cmov{c}": (True, False, 1) for c in CONDS}, **{f"set{c}": (False, False, 2) for c in CONDS},
}
IMMS = [0, 1, 2, 3, 4, 8, 16, 24, 31, 0xFF, 0xFFFF]
LEA_IMMS = [-2, -1, 1, 2, 4, 8]          # lea d, [s + k] / add-sub d, s, #k: no flags
# AArch64 has no general-register popcount (it needs NEON's cnt): not in its pool
OPS = {"x86_64": list(POOL), "aarch64": [op for op in POOL if op != "popcnt"]}
FAMILIES = {arch: sorted({"cmov" if op.startswith("cmov") else "set" if op.startswith("set") else op for op in ops})
            for arch, ops in OPS.items()}


class Fault(Exception):
    """The program reads flags no earlier instruction defined (in the model both ISAs share)."""


# Flags in the evaluator follow one model both ISAs agree on: only these set them (on AArch64
# they render as subs/cmp/negs, and the logic ops and add do not set flags there); shifts,
# multiply and popcnt leave them undefined, and reading undefined flags is a fault.
FLAG_SETTERS = {"x86_64": {"add", "addi", "sub", "subi", "cmp", "cmpi", "and", "andi", "or", "xor", "neg"},
                "aarch64": {"sub", "subi", "cmp", "cmpi", "neg"}}
FLAG_CLOBBERS = {"x86_64": {"shl", "shr", "sar", "mul", "popcnt"}, "aarch64": set()}


def run(prog: list[Insn | None], regs: list[int], arch: str = "x86_64") -> int:
    """Run `prog` on registers (r0 is the result); returns r0 (32 bits). Raises Fault."""
    r = list(regs)
    f: tuple[int, int, int, int] | None = None
    setters, clobbers = FLAG_SETTERS[arch], FLAG_CLOBBERS[arch]
    for i in prog:
        if i is None:
            continue
        op, d, s, k = i.op, i.d, i.s, i.imm
        a = r[d]
        nf = f
        if op == "mov":
            r[d] = r[s]
        elif op == "movi":
            r[d] = k
        elif op in ("add", "addi"):
            b = r[s] if op == "add" else k
            r[d] = (a + b) & M32
            nf = (int(r[d] == 0), r[d] >> 31, int(a + b > M32), ((~(a ^ b)) & (a ^ r[d])) >> 31 & 1)
        elif op in ("sub", "subi", "cmp", "cmpi"):
            b = r[s] if op in ("sub", "cmp") else k
            nf = _sub_flags(a, b)
            if op in ("sub", "subi"):
                r[d] = (a - b) & M32
        elif op in ("and", "andi", "or", "xor"):
            b = r[s] if op != "andi" else k
            r[d] = a & b if op in ("and", "andi") else a | b if op == "or" else a ^ b
            nf = _logic_flags(r[d])
        elif op == "not":
            r[d] = ~a & M32
        elif op == "neg":
            r[d] = -a & M32
            nf = _sub_flags(0, a)
        elif op == "shl":
            r[d] = (a << k) & M32
        elif op == "shr":
            r[d] = a >> k
        elif op == "sar":
            r[d] = ((a - (1 << 32) if a >> 31 else a) >> k) & M32
        elif op == "mul":
            r[d] = (a * r[s]) & M32
        elif op == "lea":
            r[d] = (r[s] + k) & M32
        elif op == "popcnt":
            r[d] = bin(r[s]).count("1")
        elif op.startswith(("cmov", "set")):
            if f is None:
                raise Fault(op)
            cond = _cond(op[4:] if op.startswith("cmov") else op[3:], f)
            if op.startswith("cmov"):
                if cond:
                    r[d] = r[s]
            else:
                r[d] = int(cond)
        if op in setters:
            f = nf
        elif op in clobbers:
            f = None
    return r[0]


# --- the same semantics on all test cases at once ---------------------------------------------
# Each register holds every test case's value in one Python integer, one 64-bit lane per test
# case (SWAR). The 32-bit operations stay inside their lanes: sums need 33 bits; differences are
# taken from a guard bit at 40, whose survival is the borrow; flags are lanes of 0 or 1. One
# big-integer operation then does the work of the whole test suite — what makes this evaluator
# several times faster than running `run` per test case. Multiply and popcnt are done lane by lane.

LANE = 64


class Lanes:
    """Constants for n lanes."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ones = sum(1 << (LANE * i) for i in range(n))
        self.m32 = self.ones * M32
        self.g40 = self.ones << 40

    def pack(self, values: list[int]) -> int:
        return sum((v & M32) << (LANE * i) for i, v in enumerate(values))

    def unpack(self, packed: int) -> list[int]:
        return [packed >> (LANE * i) & M32 for i in range(self.n)]


def faults(prog: list[Insn | None], arch: str) -> bool:
    """Whether `prog` reads flags no earlier instruction defined (decided by the code alone)."""
    setters, clobbers = FLAG_SETTERS[arch], FLAG_CLOBBERS[arch]
    defined = False
    for i in prog:
        if i is None:
            continue
        if i.op.startswith(("cmov", "set")) and not defined:
            return True
        if i.op in setters:
            defined = True
        elif i.op in clobbers:
            defined = False
    return False


def run_lanes(prog: list[Insn | None], regs: list[int], arch: str, L: Lanes) -> int:
    """`run` on packed registers (see Lanes); the caller has checked `faults`. Returns r0."""
    r = list(regs)
    ones, m32, g40 = L.ones, L.m32, L.g40
    zf = sf = cf = of = 0
    setters = FLAG_SETTERS[arch]
    for i in prog:
        if i is None:
            continue
        op, d = i.op, i.d
        a = r[d]
        if op == "mov":
            r[d] = r[i.s]
            continue
        if op == "movi":
            r[d] = (i.imm & M32) * ones
            continue
        if op == "lea":                        # lea d, [s + k]: no flags
            r[d] = (r[i.s] + (i.imm & M32) * ones) & m32
            continue
        if op in ("add", "addi"):
            b = r[i.s] if op == "add" else (i.imm & M32) * ones
            t = a + b
            res = r[d] = t & m32
            if op in setters:
                nz = ((res + m32) >> 32) & ones
                zf, sf, cf = nz ^ ones, (res >> 31) & ones, (t >> 32) & ones
                of = (((a ^ b ^ m32) & (a ^ res)) >> 31) & ones
            continue
        if op in ("sub", "subi", "cmp", "cmpi", "neg"):
            if op == "neg":
                a, b = 0, a
            else:
                b = r[i.s] if op in ("sub", "cmp") else (i.imm & M32) * ones
            t = a + g40 - b
            res = t & m32
            if op in ("sub", "subi", "neg"):
                r[d] = res
            if op in setters:
                nz = ((res + m32) >> 32) & ones
                zf, sf, cf = nz ^ ones, (res >> 31) & ones, ((t >> 40) & ones) ^ ones
                of = (((a ^ b) & (a ^ res)) >> 31) & ones
            continue
        if op in ("and", "andi", "or", "xor"):
            b = r[i.s] if op != "andi" else (i.imm & M32) * ones
            res = r[d] = a & b if op in ("and", "andi") else a | b if op == "or" else a ^ b
            if op in setters:
                nz = ((res + m32) >> 32) & ones
                zf, sf, cf, of = nz ^ ones, (res >> 31) & ones, 0, 0
            continue
        if op == "not":
            r[d] = a ^ m32
        elif op == "shl":
            r[d] = (a << i.imm) & m32
        elif op == "shr":
            r[d] = (a >> i.imm) & (ones * (M32 >> i.imm))
        elif op == "sar":
            k = i.imm
            fill = ((a >> 31) & ones) * ((M32 >> (32 - k)) << (32 - k))
            r[d] = ((a >> k) & (ones * (M32 >> k))) | fill
        elif op == "mul":
            b = r[i.s]
            r[d] = L.pack([x * y for x, y in zip(L.unpack(a), L.unpack(b), strict=True)])
        elif op == "popcnt":
            r[d] = L.pack([x.bit_count() for x in L.unpack(r[i.s])])
        else:                                  # cmovCC / setCC
            c = op[4:] if op.startswith("cmov") else op[3:]
            lt = sf ^ of
            m = {"e": zf, "ne": zf ^ ones, "b": cf, "ae": cf ^ ones, "be": cf | zf, "a": (cf | zf) ^ ones,
                 "l": lt, "ge": lt ^ ones, "le": zf | lt, "g": (zf | lt) ^ ones}[c]
            if op.startswith("cmov"):
                sel = m * M32
                r[d] = (r[i.s] & sel) | (a & (sel ^ m32))
            else:
                r[d] = m
    return r[0]


# --- rendering ----------------------------------------------------------------------------------

A64_CC = {"e": "eq", "ne": "ne", "b": "lo", "ae": "hs", "be": "ls", "a": "hi", "l": "lt", "ge": "ge", "le": "le",
          "g": "gt"}
# x86-64: r0 = eax (the result), r1… = edi, esi, edx (the arguments), then ecx, r8d as scratch.
# AArch64: r0… = w0, w1, …: the first argument arrives in the result register.
X86_REGS = ["eax", "edi", "esi", "edx", "ecx", "r8d"]
X86_LOW = {"eax": "al", "edi": "dil", "esi": "sil", "edx": "dl", "ecx": "cl", "r8d": "r8b"}
X86_64 = {"eax": "rax", "edi": "rdi", "esi": "rsi", "edx": "rdx", "ecx": "rcx", "r8d": "r8"}
TEMPLATES = {
    "x86_64": {
        **{op: f"{op} {{d}}, {{s}}" for op in ("mov", "add", "sub", "and", "or", "xor", "cmp", "popcnt")},
        **{op: f"{op[:-1]} {{d}}, {{imm}}" for op in ("movi", "addi", "subi", "andi", "cmpi")},
        "not": "not {d}", "neg": "neg {d}", "mul": "imul {d}, {s}", "lea": "lea {d}, [{s64}{imm:+d}]",
        **{op: f"{op} {{d}}, {{imm}}" for op in ("shl", "shr", "sar")},
        **{f"cmov{c}": f"cmov{c} {{d}}, {{s}}" for c in CONDS},
        **{f"set{c}": f"set{c} {{low}}\nmovzx {{d}}, {{low}}" for c in CONDS},
    },
    # flags only from subs/cmp/negs, as the evaluator's model for AArch64 says (FLAG_SETTERS)
    "aarch64": {
        "mov": "mov {d}, {s}", "movi": "mov {d}, #{imm}", "add": "add {d}, {d}, {s}", "and": "and {d}, {d}, {s}",
        "xor": "eor {d}, {d}, {s}", "or": "orr {d}, {d}, {s}", "sub": "subs {d}, {d}, {s}",
        "addi": "add {d}, {d}, #{imm}", "subi": "subs {d}, {d}, #{imm}", "andi": "and {d}, {d}, #{imm}",
        "cmp": "cmp {d}, {s}", "cmpi": "cmp {d}, #{imm}", "not": "mvn {d}, {d}", "neg": "negs {d}, {d}",
        "shl": "lsl {d}, {d}, #{imm}", "shr": "lsr {d}, {d}, #{imm}", "sar": "asr {d}, {d}, #{imm}",
        "mul": "mul {d}, {d}, {s}", "lea": "add {d}, {s}, #{imm}",
        **{f"cmov{c}": f"csel {{d}}, {{s}}, {{d}}, {A64_CC[c]}" for c in CONDS},
        **{f"set{c}": f"cset {{d}}, {A64_CC[c]}" for c in CONDS},
    },
}


def render(prog: list[Insn | None], arch: str, nregs: int) -> str:
    """Assembly for `prog`, with the evaluator's registers renamed to the ABI's."""
    names = X86_REGS[:nregs] if arch == "x86_64" else [f"w{k}" for k in range(nregs)]
    out = []
    for i in prog:
        if i is None:
            continue
        template = TEMPLATES[arch].get(i.op)
        if template is None:
            raise ValueError(f"{i.op} is not in the {arch} pool")
        if i.op == "andi" and i.imm == 0 and arch == "aarch64":
            template = "mov {d}, #0"          # and with 0 has no logical-immediate encoding
        if i.op == "lea" and i.imm < 0 and arch == "aarch64":
            template = "sub {d}, {s}, #{neg}"
        d, src = names[i.d], names[i.s]
        out.append(template.format(d=d, s=src, imm=i.imm, neg=-i.imm, low=X86_LOW.get(d, ""),
                                   s64=X86_64.get(src, src)))
    return "\n".join(out + ["ret"])


# --- the search ---------------------------------------------------------------------------------

class Stoke:
    name = "stoke"
    version = "0.1"
    description = "STOKE-style MCMC over instruction sequences (32-bit scalar specs), CEGIS with the verifier"

    SLOTS = 8
    BETA = 1.0
    LENGTH_WEIGHT = 0.01     # cost per unit of latency: a tie-breaker between right programs
    RESTART = 200_000        # proposals without a new best cost before the chain restarts empty
    RELATIONAL_MISS = 8      # the cost of a test case whose post (allowing several results) fails

    def __init__(self) -> None:
        self.proposals = 0
        self.best_cost: float | None = None
        self._submitted: set[bytes] = set()
        self._packed: tuple[Lanes, list[int], int, int, list[int]] | None = None   # see _pack
        self.cost = self._run_best = 0.0
        self._stale = 0
        self._post_memo: dict[tuple[int, int], bool] = {}     # (test case, output) -> post holds
        self._programs: dict[bytes, list[Insn | None]] = {}     # code put forward -> its program
        self._shortest: list[Insn | None] | None = None         # the shortest proven, in optimisation

    # -- set-up
    def start(self, task: Task) -> None:
        from verifier.errors import UsageError

        sig = task.spec.signature
        if any(p.is_array or p.bits != 32 for p in sig.params) or sig.ret is None or sig.ret.bits != 32 \
                or len(sig.params) > 3:
            raise UsageError("the stoke generator handles up to three 32-bit scalar parameters and a 32-bit "
                             f"result; {sig.name} is not of that shape")
        self.task, self.arch = task, task.arch
        self.params = [p.name for p in sig.params]
        # x86-64: result, arguments, two scratch; AArch64: arguments (w0 is also the result), two scratch
        self.nregs = len(self.params) + (2 if task.arch == "aarch64" else 3)
        self.rng = random.Random(task.seed)
        self.deadline = time.monotonic() + task.budget
        self._z3_setup()
        # (registers at entry, the expected ret — or None where post allows several —, the inputs)
        self.tests: list[tuple[list[int], int | None, dict[str, int]]] = []
        for values in self._initial_inputs():
            self._add_test(values)
        self.prog: list[Insn | None] = [None] * self.SLOTS
        # optimisation mode: the given program is proposed first (the verifier must prove it);
        # after each proof only strictly shorter programs are searched (best_len)
        self.target: Candidate | None = None
        self.best_len: int | None = None
        if task.source:
            from .hand import read_candidate

            self.target = read_candidate(task.source, task.arch, sig.name)
        self._restart()
        self.best_cost = self.cost
        self._chains = None
        if task.jobs > 1:                        # independent chains in worker processes
            from .chains import Chains

            self._chains = Chains(f"{__name__}.Stoke", task, stop_on_proof=self.target is None)

    def _z3_setup(self) -> None:
        import z3

        from verifier import smt

        names = dict(self.task.spec.names)
        self._z3 = z3
        self._vars = {n: z3.BitVec(n, w) for n, w in names.items()}
        conj = [smt.parse_asserts(f"(assert {t})", names)[0] for t in [self.task.spec.pre, *self.task.spec.post]]
        self._post = z3.And(*conj)
        try:                                     # pre and post, evaluated at a point without Z3
            self._holds = compile_term(self._post)
        except NotCompilable as e:
            from verifier.errors import UsageError

            name = self.task.spec.signature.name
            raise UsageError(f"the stoke generator cannot evaluate {name}'s post: {e}") from None

    def _expected(self, values: list[int]) -> int | None | bool:
        """The one `ret` post allows for `values`; True when post allows several (a relational
        post, as p02's: the test case then checks post itself); None when `pre` excludes them."""
        z3 = self._z3
        s = z3.Solver()
        s.add(self._post, *[self._vars[n] == v for n, v in zip(self.params, values, strict=True)])
        if s.check() != z3.sat:
            return None                          # outside pre
        ret = s.model().eval(self._vars["ret"], model_completion=True).as_long()
        s.add(self._vars["ret"] != ret)
        return True if s.check() == z3.sat else ret

    def _initial_inputs(self) -> list[list[int]]:
        n = len(self.params)
        out = [[e] * n for e in EDGES]
        out += [[self.rng.choice(EDGES) for _ in range(n)] for _ in range(8)]
        out += [[self.rng.getrandbits(32) for _ in range(n)] for _ in range(16)]
        # and of random magnitude: uniform 32-bit values almost all have their top bits set
        out += [[self.rng.getrandbits(32) >> self.rng.randrange(32) for _ in range(n)] for _ in range(16)]
        return out

    def _add_test(self, values: list[int]) -> None:
        exp = self._expected(values)
        if exp is True:
            exp = None
        elif exp is None:
            return
        # the result and scratch registers hold garbage at entry (the model says arbitrary):
        # random values, so that a program relying on a zeroed register fails its tests
        garbage = [self.rng.getrandbits(32) for _ in range(self.nregs - len(values))]
        if self.arch == "x86_64":         # r0 = eax (result), r1… = edi, esi, edx, then scratch
            regs = [garbage[0], *values, *garbage[1:]]
        else:                             # r0… = w0, w1, …: the first argument arrives in the result register
            regs = [*values, *garbage]
        self.tests.append((regs, exp, dict(zip(self.params, values, strict=True))))
        self._packed = None

    # -- cost and moves
    def _cost(self, prog: list[Insn | None], limit: float = math.inf) -> float:
        """The cost of `prog`; or infinity as soon as it is known to exceed `limit`."""
        if faults(prog, self.arch):
            return 32.0 * len(self.tests) + 100
        if self._packed is None:
            self._packed = self._pack()
        lanes, regs, exp, exact, relational = self._packed
        got = run_lanes(prog, regs, self.arch, lanes)
        wrong = self.LENGTH_WEIGHT * _latency(prog) + ((got ^ exp) & exact).bit_count()
        if relational and wrong <= limit:          # post allows several results: check post itself
            memo = self._post_memo
            for k in relational:
                out = got >> (LANE * k) & M32
                ok = memo.get((k, out))
                if ok is None:
                    if len(memo) > 200_000:
                        memo.clear()
                    ok = memo[(k, out)] = bool(self._holds({**self.tests[k][2], "ret": out}))
                if not ok:
                    wrong += self.RELATIONAL_MISS
                    if wrong > limit:
                        return math.inf
        return wrong if wrong <= limit else math.inf

    def _pack(self) -> tuple[Lanes, list[int], int, int, list[int]]:
        """The test cases as packed registers (see Lanes), rebuilt when a test case is added."""
        lanes = Lanes(len(self.tests))
        regs = [lanes.pack([t[0][k] for t in self.tests]) for k in range(self.nregs)]
        exp = lanes.pack([t[1] or 0 for t in self.tests])
        exact = lanes.pack([M32 if t[1] is not None else 0 for t in self.tests])
        relational = [k for k, t in enumerate(self.tests) if t[1] is None]
        return lanes, regs, exp, exact, relational

    def _imms(self, op: str) -> list[int]:
        """AArch64 add/sub/cmp immediates have 12 bits."""
        if op == "lea":
            return LEA_IMMS
        if self.arch == "aarch64" and op in ("addi", "subi", "cmpi"):
            return [i for i in IMMS if i < 4096]
        return IMMS

    def _random_insn(self) -> Insn:
        # an opcode family first, then its condition: otherwise the ten cmovCC and ten setCC would
        # make up 40% of all proposals
        op = self.rng.choice(FAMILIES[self.arch])
        if op in ("cmov", "set"):
            op += self.rng.choice(CONDS)
        uses_s, uses_imm, _ = POOL[op]
        imm = self.rng.choice(self._imms(op)) if uses_imm else 0
        if op in ("shl", "shr", "sar"):
            imm = self.rng.randrange(1, 32)
        return Insn(op, self.rng.randrange(self.nregs), self.rng.randrange(self.nregs) if uses_s else 0, imm)

    def _move(self, prog: list[Insn | None]) -> list[Insn | None]:
        p = list(prog)
        k = self.rng.randrange(len(p))
        move = self.rng.random()
        if move < 0.25:                                    # insert/delete: use or free a slot
            p[k] = None if p[k] is not None and self.rng.random() < 0.5 else self._random_insn()
        elif move < 0.5 and (old := p[k]) is not None:     # replace the opcode (same operands)
            i = self._random_insn()
            p[k] = Insn(i.op, old.d, old.s, i.imm)     # (the new opcode's own immediate)
        elif move < 0.85 and (cur := p[k]) is not None:    # replace an operand
            i = cur
            which = self.rng.randrange(3)
            if which == 0:
                p[k] = Insn(i.op, self.rng.randrange(self.nregs), i.s, i.imm)
            elif which == 1:
                p[k] = Insn(i.op, i.d, self.rng.randrange(self.nregs), i.imm)
            else:
                p[k] = Insn(i.op, i.d, i.s, self.rng.randrange(1, 32) if i.op in ("shl", "shr", "sar")
                            else self.rng.choice(self._imms(i.op)))
        else:                                              # swap two slots
            j = self.rng.randrange(len(p))
            p[k], p[j] = p[j], p[k]
        return p

    # -- the generator protocol
    def propose(self) -> Candidate | None:
        from .hand import assemble

        if self._chains is not None:
            return self._chains.propose()
        if self.target is not None and not self._submitted:
            self._submitted.add(self.target.code)
            return self.target
        cap = self.task.iterations or 1 << 62
        while time.monotonic() < self.deadline and self.proposals < cap:
            for _ in range(min(2000, cap - self.proposals)):
                cand = self._move(self.prog)
                self.proposals += 1
                if self.best_len is not None and _length(cand, self.arch) >= self.best_len:
                    continue                               # optimisation: only strictly shorter programs
                # Metropolis: accept when u < exp(-β·(c - cost)), i.e. c <= cost - ln(u)/β; drawing
                # u first lets the cost stop counting as soon as c passes that bound
                u = self.rng.random()
                limit = self.cost - math.log(u) / self.BETA if u > 0 else math.inf
                c = self._cost(cand, limit)
                if c <= limit:
                    self.prog, self.cost = cand, c
                    self.best_cost = min(self.best_cost or c, c)
                    if c < self._run_best:
                        self._run_best, self._stale = c, 0
                self._stale += 1
                if self._stale > self.RESTART:             # stuck in a local minimum: start afresh
                    self._restart()
                # right on every test case (and, in optimisation, shorter: only such are accepted)
                if not self._wrong(self.cost, self.prog):
                    self.prog = self._trim(self.prog)
                    self.cost = self._cost(self.prog)
                    text = render(self.prog, self.arch, self.nregs)
                    try:
                        code = assemble(self.arch, text)
                    except Exception:  # noqa: BLE001 - an unencodable program is just a bad proposal
                        self.prog, self.cost = [None] * self.SLOTS, self._cost([None] * self.SLOTS)
                        continue
                    if code not in self._submitted:
                        self._submitted.add(code)
                        self._programs[code] = list(self.prog)
                        return Candidate(code, note=text, cost=self.cost)
        return None

    def _restart(self) -> None:
        """Start the chain afresh: from the empty program, or (optimisation, every other time) from
        the shortest proven program less one instruction, which is often one move from shorter."""
        self.prog = [None] * self.SLOTS
        if self._shortest is not None and self.rng.random() < 0.5:
            used = [k for k, i in enumerate(self._shortest) if i is not None]
            if used:
                self.prog = list(self._shortest)
                self.prog[self.rng.choice(used)] = None
        self.cost = self._cost(self.prog)
        self._run_best, self._stale = self.cost, 0

    def _trim(self, prog: list[Insn | None]) -> list[Insn | None]:
        """Drop each instruction the test cases do not need (dead code the chain carried along)."""
        p = list(prog)
        for k in reversed(range(len(p))):        # readers before the writers they depend on
            if (insn := p[k]) is not None:
                p[k] = None
                if self._wrong(self._cost(p), p):
                    p[k] = insn
        return p

    def _wrong(self, cost: float, prog: list[Insn | None]) -> bool:
        """Whether `prog`, of cost `cost`, is wrong on some test case (its cost beyond latency)."""
        return cost - self.LENGTH_WEIGHT * _latency(prog) >= 0.5

    def feedback(self, candidate: Candidate, fb: Feedback) -> None:
        if self._chains is not None:
            self._chains.feedback(candidate, fb)
            return
        if fb.verdict == "proven":
            if self.target is None:
                self.deadline = 0.0                        # synthesis: the first proof ends the search
            else:           # optimisation: from now on only shorter programs, searched afresh (a
                # correct program is a deep minimum the chain would rarely climb out of)
                self.best_len = _instructions(candidate.code, self.arch)
                self._shortest = self._programs.get(candidate.code)
                self._restart()
            return
        values = [fb.inputs[p] for p in self.params if p in fb.inputs]
        if len(values) == len(self.params):
            self._add_test(values)                         # CEGIS: the counterexample is a new test case
            self.cost = self._cost(self.prog)

    def close(self) -> None:
        if self._chains is not None:
            self._chains.close()

    def stats(self) -> dict:
        if self._chains is not None:
            return self._chains.stats()
        return {"proposals": self.proposals, "best_cost": self.best_cost, "tests": len(self.tests),
                "best_length": self.best_len}


def _instructions(code: bytes, arch: str) -> int:
    """Instructions in `code` (ret included), as capstone decodes them."""
    from verifier.isa.decode import decode_at

    n, off = 0, 0
    while off < len(code):
        i = decode_at(arch, code, 0x400000, off)
        if i is None:
            return 10**6
        n, off = n + 1, off + i.size
    return n


def _latency(prog: list[Insn | None]) -> int:
    return sum(POOL[i.op][2] for i in prog if i is not None)


def _length(prog: list[Insn | None], arch: str) -> int:
    """Instructions `prog` renders to, ret included (x86-64 setcc renders as setcc + movzx)."""
    wide = 2 if arch == "x86_64" else 1
    return 1 + sum(wide if i.op.startswith("set") else 1 for i in prog if i is not None)

"""`stoke`: Markov-chain Monte Carlo over instruction sequences, after STOKE (Schkufza, Sharma,
Aiken, ASPLOS 2013), for specs over 32-bit scalars whose `post` fixes `ret`.

A program is a fixed number of slots, each an instruction from a per-ISA pool or UNUSED.
Moves: replace an opcode, replace an operand, insert/delete (use or free a slot), swap two.
Cost = Hamming distance of the outputs on the test cases + a latency estimate; a proposal is
accepted by the Metropolis rule with temperature 1/β. Test cases are edge values and random
inputs allowed by `pre`, their expected outputs solved from `post` by Z3; every counterexample
the verifier returns becomes one more test case (CEGIS). Candidates are run on the test cases
by an evaluator of the pool's semantics in Python — no symbolic machinery; the verifier
decides, so an evaluator mistake costs time, never soundness. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from . import Candidate, Feedback, Task

M32 = 0xFFFFFFFF
EDGES = [0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x55555555, 0xAAAAAAAA, 16, 255, 256]
CONDS = ("e", "ne", "b", "ae", "l", "ge", "le", "g")


@dataclass(frozen=True)
class Insn:
    op: str
    d: int = 0
    s: int = 0
    imm: int = 0


def _cond(c: str, f: tuple[int, int, int, int]) -> bool:
    zf, sf, cf, of = f
    return {"e": zf == 1, "ne": zf == 0, "b": cf == 1, "ae": cf == 0, "l": sf != of, "ge": sf == of,
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
    "cmp": (True, False, 1), "cmpi": (False, True, 1), "popcnt": (True, False, 3),
    **{f"cmov{c}": (True, False, 1) for c in CONDS}, **{f"set{c}": (False, False, 2) for c in CONDS},
}
IMMS = [0, 1, 2, 3, 4, 8, 16, 24, 31, 0xFF, 0xFFFF]
# AArch64 has no general-register popcount (it needs NEON's cnt): not in its pool
OPS = {"x86_64": list(POOL), "aarch64": [op for op in POOL if op != "popcnt"]}


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


# --- rendering ----------------------------------------------------------------------------------

A64_CC = {"e": "eq", "ne": "ne", "b": "lo", "ae": "hs", "l": "lt", "ge": "ge", "le": "le", "g": "gt"}
# x86-64: r0 = eax (the result), r1… = edi, esi, edx (the arguments), then ecx, r8d as scratch.
# AArch64: r0… = w0, w1, …: the first argument arrives in the result register.
X86_REGS = ["eax", "edi", "esi", "edx", "ecx", "r8d"]
X86_LOW = {"eax": "al", "edi": "dil", "esi": "sil", "edx": "dl", "ecx": "cl", "r8d": "r8b"}
TEMPLATES = {
    "x86_64": {
        **{op: f"{op} {{d}}, {{s}}" for op in ("mov", "add", "sub", "and", "or", "xor", "cmp", "popcnt")},
        **{op: f"{op[:-1]} {{d}}, {{imm}}" for op in ("movi", "addi", "subi", "andi", "cmpi")},
        "not": "not {d}", "neg": "neg {d}", "mul": "imul {d}, {s}",
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
        "mul": "mul {d}, {d}, {s}",
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
        d = names[i.d]
        out.append(template.format(d=d, s=names[i.s], imm=i.imm, low=X86_LOW.get(d, "")))
    return "\n".join(out + ["ret"])


# --- the search ---------------------------------------------------------------------------------

class Stoke:
    name = "stoke"
    version = "0.1"
    description = "STOKE-style MCMC over instruction sequences (32-bit scalar specs), CEGIS with the verifier"

    SLOTS = 8
    BETA = 1.0

    def __init__(self) -> None:
        self.proposals = 0
        self.best_cost: float | None = None
        self._submitted: set[bytes] = set()

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
        self.tests: list[tuple[list[int], int]] = []
        for values in self._initial_inputs():
            self._add_test(values)
        self.prog: list[Insn | None] = [None] * self.SLOTS
        if task.source:
            self.prog = self._from_source(task.source)
        self.cost = self._cost(self.prog)
        self.best_cost = self.cost

    def _z3_setup(self) -> None:
        import z3

        from verifier import smt

        names = dict(self.task.spec.names)
        self._z3 = z3
        self._vars = {n: z3.BitVec(n, w) for n, w in names.items()}
        conj = [smt.parse_asserts(f"(assert {t})", names)[0] for t in [self.task.spec.pre, *self.task.spec.post]]
        self._post = z3.And(*conj)

    def _expected(self, values: list[int]) -> int | None:
        z3 = self._z3
        s = z3.Solver()
        s.add(self._post, *[self._vars[n] == v for n, v in zip(self.params, values, strict=True)])
        if s.check() != z3.sat:
            return None                          # outside pre
        ret = s.model().eval(self._vars["ret"], model_completion=True).as_long()
        s.add(self._vars["ret"] != ret)
        if s.check() == z3.sat:
            from verifier.errors import UsageError

            raise UsageError(f"the stoke generator needs a post that fixes ret; for {self.params} = {values} it "
                             "allows several results (give a reference program with --from to optimise instead)")
        return ret

    def _initial_inputs(self) -> list[list[int]]:
        n = len(self.params)
        out = [[e] * n for e in EDGES]
        out += [[self.rng.choice(EDGES) for _ in range(n)] for _ in range(8)]
        out += [[self.rng.getrandbits(32) for _ in range(n)] for _ in range(16)]
        return out

    def _add_test(self, values: list[int]) -> None:
        exp = self._expected(values)
        if exp is not None:
            # the result and scratch registers hold garbage at entry (the model says arbitrary):
            # random values, so that a program relying on a zeroed register fails its tests
            if self.arch == "x86_64":     # r0 = eax (result), r1… = edi, esi, edx, then scratch
                garbage = [self.rng.getrandbits(32) for _ in range(self.nregs - len(values))]
                self.tests.append(([garbage[0], *values, *garbage[1:]], exp))
            else:                         # r0… = w0, w1, …: the first argument arrives in the result register
                garbage = [self.rng.getrandbits(32) for _ in range(self.nregs - len(values))]
                self.tests.append(([*values, *garbage], exp))

    def _from_source(self, source: str) -> list[Insn | None]:
        from verifier.errors import UsageError

        raise UsageError("stoke optimisation mode (--from) is not available yet; start from an empty program")

    # -- cost and moves
    def _cost(self, prog: list[Insn | None]) -> float:
        wrong = 0
        for regs, exp in self.tests:
            try:
                got = run(prog, regs, self.arch)
            except Fault:
                return 32.0 * len(self.tests) + 100
            wrong += bin(got ^ exp).count("1")
        latency = sum(POOL[i.op][2] for i in prog if i is not None)
        return wrong + 0.01 * latency

    def _imms(self, op: str) -> list[int]:
        """AArch64 add/sub/cmp immediates have 12 bits."""
        if self.arch == "aarch64" and op in ("addi", "subi", "cmpi"):
            return [i for i in IMMS if i < 4096]
        return IMMS

    def _random_insn(self) -> Insn:
        op = self.rng.choice(OPS[self.arch])
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

        while time.monotonic() < self.deadline:
            for _ in range(2000):
                cand = self._move(self.prog)
                self.proposals += 1
                c = self._cost(cand)
                if c <= self.cost or self.rng.random() < math.exp(-self.BETA * (c - self.cost)):
                    self.prog, self.cost = cand, c
                    self.best_cost = min(self.best_cost or c, c)
                if self.cost < 1:                          # right on every test case
                    text = render(self.prog, self.arch, self.nregs)
                    try:
                        code = assemble(self.arch, text)
                    except Exception:  # noqa: BLE001 - an unencodable program is just a bad proposal
                        self.prog, self.cost = [None] * self.SLOTS, self._cost([None] * self.SLOTS)
                        continue
                    if code not in self._submitted:
                        self._submitted.add(code)
                        return Candidate(code, note=text, cost=self.cost)
        return None

    def feedback(self, candidate: Candidate, fb: Feedback) -> None:
        if fb.verdict == "proven":
            self.deadline = 0.0                            # done: the first proof ends the search
            return
        values = [fb.inputs[p] for p in self.params if p in fb.inputs]
        if len(values) == len(self.params):
            self._add_test(values)                         # CEGIS: the counterexample is a new test case
            self.cost = self._cost(self.prog)

    def stats(self) -> dict:
        return {"proposals": self.proposals, "best_cost": self.best_cost, "tests": len(self.tests)}

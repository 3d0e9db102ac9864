"""One instance of a verified instruction form -> its co-simulation: the instruction wrapped in a
harness that loads every register from an image array and stores it back (flags through setcc /
mrs nzcv, the FP control state through stmxcsr / fnstcw / mrs), explored by nverify's own engine
and run on the CPU oracle from random entry states (solver models of each path, sample.py's
wishes: random bits, boundary values, the path's literals; flags, MXCSR and the x87 control word
included); every difference is a `Mismatch`. What the model leaves to fresh unknowns (undefined
flags, bsf of 0) is not compared, and a flag the form lists as undefined must be one of them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .. import smt
from ..arch import DEFAULT_ABI
from ..blob import Blob
from ..evaluate import compile_terms
from ..exploration import Exploration, PathResult
from ..isa.table import Form
from ..spec import Spec, parse
from . import concrete, cosim, host, sample
from .image import assemble

__all__ = ["Form", "FormRun", "Harness", "Mismatch", "check", "harness", "instances"]

BASE = 0x400000
X86_GPRS = ("rax", "rbx", "rcx", "rdx", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
X86_FLAGS = (("setb", "C"), ("setp", "P"), ("sete", "Z"), ("sets", "S"), ("seto", "O"))
A64_GPRS = (*(f"x{i}" for i in range(2, 18)), *(f"x{i}" for i in range(19, 29)))
MEM_WORDS = 8                  # the memory operand's array m: the instance addresses [base + 16]


@dataclass(frozen=True)
class Harness:
    arch: str
    line: str
    code: bytes
    slots: tuple[str, ...]     # what each element of the image p holds after the run
    insn_addr: int


@dataclass
class Mismatch:
    line: str
    what: str                  # what differs: CPU vs model
    state: dict[str, int]      # the entry state (register image, flags, FP control, memory)

    def show(self) -> str:
        st = ", ".join(f"{k}={v:#x}" for k, v in self.state.items())
        return f"{self.line}: {self.what}\n    entry state: {st}"


@dataclass
class FormRun:
    line: str
    states: int = 0
    seconds: float = 0.0
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str = ""
    unsupported: str = ""      # the engine refuses the instance (a proof using it is UNKNOWN)


def harness(arch: str, line: str, form: Form | None = None, avx: bool = True) -> Harness:
    return _x86(line, form, avx) if arch == "x86_64" else _a64(line)


def _x86(line: str, form: Form | None, avx: bool) -> Harness:
    vb, vname = (32, "ymm") if avx else (16, "xmm")
    vld = "vmovdqu {v}{k}, [rsi + {o}]" if avx else "movdqu {v}{k}, [rsi + {o}]"
    vst = "vmovdqu [rsi + {o}], {v}{k}" if avx else "movdqu [rsi + {o}], {v}{k}"
    slots = [f"{vname}{k}.q{j}" for k in range(16) for j in range(vb // 8)]
    g0 = len(slots) * 8
    slots += [*X86_GPRS, "rdi"]
    f0 = len(slots) * 8
    slots += [f"flag {c}" for _, c in X86_FLAGS] + ["mxcsr", "fpcw", "pushed"]
    saved = ("rbx", "rbp", "r12", "r13", "r14", "r15")
    head = [f"push {r}" for r in saved] + ["xchg rdi, rsi"]
    head += [vld.format(v=vname, k=k, o=k * vb) for k in range(16)]
    head += [f"mov {r}, qword ptr [rsi + {g0 + 8 * i}]" for i, r in enumerate(X86_GPRS)]
    tail = [f"{s} byte ptr [rsi + {f0 + 8 * i}]" for i, (s, _) in enumerate(X86_FLAGS)]
    mn = form.mnemonic if form else line.split()[0]
    if mn == "push":     # keep the frame: the pushed word goes to the image
        tail.append(f"pop qword ptr [rsi + {f0 + 8 * 7}]")
    elif mn == "pop":
        tail.append("lea rsp, [rsp - 8]")
    tail += [f"mov qword ptr [rsi + {g0 + 8 * i}], {r}" for i, r in enumerate((*X86_GPRS, "rdi"))]
    tail += [vst.format(v=vname, k=k, o=k * vb) for k in range(16)]
    tail += [f"stmxcsr dword ptr [rsi + {f0 + 40}]", f"fnstcw word ptr [rsi + {f0 + 48}]"]
    tail += [f"pop {r}" for r in reversed(saved)] + ["ret"]
    return _build("x86_64", line, head, tail, tuple(slots))


def _a64(line: str) -> Harness:
    slots = [f"q{k}.d{j}" for k in range(32) for j in range(2)] + list(A64_GPRS) + ["nzcv", "fpsr", "fpcr"]
    g = len(A64_GPRS)
    head = ["stp x19, x20, [sp, #-96]!", "stp x21, x22, [sp, #16]", "stp x23, x24, [sp, #32]",
            "stp x25, x26, [sp, #48]", "stp x27, x28, [sp, #64]", "stp d8, d9, [sp, #80]",
            "sub sp, sp, #64", "stp d10, d11, [sp]", "stp d12, d13, [sp, #16]", "stp d14, d15, [sp, #32]"]
    head += [f"ldp q{k}, q{k + 1}, [x0, #{16 * k}]" for k in range(0, 32, 2)]
    head += ["add x0, x0, #512"]
    head += [f"ldp {A64_GPRS[i]}, {A64_GPRS[i + 1]}, [x0, #{8 * i}]" for i in range(0, g, 2)]
    head += ["sub x0, x0, #512"]
    tail = ["add x0, x0, #512"]
    tail += [f"stp {A64_GPRS[i]}, {A64_GPRS[i + 1]}, [x0, #{8 * i}]" for i in range(0, g, 2)]
    for i, reg in enumerate(("nzcv", "fpsr", "fpcr")):
        tail += [f"mrs x2, {reg}", f"str x2, [x0, #{8 * (g + i)}]"]
    tail += ["sub x0, x0, #512"]
    tail += [f"stp q{k}, q{k + 1}, [x0, #{16 * k}]" for k in range(0, 32, 2)]
    tail += ["ldp d10, d11, [sp]", "ldp d12, d13, [sp, #16]", "ldp d14, d15, [sp, #32]", "add sp, sp, #64",
             "ldp d8, d9, [sp, #80]", "ldp x27, x28, [sp, #64]", "ldp x25, x26, [sp, #48]",
             "ldp x23, x24, [sp, #32]", "ldp x21, x22, [sp, #16]", "ldp x19, x20, [sp], #96", "ret"]
    return _build("aarch64", line, head, tail, tuple(slots))


def _build(arch: str, line: str, head: list[str], tail: list[str], slots: tuple[str, ...]) -> Harness:
    before = assemble(arch, "\n".join(head), BASE)
    insn = assemble(arch, line, BASE + len(before))
    after = assemble(arch, "\n".join(tail), BASE + len(before) + len(insn))
    if not (before and insn and after):
        raise ValueError(f"{line}: does not assemble in the harness")
    return Harness(arch, line, before + insn + after, slots, BASE + len(before))


# --- co-simulation ---------------------------------------------------------------------------------

def spec_for(h: Harness) -> Spec:
    return parse(f'(set-info :nverify-signature "void forms(uint64_t p[{len(h.slots)}], '
                 f'uint64_t m[{MEM_WORDS}])")\n(define-fun post () Bool true)\n', "<forms>")


def explore(h: Harness) -> tuple[Blob, Spec, Exploration]:
    from ..symexec import explore as run

    blob = Blob(code=h.code, arch=h.arch, base=BASE, entry=BASE, name=None, source=h.line, fmt="raw")
    spec = spec_for(h)
    return blob, spec, run(blob, spec, DEFAULT_ABI[h.arch])


def check(h: Harness, form: Form | None, states: int, seed: int = 0) -> FormRun:
    """Co-simulate harness `h` on about `states` entry states (split over its paths and the faults
    its instruction may raise)."""
    from . import run_many

    t0 = time.perf_counter()
    out = FormRun(h.line)
    try:
        blob, spec, ex = explore(h)
    except Exception as e:   # noqa: BLE001 - a form the engine refuses is reported, not a crash
        out.error = f"exploration failed: {type(e).__name__}: {e}"
        return out
    abi = DEFAULT_ABI[h.arch]
    bad = [p for p in ex.paths if p.status not in ("returned", "violation")]
    if bad and all(p.status == "unsupported-instruction" for p in bad):
        out.unsupported = bad[0].message
        return out
    if bad or ex.truncated:
        out.error = "; ".join(f"{p.status}: {p.message}" for p in bad) or "exploration truncated"
        return out
    cases = _cases(ex, h)
    per = max(1, -(-states // max(1, len(cases))))
    avx = h.arch == "x86_64" and host.has_avx()
    names = {**ex.symbols, **spec.names}
    regs = _entry_fns(ex, names)
    todo = []
    sampler = sample.Sampler(spec, ex, [path for path, _ in cases], [{} for _ in cases], seed * 7919)
    for k, (path, faults) in enumerate(cases):
        for model, _ in sampler.states(k, per, seed * 7919 + k):
            known = {f"reg:{r}": f(model) for r, f in regs.items()}
            todo.append((path, faults, model, concrete.build(blob, abi, ex, model, spec.names, avx, known)))
    runs = run_many([c.state for *_, c in todo])
    undefined = set(form.undefined) if form and h.arch == "x86_64" else set()
    for (path, faults, model, c), r in zip(todo, runs, strict=True):
        if r.error:
            out.error = out.error or f"the oracle could not run a state: {r.error}"
            continue
        out.states += 1
        why = _compare(blob, abi, h, c, r, path, faults, model, names, undefined)
        if why:
            out.mismatches.append(Mismatch(h.line, why, _entry(h, ex, model)))
    out.seconds = time.perf_counter() - t0
    return out


def _entry_fns(ex: Exploration, names: dict) -> dict:
    """Entry registers that are terms (rflags, mxcsr ...), compiled once."""
    terms = {r: t for r, t in ex.entry_registers.items() if t not in ex.symbols}
    text = "".join(f"(assert (= {t} {t}))\n" for t in terms.values())
    exprs = [f.arg(0) for f in smt.parse_asserts(text, names)] if terms else []
    return dict(zip(terms, compile_terms(exprs), strict=True))


def _cases(ex: Exploration, h: Harness) -> list[tuple[PathResult, str]]:
    """Each returned path, and each fault the instruction itself may raise (as a pseudo-path whose
    condition is the violation's): the CPU must return on the first and fault on the second."""
    out = [(p, "") for p in ex.paths if p.status == "returned"]
    for v in ex.violations:
        if v.addr == h.insn_addr and v.kind in ("memory-safety", "policy"):
            out.append((PathResult(-1, "violation", v.cond, {}, v.trace, v.addr, v.message), v.message))
    return out


def _compare(blob, abi, h: Harness, c, r, path: PathResult, faults: str, model: dict, names: dict,
             undefined: set[str]) -> str:
    got = cosim.judge(blob, abi, c, r)
    if faults:
        return "" if not got.returned else f"the model faults ({faults}), the CPU returned normally"
    if not got.returned:
        return "the CPU did not return: " + ("; ".join(m for _, _, m in got.events) or got.error or "?")
    if got.events:
        return got.events[0][2]
    fresh = [n for n in names if n.startswith("$undef")]
    fns = _compiled(path, len(h.slots), names)
    lows = [f({**model, **{n: 0 for n in fresh}}) for f in fns]
    highs = [f({**model, **{n: (1 << names[n]) - 1 for n in fresh}}) for f in fns] if fresh else lows
    for i, slot in enumerate(h.slots):
        lo, hi = lows[i], highs[i]
        keep = ~(lo ^ hi) & (2**64 - 1)
        have = got.outputs[f"p.{i}.out"]
        if slot.startswith("flag ") and slot[5:] in undefined and lo == hi:
            return f"{slot} is undefined after {h.line.split()[0]}, but the model fixes it to {lo & 1}"
        if slot.startswith("flag "):
            keep &= 1
        if (have ^ lo) & keep:
            return f"{slot} is {have:#x} on the CPU, {lo:#x} in the model (bits compared {keep:#x})"
    for i in range(MEM_WORDS):
        want = lows[len(h.slots) + i]
        have = got.outputs[f"m.{i}.out"]
        if have != want:
            return f"memory m.{i} is {have:#x} on the CPU, {want:#x} in the model"
    return ""


_COMPILED: dict[int, list] = {}


def _compiled(path: PathResult, slots: int, names: dict) -> list:
    """The path's outputs (p.0.out .. then m.0.out ..) as functions of the entry values: parsed
    once, evaluated per state in Python (evaluate.py; smt.evaluate costs ~0.1 s per term here)."""
    key = id(path)
    if key not in _COMPILED:
        keys = [f"p.{i}.out" for i in range(slots)] + [f"m.{i}.out" for i in range(MEM_WORDS)]
        text = "".join(f"(assert (= {path.outputs[k]} {path.outputs[k]}))\n" for k in keys)
        exprs = [f.arg(0) for f in smt.parse_asserts(text, names)]
        _COMPILED.clear()
        _COMPILED[key] = compile_terms(exprs)
    return _COMPILED[key]


def _entry(h: Harness, ex: Exploration, model: dict) -> dict[str, int]:
    """The entry state in words: registers the image loads, entry flags and FP control, memory."""
    out: dict[str, int] = {}
    for i, slot in enumerate(h.slots):
        if not slot.startswith(("flag", "mxcsr", "fpcw", "pushed", "nzcv", "fpsr", "fpcr")):
            out[slot] = model.get(f"p.{i}", 0)
    for reg in ("rflags", "mxcsr", "fpcw", "nzcv", "fpcr", "fpsr"):
        t = ex.entry_registers.get(reg)
        if t is not None:
            out[reg] = smt.evaluate(t, {**ex.symbols}, model)
    out["m"] = model.get(ex.entry_registers.get("rsi" if h.arch == "x86_64" else "x1", ""), 0)
    out |= {f"m.{i}": model.get(f"m.{i}", 0) for i in range(MEM_WORDS)}
    return out


# --- instances of the tables -----------------------------------------------------------------------

SKIP = {"leave": "sets rsp from rbp, which the harness loads at random",
        "movabs": "an absolute address", "cld": "", "endbr64": ""}


def instances(arch: str) -> list[tuple[Form, str]]:
    """(form, assembly line) for every instance of `arch`'s table the verified instruction set
    admits as that form (keystone may choose another encoding; those are left out)."""
    from .. import isa
    from ..isa import samples

    out: list[tuple[Form, str]] = []
    for forms in isa.TABLES[arch].values():
        for form in forms:
            if form.group in ("control flow", "hints") or form.mnemonic in SKIP:
                continue
            for line in (samples.x86(form) if arch == "x86_64" else samples.a64(form)):
                code = _try_assemble(arch, line)
                if not code:
                    continue
                blob = Blob(code + (b"\xc3" if arch == "x86_64" else bytes.fromhex("c0035fd6")), arch, BASE,
                            BASE, None, line, "raw")
                d = isa.check(blob, BASE)
                if d.kind == "ok" and d.form == form:
                    out.append((form, line))
    return list(dict.fromkeys(out))


def _try_assemble(arch: str, line: str) -> bytes:
    import keystone

    try:
        return assemble(arch, line, BASE)
    except keystone.KsError:
        return b""

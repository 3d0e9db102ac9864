"""Replays a counterexample on the CPU oracle (unicorn as the fallback): model -> `Replay` + who ran it.

The CPU judges what it can see: the outputs (return register, array exit values), the final
registers, a fault signal, and a stray write into a canary byte of a mapped page. What it cannot
see — a read or write of memory that happens to be mapped (the stack window outside the frame,
the slack of a page that holds an array), or a forbidden instruction that runs without trapping —
is judged by unicorn's hooks (verifier/replay.py), and the record says so.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from .. import replay as uc_replay
from ..arch import FP_CALLEE_SAVED, Abi
from ..blob import Blob
from ..exploration import Exploration, PathResult
from ..names import CODE
from ..rodata import LinkError
from . import concrete, host
from .state import Run

# What a fault signal shows, as an obligation kind (DESIGN §4): a fault of a data access or of an
# aligned form is memory safety; an illegal instruction, a trap or a system call is policy; a
# division fault is the policy check of symexec's divide_overflow.
SIGNAL_KIND: dict[int, str] = {signal.SIGSEGV: "memory-safety", signal.SIGBUS: "memory-safety", signal.SIGILL: "policy",
               signal.SIGTRAP: "policy", signal.SIGSYS: "policy", signal.SIGFPE: "policy"}
RET_DEFAULT = 0x3EFF_1000_0000   # pipeline.RET_BAND: no array, stack or runner page is there
SI_KERNEL = 0x80          # si_code of a SIGSEGV from #GP: no faulting address


@dataclass
class OracleReplay(uc_replay.Replay):
    oracle: dict = field(default_factory=dict)     # {"oracle", "cpu", "signal", "judged_by", ...}


def oracle_for(arch: str) -> str | None:
    """'native' or 'qemu' where the CPU oracle can run `arch` here, else None (unicorn only)."""
    return host.available(arch)


def replay(blob: Blob, abi: Abi, ex: Exploration, model: dict[str, int], loop_bound: int,
           names: dict[str, int], kind: str) -> OracleReplay:
    """Replay `model` for an obligation of `kind` on the CPU where it can judge, else on unicorn."""
    from . import run

    if ex.return_address in ex.symbols and ex.return_address not in model:
        # The counterexample does not depend on the return address (concrete testing leaves it out):
        # a page the oracle can map its landing stub at (0 is below mmap_min_addr).
        model = {**model, ex.return_address: RET_DEFAULT}
    # read-only data the counterexample does not depend on goes where the code can reach it
    model = {**{n: hi if n == CODE else (lo + hi) // 2 for n, (lo, hi) in ex.rodata.items()}, **model}
    how = oracle_for(blob.arch)
    if how is None:
        return _unicorn(blob, abi, ex, model, loop_bound, names, {"oracle": "unicorn",
                        "why": f"no CPU oracle for {blob.arch} on this machine"})
    try:
        c = concrete.build(blob, abi, ex, model, names, host.has_avx())
    except LinkError as e:
        return OracleReplay(error=f"the counterexample places read-only data where the code cannot reach it ({e})",
                            oracle={"oracle": how})
    r = run(c.state)
    info: dict = {"oracle": r.oracle, "cpu": r.cpu}
    if r.error:
        info["why"] = f"the CPU oracle could not run it: {r.error}"
        return _unicorn(blob, abi, ex, model, loop_bound, names, {"oracle": "unicorn", **info})
    out = judge(blob, abi, c, r)
    out.oracle = info | _fault_info(r)
    if kind != "postcondition" and not any(e[0] == kind for e in out.events) and not _frame_seen(kind, out, abi):
        # The CPU ran it without showing the violation: the model's claim may be about memory that
        # is mapped here (or a rule only the hooks check). Unicorn's hooks judge that one check.
        u = uc_replay.replay(blob, abi, ex, model, loop_bound, names)
        seen = [e for e in u.events if e[0] == kind]
        out.oracle["judged_by"] = "unicorn"
        out.oracle["why"] = (f"the CPU shows no {kind} violation (an access of mapped memory or a rule it "
                             "does not check): unicorn's hooks judged it")
        out.events += seen
    else:
        out.oracle["judged_by"] = r.oracle
    return out


def judge(blob: Blob, abi: Abi, c: concrete.Concrete, r: Run) -> OracleReplay:
    """What the CPU's run shows, in replay's terms: events, outputs, final registers."""
    out = OracleReplay(entry_registers=dict(c.regs))
    if r.timeout:
        out.events.append(("loop-bound", blob.entry, "the blob did not return within the oracle's time limit"))
        return out
    if r.signal is not None:
        out.events += _signal_events(blob, r, c.state.base - blob.base)
        return out
    if not r.returned:
        out.error = "the CPU oracle reported neither a return nor a fault"
        return out
    out.returned = True
    out.events += _stray_writes(blob.arch, c, r)
    out.final_registers = _final(blob.arch, abi, r)
    for a in c.arrays:
        if a.const:
            continue
        w = a.bits // 8
        for i in range(a.size // w):   # a T p[n] has n elements: those past n do not exist
            got = _read(r.pages, a.base + i * w, w)
            if got is not None:
                out.outputs[f"{a.name}.{i}.out"] = int.from_bytes(got, "little")
    out.outputs["$ret"] = out.final_registers.get(abi.ret_reg, 0)
    return out


def _read(pages: dict[int, bytes], addr: int, n: int) -> bytes | None:
    if any((a // 0x1000) * 0x1000 not in pages for a in (addr, addr + n - 1)):
        return None
    return bytes(pages[(a // 0x1000) * 0x1000][a % 0x1000] for a in range(addr, addr + n))


def _signal_events(blob: Blob, r: Run, shift: int = 0) -> list[tuple[str, int, str]]:
    pc = r.fault_pc - shift if r.fault_pc is not None else 0   # back to the blob's own addresses
    where = f"at {pc:#x}" + (f", address {r.fault_addr:#x}" if r.fault_addr is not None else "")
    what = f"the CPU raised {r.signal_name} (si_code {r.si_code}) {where}"
    if r.signal_name == "SIGSYS":
        what = f"the CPU trapped a system call (number {r.syscall}) at {pc:#x}"
    if not blob.contains(pc):
        # Execution left the blob: after a return it went to the wrong address (frame), else policy.
        return [("frame", pc, f"execution left the blob for {pc:#x} ({what})"),
                ("policy", pc, f"execution left the blob for {pc:#x} ({what})")]
    if r.signal == signal.SIGSEGV and r.si_code == SI_KERNEL:
        # #GP (a misaligned operand of an aligned form, a non-canonical address): nverify's alignment
        # check calls it memory safety, VEX's own trap exit for the same fault calls it policy.
        return [("memory-safety", pc, what + ": a general-protection fault"), ("policy", pc, what)]
    return [(SIGNAL_KIND.get(r.signal or 0, "policy"), pc, what)]


def _stray_writes(arch: str, c: concrete.Concrete, r: Run) -> list[tuple[str, int, str]]:
    """A changed byte outside every writable array and the stack window: a write the CPU let through
    because the page was mapped (the canary fill shows it)."""
    from . import initial_pages

    before = initial_pages(c.state)
    allowed = [c.window, *((s.base, s.base + s.size) for s in c.arrays if not s.const)]
    for page, data in sorted(r.pages.items()):
        old = before.get(page, b"")
        if old == data:
            continue
        # the stretches of the page outside what the blob may write, compared whole
        lo = page
        for a, b in sorted((max(a, page), min(b, page + 0x1000)) for a, b in allowed if a < page + 0x1000 and page < b):
            bad = _first_change(old, data, page, lo, a)
            if bad is not None:
                return _stray(bad)
            lo = max(lo, b)
        bad = _first_change(old, data, page, lo, page + 0x1000)
        if bad is not None:
            return _stray(bad)
    return []


def _first_change(old: bytes, new: bytes, page: int, lo: int, hi: int) -> int | None:
    """The first address in [lo, hi) whose byte differs between the page's two copies, or None."""
    i, j = lo - page, hi - page
    if i >= j or old[i:j] == new[i:j]:
        return None
    return page + next(k for k in range(i, j) if k >= len(old) or k >= len(new) or old[k] != new[k])


def _stray(a: int) -> list[tuple[str, int, str]]:
    return [("memory-safety", 0, f"a write changed the byte at {a:#x}, outside every array and the "
                                 "stack frame (the CPU's page copy shows it)")]


def _final(arch: str, abi: Abi, r: Run) -> dict[str, int]:
    sp = "rsp" if arch == "x86_64" else "sp"
    names = [sp, abi.ret_reg, *abi.callee_saved, *abi.untouched]
    out = {n: r.regs[n] for n in names if n in r.regs}
    vmask = (1 << abi.vector_saved_bits) - 1
    for name in abi.vector_callee_saved:
        alt = "xmm" + name[3:] if name.startswith("ymm") else name
        v = r.regs.get(name, r.regs.get(alt))
        if v is not None:
            out[name] = v & vmask
    if arch == "x86_64":
        out["df"] = (r.regs.get("rflags", 0) >> 10) & 1
    for name in FP_CALLEE_SAVED[arch]:
        if name in r.regs:
            out[name] = r.regs[name]
    return out


def _frame_seen(kind: str, out: OracleReplay, abi: Abi) -> bool:
    return kind == "frame" and out.returned and bool(frame_breaks(out, abi))


def frame_breaks(r: uc_replay.Replay, abi: Abi) -> str:
    """The first frame rule the final registers break, or ''."""
    sp = abi.sp
    if r.final_registers.get(sp) != r.entry_registers.get(sp, 0) + abi.ret_pops:
        return f"{sp} is {r.final_registers.get(sp, 0):#x} after the return"
    for name in abi.callee_saved + abi.untouched:
        if r.final_registers.get(name) != r.entry_registers.get(name):
            return (f"{name} is {r.final_registers.get(name, 0):#x} after the return, "
                    f"was {r.entry_registers.get(name, 0):#x}")
    for name in abi.vector_callee_saved:
        if r.final_registers.get(name) != r.entry_registers.get(name, 0) & ((1 << abi.vector_saved_bits) - 1):
            return f"the low {abi.vector_saved_bits} bits of {name} changed"
    if r.final_registers.get("df"):
        return "the direction flag is set after the return"
    # the FP control state, seen only where the run read it back (the CPU oracle does; unicorn not)
    for name, mask in FP_CALLEE_SAVED[abi.arch].items():
        after, before = r.final_registers.get(name), r.entry_registers.get(name)
        if after is not None and before is not None and (after ^ before) & mask:
            return f"{name} is {after:#x} after the return, was {before:#x} (its control bits are callee-saved)"
    return ""


def _fault_info(r: Run) -> dict:
    if r.signal is None:
        return {"returned": r.returned}
    info: dict = {"signal": r.signal_name, "si_code": r.si_code}
    if r.fault_pc is not None:
        info["pc"] = hex(r.fault_pc)
    if r.fault_addr is not None:
        info["addr"] = hex(r.fault_addr)
    return info


def _unicorn(blob, abi, ex, model, loop_bound, names, info: dict) -> OracleReplay:
    u = uc_replay.replay(blob, abi, ex, model, loop_bound, names)
    out = OracleReplay(**{f: getattr(u, f) for f in ("events", "outputs", "returned", "final_registers",
                                                      "entry_registers", "trace", "error")})
    out.oracle = info | {"judged_by": "unicorn"}
    return out


# --- co-simulation of a PROVEN ---------------------------------------------------------------------

# The default budget: 16 states spread over the returned paths, and never fewer than one a path, so a
# proof with more than 16 paths runs one state on each. A state costs 2-5 ms (solver model, oracle
# run, comparison), a path of a proof tens of ms (exploration, obligations): one state a path keeps
# a many-path proof within about a quarter more time, and a small proof gets 16 states for ~0.2 s.
DEFAULT_STATES = 16


def shares(total: int, paths: int) -> list[int]:
    """States per path: `total` spread evenly (the first paths take the remainder), at least one each;
    max(total, paths) states in all."""
    return [max(1, total // paths + (i < total % paths)) for i in range(paths)]


def cosimulate(blob: Blob, abi: Abi, spec, ex: Exploration, total: int = DEFAULT_STATES,
               seed: int = 0) -> dict:
    """Run entry states drawn from every returned path on the oracle and compare with the symbolic
    model: outputs, the frame (preserved registers, sp, DF), no fault, no stray write.
    -> {"oracle", "cpu", "states", "mismatches", "mismatch": first difference in words,
        "paths": {"returned", "run"}, "uncovered": returned paths no state of which ran, in words}."""
    from . import sample, start

    how = oracle_for(blob.arch)
    if how is None:
        return {"oracle": "none", "cpu": "", "states": 0, "mismatches": 0, "available": False,
                "note": f"no CPU oracle for {blob.arch} on this machine (unicorn only): not co-simulated"}
    # First: qemu starts up while the solver is set up.
    start(blob.arch)
    paths = [p for p in ex.paths if p.status == "returned"]
    regs = {f"reg:{r}": t for r, t in ex.entry_registers.items() if t not in ex.symbols}
    sampler = sample.Sampler(spec, ex, paths, [regs | {f"out:{k}": t for k, t in p.outputs.items()} for p in paths],
                             seed)
    # Batches run in this thread, one after the other. Running them in a worker thread while the
    # solver drew the next batch crashed the process (a segfault in Z3_model_eval under the suite):
    # z3's Python objects are freed by the garbage collector in whichever thread triggers it, and
    # z3's context is not thread-safe.
    failed: list[str] = []
    batches = 0
    info: dict = {"oracle": how, "cpu": host.cpu_name(blob.arch), "states": 0, "mismatches": 0,
                  "available": True}
    ran: set[int] = set()
    for todo in _drawn(blob, abi, spec, ex, sampler, total, seed, failed):
        batches += 1
        for (p, model, c), r in zip(todo, _run(todo), strict=True):
            if r.error:            # a state the oracle cannot lay out is not counted
                info.setdefault("setup_failed", f"path {p.index}: {r.error}")
                continue
            info["states"] += 1
            ran.add(p.index)
            why = _compare(blob, abi, spec, ex, p, model, c, r)
            if why:
                info["mismatches"] += 1
                info.setdefault("mismatch", f"path {p.index}: {why} (entry state: {_show(model, ex)})")
    if failed:
        info.setdefault("setup_failed", failed[0])
    if not batches:
        info["setup_failed"] = "the solver found no entry state of any returned path in time"
    info["paths"] = {"returned": len(paths), "run": len(ran)}
    missed = [p.index for p in paths if p.index not in ran]
    if missed:
        info["uncovered"] = (f"{len(missed)} of {len(paths)} returned paths ran no entry state on the oracle "
                             f"(paths {', '.join(map(str, missed[:8]))}{' …' if len(missed) > 8 else ''}): "
                             "the solver found none in time, or the oracle could not lay them out")
    return info


BATCH = 8                   # states handed to the oracle at a time, while the next ones are drawn


def _drawn(blob: Blob, abi: Abi, spec, ex: Exploration, sampler, total: int, seed: int, failed: list[str]):
    """Batches of (path, model and term values, concrete state), drawn path by path; a state the
    linker arithmetic cannot lay out is named in `failed`."""
    avx = host.has_avx()
    todo: list[tuple[PathResult, dict, concrete.Concrete]] = []
    for i, (p, n) in enumerate(zip(sampler.paths, shares(total, len(sampler.paths)), strict=True)):
        for model, known in sampler.states(i, n, seed + p.index):
            try:
                todo.append((p, model | known, concrete.build(blob, abi, ex, model, spec.names, avx, known)))
            except LinkError as e:      # sample.py keeps regions where the code reaches them
                failed.append(f"path {p.index}: {e}")
                continue
            if len(todo) == BATCH:
                yield todo
                todo = []
    if todo:
        yield todo


def _run(todo: list[tuple[PathResult, dict, concrete.Concrete]]) -> list[Run]:
    from . import run_many

    return run_many([c.state for _, _, c in todo])


def _compare(blob, abi, spec, ex, path, model, c, r: Run) -> str:
    got = judge(blob, abi, c, r)
    if not got.returned:
        return "the CPU did not return: " + ("; ".join(m for _, _, m in got.events) or got.error or "?")
    if got.events:
        return got.events[0][2]
    bad = frame_breaks(got, abi)
    if bad:
        return bad
    for name in path.outputs:
        want = model[f"out:{name}"]
        if name == "ret":
            width = spec.signature.ret.bits if spec.signature.ret is not None else 64
            have = got.outputs["$ret"] & ((1 << width) - 1)
        elif name in got.outputs:
            have = got.outputs[name]
        else:
            continue
        if have != want:
            return f"{name} is {have:#x} on the CPU, {want:#x} in the symbolic model"
    return ""


def _show(model: dict, ex: Exploration) -> str:
    # machine symbols are shown by their register names (DESIGN §5), without the `$` that keeps
    # them apart from the spec's names (verifier/names.py)
    keep = [n for n in model if not n.lstrip("$").startswith(("ymm", "q", "cr", "fpreg", "cpu.", "reg:", "out:",
                                                                "undef", "guest"))
            and not n.endswith("_seg")]
    return ", ".join(f"{n.lstrip('$')}={model[n]:#x}" for n in sorted(keep, key=lambda k: k.lstrip("$"))[:24])

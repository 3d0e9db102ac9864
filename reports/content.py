"""What an audit report says, computed once from the result JSON (the one source of truth) and
the function's bytes it carries: plain-words verdict, identity, machine model, spec and its
names, disassembly, basic blocks and edges, VEX IR, obligations, counterexample, reproduction.

The HTML and Markdown renderers only lay this out; neither computes a figure of its own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REASONS = {
    None: "Every obligation was discharged: the function meets its spec on every input the model allows.",
    "postcondition": "On some input the function returns a result that breaks the postcondition.",
    "memory-safety": "On some input the function reads or writes memory it does not own.",
    "frame": "On some input the function breaks the calling convention: the stack, the return address or "
             "a register it must preserve.",
    "policy": "On some input the function executes a forbidden instruction.",
    "undecodable": "On some input the function runs into bytes that are not a valid instruction.",
    "loop-bound": "Some input makes an instruction run more often than the loop bound: the function may "
                  "not terminate, so nothing is claimed.",
    "timeout": "A solver ran out of time before deciding: nothing is claimed.",
    "unsupported-instruction": "The function uses an instruction the lifter does not model: nothing is claimed.",
    "unplaceable-access": "The function accesses memory at an address the model cannot place: nothing is claimed.",
    "lifter-mismatch": "The lifter and the emulator disagree on a counterexample: nothing is claimed.",
    "solver-unknown": "A solver gave up without an answer: nothing is claimed.",
}
BRANCHES = {"x86_64": ("j",), "aarch64": ("b", "cb", "tb")}


@dataclass
class Insn:
    addr: int
    size: int
    raw: str
    text: str
    on_path: bool = False


@dataclass
class Block:
    start: int
    insns: list[Insn]
    succs: list[int] = field(default_factory=list)


@dataclass
class Report:
    result: dict[str, Any]
    verdict: str
    reason: str | None
    plain: str
    identity: list[tuple[str, str]]
    names: list[tuple[str, str]]
    insns: list[Insn]
    blocks: list[Block]
    vex: str
    decompiled: str | None
    reproduce: list[str]


def build(result: dict[str, Any], attestation: dict | None = None, decompile: bool = False) -> Report:
    blob, spec = result["blob"], result["spec"]
    code = bytes.fromhex(blob.get("code", ""))
    base = int(blob["base"], 16)
    trace = {int(a, 16) for a in result.get("trace", [])} if result["verdict"] == "refuted" else set()
    insns = disassemble(blob["arch"], code, base, trace)
    blocks = basic_blocks(blob["arch"], insns, base, len(code))
    return Report(
        result=result, verdict=result["verdict"], reason=result.get("reason"),
        plain=REASONS.get(result.get("reason"), result.get("message", "")),
        identity=identity(result, attestation), names=spec_names(spec.get("text", "")),
        insns=insns, blocks=blocks, vex=vex_ir(blob["arch"], code, base, blocks),
        decompiled=decompiled(blob["arch"], code, base) if decompile else None,
        reproduce=reproduce(result))


def identity(result: dict, attestation: dict | None) -> list[tuple[str, str]]:
    blob, spec, opts = result["blob"], result["spec"], result.get("options", {})
    rows = [("file", blob["path"]), ("function", spec.get("function", "?") + (f" (symbol {blob['symbol']})"
                                                                              if blob.get("symbol") else "")),
            ("blob sha256", blob["sha256"]), ("spec", spec["path"]), ("spec sha256", spec["sha256"]),
            ("architecture", blob["arch"]), ("ABI", result["abi"]), ("format", blob.get("format", "raw")),
            ("size", f"{blob['size']} bytes at {blob['base']}"),
            ("nverify", result.get("nverify", "?")),
            ("solvers", ", ".join(f"{k} {v}" for k, v in (opts.get("solvers") or {}).items()) or "—"),
            ("timeout", f"{opts.get('timeout')} s per obligation"), ("loop bound", str(opts.get("loop_bound"))),
            ("paths explored", str(result.get("paths"))),
            ("time", f"{result['seconds']:.2f} s" if isinstance(result.get("seconds"), (int, float)) else "?")]
    if attestation:
        rows += [("attestation sha256", attestation["sha256"]), ("signer key sha256", attestation["signer"]),
                 ("signed", attestation.get("timestamp", "?"))]
        for tool, version in (attestation.get("tools") or {}).items():
            rows.append((f"{tool} version", str(version)))
    return rows


def spec_names(text: str) -> list[tuple[str, str]]:
    """The names a spec may use, explained (from its signature)."""
    m = re.search(r':nverify-signature\s+"([^"]*)"', text)
    if not m:
        return []
    from verifier.signature import SignatureError, parse_signature

    try:
        sig = parse_signature(m.group(1))
    except SignatureError:
        return []
    out = []
    for p in sig.params:
        if p.is_array and p.is_variable:
            out.append((p.name, f"the {p.length} entry elements of array {p.name} ({p.ctype}), an SMT array "
                                f"indexed by element"))
            if not p.const:
                out.append((f"{p.name}.out", f"array {p.name} when the function returns"))
        elif p.is_array:
            out.append((f"{p.name}.0 … {p.name}.{int(p.length) - 1}",  # type: ignore[arg-type]
                        f"the elements of {p.name} ({p.ctype}) at entry"))
            if not p.const:
                out.append((f"{p.name}.0.out …", f"the elements of {p.name} when the function returns"))
        else:
            out.append((p.name, f"parameter {p.name} ({p.ctype}), as passed"))
    if sig.ret is not None:
        out.append(("ret", f"the returned value ({sig.ret.ctype})"))
    return out


def disassemble(arch: str, code: bytes, base: int, trace: set[int]) -> list[Insn]:
    import capstone

    md = capstone.Cs(*((capstone.CS_ARCH_X86, capstone.CS_MODE_64) if arch == "x86_64"
                       else (capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)))
    out, off = [], 0
    while off < len(code):
        got = next(md.disasm(code[off:], base + off, 1), None)
        if got is None:
            step = 1 if arch == "x86_64" else 4
            out.append(Insn(base + off, step, code[off:off + step].hex(" "), "(undecodable)", base + off in trace))
            off += step
            continue
        out.append(Insn(got.address, got.size, got.bytes.hex(" "), f"{got.mnemonic} {got.op_str}".strip(),
                        got.address in trace))
        off += got.size
    return out


def _target(text: str) -> int | None:
    m = re.search(r"#?(0x[0-9a-f]+)$", text)
    return int(m.group(1), 16) if m else None


def basic_blocks(arch: str, insns: list[Insn], base: int, size: int) -> list[Block]:
    """Leaders: the entry, every direct branch target, every instruction after a branch or return."""
    if not insns:
        return []
    ends: dict[int, tuple[list[int], bool]] = {}    # insn addr -> (targets, falls through)
    leaders = {insns[0].addr}
    for i in insns:
        m = i.text.split()[0] if i.text else ""
        is_ret = m in ("ret", "retq", "retaa", "retab")
        is_branch = m.startswith(BRANCHES[arch]) and m not in ("bl", "blr", "br", "bic", "bics", "bfi", "bfxil",
                                                               "bsl", "bit", "bif") or m == "jmp"
        if is_ret or is_branch:
            t = _target(i.text) if is_branch else None
            unconditional = is_ret or m in ("jmp", "b")
            ends[i.addr] = ([t] if t is not None and base <= t < base + size else [], not unconditional)
            leaders.add(i.addr + i.size)
            if t is not None:
                leaders.add(t)
    blocks: list[Block] = []
    for i in insns:
        if i.addr in leaders or not blocks:
            blocks.append(Block(i.addr, []))
        blocks[-1].insns.append(i)
    starts = {b.start for b in blocks}
    for k, b in enumerate(blocks):
        last = b.insns[-1]
        targets, falls = ends.get(last.addr, ([], True))
        b.succs = [t for t in targets if t in starts]
        if falls and k + 1 < len(blocks):
            b.succs.append(blocks[k + 1].start)
    return blocks


def vex_ir(arch: str, code: bytes, base: int, blocks: list[Block]) -> str:
    """The VEX IR of each basic block, as pyvex prints it (for reading, not for trust)."""
    try:
        import archinfo
        import pyvex
    except ImportError:      # pragma: no cover - both are dependencies
        return "(pyvex is not installed)"
    a = archinfo.ArchAMD64() if arch == "x86_64" else archinfo.ArchAArch64()
    parts = []
    for b in blocks:
        end = b.insns[-1].addr + b.insns[-1].size
        try:
            irsb = pyvex.lift(code[b.start - base:end - base], b.start, a, max_inst=len(b.insns))
            parts.append(f"# block {b.start:#x}\n{irsb._pp_str()}")
        except Exception as e:  # noqa: BLE001 - a lifter error is shown, not raised
            parts.append(f"# block {b.start:#x}: not lifted ({e})")
    return "\n\n".join(parts)


def decompiled(arch: str, code: bytes, base: int) -> str | None:
    """angr's decompiler, best effort: an untrusted aid to reading, never part of the proof."""
    try:
        from verifier.vexsem import full_angr

        angr = full_angr()
        proj = angr.load_shellcode(code, arch="amd64" if arch == "x86_64" else "aarch64",
                                   start_offset=0, load_address=base)
        cfg = proj.analyses.CFGFast(normalize=True)
        func = cfg.kb.functions.function(addr=base)
        dec = proj.analyses.Decompiler(func, cfg=cfg.model)
        return dec.codegen.text if dec.codegen is not None else None
    except Exception:  # noqa: BLE001 - best effort by definition
        return None


def reproduce(result: dict) -> list[str]:
    blob, spec = result["blob"], result["spec"]
    from verifier.spec import SPEC_DIR

    spec_arg = spec["path"]
    if Path(spec_arg).resolve().parent == SPEC_DIR.resolve():
        spec_arg = Path(spec_arg).stem       # a library spec: by name, wherever nverify is installed
    cmd = ["nverify", "prove", blob["path"], "--spec", spec_arg]
    if blob.get("format", "raw") == "raw":
        cmd += ["--arch", blob["arch"]]
        if blob.get("base") != "0x400000":
            cmd += ["--base", blob["base"]]
    if blob.get("symbol"):
        cmd += ["--symbol", blob["symbol"]]
    cmd += ["--abi", result["abi"]]
    opts = result.get("options", {})
    if opts.get("timeout") not in (None, 60.0):
        cmd += ["--timeout", str(opts["timeout"])]
    if opts.get("ref"):
        cmd += ["--ref", opts["ref"]["path"]]
    lines = [shlex.join(cmd)]
    name = spec.get("function", "NAME")
    lines.append(shlex.join(["nverify", "check", f"{name}.bin", "--attestation", f"{name}.bin.intoto.json",
                             "--key", "PUBLIC_KEY.pub", "--spec", spec_arg]))
    return lines

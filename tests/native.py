"""Runs a blob on the real CPU (x86-64 here, AArch64 under qemu-aarch64) via tests/c/runblob.c -> `Run`.

The oracle of the adversarial tier: what the hardware does, independent of VEX, unicorn and nverify.
`violates` judges a run against a spec with Z3 alone, without nverify's spec reader."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import z3

SOURCE = Path(__file__).resolve().parent / "c" / "runblob.c"
X86_REGS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
SIGNALS = {4: "SIGILL", 5: "SIGTRAP", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV", 31: "SIGSYS"}


@dataclass(frozen=True)
class Run:
    """What one call did: `kind` is 'ret', 'signal' (a fault, named by `signal`), 'exit' (the blob
    ended the process itself: a system call) or 'killed' (14: it did not return within 5 s)."""

    kind: str
    regs: dict[str, int] = field(default_factory=dict)
    signal: str | None = None
    code: int = 0
    mem: bytes = b""
    line: str = ""

    @property
    def returned(self) -> bool:
        return self.kind == "ret"

    def reg(self, name: str) -> int:
        return self.regs[name]


def cpu_vendor() -> str:
    text = Path("/proc/cpuinfo").read_text()
    m = re.search(r"vendor_id\s*:\s*(\S+)", text)
    return {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(m.group(1) if m else "", "other")


def cpu_flags() -> set[str]:
    m = re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
    return set(m.group(1).split()) if m else set()


def can_run(arch: str) -> bool:
    if platform.machine() != "x86_64":
        return False
    return arch == "x86_64" or bool(shutil.which("qemu-aarch64") and shutil.which("aarch64-linux-gnu-gcc"))


@cache
def _driver(arch: str, outdir: str) -> Path:
    exe = Path(outdir) / f"runblob_{arch}"
    if arch == "x86_64":
        cmd = ["gcc", "-O1", "-Wall", "-Werror", str(SOURCE), "-o", str(exe)]
    else:   # static-pie: a plain static binary would sit at 0x400000, where the blob goes
        cmd = ["aarch64-linux-gnu-gcc", "-O1", "-Wall", "-Werror", "-static-pie", str(SOURCE), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True)
    return exe


def run(arch: str, code: bytes, workdir: Path, *, regs: dict[str, int] | None = None, mem: bytes = b"",
        mem_offset: int = 0x40, array_in: tuple[str, ...] = (), array_skip: int = 0, flags: int | None = None,
        ctl: tuple[int | None, int | None] = (None, None), x87_inexact: bool = False) -> Run:
    """Call `code` (mapped at 0x400000) with registers by name, `mem` at a page offset whose address
    plus `array_skip` goes into the registers `array_in`, entry flags (rflags / nzcv) and FP control state
    (x86-64: MXCSR and x87 control word; AArch64: FPCR and FPSR)."""
    exe = _driver(arch, str(workdir.parent))
    blob = workdir / f"run_{arch}.bin"
    blob.write_bytes(code)
    names = _names(arch)
    argv = [str(exe), str(blob), f"off={mem_offset:x}", f"adj={array_skip:x}"]
    argv += [f"r{names.index(r)}={v & (1 << 64) - 1:x}" for r, v in (regs or {}).items()]
    argv += [f"arr={names.index(r):x}" for r in array_in]
    if mem:
        argv.append(f"mem={mem.hex()}")
    if flags is not None:
        argv.append(f"flags={flags:x}")
    argv += [f"ctl{i}={v:x}" for i, v in enumerate(ctl) if v is not None]
    if x87_inexact:
        argv.append("x87pe=1")
    if arch == "aarch64":
        argv.insert(0, "qemu-aarch64")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    return _parse(arch, out.splitlines()[-1] if out else "exit 0")


def _names(arch: str) -> list[str]:
    return list(X86_REGS) if arch == "x86_64" else [f"x{i}" for i in range(31)]


def _parse(arch: str, line: str) -> Run:
    words = line.split()
    if words[0] == "signal":
        sig = int(words[1])
        return Run("signal", signal=SIGNALS.get(sig, str(sig)), code=int(words[3]), line=line)
    if words[0] == "killed":   # no handler could run (e.g. the fault recurred while delivering it)
        sig = int(words[1])
        return Run("killed", signal=SIGNALS.get(sig, str(sig)), code=sig, line=line)
    if words[0] == "exit":
        return Run("exit", code=int(words[1]), line=line)
    names = _names(arch)
    regs: dict[str, int] = {}
    mem = b""
    for w in words[1:]:
        k, v = w.split("=", 1)
        if k == "mem":
            mem = bytes.fromhex(v)
        elif k == "sp":
            regs["sp_delta"] = int(v)
        elif k.startswith("r") and k[1:].isdigit():
            regs[names[int(k[1:])]] = int(v, 16)
        else:
            regs[k] = int(v, 16)
    return Run("ret", regs, mem=mem, line=line)


def violates(spec: Path, values: dict[str, tuple[int, int]]) -> bool:
    """True when `pre` holds and `post` fails for the given values (name -> (value, bits)), judged
    by Z3 straight from the spec's text."""
    text = spec.read_text()
    decls = "".join(f"(declare-const |{n}| (_ BitVec {w}))\n" for n, (_, w) in values.items())
    eqs = "".join(f"(assert (= |{n}| (_ bv{v % (1 << w)} {w})))\n" for n, (v, w) in values.items())
    pre = "" if "define-fun pre " in text else "(define-fun pre () Bool true)\n"
    s = z3.Solver()
    s.from_string(decls + text + pre + eqs + "(assert pre)\n(assert (not post))\n")
    return s.check() == z3.sat

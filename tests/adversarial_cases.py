"""The adversarial tier's cases (issue 16): blob source + spec + what the real CPU does -> `Case`.

Each case is a small blob that a proof following VEX's choices, rather than the architecture's,
would call PROVEN, and a check that runs it on the real CPU (tests/native.py) and shows the
behaviour the model must capture: a fault, a system call, or a result that breaks the spec on an
input `pre` allows. tests/test_adversarial.py turns every case into two tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import native

MAGIC = 0x137
MXCSR_DEFAULT, FCW_DEFAULT = 0x1F80, 0x37F
FPCR_FZ, FPCR_RMODE_ZERO, FPSR_IXC = 1 << 24, 3 << 22, 1 << 4


def crash_on_magic(*signals: str):
    """The case's CPU check: the blob meets its spec on an ordinary input and faults on the magic one."""
    def check(c: Ctx):
        c.meets_spec(x=5)
        c.faults(*signals, x=MAGIC)
    return check


def spec(sig: str, post: str, pre: str | None = None) -> str:
    text = f'(set-info :nverify-signature "{sig}")\n'
    if pre:
        text += f"(define-fun pre () Bool {pre})\n"
    return text + f"(define-fun post () Bool {post})\n"


ID32 = spec("int32_t f(int32_t x)", "(= ret x)")
ID64 = spec("int64_t f(int64_t x)", "(= ret x)")
INC32 = spec("int32_t f(int32_t x)", "(= ret (bvadd x #x00000001))")
ZERO32 = spec("int32_t f(int32_t x)", "(= ret #x00000000)")
COPY4 = spec("void f(int32_t p[4])", "(and " + " ".join(f"(= p.{i}.out p.{i})" for i in range(4)) + ")")
COPYB16 = spec("void f(uint8_t p[16])", "(and " + " ".join(f"(= p.{i}.out p.{i})" for i in range(16)) + ")")

ARGS = {"x86_64": ("rdi", "rsi", "rdx", "rcx", "r8", "r9"), "aarch64": tuple(f"x{i}" for i in range(8))}
RET = {"x86_64": "rax", "aarch64": "x0"}


@dataclass(frozen=True)
class Ctx:
    """What a CPU check gets: the case, its assembled code, a work directory and the spec file."""

    case: Case
    code: bytes
    workdir: Path
    spec_path: Path

    def run(self, **kw) -> native.Run:
        return native.run(self.case.arch, self.code, self.workdir, **kw)

    def call(self, *, mem: bytes = b"", **kw) -> tuple[native.Run, dict[str, tuple[int, int]], dict]:
        """Call with the spec's parameters by name (scalars; one array, whose bytes are `mem`):
        the run, and its inputs and outputs as spec values (name -> (value, bits))."""
        params, ret_bits = _signature(self.spec_path.read_text())
        regs = dict(kw.pop("regs", {}))
        values: dict[str, tuple[int, int]] = {}
        arrays = []
        for (name, bits, length), reg in zip(params, ARGS[self.case.arch], strict=False):
            if length is None:
                v = kw.pop(name)
                regs.setdefault(reg, v)
                values[name] = (v % (1 << bits), bits)
            else:
                arrays.append(reg)
                for i in range(length):
                    values[f"{name}.{i}"] = (_elem(mem, i, bits), bits)
        r = self.run(regs=regs, mem=mem, array_in=tuple(arrays), **kw)
        if r.returned:
            if ret_bits:
                values["ret"] = (r.reg(RET[self.case.arch]) % (1 << ret_bits), ret_bits)
            for name, bits, length in params:
                for i in range(length or 0):
                    values[f"{name}.{i}.out"] = (_elem(r.mem, i, bits), bits)
        return r, values, regs

    def breaks_spec(self, *, mem: bytes = b"", **kw) -> native.Run:
        """Assert the call returns and its outputs break the spec on inputs `pre` allows."""
        r, values, _ = self.call(mem=mem, **kw)
        assert r.returned, f"expected a return that breaks the spec, got: {r.line}"
        assert native.violates(self.spec_path, values), f"the CPU's result meets the spec: {r.line}"
        return r

    def meets_spec(self, *, mem: bytes = b"", **kw) -> native.Run:
        r, values, _ = self.call(mem=mem, **kw)
        assert r.returned and not native.violates(self.spec_path, values), r.line
        return r

    def faults(self, *signals: str, mem: bytes = b"", **kw) -> native.Run:
        r, _, _ = self.call(mem=mem, **kw)
        assert r.kind in ("signal", "killed") and r.signal in signals, f"expected {'/'.join(signals)}, got: {r.line}"
        return r


def _elem(mem: bytes, i: int, bits: int) -> int:
    w = bits // 8
    return int.from_bytes(mem[i * w:(i + 1) * w], "little")


def _signature(text: str) -> tuple[list[tuple[str, int, int | None]], int]:
    """(name, bits, array length or None) per parameter, and the return width (0 for void),
    read from the prototype with a regex of the tests' own."""
    proto = re.search(r':nverify-signature "([^"]*)"', text)
    assert proto
    m = re.match(r"\s*(\w+)\s+\w+\s*\((.*)\)", proto.group(1))
    assert m

    def bits(t: str) -> int:
        return 64 if t == "size_t" else 8 if t == "bool" else int(re.sub(r"\D", "", t))

    params = []
    for piece in filter(None, (p.strip() for p in m.group(2).split(","))):
        pm = re.match(r"(?:const\s+)?(\w+)\s+(\w+)\s*(?:\[\s*(\d+)\s*\])?$", piece)
        assert pm, piece
        params.append((pm.group(2), bits(pm.group(1)), int(pm.group(3)) if pm.group(3) else None))
    return params, 0 if m.group(1) == "void" else bits(m.group(1))


@dataclass(frozen=True)
class Case:
    name: str                         # test id, ends in the ISA
    arch: str
    cls: str                          # issue 16's class (1-8) or 'new: …' for one found here
    asm: str                          # keystone assembly (raw bytes as .byte lines)
    spec: str                         # inline SMT-LIB text
    cpu: Callable[[Ctx], object]      # runs the blob on the CPU and asserts what it shows
    verdicts: frozenset[str] = frozenset({"refuted", "unknown"})   # allowed 'verdict' or 'verdict:reason'
    xfail: str | None = None          # why it comes out PROVEN today (issue 16 class)
    needs: tuple[str, ...] = ()       # /proc/cpuinfo flags the CPU check needs
    ref: str | None = None            # reference blob (class 8): proved with --ref
    cpu_skip: str | None = None       # why the CPU check cannot show it here


NOT_PROVEN = frozenset({"refuted", "unknown"})
POLICY = frozenset({"refuted:policy"})
FRAME = frozenset({"refuted:frame"})

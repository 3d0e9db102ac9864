"""Instruction kernels run on the real CPU and through nverify's symbolic model, for comparison.

A kernel is assembly that reads its inputs from a uint64_t image p (x86-64: rdi; AArch64: x0),
runs the instructions under test and writes its results back into p. `build` assembles a set
of kernels with gcc (the object nverify explores) and links them with a small C runner: x86-64
natively, AArch64 statically under qemu-aarch64. The runner reads images as hex words on stdin
and prints each result image, or `SIG n` when the kernel raised signal n (SIGFPE for #DE).
`Symbolic` explores a kernel once (spec: void k(uint64_t p[K])) and evaluates its exit image,
or the fault, on a concrete input, so the two can be compared image by image.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import z3

from verifier import blob as blob_mod
from verifier import evaluate, names, smt
from verifier import spec as spec_mod
from verifier.arch import DEFAULT_ABI
from verifier.symexec import explore

from .build import CC

RUNNER_C = r"""
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
typedef void kernel_fn(uint64_t *);
extern kernel_fn KERNELS;
static kernel_fn *table[] = { KERNELS };
static sigjmp_buf env;
static void on_signal(int s) { siglongjmp(env, s); }
int main(int argc, char **argv) {
    int k = atoi(argv[1]), n = atoi(argv[2]);
    static uint64_t p[64] __attribute__((aligned(64)));
    signal(SIGFPE, on_signal); signal(SIGSEGV, on_signal); signal(SIGBUS, on_signal); signal(SIGILL, on_signal);
    for (;;) {
        for (int i = 0; i < n; i++)
            if (scanf("%lx", (unsigned long *)&p[i]) != 1) return 0;
        int s = sigsetjmp(env, 1);
        if (s == 0) {
            table[k](p);
            for (int i = 0; i < n; i++) printf("%lx ", (unsigned long)p[i]);
            printf("\n");
        } else {
            printf("SIG %d\n", s);
        }
    }
}
"""

BASE_REG = {"x86_64": "rdi", "aarch64": "x0"}
P_ADDR = 0x10000   # where the symbolic model's p lies when evaluated (64-byte aligned, like the runner's)
SIGFPE = 8


def have_runner(arch: str) -> bool:
    if shutil.which(CC[arch]) is None:
        return False
    return arch == "x86_64" or shutil.which("qemu-aarch64") is not None


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":")[1].split()}


@dataclass(frozen=True)
class Kernels:
    arch: str
    obj: Path
    exe: Path
    names: tuple[str, ...]


def build(tmp: Path, arch: str, kernels: dict[str, str]) -> Kernels:
    """Assemble `kernels` (name -> body, one instruction a line) into an object and a runner."""
    head = ".intel_syntax noprefix\n" if arch == "x86_64" else ""
    kind = "@function" if arch == "x86_64" else "%function"
    parts = [head + ".text\n"]
    for name, body in kernels.items():
        lines = "\n".join(f"    {ln.strip()}" for ln in body.strip().splitlines())
        parts.append(f".globl {name}\n.type {name}, {kind}\n{name}:\n{lines}\n    ret\n.size {name}, .-{name}\n")
    asm = tmp / f"kernels_{arch}.s"
    asm.write_text("\n".join(parts) + '.section .note.GNU-stack,"",%progbits\n')
    obj = tmp / f"kernels_{arch}.o"
    subprocess.run([CC[arch], "-c", str(asm), "-o", str(obj)], check=True, capture_output=True)
    main = tmp / "runner.c"
    main.write_text(RUNNER_C)
    exe = tmp / f"runner_{arch}"
    names = ",".join(kernels)
    static = ["-static"] if arch == "aarch64" else []
    subprocess.run([CC[arch], "-O1", *static, f"-DKERNELS={names}", str(main), str(obj), "-o", str(exe)],
                   check=True, capture_output=True)
    return Kernels(arch, obj, exe, tuple(kernels))


def run(k: Kernels, name: str, images: list[list[int]]) -> list[list[int] | int]:
    """Each image after the kernel ran on the CPU, or the number of the signal it raised."""
    n = len(images[0])
    cmd = [str(k.exe), str(k.names.index(name)), str(n)]
    if k.arch == "aarch64":
        cmd = ["qemu-aarch64", *cmd]
    stdin = "\n".join(" ".join(f"{v:x}" for v in img) for img in images) + "\n"
    out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=True, timeout=120).stdout
    results: list[list[int] | int] = []
    for line in out.splitlines():
        results.append(int(line.split()[1]) if line.startswith("SIG") else [int(w, 16) for w in line.split()])
    assert len(results) == len(images), out[-500:]
    return results


class Symbolic:
    """nverify's model of one kernel: the exit image, or a fault, as a function of p's entry words."""

    def __init__(self, k: Kernels, name: str, words: int):
        text = f'(set-info :nverify-signature "void {name}(uint64_t p[{words}])")\n(define-fun post () Bool true)\n'
        spec = spec_mod.parse(text)
        blob = blob_mod.load(str(k.obj), symbol=name)
        ex = explore(blob, spec, DEFAULT_ABI[k.arch])
        self.words, self.base = words, names.register(BASE_REG[k.arch])   # the array base's entry symbol
        self._compiled: dict[int, evaluate.Fn] = {}
        self._checks = 20
        self.names = {**ex.symbols, **spec.names}
        returned = [p for p in ex.paths if p.status == "returned"]
        others = [p for p in ex.paths if p.status not in ("returned", "violation")]
        assert not others, [(p.status, p.message) for p in others]
        # One term per path, the exit words concatenated: one substitution per image is much
        # faster than one per word.
        self.paths = [(self._term(p.pc), z3.Concat(*[self._term(p.outputs[f"p.{i}.out"]) for i in range(words)]))
                      for p in returned]
        self.faults = [(v.message, self._term(v.cond)) for v in ex.violations]
        self.messages = [v.message for v in ex.violations]

    def _term(self, text: str) -> z3.ExprRef:
        f = smt.parse_asserts(f"(assert (= {text} {text}))", self.names)[0].arg(0)
        allowed = {f"p.{i}" for i in range(self.words)} | {self.base}
        extra = smt.free_names(f) - allowed
        assert not extra, f"the model depends on {sorted(extra)}, which the runner does not set"
        return f

    def _value(self, f: z3.ExprRef, image: list[int]) -> int:
        """f on the image, by nverify's compiled evaluator (fast), checked by Z3's own
        simplifier on the first images."""
        fn = self._compiled.get(f.get_id())
        if fn is None:
            fn = self._compiled[f.get_id()] = evaluate.compile_terms([f])[0]
        env = {f"p.{i}": v for i, v in enumerate(image)}
        env[self.base] = P_ADDR
        v = int(fn(env))
        if self._checks > 0:
            self._checks -= 1
            assert v == self._z3_value(f, image), f
        return v

    def _z3_value(self, f: z3.ExprRef, image: list[int]) -> int:
        subst = [(z3.BitVec(f"p.{i}", 64), z3.BitVecVal(v, 64)) for i, v in enumerate(image)]
        subst.append((z3.BitVec(self.base, 64), z3.BitVecVal(P_ADDR, 64)))
        r = z3.simplify(z3.substitute(f, *subst))
        if z3.is_true(r) or z3.is_false(r):
            return int(z3.is_true(r))
        assert z3.is_bv_value(r), r
        return r.as_long()

    def expect(self, image: list[int]) -> list[int] | int:
        """The exit image, or SIGFPE where a division fault's condition holds."""
        for message, cond in self.faults:
            if self._value(cond, image):
                assert "#DE" in message or "SigFPE" in message, message
                return SIGFPE
        for pc, outs in self.paths:
            if self._value(pc, image):
                v = self._value(outs, image)
                return [(v >> (64 * (self.words - 1 - i))) & ((1 << 64) - 1) for i in range(self.words)]
        raise AssertionError(f"no path of the model takes {image}")


EDGES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
         0x100000000, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 64) - 2, 0xFFFFFFFF00000000]


def word(rng: random.Random) -> int:
    """Random bits, small numbers, boundary values and their negations, in even shares."""
    r = rng.random()
    if r < 0.4:
        return rng.getrandbits(64)
    if r < 0.55:
        return rng.randrange(4)
    v = rng.choice(EDGES)
    return (-v) % (1 << 64) if rng.random() < 0.3 else v


def compare(k: Kernels, name: str, words: int, images: list[list[int]]) -> None:
    """Run `images` on the CPU and through the model: every result must agree."""
    sym = Symbolic(k, name, words)
    got = run(k, name, images)
    for img, cpu in zip(images, got, strict=True):
        want = sym.expect(img)
        assert cpu == want, (f"{name} on {[hex(v) for v in img]}: CPU "
                             f"{cpu if isinstance(cpu, int) else [hex(v) for v in cpu]}, model "
                             f"{want if isinstance(want, int) else [hex(v) for v in want]}")

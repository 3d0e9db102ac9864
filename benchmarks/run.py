"""Benchmarks for the targets of the `nverify prove` and loops issues: prints tables, writes docs/benchmarks.md.

    python3 benchmarks/run.py [--reps N]

Every figure is end to end: a fresh `nverify` process, start-up included, median of N runs.
Fixtures are built here from the same sources the tests use (tests/asm_library.py, tests/c/library.c,
tests/c/loops.c).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.asm_library import ASM  # noqa: E402
from tests.build import assemble, compile_c  # noqa: E402


def timed(cmd: list[str], reps: int, ok=(0,)) -> float:
    return timed_result(cmd, reps, ok)[0]


def timed_result(cmd: list[str], reps: int, ok=(0,)) -> tuple[float, dict]:
    """Median wall time of `reps` runs, and the last run's result JSON when `cmd` asks for it."""
    times, result = [], {}
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - t0)
        if r.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode()[-400:]}")
        if "--json" in cmd:
            result = json.loads(r.stdout)
    return statistics.median(times), result


def trust_rows(tmp: Path, nv: list[str], reps: int) -> list[tuple[str, float, float]]:
    """The trust-chain issue: `nverify check` <= 0.5 s; a gate over 100 attested blobs <= 5 s."""
    import shutil

    from verifier import attest, prove
    from verifier.emit import emit
    from verifier.pipeline import Options

    root = tmp / "gate"
    root.mkdir()
    attest.keygen(str(root / "k"))
    key = attest.load_private_key(str(root / "k.key"))
    made: list[tuple[Path, str, str]] = []
    for arch in ("x86_64", "aarch64"):
        for fn in sorted(ASM[arch])[:25]:       # 50 distinct blobs, each listed twice
            raw = tmp / f"{fn}_{arch}.raw"
            raw.write_bytes(assemble(arch, ASM[arch][fn]))
            r = prove(str(raw), fn, Options(arch=arch))
            if r.verdict.value != 0:
                continue
            emit(str(root / "src" / arch), r.code, r.to_json(), r.spec_text, key)
            made.append((root / "src" / arch / f"{fn}.bin", fn, arch))
    lines = ["[gate]", 'key = "k.pub"', ""]
    for i in range(100):
        src, fn, arch = made[i % len(made)]
        d = root / "kernels" / f"{i:03d}"
        d.mkdir(parents=True)
        shutil.copy(src, d / src.name)
        shutil.copy(src.parent / f"{src.name}.intoto.json", d / f"{src.name}.intoto.json")
        lines += ["[[blob]]", f'path = "kernels/{i:03d}/{src.name}"', f'spec = "{fn}"', f'arch = "{arch}"', ""]
    (root / "nverify.toml").write_text("\n".join(lines))
    first = root / "kernels" / "000" / made[0][0].name
    check = nv + ["check", str(first), "--attestation", f"{first}.intoto.json", "--key", str(root / "k.pub"),
                  "--spec", made[0][1]]
    gate = nv + ["gate", "--manifest", str(root / "nverify.toml"), "--jobs", "2", "-q"]
    return [("nverify check (one blob)", timed(check, max(reps, 5)), 0.5),
            ("nverify gate, 100 attested blobs", timed(gate, reps), 5.0)]


LOOP_FUNCTIONS = ["sum", "copy", "max8", "strnlen", "dot"]
LOOP_OPTS = {"x86_64": ["O0", "O2", "O3", "O3 -march=x86-64-v3"], "aarch64": ["O0", "O2", "O3"]}


def loop_rows(tmp: Path, nv: list[str], reps: int) -> list[tuple[str, float, float, int]]:
    """The loops issue: every proven loop fixture end to end (target 30 s), with its path count."""
    src = (ROOT / "tests" / "c" / "loops.c").read_text()
    rows = []
    for arch, opts in LOOP_OPTS.items():
        for opt in opts:
            obj = compile_c(tmp, arch, src, opt, "loops")
            for fn in LOOP_FUNCTIONS:
                t, r = timed_result(nv + ["prove", str(obj), "--spec", fn, "-q", "--json", "-"], reps)
                rows.append((f"{fn} {arch} gcc -{opt}", t, 30.0, r["paths"]))
    return rows


def table(rows, paths: bool = False) -> str:
    width = max(len(r[0]) for r in rows)
    extra = (" paths |", "---:|") if paths else ("", "")
    lines = [f"| {'benchmark':<{width}} | median s | target s | met |{extra[0]}",
             f"|{'-' * (width + 2)}|---:|---:|:---:|{extra[1]}"]
    for name, t, target, *more in rows:
        cells = f" {more[0]} |" if paths else ""
        lines.append(f"| {name:<{width}} | {t:8.3f} | {target:8.1f} | {'yes' if t <= target else '**no**'} |{cells}")
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    nv = [sys.executable, "-m", "verifier.cli"]
    rows: list[tuple[str, float, float]] = []   # name, median seconds, target

    rows.append(("nverify --help", timed(nv + ["--help"], max(args.reps, 5)), 0.3))
    lib = (ROOT / "tests" / "c" / "library.c").read_text()
    objs = {a: compile_c(tmp, a, lib, "O2", "library") for a in ("x86_64", "aarch64")}
    rows.append(("sort3 x86_64 gcc -O2", timed(nv + ["prove", str(objs["x86_64"]), "--spec", "sort3", "-q"],
                                                args.reps), 3.0))
    for arch in ("x86_64", "aarch64"):
        rows.append((f"sort5 {arch} gcc -O2", timed(nv + ["prove", str(objs[arch]), "--spec", "sort5", "-q"],
                                                     args.reps), 10.0))
        blob = tmp / f"sort5_{arch}.bin"
        blob.write_bytes(assemble(arch, ASM[arch]["sort5"]))
        rows.append((f"sort5 {arch} network (asm)", timed(nv + ["prove", str(blob), "--spec", "sort5",
                                                                "--arch", arch, "-q"], args.reps), 10.0))
    for arch in ("x86_64", "aarch64"):
        for i in range(1, 25):
            name = f"p{i:02d}"
            blob = tmp / f"{name}_{arch}.bin"
            blob.write_bytes(assemble(arch, ASM[arch][name]))
            rows.append((f"{name} {arch} (asm)", timed(nv + ["prove", str(blob), "--spec", name, "--arch", arch,
                                                             "-q"], args.reps), 3.0))

    loops = loop_rows(tmp, nv, args.reps)
    trust = trust_rows(tmp, nv, args.reps)
    first, second, third = table(rows), table(loops, paths=True), table(trust)
    print(first + "\n\n" + second + "\n\n" + third)
    # benchmarks/generators.py writes its own section; keep it
    old = Path(args.out).read_text() if Path(args.out).exists() else ""
    kept = "".join(old[old.index(b):old.index(e) + len(e)] + "\n\n" for b, e in
                   ((PEER_BEGIN, PEER_END), (GEN_BEGIN, GEN_END)) if b in old and e in old)
    Path(args.out).write_text(
        "# Benchmarks\n\n"
        "Every figure is end to end (a fresh `nverify` process, start-up included) and a median of\n"
        "runs measured side by side in one run. Three commands write this file, each its own sections:\n"
        "`python3 benchmarks/run.py` (the first three and the notes: median of "
        f"{args.reps} runs, at least 5\n"
        "for `--help`), `python3 benchmarks/peer_compare.py` (against the angr + Z3 peer: the\n"
        "performance issue) and `python3 benchmarks/generators.py` (generators).\n\n"
        f"Machine: {machine()}.\n\n"
        "## Straight-line kernels (targets of the `nverify prove` issue)\n\n" + first + "\n\n"
        "## Loops (targets of the loops issue: each proven loop fixture within 30 s)\n\n"
        "`tests/c/loops.c` compiled by gcc (x86-64) and the Debian AArch64 cross gcc, with\n"
        "`-ffreestanding -fno-builtin -fno-tree-loop-distribute-patterns`. *paths* counts the\n"
        "paths explored to the end (returned or refuted), all of which the proof covers.\n\n"
        + second + "\n\n"
        "## Trust chain (targets of the signing issue)\n\n"
        "`nverify check` on one emitted blob, and `nverify gate --jobs 2` over a manifest of 100\n"
        "attested raw blobs (both ISAs); both end to end.\n\n" + third + "\n\n" + kept + NOTES)


GEN_BEGIN, GEN_END = "<!-- generators: begin -->", "<!-- generators: end -->"
PEER_BEGIN, PEER_END = "<!-- peer: begin -->", "<!-- peer: end -->"   # benchmarks/peer_compare.py
NOTES = """
## Notes

- Each obligation is raced by the solver portfolio (Bitwuzla, Z3, cvc5; on 2 cores Bitwuzla
  and Z3, with cvc5 joining when one gives up). No single solver wins everywhere, measured per
  obligation on this library: Z3 is fastest on multiplication (p23, popcount: 0.2-0.3 s vs
  0.8 s), Bitwuzla on xor folds and p20 on x86-64 (p22: 0.5 s vs Z3's erratic 2-7 s), cvc5
  on the sort permutation counts (0.1 s vs 1 s).
- About 0.6-0.8 s of every figure is the fixed floor: Python start-up, loading angr's VEX
  semantics (verifier/vexsem.py: angr's own files, without `import angr`, about 0.3 s) and
  the unicorn replay; `nverify --help` imports none of them.
- Before any solver: postcondition conjuncts are tried on 256 concrete points (0.25 s at most
  per proof); sorting conjuncts go through the permutation lemma and products through the
  16-bit halves rewrite (docs/architecture.md, "Fast without shortcuts"). Paths are merged
  only past 256 live paths, so none of the kernels below is merged.
- p20 on aarch64 sits close to its 3 s target: 2.6 and 2.8 s in two quiet runs on 2026-11-21,
  3.3 s in an earlier one. One obligation dominates it (the division: Z3 1.2 s, Bitwuzla 1.9 s).
- The trust chain is far inside its targets: `nverify check` imports neither angr nor the
  solvers, and the gate checks attestations (sha256 and one signature each) on threads.
- Loops: the slowest fixture is gcc's -O3 byte copy with n <= 16 (about 6 s, 25 paths: the
  vector body, the scalar tail and the size checks, for each length). No loop fixture comes
  within a factor of four of its 30 s target; path counts stay in the tens because each
  length is one path through the unrolled loop, not a product of branch choices.
- The machine is shared: run this script with nothing else running, or the figures mean
  little. Compare ratios within one run, not absolute figures across runs.
"""


if __name__ == "__main__":
    main()

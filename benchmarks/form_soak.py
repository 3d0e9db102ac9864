"""Soak of the instruction-form tier: every instance of every verified form (x86-64 on this CPU,
AArch64 on qemu-user), co-simulated on many random entry states; prints a table (form, states,
states per second, mismatches) and every mismatch in detail.

    python3 benchmarks/form_soak.py [--states N] [--arch x86_64|aarch64|all] [--match TEXT] [--seed S]

Exit status 1 when any instance mismatches (a soundness bug in nverify's model) or could not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verifier.oracle import available, forms, host  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=64, help="entry states per instance (default 64)")
    ap.add_argument("--arch", choices=("x86_64", "aarch64", "all"), default="all")
    ap.add_argument("--match", default="", help="only instances whose text contains this")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.states < 1:
        print("form_soak: --states must be at least 1", file=sys.stderr)
        return 2
    archs = ("x86_64", "aarch64") if a.arch == "all" else (a.arch,)
    bad: list[forms.Mismatch] = []
    failed: list[forms.FormRun] = []
    total, t0 = 0, time.perf_counter()
    print(f"{'form':52} {'states':>7} {'states/s':>9} {'mismatches':>10}")
    for arch in archs:
        if available(arch) is None:
            print(f"# {arch}: no oracle on this machine, skipped")
            continue
        avx = arch == "x86_64" and host.has_avx()
        for form, line in forms.instances(arch):
            if a.match not in line:
                continue
            r = forms.check(forms.harness(arch, line, form, avx), form, a.states, a.seed)
            total += r.states
            rate = r.states / r.seconds if r.seconds else 0.0
            note = f"  (error: {r.error})" if r.error else f"  (unsupported: {r.unsupported})" if r.unsupported else ""
            print(f"{arch[:3]} {line:48} {r.states:7} {rate:9.1f} {len(r.mismatches):10}{note}", flush=True)
            bad += r.mismatches
            if r.error:
                failed.append(r)
    dt = time.perf_counter() - t0
    print(f"\n{total} states in {dt:.0f} s ({total / dt if dt else 0:.1f} states/s), "
          f"{len(bad)} mismatches, {len(failed)} instances with errors")
    for m in bad:
        print("MISMATCH " + m.show())
    return 1 if bad or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

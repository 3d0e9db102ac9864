"""The peer of the performance issue: the obvious hand-written angr + Z3 prover, for comparison.

    python3 benchmarks/peer.py BLOB --spec NAME [--arch A] [--timeout S]

What it does is what one writes in an afternoon, and what the issue measured:
- angr loads the bytes, `call_state` enters the function with every array at a fixed concrete
  address (0x100000, 0x200000, ...) holding the spec's symbolic elements, scalar arguments
  symbolic, and the simulation manager runs with angr's defaults until every path has returned;
- one monolithic Z3 query: pre, and the disjunction over returned states of
  (path constraints and not post), checked once. unsat is "proven".
It checks none of nverify's machine model (no frame, memory-safety or policy obligations, no
symbolic pointers or stack), so it does strictly less work than `nverify prove`: a comparison
with it flatters the peer, never nverify.

Exit: 0 proven, 1 refuted, 3 unknown (timeout), with a JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RETURN = 0xDEAD0000
ARRAY_BASE = 0x100000


def main() -> int:
    t0 = time.monotonic()
    ap = argparse.ArgumentParser()
    ap.add_argument("blob")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--arch")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()

    import logging
    import multiprocessing

    import angr
    import claripy
    import z3

    from verifier import blob as blob_mod
    from verifier import smt
    from verifier import spec as spec_mod

    logging.getLogger("angr").setLevel(logging.ERROR)
    # Parsing a spec leaves its define-funs in Z3's global context, where claripy, reading models
    # back, trips over them (Z3_OP_RECURSIVE): the spec is read in a child process, its terms
    # parsed here only after the exploration.
    with multiprocessing.get_context("fork").Pool(1) as pool:
        spec = pool.apply(spec_mod.load, (args.spec,))
    b = blob_mod.load(args.blob, arch=args.arch, default_symbol=spec.signature.name)
    proj = angr.load_shellcode(b.code, arch="amd64" if b.arch == "x86_64" else "aarch64",
                               start_offset=b.entry - b.base, load_address=b.base)
    sig = spec.signature
    call_args, arrays, links = [], [], []
    for i, p in enumerate(sig.params):
        if not p.is_array:
            call_args.append(claripy.ZeroExt(64 - p.bits, claripy.BVS(p.name, p.bits, explicit_name=True)))
            continue
        n = p.length if isinstance(p.length, int) else spec.lengths[p.name]
        addr = ARRAY_BASE * (i + 1)
        elems = [claripy.BVS(f"{p.name}.{k}", p.bits, explicit_name=True) for k in range(n)]
        arrays.append((p, addr, elems))
        call_args.append(claripy.BVV(addr, 64))
    state = proj.factory.call_state(b.entry, *call_args, ret_addr=RETURN)
    for p, addr, elems in arrays:
        for k, e in enumerate(elems):
            state.memory.store(addr + k * (p.bits // 8), e, endness="Iend_LE")
    simgr = proj.factory.simulation_manager(state)
    simgr.explore(find=RETURN)
    returned = simgr.found
    if simgr.errored:
        print(f"peer: {len(simgr.errored)} errored states, e.g. {simgr.errored[0].error}", file=sys.stderr)

    names = spec.names
    pre, post = smt.parse_asserts(f"(assert {spec.pre}) (assert (and {' '.join(spec.post) or 'true'}))", names)
    for p, _addr, elems in arrays:
        if p.is_variable:   # the spec's SMT array p: element k is p.k
            arr = z3.Array(p.name, z3.BitVecSort(64), z3.BitVecSort(p.bits))
            links += [z3.Select(arr, z3.BitVecVal(k, 64)) == z3.BitVec(f"{p.name}.{k}", p.bits)
                      for k in range(len(elems))]
    conv = claripy.backends.z3.convert
    cases = []
    for st in returned:
        subst = []
        for p, addr, elems in arrays:
            if p.const:
                continue
            outs = [conv(st.memory.load(addr + k * (p.bits // 8), p.bits // 8, endness="Iend_LE"))
                    for k in range(len(elems))]
            if p.is_variable:
                arr = z3.Array(p.name, z3.BitVecSort(64), z3.BitVecSort(p.bits))
                for k, o in enumerate(outs):
                    arr = z3.Store(arr, z3.BitVecVal(k, 64), o)
                subst.append((z3.Array(f"{p.name}.out", z3.BitVecSort(64), z3.BitVecSort(p.bits)), arr))
            else:
                subst += [(z3.BitVec(f"{p.name}.{k}.out", p.bits), o) for k, o in enumerate(outs)]
        if sig.ret is not None:
            reg = "rax" if b.arch == "x86_64" else "x0"
            subst.append((z3.BitVec("ret", sig.ret.bits), z3.Extract(sig.ret.bits - 1, 0, conv(st.regs.get(reg)))))
        pc = [conv(c) for c in st.solver.constraints]
        cases.append(z3.And(*pc, z3.Not(z3.substitute(post, *subst))))
    s = z3.Solver()
    s.set("timeout", int(args.timeout * 1000))
    s.add(pre, *links, z3.Or(*cases) if cases else z3.BoolVal(False))
    r = s.check()
    verdict = "proven" if r == z3.unsat else "refuted" if r == z3.sat else "unknown"
    print(json.dumps({"verdict": verdict, "paths": len(returned), "seconds": round(time.monotonic() - t0, 3)}))
    return {"proven": 0, "refuted": 1}.get(verdict, 3)


if __name__ == "__main__":
    sys.exit(main())

"""Golden tier: every spec in specs/ is PROVEN for hand-written assembly and gcc -O0/-O2 on both
ISAs, and each spec agrees with an independent C implementation run natively."""

from __future__ import annotations

import ctypes
import random
import subprocess
from pathlib import Path

import pytest

from verifier import prove, smt
from verifier import spec as spec_mod
from verifier.pipeline import Options

from .asm_library import ASM
from .build import ARCHES, asm_file, compile_c
from .concrete import draw_args

LIBRARY_C = Path(__file__).parent / "c" / "library.c"
LOOPS_C = Path(__file__).parent / "c" / "loops.c"


def _c_source() -> str:
    return LIBRARY_C.read_text() + LOOPS_C.read_text()
SPECS = sorted(p.stem for p in spec_mod.SPEC_DIR.glob("*.smt"))


def test_the_sorting_networks_sort_by_the_zero_one_principle():
    """A comparator network sorts every input iff it sorts every 0-1 input (Knuth 5.3.4)."""
    from itertools import product

    from tests.asm_library import NETWORKS

    for n, pairs in NETWORKS.values():
        for bits in product((0, 1), repeat=n):
            v = list(bits)
            for a, b in pairs:
                if v[a] > v[b]:
                    v[a], v[b] = v[b], v[a]
            assert v == sorted(v), (n, bits)


def test_every_spec_has_assembly_on_both_isas():
    for arch in ARCHES:
        assert sorted(ASM[arch]) == SPECS


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", SPECS)
def test_hand_written_assembly_is_proven(tmp_path, arch, name):
    blob = asm_file(tmp_path, arch, ASM[arch][name], name)
    r = prove(str(blob), name, Options(arch=arch, jobs=1)).to_json()
    assert r["verdict"] == "proven", r


@pytest.fixture(scope="session")
def library_objects(tmp_path_factory):
    d = tmp_path_factory.mktemp("libc")
    return {(a, o): compile_c(d, a, _c_source(), o, "library") for a in ARCHES for o in ("O0", "O2")}


@pytest.mark.parametrize("opt", ["O0", "O2"])
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", SPECS)
def test_gcc_output_is_proven(library_objects, arch, opt, name):
    if opt == "O0" and name in ("sort6", "sort7", "sort8"):
        pytest.skip("gcc -O0 compiles each ternary of the network to a branch: hundreds of paths, merged "
                    "into one whose permutation obligations take 5-7 s each (docs/benchmarks.md)")
    r = prove(str(library_objects[(arch, opt)]), name, Options(jobs=1)).to_json()
    assert r["verdict"] == "proven", r
    assert r["blob"]["symbol"] == name


@pytest.fixture(scope="session")
def native(tmp_path_factory):
    so = tmp_path_factory.mktemp("native") / "library.so"
    src = so.with_suffix(".c")
    src.write_text(_c_source())
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-fno-builtin", str(src), "-o", str(so)], check=True)
    return ctypes.CDLL(str(so))


def _call(native, spec, args):
    sig = spec.signature
    fn = getattr(native, sig.name)
    ctype = {8: ctypes.c_uint8, 16: ctypes.c_uint16, 32: ctypes.c_uint32, 64: ctypes.c_uint64}
    cargs, arrays = [], {}
    for p in sig.params:
        if p.is_variable:
            largest = spec.lengths[p.name]
            arr = (ctype[p.bits] * largest)(*[args[p.name].get(i, 0) for i in range(largest)])
            arrays[p.name] = arr
            cargs.append(arr)
        elif p.is_array:
            arr = (ctype[p.bits] * p.length)(*[args[n] for n in p.entry_names()])
            arrays[p.name] = arr
            cargs.append(arr)
        else:
            cargs.append(ctype[p.bits](args[p.name]))
    fn.restype = ctype[sig.ret.bits] if sig.ret else None
    ret = fn(*cargs)
    out = {}
    for p in sig.params:
        if p.is_variable and not p.const:
            out[f"{p.name}.out"] = {i: arrays[p.name][i] & ((1 << p.bits) - 1) for i in range(spec.lengths[p.name])}
        elif p.is_array and not p.const:
            out.update({f"{p.name}.{i}.out": arrays[p.name][i] & ((1 << p.bits) - 1) for i in range(p.length)})
    if sig.ret:
        out["ret"] = ret & ((1 << sig.ret.bits) - 1)
    return out


EDGES = [0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10, 0x0F0F0F0F]


@pytest.mark.parametrize("name", SPECS)
def test_spec_agrees_with_independent_c(native, name):
    """The spec holds of the C implementation's results, and fails for a perturbed result."""
    spec = spec_mod.load(name)
    rng = random.Random(name)
    names = spec.names
    post = "(and " + " ".join(spec.post) + ")" if len(spec.post) > 1 else spec.post[0]
    checked = 0
    for trial in range(400):
        args = draw_args(spec, rng, EDGES, edge=trial % 3 == 0)
        if name == "p19":   # a field mask m whose copy k places up neither overlaps it nor falls off
            args["k"] %= 32
            m = 0
            for i in range(32 - args["k"]):
                if rng.random() < 0.5 and not (m >> i) & 1 and (i < args["k"] or not (m >> (i - args["k"])) & 1):
                    m |= 1 << i
            args["m"] = m
        if name == "p21":
            args["x"] = [args["a"], args["b"], args["c"]][trial % 3]
        if not smt.evaluate(spec.pre, names, args):
            continue
        out = _call(native, spec, args)
        assert smt.evaluate(post, names, {**args, **out}), (name, args, out)
        key = "ret" if "ret" in out else next(iter(out))
        if isinstance(out[key], dict):   # T p[n]'s p.out: perturb an element that exists
            p = spec.signature.param(key[:-4])
            if not args[str(p.length)]:
                checked += 1
                continue
            bad = {**out, key: {**out[key], 0: out[key][0] ^ 1}}
        else:
            bad = {**out, key: out[key] ^ 1}
        if name != "p02" or out["ret"] in (0, 1):
            assert not smt.evaluate(post, names, {**args, **bad}), (name, args, bad)
        checked += 1
    assert checked >= 50


def test_p20_against_brute_force(native):
    """The spec of p20 says 'the next larger number with as many 1-bits': check it by search."""
    spec = spec_mod.load("p20")
    post = "(and " + " ".join(spec.post) + ")"
    native.p20.restype = ctypes.c_uint32
    for x in list(range(1, 3000)) + [0xFFFF, 0x7FFF0000, 0x00F00000]:
        y = x + 1
        while bin(y).count("1") != bin(x).count("1"):
            y += 1
        if y >= 1 << 32:
            continue
        assert smt.evaluate(post, spec.names, {"x": x, "ret": y}), x
        assert native.p20(x) == y, x

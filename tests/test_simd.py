"""Differential tier for SIMD: every vector instruction gcc emits for the loop fixtures (-O3, and
-O3 -march=x86-64-v3, and AArch64 -O3) is run in isolation, symbolically (nverify's engine over
VEX) and concretely, on random register and memory contents; the results must agree bit for bit.

The concrete oracle is unicorn, independent of VEX, for SSE and NEON. For VEX-encoded (AVX)
instructions it is the host CPU itself (skipped where it lacks AVX2): unicorn 2.1 (QEMU 5) rejects
256-bit AVX, and — found by this test — computes some VEX-128 instructions (vpaddd xmm, vpsrldq,
vpmulld, vpmaxsd) wrongly, where VEX's results agree with the CPU.

Each instruction runs inside a harness: save callee-saved registers, load every vector and general
register from an image array p, run the instruction with its memory operand pointed at a scratch
array m, store every register back to p, restore, return. Spec: void simd(uint64_t p[K], uint64_t m[8]).
"""

from __future__ import annotations

import ctypes
import mmap
import re
from pathlib import Path

import capstone
import lief
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import smt
from verifier import spec as spec_mod
from verifier.arch import DEFAULT_ABI
from verifier.blob import Blob
from verifier.names import RETADDR, register
from verifier.symexec import explore

from .build import BASE, assemble, compile_c, have_cc
from .concrete import DATA, RET, STACK, execute

LOOPS_C = (Path(__file__).parent / "c" / "loops.c").read_text()
BUILDS = [("x86_64", "O3"), ("x86_64", "O3 -march=x86-64-v3"), ("aarch64", "O3")]
P, M, SP = DATA, DATA + 0x1000, STACK + 0x8000   # the register image, the memory-operand scratch
X86_GPRS = ["rax", "rbx", "rcx", "rdx", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
A64_GPRS = [f"x{i}" for i in range(2, 18)] + [f"x{i}" for i in range(19, 29)]
VECTOR = re.compile(r"\b(xmm|ymm)\d+|\bv\d+\.|\bq\d+\b|\b[bhsd]\d+\b")


def _collect() -> dict[str, list[tuple[str, str]]]:
    """Distinct SIMD instructions of each build, by text (reused by the coverage test)."""
    import tempfile
    out: dict[str, list[tuple[str, str]]] = {}
    tmp = Path(tempfile.mkdtemp())
    for arch, opt in BUILDS:
        if not have_cc(arch):
            continue
        obj = compile_c(tmp, arch, LOOPS_C, opt, "loops")
        text = lief.parse(str(obj)).get_section(".text")
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64) if arch == "x86_64" \
            else capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        seen = sorted({f"{i.mnemonic} {i.op_str}" for i in md.disasm(bytes(text.content), 0)
                       if VECTOR.search(f"{i.mnemonic} {i.op_str}")})
        out[f"{arch} {opt}"] = [(arch, t) for t in seen]
    return out


INSNS = _collect()
CASES = sorted({(a, t, "ymm" in t) for v in INSNS.values() for a, t in v})


def _vex_encoded(arch: str, insn: str) -> bool:
    return arch == "x86_64" and insn.startswith("v")


def _rewrite(arch: str, insn: str) -> str:
    """Point the memory operand at m, and keep the harness's pointer registers out of the way."""
    if arch == "x86_64":
        insn = re.sub(r"\[[^\]]*\]", "[MEM]", insn)
        for old, new in (("rdi", "r10"), ("edi", "r10d"), ("rsi", "r11"), ("esi", "r11d")):
            insn = re.sub(rf"\b{old}\b", new, insn)
        return insn.replace("[MEM]", "[rsi]")
    insn = re.sub(r"\[[^\]]*\](, #?-?\w+)?!?", "[x1]", insn)
    head, sep, mem = insn.partition("[x1]")
    head = re.sub(r"\b([wx])0\b", r"\g<1>9", head)
    head = re.sub(r"\b([wx])1\b", r"\g<1>10", head)
    return head + sep + mem


def _harness(arch: str, insn: str, wide: bool) -> tuple[str, int]:
    body = _rewrite(arch, insn)
    if arch == "x86_64":
        vbytes = 32 if wide else 16
        vmov = "vmovdqu ymm{k}, ymmword ptr [rdi + {o}]" if wide else "movdqu xmm{k}, xmmword ptr [rdi + {o}]"
        vst = "vmovdqu ymmword ptr [rdi + {o}], ymm{k}" if wide else "movdqu xmmword ptr [rdi + {o}], xmm{k}"
        saved = ["rbx", "rbp", "r12", "r13", "r14", "r15"]
        lines = [f"push {r}" for r in saved]
        lines += [vmov.format(k=k, o=k * vbytes) for k in range(16)]
        g0 = 16 * vbytes
        lines += [f"mov {r}, qword ptr [rdi + {g0 + 8 * i}]" for i, r in enumerate(X86_GPRS)]
        lines.append(body)
        lines += [vst.format(k=k, o=k * vbytes) for k in range(16)]
        lines += [f"mov qword ptr [rdi + {g0 + 8 * i}], {r}" for i, r in enumerate(X86_GPRS)]
        lines += [f"pop {r}" for r in reversed(saved)] + ["ret"]
        return "\n".join(lines), (g0 + 8 * len(X86_GPRS)) // 8
    lines = ["stp x19, x20, [sp, #-96]!", "stp x21, x22, [sp, #16]", "stp x23, x24, [sp, #32]",
             "stp x25, x26, [sp, #48]", "stp x27, x28, [sp, #64]", "stp d8, d9, [sp, #80]",
             "sub sp, sp, #64", "stp d10, d11, [sp]", "stp d12, d13, [sp, #16]", "stp d14, d15, [sp, #32]"]
    lines += [f"ldp q{k}, q{k + 1}, [x0, #{16 * k}]" for k in range(0, 32, 2)]
    lines += ["add x0, x0, #512"]
    lines += [f"ldp {A64_GPRS[i]}, {A64_GPRS[i + 1]}, [x0, #{8 * i}]" for i in range(0, len(A64_GPRS), 2)]
    lines += ["sub x0, x0, #512", body, "add x0, x0, #512"]
    lines += [f"stp {A64_GPRS[i]}, {A64_GPRS[i + 1]}, [x0, #{8 * i}]" for i in range(0, len(A64_GPRS), 2)]
    lines += ["sub x0, x0, #512"]
    lines += [f"stp q{k}, q{k + 1}, [x0, #{16 * k}]" for k in range(0, 32, 2)]
    lines += ["ldp d10, d11, [sp]", "ldp d12, d13, [sp, #16]", "ldp d14, d15, [sp, #32]", "add sp, sp, #64",
              "ldp d8, d9, [sp, #80]", "ldp x27, x28, [sp, #64]", "ldp x25, x26, [sp, #48]",
              "ldp x23, x24, [sp, #32]", "ldp x21, x22, [sp, #16]", "ldp x19, x20, [sp], #96", "ret"]
    return "\n".join(lines), (512 + 8 * len(A64_GPRS)) // 8


_explored: dict = {}


def _symbolic(tmp_dir: Path, arch: str, insn: str, wide: bool):
    key = (arch, insn)
    if key not in _explored:
        text, k = _harness(arch, insn, wide)
        code = assemble(arch, text)
        spec_path = tmp_dir / f"simd{len(_explored)}.smt"
        spec_path.write_text(f'(set-info :nverify-signature "void simd(uint64_t p[{k}], uint64_t m[8])")\n'
                             "(define-fun post () Bool true)\n")
        spec = spec_mod.load(str(spec_path))
        blob = Blob(code=code, arch=arch, base=BASE, entry=BASE, name=None, source=insn, fmt="raw")
        ex = explore(blob, spec, DEFAULT_ABI[arch])
        returned = [p for p in ex.paths if p.status == "returned"]
        assert len(returned) == 1 and len(ex.paths) == 1, (insn, [(p.status, p.message) for p in ex.paths])
        _explored[key] = (code, k, spec, ex, returned[0])
    return _explored[key]


def _unicorn(arch: str, code: bytes, p: bytes, m: bytes) -> tuple[bytes, bytes]:
    x86 = arch == "x86_64"
    regs = {"rdi": P, "rsi": M, "rsp": SP - 8} if x86 else {"x0": P, "x1": M, "sp": SP}
    mu = execute(arch, code, regs, {P: p, M: m}, count=10_000)
    return bytes(mu.mem_read(P, len(p))), bytes(mu.mem_read(M, len(m)))


def _host_has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _native(code: bytes, p: bytes, m: bytes) -> tuple[bytes, bytes]:
    """Run the x86-64 harness on this CPU (for AVX2, which unicorn cannot decode)."""
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    try:
        buf.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(addr)
        pb, mb = ctypes.create_string_buffer(p, len(p)), ctypes.create_string_buffer(m, len(m))
        fn(ctypes.addressof(pb), ctypes.addressof(mb))
        result = pb.raw, mb.raw
        del fn
        return result
    finally:
        try:
            buf.close()
        except BufferError:
            pass


def test_every_build_has_simd_to_check():
    # If gcc stopped vectorising (or the collection broke), the differential tier would check nothing.
    for arch, opt in BUILDS:
        assert len(INSNS.get(f"{arch} {opt}", [])) >= 10, (arch, opt)


WORD = st.integers(0, (1 << 64) - 1) | st.sampled_from([0, 1, (1 << 64) - 1, 1 << 63, 0x7FFFFFFF, 0x80000000,
                                                       0xFFFFFFFF00000000, 0x0000000100000001])


@pytest.mark.parametrize("arch,insn,wide", CASES)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_simd_instruction_matches_concrete_execution(tmp_path_factory, arch, insn, wide, data):
    on_cpu = _vex_encoded(arch, insn)
    if on_cpu and not _host_has_avx2():
        pytest.skip("VEX-encoded (AVX) instruction: unicorn cannot be trusted with it and this CPU lacks AVX2")
    code, k, spec, ex, path = _symbolic(tmp_path_factory.getbasetemp(), arch, insn, wide)
    pv = [data.draw(WORD) for _ in range(k)]
    mv = [data.draw(WORD) for _ in range(8)]
    model = {**{f"p.{i}": v for i, v in enumerate(pv)}, **{f"m.{i}": v for i, v in enumerate(mv)},
             **{register(r): v for r, v in (("rdi", P), ("rsi", M), ("x0", P), ("x1", M), ("rsp", SP - 8),
                                            ("sp", SP), ("x30", RET))}, RETADDR: RET}
    pb = b"".join(v.to_bytes(8, "little") for v in pv)
    mb = b"".join(v.to_bytes(8, "little") for v in mv)
    got_p, got_m = _native(code, pb, mb) if on_cpu else _unicorn(arch, code, pb, mb)
    names = [f"p.{i}.out" for i in range(k)] + [f"m.{i}.out" for i in range(8)]
    concat = "(concat " + " ".join(path.outputs[n] for n in names) + ")"
    want = smt.evaluate(concat, {**ex.symbols, **spec.names}, model)
    concrete = got_p + got_m
    for j, n in enumerate(names):
        sym = (want >> (64 * (len(names) - 1 - j))) & ((1 << 64) - 1)
        con = int.from_bytes(concrete[8 * j:8 * j + 8], "little")
        assert sym == con, f"{insn}: {n} symbolic {sym:#x}, concrete {con:#x}"

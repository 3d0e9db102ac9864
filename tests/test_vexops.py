"""The forms verifier/vexops.py gives meaning to, run on the real CPU (x86-64 natively, AArch64
under qemu-aarch64) and through nverify's model on random and boundary inputs: every exit image,
and every fault, must agree. Before vexops these forms were UNKNOWN (no VEX operation or helper)
or, for the AArch64 carry chain and 8/16-bit division, wrong."""

from __future__ import annotations

import random

import pytest

from . import cpu

X86_SSE = {   # xmm0 <- p[0:2], xmm1 <- p[2:4]; result xmm0 -> p[0:2]
    "pavgb": "pavgb xmm0, xmm1", "pavgw": "pavgw xmm0, xmm1", "psadbw": "psadbw xmm0, xmm1",
}
X86_AVX = {   # ymm1 <- p[0:4], ymm2 <- p[4:8]; result ymm0 -> p[0:4]; p[8:] is a memory operand
    "vpavgb_x": "vpavgb xmm0, xmm1, xmm2", "vpavgw_xm": "vpavgw xmm0, xmm1, [rdi + 64]",
    "vpavgb_y": "vpavgb ymm0, ymm1, ymm2", "vpavgw_ym": "vpavgw ymm0, ymm1, [rdi + 64]",
    "vpsadbw_x": "vpsadbw xmm0, xmm1, xmm2", "vpsadbw_ym": "vpsadbw ymm0, ymm1, [rdi + 64]",
}
X86_BMI2 = {  # rax <- p[0], rcx <- p[1], rdx <- p[2] (its old upper half must go); rdx -> p[2]
    "pext64": "pext rdx, rax, rcx", "pext32": "pext edx, eax, ecx", "pext64m": "pext rdx, rax, [rdi + 8]",
    "pdep64": "pdep rdx, rax, rcx", "pdep32": "pdep edx, eax, ecx", "pdep32m": "pdep edx, eax, [rdi + 8]",
}
X86_XCHG = {  # rax <- p[0]; exchange with p[1]; rax -> p[0]
    "xchg8": "xchg [rdi + 8], al", "xchg16": "xchg [rdi + 8], ax", "xchg32": "xchg [rdi + 8], eax",
    "xchg64": "xchg [rdi + 8], rax", "xchg32r": "xchg eax, [rdi + 8]", "lockxchg64": "lock xchg [rdi + 8], rax",
}
X86_DIV = {   # rax <- p[0], rdx <- p[1], rcx <- p[2]; rax, rdx -> p[0], p[1]
    "div8": "div cl", "idiv8": "idiv cl", "div8m": "div byte ptr [rdi + 16]", "idiv8m": "idiv byte ptr [rdi + 16]",
    "div16": "div cx", "idiv16": "idiv cx", "div16m": "div word ptr [rdi + 16]", "idiv16m": "idiv word ptr [rdi + 16]",
    "div32": "div ecx", "idiv32": "idiv ecx", "div64": "div rcx", "idiv64": "idiv rcx",
}


def _x86_kernels() -> dict[str, tuple[str, int]]:
    """name -> (body, words of p)."""
    k: dict[str, tuple[str, int]] = {}
    for name, insn in X86_SSE.items():
        k[name] = (f"movdqu xmm0, [rdi]\nmovdqu xmm1, [rdi + 16]\n{insn}\nmovdqu [rdi], xmm0", 4)
    for name, insn in X86_AVX.items():
        k[name] = (f"vmovdqu ymm1, [rdi]\nvmovdqu ymm2, [rdi + 32]\n{insn}\nvmovdqu [rdi], ymm0\nvzeroupper", 12)
    for name, insn in X86_BMI2.items():
        k[name] = (f"mov rax, [rdi]\nmov rcx, [rdi + 8]\nmov rdx, [rdi + 16]\n{insn}\nmov [rdi + 16], rdx", 3)
    for name, insn in X86_XCHG.items():
        k[name] = (f"mov rax, [rdi]\n{insn}\nmov [rdi], rax", 2)
    for name, insn in X86_DIV.items():
        k[name] = (f"mov rax, [rdi]\nmov rdx, [rdi + 8]\nmov rcx, [rdi + 16]\n{insn}\n"
                   "mov [rdi], rax\nmov [rdi + 8], rdx", 3)
    return k


def _div_image(rng: random.Random, signed: bool) -> list[int]:
    """Inputs where the quotient sometimes fits and sometimes does not, divisors of zero included."""
    img = [cpu.word(rng) for _ in range(3)]
    if rng.random() < 0.5:   # a small quotient: numerator below divisor * 2^w for the 8/16-bit forms
        img[0] = (img[0] & ~0xFFFF) | rng.randrange(0x200)
        img[1] = (img[1] & ~0xFFFF) | rng.choice([0, 0xFFFF if signed else 0, 1])
    return img


X86 = _x86_kernels()


def _needs(name: str) -> str | None:
    flags = cpu.cpu_flags()
    if name in X86_AVX and "avx2" not in flags:
        return "avx2"
    if name in X86_BMI2 and "bmi2" not in flags:
        return "bmi2"
    return None


@pytest.fixture(scope="module")
def x86_kernels(tmp_path_factory):
    if not cpu.have_runner("x86_64"):
        pytest.skip("needs gcc")
    return cpu.build(tmp_path_factory.mktemp("x86"), "x86_64", {n: b for n, (b, _) in X86.items()})


@pytest.mark.parametrize("name", sorted(X86))
def test_x86_form_matches_the_cpu(x86_kernels, name):
    if _needs(name):
        pytest.skip(f"this CPU lacks {_needs(name)}: nothing to compare with")
    rng = random.Random(name)
    words = X86[name][1]
    if name in X86_DIV:
        images = [_div_image(rng, name.startswith("idiv")) for _ in range(300)]
    else:
        images = [[cpu.word(rng) for _ in range(words)] for _ in range(150)]
    cpu.compare(x86_kernels, name, words, images)


def test_x86_division_samples_reach_both_outcomes(x86_kernels):
    # The division comparison means something only if both faults and quotients occur.
    for name in ("div8", "idiv16"):
        rng = random.Random(name)
        got = cpu.run(x86_kernels, name, [_div_image(rng, name.startswith("idiv")) for _ in range(300)])
        assert 20 < sum(r == cpu.SIGFPE for r in got) < 280, name


# --- AArch64 ----------------------------------------------------------------------------------

# Every condition, as one bit each (bit k: condition k of EQ NE CS CC MI PL VS VC HI LS GE LT GT LE),
# and the carry read by adc: after the instruction under test, these read its flags three ways
# (arm64g_calculate_condition, _flags_nzcv through mrs, _flag_c through adc).
CONDS = ["eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le"]
FLAGS_OUT = "\n".join(["mrs x9, nzcv", "str x9, [x0, #32]", "mov x11, #0"]
                      + [f"cset w10, {c}\norr x11, x11, x10, lsl #{i}" for i, c in enumerate(CONDS)]
                      + ["str x11, [x0, #40]", "adc x12, xzr, xzr", "str x12, [x0, #48]"])


def _a64_flag_kernel(insn: str) -> str:
    """nzcv <- p[0] (bits 31..28), x1, x2 <- p[1], p[2], x3 <- p[3]; x3 -> p[3]; flags -> p[4..6]."""
    return "\n".join(["ldr x9, [x0]", "and x9, x9, #0xf0000000", "msr nzcv, x9", "ldp x1, x2, [x0, #8]",
                      "ldr x3, [x0, #24]", insn, "str x3, [x0, #24]", FLAGS_OUT])


def _carry_family(op: str, r: str) -> str:
    """One kernel: `op` (adc/adcs/sbc/sbcs, on x or w registers) with the zero register in each of
    the 8 combinations of operand positions, each from the same entry flags and registers; per
    combination the result, NZCV (mrs), the carry read by adc and the HI condition go to p."""
    zr = "xzr" if r == "x" else "wzr"
    lines = ["ldr x9, [x0]", "and x9, x9, #0xf0000000", "ldp x1, x2, [x0, #8]", "ldr x13, [x0, #24]"]
    for mask in range(8):
        regs = [f"{r}3", f"{r}1", f"{r}2"]   # rd, rn, rm
        rd, rn, rm = (zr if mask & (1 << i) else regs[i] for i in range(3))
        at = 32 + 24 * mask
        lines += ["msr nzcv, x9", "mov x3, x13", f"{op} {rd}, {rn}, {rm}", "mrs x10, nzcv", "adc x11, xzr, xzr",
                  "cset x12, hi", f"stp x3, x10, [x0, #{at}]", "orr x11, x11, x12, lsl #1",
                  f"str x11, [x0, #{at + 16}]"]
    return "\n".join(lines)


CARRY = {f"{op}_{r}": _carry_family(op, r) for op in ("adc", "adcs", "sbc", "sbcs") for r in ("x", "w")}
A64_FLAGS = {"sbcs_xzr_first": "sbcs x3, xzr, x2", "sbcs_w": "sbcs w3, w1, w2", "adcs_xzr_last": "adcs x3, x1, xzr",
             "ngcs_x": "ngcs x3, x2", "ngc_w": "ngc w3, w2", "cmp_sbcs": "sbcs xzr, x1, x2",
             "adds_x": "adds x3, x1, x2", "adds_w": "adds w3, w1, w2",
             "subs_x": "subs x3, x1, x2", "subs_w": "subs w3, w1, w2", "ands_x": "ands x3, x1, x2",
             "ands_w": "ands w3, w1, w2", "ccmp_x": "ccmp x1, x2, #5, hi", "ccmn_w": "ccmn w1, w2, #10, lt",
             "cmp_zr": "cmp xzr, x2"}
A64_VECTOR = {  # q0 <- p[0:2], q1 <- p[2:4]; q0 -> p[0:2], x1 -> p[4]
    "popcount": "fmov d0, x1\ncnt v0.8b, v0.8b\naddv b0, v0.8b\nfmov w1, s0",
    "cnt16": "cnt v0.16b, v0.16b\nuaddlv h0, v0.16b\numov w1, v0.h[0]",
    "cnt8_uaddlv": "cnt v0.8b, v1.8b\nuaddlv h0, v0.8b\nfmov w1, s0",
    "urhadd": "urhadd v0.16b, v0.16b, v1.16b", "srhadd": "srhadd v0.8h, v0.8h, v1.8h",
}


def _a64_kernels() -> dict[str, tuple[str, int]]:
    k = {name: (_a64_flag_kernel(insn), 7) for name, insn in A64_FLAGS.items()}
    k.update({name: (body, 4 + 8 * 3) for name, body in CARRY.items()})
    for name, body in A64_VECTOR.items():
        k[name] = (f"ldp q0, q1, [x0]\nldr x1, [x0, #32]\n{body}\nstr q0, [x0]\nstr x1, [x0, #32]", 5)
    return k


A64 = _a64_kernels()


@pytest.fixture(scope="module")
def a64_kernels(tmp_path_factory):
    if not cpu.have_runner("aarch64"):
        pytest.skip("needs aarch64-linux-gnu-gcc and qemu-aarch64")
    return cpu.build(tmp_path_factory.mktemp("a64"), "aarch64", {n: b for n, (b, _) in A64.items()})


def _flag_image(rng: random.Random, words: int) -> list[int]:
    """Carry in set and clear, and operands that are equal, zero, all ones or at a boundary."""
    img = [cpu.word(rng) for _ in range(words)]
    img[0] = rng.randrange(16) << 28
    if rng.random() < 0.25:
        img[2] = img[1]
    return img


@pytest.mark.parametrize("name", sorted(A64))
def test_aarch64_form_matches_qemu(a64_kernels, name):
    rng = random.Random(name)
    words = A64[name][1]
    if name in A64_FLAGS or name in CARRY:
        images = [_flag_image(rng, words) for _ in range(120)]
        images += [[c << 28, a, b] + [0] * (words - 3) for c in (0, 2) for a in (0, 1, 2**64 - 1, 2**32 - 1)
                   for b in (0, 1, 2**64 - 1, 2**32 - 1)]
    else:
        images = [[cpu.word(rng) for _ in range(words)] for _ in range(120)]
    cpu.compare(a64_kernels, name, words, images)

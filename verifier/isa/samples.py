"""Concrete instances of the verified forms, as assembly text: for the tests that check every form
(its IR keeps every memory access; it runs as the CPU runs it). Form -> assembly lines."""

from __future__ import annotations

from .table import Form

_X86_REG = {8: ("cl", "dl", "bl"), 16: ("cx", "dx", "bx"), 32: ("ecx", "edx", "ebx"), 64: ("rcx", "rdx", "rbx")}
_PTR = {8: "byte", 16: "word", 32: "dword", 64: "qword", 128: "xmmword", 256: "ymmword"}


def x86(form: Form) -> list[str]:
    """Every operand combination of `form` that assembles, one line each (widths from the form;
    memory at [rdi + 16], immediates small)."""
    widths = sorted(form.widths) or [32]
    out: list[str] = []
    for shape in sorted(form.shapes):
        for w in widths:
            ops, regs, vecs = [], 0, 0
            for k, c in enumerate(shape):
                if c == "r":
                    ops.append(_X86_REG[w if k == 0 or "m" not in shape[:k] else w][regs % 3])
                    regs += 1
                elif c == "m":
                    size = 128 if "x" in shape and form.enc != "vex" and "r" not in shape else \
                        256 if "y" in shape and shape.count("y") > 0 and "x" not in shape else \
                        128 if "x" in shape and "r" not in shape else w
                    ops.append(f"{_PTR.get(size, 'qword')} ptr [rdi + 16]")
                elif c == "i":
                    ops.append("1")
                elif c in "xy":
                    ops.append(f"{'xmm' if c == 'x' else 'ymm'}{vecs + 1}")
                    vecs += 1
            out.append(f"{form.mnemonic} {', '.join(ops)}".strip())
    return out


def _merge(*parts: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in parts:
        for k, v in p.items():
            out.setdefault(k, []).extend(v)
    return out


# AArch64: one or more instances per mnemonic of the table (registers x2-x4 / w2-w4 and v1-v3,
# memory at [x1, #16]); mnemonics not listed have no instance yet.
_A64_INT = _merge(
    {m: [f"{m} x2, x3, x4", f"{m} w2, w3, w4"] for m in
       ("add adds sub subs adc adcs sbc sbcs and ands orr orn eor eon bic bics lslv lsrv asrv rorv "
        "lsl lsr asr ror mul mneg udiv sdiv smulh umulh").split()},
    {m: [f"{m} x2, x3, #0x{i}", f"{m} w2, w3, #0x{i}"] for m, i in
       (("add", "7f"), ("sub", "3"), ("and", "ff"), ("orr", "f0"), ("eor", "1"), ("ands", "7"))},
    {"adds": ["adds x2, x3, x4", "adds w2, w3, #1", "adds x2, x3, x4, lsl #3"]},
    {"subs": ["subs x2, x3, x4", "subs w2, w3, #1", "subs x2, x3, w4, uxtw #2"]},
    {"sbcs": ["sbcs x2, x3, x4", "sbcs w2, w3, w4", "sbcs x2, xzr, x4"]},
    {"sbc": ["sbc x2, x3, x4", "sbc x2, xzr, x4"], "ngc": ["ngc x2, x3"], "ngcs": ["ngcs x2, x3", "ngcs w2, w3"]},
    {m: [f"{m} x3, x4", f"{m} w3, w4", f"{m} x3, #5"] for m in ("cmp", "cmn", "tst")},
    {m: [f"{m} x2, x3", f"{m} w2, w3"] for m in ("neg", "negs", "mvn", "clz", "cls", "rbit", "rev", "rev16")},
    {"rev32": ["rev32 x2, x3"], "mov": ["mov x2, x3", "mov w2, w3", "mov x2, #-2"]},
    {"movz": ["movz x2, #0x1234, lsl #16"], "movn": ["movn w2, #0x55"], "movk": ["movk x2, #0xbeef, lsl #48"]},
    {m: [f"{m} x2, x3, #3, #9", f"{m} w2, w3, #5, #7"] for m in ("ubfx", "sbfx", "ubfiz", "sbfiz", "bfi", "bfxil")},
    {"ubfm": ["ubfm x2, x3, #7, #3"], "sbfm": ["sbfm w2, w3, #4, #30"], "bfm": ["bfm x2, x3, #60, #2"]},
    {"bfc": ["bfc x2, #4, #12"], "extr": ["extr x2, x3, x4, #13", "extr w2, w3, w4, #31"]},
    {m: [f"{m} x2, w3", f"{m} w2, w3"] for m in ("sxtb", "sxth")}, {"sxtw": ["sxtw x2, w3"]},
    {m: [f"{m} w2, w3"] for m in ("uxtb", "uxth")},
    {m: [f"{m} x2, x3, x4, x5", f"{m} w2, w3, w4, w5"] for m in ("madd", "msub")},
    {m: [f"{m} x2, w3, w4"] for m in ("smull", "umull", "smnegl", "umnegl")},
    {m: [f"{m} x2, w3, w4, x5"] for m in ("smaddl", "umaddl", "smsubl", "umsubl")},
    {m: [f"{m} x2, x3, x4, lt", f"{m} w2, w3, w4, hi"] for m in ("csel", "csinc", "csinv", "csneg")},
    {m: [f"{m} x2, eq", f"{m} w2, ge"] for m in ("cset", "csetm")},
    {m: [f"{m} x2, x3, mi", f"{m} w2, w3, vs"] for m in ("cinc", "cinv", "cneg")},
    {m: [f"{m} x3, x4, #5, ne", f"{m} w3, #7, #2, cs"] for m in ("ccmp", "ccmn")},
)
_A64_MEM = _merge(
    {m: [f"{m} x2, [x1, #16]", f"{m} w2, [x1, #16]"] for m in ("ldr", "str", "ldur", "stur")},
    {m: [f"{m} w2, [x1, #16]"] for m in ("ldrb", "ldrh", "strb", "strh", "ldurb", "ldurh", "sturb", "sturh")},
    {m: [f"{m} x2, [x1, #16]", f"{m} w2, [x1, #16]"] for m in ("ldrsb", "ldrsh", "ldursb", "ldursh")},
    {m: [f"{m} x2, [x1, #16]"] for m in ("ldrsw", "ldursw")},
    {m: [f"{m} x2, x3, [x1, #16]", f"{m} w2, w3, [x1, #16]"] for m in ("ldp", "stp", "ldnp", "stnp")},
    {"ldpsw": ["ldpsw x2, x3, [x1, #16]"]},
)
_A64_SIMD = _merge(
    {m: [f"{m} v1.16b, v2.16b, v3.16b"] for m in ("and", "orr", "eor", "bic", "orn", "bsl", "bit", "bif")},
    {m: [f"{m} v1.4s, v2.4s, v3.4s", f"{m} v1.8h, v2.8h, v3.8h", f"{m} v1.16b, v2.16b, v3.16b"] for m in
       ("add sub cmeq cmgt cmge cmhi cmhs cmtst smin smax umin umax sminp smaxp uminp umaxp addp mul mla mls "
        "uabd sabd uaba saba uhadd shadd urhadd srhadd sqadd uqadd sqsub uqsub zip1 zip2 uzp1 uzp2 trn1 trn2 "
        "ushl sshl").split()},
    {m: [f"{m} v1.2d, v2.2d, v3.2d"] for m in ("add", "sub", "cmeq", "cmgt", "cmhi")},
    {m: [f"{m} v1.4s, v2.4s", f"{m} v1.16b, v2.16b"] for m in ("neg", "abs")},
    {m: [f"{m} v1.4s, v2.4s, #0"] for m in ("cmle", "cmlt")},
    {"not": ["not v1.16b, v2.16b"], "mvn": ["mvn v1.16b, v2.16b"], "cnt": ["cnt v1.16b, v2.16b"]},
    {m: [f"{m} s1, v2.4s", f"{m} b1, v2.16b", f"{m} h1, v2.8h"] for m in ("addv", "umaxv", "uminv", "smaxv", "sminv")},
    {m: [f"{m} d1, v2.4s", f"{m} h1, v2.16b"] for m in ("uaddlv", "saddlv")},
    {m: [f"{m} v1.2d, v2.2s, v3.2s", f"{m} v1.4s, v2.4h, v3.4h"] for m in ("umull", "smull", "umlal", "smlal")},
    {m: [f"{m} v1.2d, v2.4s, v3.4s"] for m in ("umull2", "smull2")},
    {m: [f"{m} v1.4s, v2.4s, #3", f"{m} v1.2d, v2.2d, #63"] for m in ("ushr", "sshr", "shl", "usra", "ssra")},
    {m: [f"{m} v1.2d, v2.2s, #3", f"{m} v1.8h, v2.8b, #0"] for m in ("ushll", "sshll")},
    {m: [f"{m} v1.2d, v2.4s, #3"] for m in ("ushll2", "sshll2")},
    {m: [f"{m} v1.2d, v2.2s"] for m in ("uxtl", "sxtl")}, {m: [f"{m} v1.4s, v2.8h"] for m in ("uxtl2", "sxtl2")},
    {"xtn": ["xtn v1.2s, v2.2d"], "xtn2": ["xtn2 v1.16b, v2.8h"], "shrn": ["shrn v1.4h, v2.4s, #5"]},
    {"shrn2": ["shrn2 v1.4s, v2.2d, #17"], "addhn": ["addhn v1.4h, v2.4s, v3.4s"]},
    {"raddhn": ["raddhn v1.8b, v2.8h, v3.8h"], "ext": ["ext v1.16b, v2.16b, v3.16b, #5"]},
    {m: [f"{m} v1.16b, v2.16b"] for m in ("rev64", "rev32", "rev16")},
    {"tbl": ["tbl v1.16b, {v2.16b}, v3.16b", "tbl v1.16b, {v2.16b, v3.16b}, v4.16b"]},
    {m: [f"{m} v1.4s, v2.8h", f"{m} v1.2d, v2.4s"] for m in ("uaddlp", "saddlp", "uadalp", "sadalp")},
    {"dup": ["dup v1.4s, w2", "dup v1.16b, v2.b[3]", "dup v1.2d, x3"]},
    {"ins": ["ins v1.s[1], w2", "ins v1.d[1], v2.d[0]"]},
    {"umov": ["umov w2, v1.b[5]", "umov x2, v1.d[1]"], "smov": ["smov x2, v1.h[3]", "smov w2, v1.b[9]"]},
    {"movi": ["movi v1.16b, #0x5a", "movi v1.2d, #0xff00ff00ff00ff00", "movi v1.4s, #0x12, lsl #8"]},
    {"mvni": ["mvni v1.4s, #0x34", "mvni v1.8h, #0x1, lsl #8"]},
    {"fmov": ["fmov x2, d1", "fmov d1, x2", "fmov s1, w2", "fmov w2, s1", "fmov d1, d2"]},
    {"ld1": ["ld1 {v1.16b}, [x1]", "ld1 {v1.4s, v2.4s}, [x1]", "ld1 {v1.s}[2], [x1]"]},
    {"st1": ["st1 {v1.16b}, [x1]", "st1 {v1.2d, v2.2d}, [x1]", "st1 {v1.h}[5], [x1]"]},
    {"ld1r": ["ld1r {v1.4s}, [x1]"], "ld2": ["ld2 {v1.4s, v2.4s}, [x1]"], "st2": ["st2 {v1.8h, v2.8h}, [x1]"]},
)


def a64(form: Form) -> list[str]:
    """Instances of an AArch64 form of the integer, memory and SIMD groups (empty where none yet)."""
    if form.group == "integer":
        return _A64_INT.get(form.mnemonic, [])
    if form.group == "memory":
        return _A64_MEM.get(form.mnemonic, [])
    if form.group == "SIMD":
        extra = {"mov": ["mov v1.16b, v2.16b", "mov v1.s[2], w3"], "orr": ["orr v1.4s, #0x40, lsl #8"]}
        return _A64_SIMD.get(form.mnemonic, []) + extra.get(form.mnemonic, [])
    return []

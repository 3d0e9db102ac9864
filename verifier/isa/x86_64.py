"""The x86-64 verified instruction set: encoding rules, the deny list and the table of forms,
each with what nverify adds to VEX's meaning of it (Intel SDM and AMD APM, vol. 3)."""

from __future__ import annotations

from dataclasses import replace

from .table import Decision, Form, Insn, rows

LEGACY = {0xF0: "lock", 0xF2: "f2", 0xF3: "f3", 0x2E: "cs", 0x36: "ss", 0x3E: "ds", 0x26: "es",
          0x64: "fs", 0x65: "gs", 0x66: "66", 0x67: "67"}
_GROUP = {"lock": 1, "f2": 1, "f3": 1, "cs": 2, "ss": 2, "ds": 2, "es": 2, "fs": 2, "gs": 2, "66": 3, "67": 4}

# Forbidden outright (DESIGN §4), decided on the decoded bytes: REFUTED(policy) wherever a path
# reaches one, whether or not VEX can lift it.
DENY = {
    "syscall": "a system call", "sysenter": "a system call", "sysexit": "a privileged instruction",
    "sysret": "a privileged instruction", "int": "a software interrupt", "int1": "a software interrupt",
    "int3": "a breakpoint trap", "into": "a software interrupt", "hlt": "a halt",
    "in": "port I/O", "out": "port I/O", "insb": "port I/O", "insw": "port I/O", "insd": "port I/O",
    "outsb": "port I/O", "outsw": "port I/O", "outsd": "port I/O",
    "rdtsc": "a timestamp read", "rdtscp": "a timestamp read", "rdpmc": "a performance-counter read",
    "rdrand": "a hardware random number", "rdseed": "a hardware random number",
    "cpuid": "a CPU identification read", "xgetbv": "a processor-state read", "rdpid": "a processor-id read",
    "rdpkru": "a processor-state read", "wrpkru": "a processor-state write",
    "rdfsbase": "a segment-base read", "rdgsbase": "a segment-base read",
    "wrfsbase": "a segment-base write", "wrgsbase": "a segment-base write",
    "rdmsr": "a privileged instruction", "wrmsr": "a privileged instruction", "cli": "a privileged instruction",
    "sti": "a privileged instruction", "swapgs": "a privileged instruction", "iretq": "an interrupt return",
    "iretd": "an interrupt return", "iret": "an interrupt return", "ud2": "a deliberate trap",
    "ud1": "a deliberate trap", "ud0": "a deliberate trap", "vmcall": "a hypervisor call",
    "vmmcall": "a hypervisor call", "lgdt": "a privileged instruction", "lidt": "a privileged instruction",
    "sgdt": "a processor-state read", "sidt": "a processor-state read", "sldt": "a processor-state read",
    "str": "a processor-state read", "smsw": "a processor-state read", "lmsw": "a privileged instruction",
    "invlpg": "a privileged instruction", "wbinvd": "a privileged instruction", "invd": "a privileged instruction",
    "clts": "a privileged instruction", "ltr": "a privileged instruction", "lldt": "a privileged instruction",
    "retf": "a far return", "retfq": "a far return", "ljmp": "a far jump", "lcall": "a far call",
    "lss": "a segment-register load", "lfs": "a segment-register load", "lgs": "a segment-register load",
    "xbegin": "a transaction (TSX)", "xend": "a transaction (TSX)", "xabort": "a transaction (TSX)",
    "xtest": "a transaction (TSX)", "xacquire": "a transaction hint (TSX)", "xrelease": "a transaction hint (TSX)",
    "pushfq": "a flags-image write (IF, bit 1 and AC are not VEX's)", "pushf": "a flags-image write",
    "popfq": "a flags-image load (TF single-steps, AC enables alignment traps)", "popf": "a flags-image load",
    "lahf": "a flags-image read (AF is undefined after most instructions)", "sahf": "a flags-image load",
    "lzcnt": "an encoding whose meaning depends on a CPU feature (bsr without LZCNT)",
    "rdsspq": "a shadow-stack read (a NOP unless shadow stacks are enabled)",
    "rdsspd": "a shadow-stack read (a NOP unless shadow stacks are enabled)",
    "incsspq": "a shadow-stack operation", "incsspd": "a shadow-stack operation",
    "saveprevssp": "a shadow-stack operation", "rstorssp": "a shadow-stack operation",
    "wrssq": "a shadow-stack operation", "wrssd": "a shadow-stack operation", "setssbsy": "a shadow-stack operation",
    "clac": "a privileged instruction", "stac": "a privileged instruction", "encls": "an enclave instruction",
    "enclu": "an enclave instruction", "umonitor": "a wait instruction", "umwait": "a wait instruction",
    "tpause": "a wait instruction", "monitor": "a privileged instruction", "mwait": "a privileged instruction",
    "pause": "a spin-wait hint", "enqcmd": "a device command", "serialize": "a serialising instruction",
    "std": "setting the direction flag", "senduipi": "a user interrupt", "uiret": "a user-interrupt return",
    "testui": "a user-interrupt read", "clui": "a user-interrupt write", "stui": "a user-interrupt write",
}

G = frozenset({8, 16, 32, 64})
W3 = frozenset({16, 32, 64})
W2 = frozenset({32, 64})
_66 = frozenset({"66"})
CC = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g")


def _gpr(mn: str, shapes: str, widths=G, group="integer", **kw) -> Form:
    return Form(mn, frozenset(shapes.split()), widths, prefixes=_66 if 16 in widths else frozenset(),
                group=group, **kw)


def _sse(mn: str, shapes: str, pfx: str = "66", align: int = 16, vex: bool = True, moves_aligned: bool = False,
         **kw) -> list[Form]:
    """A legacy-SSE integer form (its m128 operand must be 16-aligned unless align=0) and, if `vex`,
    its AVX form `v<mn>` (xmm and ymm; no alignment rule unless it is an aligned move, whose operand
    must be aligned to its whole size: symexec checks max(align, size))."""
    out = [Form(mn, frozenset(shapes.split()), prefixes=frozenset({pfx}) if pfx else frozenset(),
                align=align, group="SSE", **kw)]
    if vex:
        vs: set[str] = set()
        for s in shapes.split():
            v = s if mn in _NO_NDS or s[0] in "rm" else s[0] + "x" + s[1:]
            vs |= {v, v.replace("x", "y")}
            if mn.startswith("ps") and v.endswith("x"):   # shifts by a count in an xmm register
                vs.add(v[:-1].replace("x", "y") + "x")
        vform = Form("v" + mn, frozenset(vs), enc="vex", group="AVX", **kw)
        if moves_aligned:
            vform = replace(vform, align=16, note="#GP unless the operand is aligned to its size")
        out.append(vform)
    return out


_NO_NDS = {"movdqa", "movdqu", "movaps", "movups", "movapd", "movupd", "pshufd", "pmovmskb", "ptest",
           "lddqu", "movd", "movq", "pabsb", "pabsw", "pabsd", "pmovzxbw", "pmovzxbd", "pmovzxbq",
           "pmovzxwd", "pmovzxwq", "pmovzxdq", "pmovsxbw", "pmovsxbd", "pmovsxbq", "pmovsxwd",
           "pmovsxwq", "pmovsxdq", "pshuflw", "pshufhw"}

_FORMS: list[Form] = [
    *[_gpr(m, "rr rm mr ri mi") for m in ("add", "sub", "adc", "sbb", "and", "or", "xor", "cmp")],
    _gpr("test", "rr mr ri mi"),
    *[_gpr(m, "r m") for m in ("neg", "not", "inc", "dec")],
    _gpr("mov", "rr rm mr ri mi"), _gpr("movabs", "ri rm mr", note="moffs: an absolute address"),
    _gpr("movzx", "rr rm"), _gpr("movsx", "rr rm"), _gpr("movsxd", "rr rm", W2),
    _gpr("lea", "rm", W3),
    _gpr("xchg", "rr rm mr", note="with memory: VEX's CAS, a load and a store (one thread)"),
    _gpr("xadd", "rr", note="register forms only"),
    _gpr("imul", "r m", undefined="PZS"), _gpr("imul", "rr rm rri rmi", W3, undefined="PZS"),
    _gpr("mul", "r m", undefined="PZS"),
    _gpr("div", "r m", undefined="CPZSO", note="#DE when the divisor is 0 or the quotient does not fit"),
    _gpr("idiv", "r m", undefined="CPZSO", note="#DE when the divisor is 0 or the quotient does not fit"),
    *[_gpr(m, "r m ri mi rr mr", fix="shift") for m in ("shl", "sal", "shr", "sar")],
    *[_gpr(m, "r m ri mi rr mr", fix="rotate") for m in ("rol", "ror")],
    # 32/64-bit only (16-bit counts over 16 leave result and flags undefined); 8 is the cl count.
    *[_gpr(m, "rri mri rrr mrr", frozenset({8, 32, 64}), fix="shiftd") for m in ("shld", "shrd")],
    # Immediate bit offsets only: VEX lifts a register offset by spilling the operand below rsp
    # (a store the CPU does not make, which a later read of uninitialised stack would see).
    *[_gpr(m, "ri mi", W3, undefined="PZSO") for m in ("bt", "bts", "btr", "btc")],
    *[_gpr(m, "rr rm", W3, undefined="CPSO", fix="bitscan") for m in ("bsf", "bsr")],
    Form("tzcnt", frozenset({"rr", "rm"}), W3, prefixes=frozenset({"f3", "66"}), fix="tzcnt", group="integer",
         note="bsf on CPUs without BMI1: the result for 0 and every flag are modelled as unknown"),
    Form("popcnt", frozenset({"rr", "rm"}), W3, prefixes=frozenset({"f3", "66"}), group="integer"),
    _gpr("bswap", "r", W2),
    *[Form(f"set{c}", frozenset({"r", "m"}), frozenset({8}), group="integer") for c in CC],
    *[_gpr(f"cmov{c}", "rr rm", W3) for c in CC],
    Form("cdqe", frozenset({""}), group="integer"), Form("cwde", frozenset({""}), group="integer"),
    Form("cdq", frozenset({""}), group="integer"), Form("cqo", frozenset({""}), group="integer"),
    Form("cbw", frozenset({""}), prefixes=_66, group="integer"),
    Form("cwd", frozenset({""}), prefixes=_66, group="integer"),
    Form("clc", frozenset({""}), group="integer"), Form("stc", frozenset({""}), group="integer"),
    Form("cmc", frozenset({""}), group="integer"), Form("cld", frozenset({""}), group="integer"),
    # BMI1/BMI2/ADX (VEX-encoded GPR forms): AF and PF are undefined after the BMI1 ones.
    *[Form(m, frozenset({"rrr", "rrm"}), W2, enc="vex", undefined=u, group="BMI")
      for m, u in (("andn", "P"), ("bextr", "PS"), ("bzhi", "P"))],
    *[Form(m, frozenset({"rr", "rm"}), W2, enc="vex", undefined="P", group="BMI")
      for m in ("blsi", "blsmsk", "blsr")],
    *[Form(m, frozenset({"rrr", "rrm"}), W2, enc="vex", group="BMI") for m in ("pdep", "pext", "mulx")],
    *[Form(m, frozenset({"rrr", "rmr"}), W2, enc="vex", group="BMI") for m in ("shlx", "shrx", "sarx")],
    Form("rorx", frozenset({"rri", "rmi"}), W2, enc="vex", group="BMI"),
    *[Form(m, frozenset({"rr", "rm"}), W2, prefixes=frozenset({"66"} if m == "adcx" else {"f3"}), group="BMI")
      for m in ("adcx", "adox")],
    Form("movbe", frozenset({"rm", "mr"}), W3, prefixes=_66, group="integer"),
    # Control flow: direct targets only (nverify checks them); no prefixes (AMD honours 66 on
    # near branches as a 16-bit operand size, Intel ignores it).
    *[Form(f"j{c}", frozenset({"i"}), group="control flow") for c in CC],
    Form("jmp", frozenset({"i", "r", "m"}), group="control flow",
         note="register/memory targets only through a table nverify resolves"),
    Form("call", frozenset({"i"}), group="control flow"),
    Form("ret", frozenset({""}), group="control flow"),
    Form("push", frozenset({"r", "i", "m"}), frozenset({64}), group="stack"),
    Form("pop", frozenset({"r", "m"}), frozenset({64}), group="stack"),
    Form("leave", frozenset({""}), group="stack"),
    Form("nop", frozenset({"", "m", "r"}), prefixes=_66, group="hints", note="0F 1F /0 and 90 only"),
    Form("endbr64", frozenset({""}), prefixes=frozenset({"f3"}), group="hints"),
    # MXCSR and the x87 control word: the whole registers are modelled (entry values arbitrary,
    # reserved bits as the CPU holds them, their control bits callee-saved).
    Form("stmxcsr", frozenset({"m"}), fix="stmxcsr", group="FP control"),
    Form("vstmxcsr", frozenset({"m"}), enc="vex", fix="stmxcsr", group="FP control"),
    Form("ldmxcsr", frozenset({"m"}), fix="ldmxcsr", group="FP control",
         note="#GP when a reserved bit is set"),
    Form("vldmxcsr", frozenset({"m"}), enc="vex", fix="ldmxcsr", group="FP control",
         note="#GP when a reserved bit is set"),
    Form("fnstcw", frozenset({"m"}), fix="fnstcw", group="FP control"),
    Form("fldcw", frozenset({"m"}), fix="fldcw", group="FP control"),
    # SSE/AVX integer and bitwise forms. Legacy-SSE m128 operands must be 16-aligned (#GP).
    *_sse("movdqa", "xx xm mx", moves_aligned=True), *_sse("movdqu", "xx xm mx", pfx="f3", align=0),
    *_sse("movaps", "xx xm mx", pfx="", moves_aligned=True), *_sse("movups", "xx xm mx", pfx="", align=0),
    *_sse("movapd", "xx xm mx", moves_aligned=True), *_sse("movupd", "xx xm mx", align=0),
    *_sse("lddqu", "xm", pfx="f2", align=0),
    *_sse("movd", "xr rx xm mx", align=0), *_sse("movq", "xr rx xm mx xx", align=0),
    *[f for m in ("pxor", "por", "pand", "pandn", "paddb", "paddw", "paddd", "paddq", "psubb", "psubw",
                  "psubd", "psubq", "pcmpeqb", "pcmpeqw", "pcmpeqd", "pcmpeqq", "pcmpgtb", "pcmpgtw",
                  "pcmpgtd", "pcmpgtq", "pminsb", "pminsw", "pminsd", "pminub", "pminuw", "pminud",
                  "pmaxsb", "pmaxsw", "pmaxsd", "pmaxub", "pmaxuw", "pmaxud", "pmullw", "pmulld",
                  "pmuludq", "pmuldq", "pmulhw", "pmulhuw", "punpcklbw", "punpcklwd", "punpckldq",
                  "punpcklqdq", "punpckhbw", "punpckhwd", "punpckhdq", "punpckhqdq", "packsswb",
                  "packssdw", "packuswb", "packusdw", "pshufb", "paddsb", "paddsw", "paddusb", "paddusw",
                  "psubsb", "psubsw", "psubusb", "psubusw", "pavgb", "pavgw", "psadbw", "pmaddwd",
                  "phaddw", "phaddd", "psignb", "psignw", "psignd")
      for f in _sse(m, "xx xm")],
    *[f for m in ("xorps", "orps", "andps", "andnps", "unpcklps", "unpckhps")
      for f in _sse(m, "xx xm", pfx="")],
    *[f for m in ("xorpd", "orpd", "andpd", "andnpd") for f in _sse(m, "xx xm")],
    *[f for m in ("pabsb", "pabsw", "pabsd") for f in _sse(m, "xx xm")],
    *[f for m in ("pmovzxbw", "pmovzxbd", "pmovzxbq", "pmovzxwd", "pmovzxwq", "pmovzxdq", "pmovsxbw",
                  "pmovsxbd", "pmovsxbq", "pmovsxwd", "pmovsxwq", "pmovsxdq") for f in _sse(m, "xx xm", align=0)],
    *_sse("insertps", "xxi xmi", align=0), *_sse("extractps", "rxi mxi", align=0),
    *_sse("blendps", "xxi xmi"), *_sse("blendpd", "xxi xmi"), *_sse("pblendvb", "xx xm"),
    *_sse("pshufd", "xxi xmi"), *_sse("pshuflw", "xxi xmi", pfx="f2"), *_sse("pshufhw", "xxi xmi", pfx="f3"),
    *_sse("shufps", "xxi xmi", pfx=""), *_sse("palignr", "xxi xmi"), *_sse("pblendw", "xxi xmi"),
    *[f for m in ("psllw", "pslld", "psllq", "psrlw", "psrld", "psrlq", "psraw", "psrad")
      for f in _sse(m, "xi xx xm")],
    *_sse("pslldq", "xi"), *_sse("psrldq", "xi"),
    *_sse("pmovmskb", "rx"), *_sse("movmskps", "rx", pfx=""), *_sse("ptest", "xx xm", undefined=""),
    *_sse("pextrb", "rxi mxi", align=0), *_sse("pextrw", "rxi mxi", align=0),
    *_sse("pextrd", "rxi mxi", align=0), *_sse("pextrq", "rxi mxi", align=0),
    *_sse("pinsrb", "xri xmi", align=0), *_sse("pinsrw", "xri xmi", align=0),
    *_sse("pinsrd", "xri xmi", align=0), *_sse("pinsrq", "xri xmi", align=0),
    # AVX/AVX2 only.
    *[Form(m, frozenset({"xx", "xm", "yx", "ym"}), enc="vex", group="AVX")
      for m in ("vpbroadcastb", "vpbroadcastw", "vpbroadcastd", "vpbroadcastq")],
    Form("vperm2i128", frozenset({"yyyi", "yymi"}), enc="vex", group="AVX"),
    Form("vinserti128", frozenset({"yyxi", "yymi"}), enc="vex", group="AVX"),
    Form("vextracti128", frozenset({"xyi", "myi"}), enc="vex", group="AVX"),
    Form("vpermq", frozenset({"yyi", "ymi"}), enc="vex", group="AVX"),
    Form("vpermd", frozenset({"yyy", "yym"}), enc="vex", group="AVX"),
    Form("vpblendd", frozenset({"xxxi", "xxmi", "yyyi", "yymi"}), enc="vex", group="AVX"),
    Form("vpblendvb", frozenset({"xxxx", "xxmx", "yyyy", "yymy"}), enc="vex", group="AVX"),
    Form("vzeroupper", frozenset({""}), enc="vex", group="AVX"),
]
TABLE = rows(*_FORMS)

FLAG_BITS = {"C": 0x1, "P": 0x4, "Z": 0x40, "S": 0x80, "O": 0x800}


def prefixes(raw: bytes) -> tuple[list[str], int | None, int]:
    """(legacy prefixes in order, the REX byte or None, index of the opcode) of one instruction."""
    i, seen = 0, []
    while i < len(raw) and raw[i] in LEGACY:
        seen.append(LEGACY[raw[i]])
        i += 1
    rex = None
    if i < len(raw) and 0x40 <= raw[i] <= 0x4F:
        rex = raw[i]
        i += 1
    return seen, rex, i


def classify(insn: Insn) -> Decision:
    m = insn.mnemonic
    if m in DENY:
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} is {DENY[m]}", insn)
    for word in m.split():
        if word in DENY:
            return Decision("policy", f"{insn.text()} at {insn.addr:#x} is {DENY[word]}", insn)
    pfx, rex, op = prefixes(insn.raw)
    bad = _encoding_problem(insn, pfx, rex, op)
    if bad:
        return Decision("policy", f"{insn.text()} ({insn.raw.hex()}) at {insn.addr:#x}: {bad}", insn)
    if "lock" in pfx:
        # xchg with memory is locked with or without the prefix: the same form. Other atomics mean
        # the same on every CPU, just not verified: unknown, not refuted.
        if m != "lock xchg" or "m" not in insn.shape:
            return Decision("unsupported", f"{insn.text()} ({insn.raw.hex()}) at {insn.addr:#x} has a LOCK "
                            "prefix: atomics are outside the verified x86-64 instruction set", insn)
        m, pfx = "xchg", [p for p in pfx if p != "lock"]
    if "?" in insn.shape or "m" in insn.shape and any(mm[5] for mm in insn.mem):
        what = "a segment-relative access" if any(mm[5] for mm in insn.mem) else "an operand outside the model"
        return Decision("unsupported", f"{insn.text()} ({insn.raw.hex()}) at {insn.addr:#x} has {what}", insn)
    enc = "vex" if op < len(insn.raw) and insn.raw[op] in (0xC4, 0xC5) else "legacy"
    for form in TABLE.get(m, ()):
        if form.enc != enc or not form.matches(insn):
            continue
        why = _prefix_problem(insn, form, pfx, rex)
        if why:
            return Decision("policy", f"{insn.text()} ({insn.raw.hex()}) at {insn.addr:#x}: {why}", insn)
        if m == "nop" and not _plain_nop(insn.raw[op:]):
            return Decision("policy", f"{insn.text()} ({insn.raw.hex()}) at {insn.addr:#x} is a hint-space "
                            "instruction whose meaning depends on CPU features", insn)
        return Decision("ok", insn=insn, form=form)
    return Decision("unsupported", f"{insn.text()} ({insn.raw.hex()}) at {insn.addr:#x} is not in the verified "
                    f"x86-64 instruction set (form {m} {_shape_text(insn)}, {enc} encoding)", insn)


def _encoding_problem(insn: Insn, pfx: list[str], rex: int | None, op: int) -> str:
    groups = [_GROUP[p] for p in pfx]
    if len(set(groups)) != len(groups):
        return "more than one prefix of one group (the CPU's behaviour is undefined)"
    if "67" in pfx:
        return "an address-size prefix (decoders and CPUs disagree on its lengths and wrap-around)"
    for seg in ("cs", "ss", "ds", "es"):
        if seg in pfx:
            return f"a {seg} segment prefix, ignored in 64-bit mode (a branch hint, or a decoding trick)"
    if "fs" in pfx or "gs" in pfx:
        return "an fs/gs segment override (thread-local memory is outside the machine model)"
    if rex is not None and op < len(insn.raw) and (0x40 <= insn.raw[op] <= 0x4F or insn.raw[op] in LEGACY):
        return "a prefix after REX (the CPU ignores a REX that is not last)"
    if op < len(insn.raw) and insn.raw[op] in (0xC4, 0xC5, 0x62) and (pfx or rex is not None):
        return "a legacy or REX prefix before a VEX/EVEX prefix (#UD)"
    if op + 1 < len(insn.raw) and insn.raw[op] == 0x8F and (insn.raw[op + 1] >> 3) & 7:
        return "an XOP encoding (AMD only)"
    return ""


def _prefix_problem(insn: Insn, form: Form, pfx: list[str], rex: int | None) -> str:
    if form.group == "SSE":
        # The mandatory prefix is part of the opcode: capstone's mnemonic already tells movdqa
        # (66) from movdqu (F3) from an MMX form. A second one is what CPUs would ignore.
        if len(pfx) > 1:
            return f"prefixes {' '.join(pfx)}: more than the one mandatory prefix"
        return ""
    extra = [p for p in pfx if p not in form.prefixes]
    if extra:
        return f"prefix {' '.join(extra)} is not part of this form (CPUs ignore it, or vendors differ)"
    if form.group == "control flow" and rex is not None:
        return "a REX prefix on a branch"
    # (a 66 that a form without 16-bit operands lists is its mandatory prefix, part of the opcode:
    # adcx is 66 0F 38 F6)
    mandatory = "66" in form.prefixes and 16 not in form.widths
    gpr = form.enc == "legacy" and form.group in ("integer", "stack", "BMI") and "66" in pfx and not mandatory
    if gpr and form.mnemonic not in ("cbw", "cwd") and (not insn.widths or insn.widths[0] != 16):
        return "an operand-size prefix that does not make the operation 16-bit"
    return ""


def _plain_nop(rest: bytes) -> bool:
    """90, or the recommended multi-byte NOP 0F 1F /0 (other 0F 18-1F hints are feature-dependent)."""
    if rest[:1] == b"\x90":
        return True
    return len(rest) >= 3 and rest[0] == 0x0F and rest[1] == 0x1F and (rest[2] >> 3) & 7 == 0


def _shape_text(insn: Insn) -> str:
    names = {"r": "r", "m": "m", "i": "imm", "x": "xmm", "y": "ymm", "?": "other"}
    return ", ".join(f"{names.get(c, c)}{w or ''}" for c, w in zip(insn.shape, insn.widths, strict=False)) or "-"

"""The AArch64 verified instruction set: the deny list and the table of forms (Arm ARM), each with
what nverify adds to VEX's meaning of it."""

from __future__ import annotations

from .table import Decision, Form, Insn, rows

DENY = {
    "svc": "a system call", "hvc": "a hypervisor call", "smc": "a secure-monitor call",
    "brk": "a breakpoint trap", "hlt": "a halt", "udf": "a deliberate trap", "eret": "an exception return",
    "wfi": "a wait-for-interrupt", "wfe": "a wait-for-event", "wfet": "a wait", "wfit": "a wait",
    "sev": "an event signal", "sevl": "an event signal", "yield": "a scheduling hint",
    "sys": "a system instruction", "sysl": "a system instruction", "dc": "a cache-maintenance instruction",
    "ic": "a cache-maintenance instruction", "at": "an address-translation instruction",
    "tlbi": "a TLB-maintenance instruction", "br": "an indirect jump", "blr": "an indirect call",
    "braa": "an indirect jump", "brab": "an indirect jump", "blraa": "an indirect call",
    "blrab": "an indirect call", "braaz": "an indirect jump", "brabz": "an indirect jump",
    "blraaz": "an indirect call", "blrabz": "an indirect call", "eretaa": "an exception return",
    "eretab": "an exception return",
    # Pointer authentication: a NOP without FEAT_PAuth, a keyed hash (and a fault) with it.
    **{m: "pointer authentication (a NOP or a keyed hash and a possible fault, by CPU feature)"
       for m in ("paciasp", "pacibsp", "autiasp", "autibsp", "paciaz", "pacibz", "autiaz", "autibz",
                 "pacia1716", "pacib1716", "autia1716", "autib1716", "xpaclri", "pacia", "pacib", "pacda",
                 "pacdb", "autia", "autib", "autda", "autdb", "paciza", "pacizb", "pacdza", "pacdzb",
                 "autiza", "autizb", "autdza", "autdzb", "xpaci", "xpacd", "pacga", "retaa", "retab",
                 "ldraa", "ldrab", "retaasppc", "retabsppc")},
    "chkfeat": "a feature probe (GCS)", "gcspushm": "a guarded-control-stack operation",
    "gcspopm": "a guarded-control-stack operation", "gcsss1": "a guarded-control-stack operation",
    "gcsss2": "a guarded-control-stack operation", "gcsstr": "a guarded-control-stack operation",
    "clrex": "an exclusive-monitor operation", "esb": "an error barrier", "psb": "a profiling hint",
    "tsb": "a trace barrier", "csdb": "a speculation barrier", "ssbb": "a speculation barrier",
    "pssbb": "a speculation barrier", "sb": "a speculation barrier", "dgh": "a hint",
    "irg": "a memory-tagging instruction", "gmi": "a memory-tagging instruction",
    "stg": "a memory-tagging instruction", "ldg": "a memory-tagging instruction",
    "st64b": "a 64-byte single-copy store", "ld64b": "a 64-byte single-copy load",
    "setf8": "a flag-setting hint", "setf16": "a flag-setting hint", "rmif": "a flag manipulation",
    "cfinv": "a flag manipulation", "axflag": "a flag manipulation", "xaflag": "a flag manipulation",
}
# mrs/msr: only the flags and the FP control and status registers (modelled whole).
SYSREGS = {"nzcv", "fpcr", "fpsr"}

# adc/adcs/sbc/sbcs/ngc/ngcs: angr 9.2's arm64g_calculate_flag_c picks the SBC carry on the
# subtrahend instead of the carry in, so C was wrong when Rn == Rm != 0 with C clear, or
# Rn == Rm == 0 with C set (issue 17's `sbcs x1, xzr, x0`); nverify evaluates the whole arm64
# flag thunk from VEX's own C helpers instead (vexops.py), checked on the CPU by tests/test_forms.py.
_INT = ("add adds sub subs cmp cmn neg negs adc adcs sbc sbcs ngc ngcs and ands orr orn eor eon bic bics "
        "tst mvn mov movz movn movk lsl lsr asr ror lslv lsrv asrv rorv ubfm sbfm bfm ubfx sbfx ubfiz "
        "sbfiz bfi bfxil bfc extr sxtb sxth sxtw uxtb uxth mul madd msub mneg smull umull smulh umulh "
        "smaddl umaddl smsubl umsubl smnegl umnegl udiv sdiv clz cls rbit rev rev16 rev32 csel csinc "
        "csinv csneg cset csetm cinc cinv cneg ccmp ccmn").split()
_MEM = ("ldr ldrb ldrh ldrsb ldrsh ldrsw str strb strh ldp stp ldpsw ldur ldurb ldurh ldursb ldursh "
        "ldursw stur sturb sturh").split()   # ldnp/stnp: VEX cannot lift them
_FLOW = "b bl cbz cbnz tbz tbnz ret".split()
_SIMD = ("fmov mov dup ins umov smov movi mvni orr and eor bic orn bsl bit bif not mvn add sub neg abs "
         "cmeq cmgt cmge cmhi cmhs cmle cmlt cmtst smin smax umin umax sminp smaxp uminp umaxp addp "
         "addv uaddlv saddlv umaxv uminv smaxv sminv mul mla mls umull umull2 smull smull2 umlal smlal "
         "ushr sshr shl ushl sshl usra ssra ushll ushll2 sshll sshll2 uxtl uxtl2 sxtl sxtl2 xtn xtn2 "
         "shrn shrn2 ext zip1 zip2 uzp1 uzp2 trn1 trn2 rev64 rev32 rev16 tbl cnt uaddlp saddlp uadalp "
         "sadalp uabd sabd uaba saba uhadd shadd urhadd srhadd sqadd uqadd sqsub uqsub ld1 st1 ld1r "
         "ld2 st2 addhn raddhn").split()

_FORMS: list[Form] = [
    *[Form(m, frozenset({"*"}), enc="a64", group="integer") for m in _INT],
    *[Form(m, frozenset({"*"}), enc="a64", fix="sp-align", group="memory",
           note="#SP alignment fault when sp is the base and is not 16-aligned") for m in _MEM],
    *[Form(m, frozenset({"*"}), enc="a64", group="control flow") for m in _FLOW],
    *[Form(m, frozenset({"*"}), enc="a64", group="SIMD") for m in _SIMD],
    *[Form(f"b.{c}", frozenset({"i"}), enc="a64", group="control flow")
      for c in "eq ne hs lo mi pl vs vc hi ls ge lt gt le al cs cc".split()],
    Form("nop", frozenset({""}), enc="a64", group="hints"),
    Form("bti", frozenset({"", "c"}), enc="a64", group="hints", note="a landing pad; no effect on direct flow"),
    Form("prfm", frozenset({"*"}), enc="a64", group="hints", note="no architectural effect, never faults"),
    Form("prfum", frozenset({"*"}), enc="a64", group="hints", note="no architectural effect, never faults"),
    Form("dmb", frozenset({"*"}), enc="a64", group="hints", note="no effect on one thread"),
    Form("dsb", frozenset({"*"}), enc="a64", group="hints", note="no effect on one thread"),
    Form("isb", frozenset({"*"}), enc="a64", group="hints", note="no effect on one thread"),
    Form("mrs", frozenset({"rs"}), enc="a64", fix="mrs", group="system registers",
         note="nzcv, fpcr, fpsr only; FPCR and FPSR are modelled whole"),
    Form("msr", frozenset({"sr"}), enc="a64", fix="msr", group="system registers",
         note="nzcv, fpcr, fpsr only; FPCR bits a CPU may lack are modelled per CPU"),
]
TABLE = rows(*_FORMS)


def classify(insn: Insn) -> Decision:
    m = insn.mnemonic
    if m in DENY:
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} is {DENY[m]}", insn)
    if m in ("hint",) or (m == "ret" and insn.op_str.strip() not in ("", "x30")):
        what = "an indirect jump" if m == "ret" else "a hint whose meaning depends on CPU features"
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} is {what}", insn)
    if m in ("mrs", "msr"):
        reg = insn.op_str.split(",")[1 if m == "mrs" else 0].strip().lower()
        if reg not in SYSREGS:
            what = "reads" if m == "mrs" else "writes"
            return Decision("policy", f"{insn.text()} at {insn.addr:#x} {what} system register {reg}", insn)
    if "s" in insn.shape and m not in ("mrs", "msr"):
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} touches processor state "
                        "outside the machine model", insn)
    for form in TABLE.get(m, ()):
        if form.matches(insn):
            return Decision("ok", insn=insn, form=form)
    return Decision("unsupported", f"{insn.text()} ({insn.raw[::-1].hex()}) at {insn.addr:#x} is not in the "
                    f"verified AArch64 instruction set", insn)

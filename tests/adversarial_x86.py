"""x86-64 cases of the adversarial tier: blob source + spec + the CPU's behaviour -> `Case`s."""

from __future__ import annotations

from .adversarial_cases import (
    COPY4,
    FCW_DEFAULT,
    FRAME,
    ID32,
    ID64,
    INC32,
    MAGIC,
    MXCSR_DEFAULT,
    NOT_PROVEN,
    POLICY,
    ZERO32,
    Case,
    Ctx,
    spec,
)
from .adversarial_cases import (
    crash_on_magic as _crash_on_magic,
)
from .native import cpu_flags, cpu_vendor

X = "x86_64"
SAME = ("this CPU computes what VEX does; the SDM leaves the output undefined and other "
        "implementations need not agree")
RANDOM_WORDS = bytes(range(0x10, 0x20))


def _magic_tail(body: str) -> str:
    """Return x, except on the magic input, where `body` runs first (and must end in ret)."""
    return f"mov eax, edi\n cmp edi, {MAGIC:#x}\n jne ok\n {body}\n ok: ret"


# --- class 1: dead code removed before the proof ------------------------------------------------

DEAD = [
    Case("dead_load_x86_64", X, "1 dead code", _magic_tail("mov ecx, dword ptr [0]\n xor ecx, ecx"), ID32,
         _crash_on_magic("SIGSEGV")),
    Case("dead_div_x86_64", X, "1 dead code",
         _magic_tail("xor ecx, ecx\n xor edx, edx\n div ecx\n mov eax, edi"), ID32,
         _crash_on_magic("SIGFPE")),   # guard: VEX's zero-divisor exit survives the optimiser
    Case("dead_load_of_array_x86_64", X, "1 dead code",
         _magic_tail("mov ecx, dword ptr [rdi + 0x100000]\n xor ecx, ecx"),
         spec("int32_t f(int32_t x, const int32_t p[1])", "(= ret x)"),
         lambda c: c.faults("SIGSEGV", x=MAGIC, mem=bytes(4), regs={"rsi": 0})),
]

# --- class 2: decoding the CPU does not do ------------------------------------------------------


def _opsize_jcc(c: Ctx):
    """Intel ignores 66 on a near jcc in 64-bit mode (rel32, 7 bytes); AMD takes rel16, a 5-byte
    instruction, and truncates the target to 16 bits. The vendors run different code."""
    r = c.run(regs={"rdi": 5, "rax": 0x10000})
    if cpu_vendor() == "intel":
        assert r.returned and r.reg("rax") == 5, r.line
        assert c.run(regs={"rdi": MAGIC}).reg("rax") == MAGIC
    else:
        assert not r.returned or r.reg("rax") != 5, r.line


DECODE = [
    Case("opsize_jcc_x86_64", X, "2 decoding",
         f"mov eax, edi\n cmp edi, {MAGIC:#x}\n .byte 0x66, 0x0f, 0x84, 0x05, 0x00, 0x00, 0x00\n ret\n"
         " .byte 0x90, 0x90, 0x90, 0x90\n ret", ID32, _opsize_jcc, POLICY),
    Case("rex_twice_x86_64", X, "2 decoding",
         "mov eax, edi\n xor r8d, r8d\n .byte 0x41, 0x48, 0x01, 0xc0\n ret", ID64,
         lambda c: c.breaks_spec(x=0x15)),
    Case("rex_before_67_x86_64", X, "2 decoding",
         "mov eax, edi\n .byte 0x4f, 0x67, 0xb9, 0x78, 0x56, 0x34, 0x12, 0xff, 0xc0, 0x90, 0x90\n ret", ID32,
         lambda c: c.breaks_spec(x=0x15), NOT_PROVEN),
    Case("hint_nop_x86_64", X, "2 decoding",
         "mov eax, edi\n .byte 0xf3, 0x0f, 0x1e, 0x80, 0xff, 0xc0, 0x90, 0x90\n ret", INC32,
         lambda c: c.breaks_spec(x=0x15), NOT_PROVEN),
]

# --- class 3: forbidden instructions VEX cannot lift ----------------------------------------------


def _varies(c: Ctx):
    """A read of the environment: two calls on one input return different values, or break the spec."""
    a, b = c.run(regs={"rdi": 5}), c.run(regs={"rdi": 5})
    assert a.returned and b.returned, (a.line, b.line)
    assert a.reg("rax") != b.reg("rax") or a.reg("rax") & 0xFFFFFFFF != 5, (a.line, b.line)


def _does_not_return(c: Ctx):
    r = c.run(regs={"rdi": 5})
    assert not r.returned or r.reg("rax") & 0xFFFFFFFF != 5, r.line


FORBIDDEN = [
    Case("rdrand_x86_64", X, "3 forbidden, not lifted", "rdrand eax\n ret", ID32, _varies, POLICY, needs=("rdrand",)),
    Case("rdseed_x86_64", X, "3 forbidden, not lifted", "rdseed eax\n ret", ID32, _varies, POLICY, needs=("rdseed",)),
    Case("rdpid_x86_64", X, "3 forbidden, not lifted", ".byte 0xf3, 0x0f, 0xc7, 0xf8\n ret", ID64,
         lambda c: c.breaks_spec(x=0x1234567), POLICY, needs=("rdpid",)),
    Case("sysenter_x86_64", X, "3 forbidden, not lifted", "sysenter\n ret", ID32,
         _does_not_return, POLICY),
    Case("smsw_x86_64", X, "new: environment reads outside the deny list",
         "smsw eax\n ret", ZERO32, _does_not_return, POLICY),
    Case("rdpkru_x86_64", X, "new: environment reads outside the deny list",
         "xor ecx, ecx\n rdpkru\n ret", ZERO32, _does_not_return, POLICY, needs=("ospke",)),
    Case("mov_from_cs_x86_64", X, "new: environment reads outside the deny list",
         "mov eax, cs\n ret", ZERO32, lambda c: c.breaks_spec(x=0)),
]

# --- class 4: state pinned instead of arbitrary ---------------------------------------------------

PINNED = [
    Case("stmxcsr_ftz_x86_64", X, "4 pinned state",
         "stmxcsr dword ptr [rsp - 4]\n mov ecx, dword ptr [rsp - 4]\n mov eax, edi\n test ecx, 0x8000\n"
         " jz ok\n inc eax\n ok: ret", ID32,
         lambda c: (c.meets_spec(x=5), c.breaks_spec(x=5, ctl=(MXCSR_DEFAULT | 0x8040, None)))),
    Case("stmxcsr_inexact_x86_64", X, "4 pinned state",
         "stmxcsr dword ptr [rsp - 4]\n mov ecx, dword ptr [rsp - 4]\n mov eax, edi\n and ecx, 0x3f\n"
         " add eax, ecx\n ret", ID32,
         lambda c: c.breaks_spec(x=5, ctl=(MXCSR_DEFAULT | 0x20, None))),
    Case("fnstsw_x86_64", X, "4 pinned state",
         "fnstsw ax\n mov ecx, eax\n mov eax, edi\n test cl, 0x20\n jz ok\n inc eax\n ok: ret", ID32,
         lambda c: (c.meets_spec(x=5), c.breaks_spec(x=5, x87_inexact=True))),
    Case("fnstcw_x86_64", X, "4 pinned state",
         "fnstcw word ptr [rsp - 8]\n movzx ecx, word ptr [rsp - 8]\n mov eax, edi\n cmp ecx, 0x37f\n"
         " je ok\n inc eax\n ok: ret", ID32,
         lambda c: (c.meets_spec(x=5), c.breaks_spec(x=5, ctl=(None, FCW_DEFAULT | 0xC00)))),
    Case("ldmxcsr_rounding_x86_64", X, "4 callee-saved FP control",
         "stmxcsr dword ptr [rsp - 4]\n or dword ptr [rsp - 4], 0x6000\n ldmxcsr dword ptr [rsp - 4]\n"
         " mov eax, edi\n ret", ID32,
         lambda c: (c.meets_spec(x=5), _mxcsr_changed(c)), FRAME),
    Case("fldcw_rounding_x86_64", X, "4 callee-saved FP control",
         "fnstcw word ptr [rsp - 8]\n or word ptr [rsp - 8], 0xc00\n fldcw word ptr [rsp - 8]\n"
         " mov eax, edi\n ret", ID32,
         lambda c: (c.meets_spec(x=5), _fcw_changed(c)), FRAME),
    Case("mmx_without_emms_x86_64", X, "new: x87/MMX mode not restored",
         "movq mm0, rdi\n movq rax, mm0\n ret", ID64,
         lambda c: _x87_stack_full(c), NOT_PROVEN),
]


def _mxcsr_changed(c: Ctx):
    r = c.run(regs={"rdi": 5})
    assert r.returned and r.reg("ctl0") & 0x6000 == 0x6000, r.line


def _fcw_changed(c: Ctx):
    r = c.run(regs={"rdi": 5})
    assert r.returned and r.reg("ctl1") & 0xC00 == 0xC00, r.line


def _x87_stack_full(c: Ctx):
    """After MMX code without emms every x87 register is tagged valid: the caller's next fld
    overflows the x87 stack (SysV: the x87 unit must be in x87 mode, stack empty, at a return)."""
    r = c.run(regs={"rdi": 5})
    assert r.returned and r.reg("rax") == 5, r.line
    assert r.reg("ctl3") != 0xFFFF, f"the x87 tag word says the stack is empty: {r.line}"


# --- class 5: outputs the ISA leaves undefined ----------------------------------------------------


def _same_here(c: Ctx):
    raise AssertionError("not run: see cpu_skip")


UNDEFINED = [
    Case("bsf_zero_upper_x86_64", X, "5 undefined output",
         "mov rax, rsi\n bsf eax, edi\n shr rax, 0x20\n ret",
         spec("int64_t f(int32_t x, int64_t y)", "(=> (= x #x00000000) (= ret #x0000000000000000))"),
         lambda c: _bsf_zero(c)),
    Case("imul_zf_x86_64", X, "5 undefined output",
         "imul ecx, edi, 1\n setz al\n movzx eax, al\n ret",
         spec("int32_t f(int32_t x)", "(= ret (ite (= x #x00000000) #x00000001 #x00000000))"),
         lambda c: c.breaks_spec(x=0)),
    Case("mul_zf_x86_64", X, "5 undefined output",
         "mov eax, edi\n mul esi\n setz al\n movzx eax, al\n ret",
         spec("int32_t f(int32_t x, int32_t y)", "(= ret #x00000001)", pre="(= x #x00000000)"),
         lambda c: c.breaks_spec(x=0, y=5)),
    Case("div_flags_x86_64", X, "5 undefined output",
         "cmp edi, edi\n mov eax, 7\n mov edx, 0\n mov ecx, 3\n div ecx\n setz al\n"
         " movzx eax, al\n ret", spec("int32_t f(int32_t x)", "(= ret #x00000001)"),
         _same_here, cpu_skip=SAME),
    Case("bt_sf_x86_64", X, "5 undefined output",
         "mov ecx, 1\n neg ecx\n bt edi, 0\n sets al\n movzx eax, al\n ret",
         spec("int32_t f(int32_t x)", "(= ret #x00000001)"), _same_here, cpu_skip=SAME),
    Case("shl_af_x86_64", X, "5 undefined output",
         "mov eax, edi\n shl eax, 1\n lahf\n shr eax, 0xc\n and eax, 1\n ret",
         spec("int32_t f(int32_t x)", "(= ret #x00000000)"), _same_here, cpu_skip=SAME),
    Case("shrd16_big_count_x86_64", X, "5 undefined output",
         "mov eax, edi\n mov edx, esi\n mov ecx, 0x14\n shrd ax, dx, cl\n movzx eax, ax\n ret",
         spec("int32_t f(int32_t x, int32_t y)", "(= ret #x00004567)",
              pre="(and (= x #x00001234) (= y #x00005678))"),
         _same_here, cpu_skip=SAME),
    Case("andn_af_x86_64", X, "5 undefined output",
         "mov eax, 0xf\n add al, 0x1\n andn eax, edi, esi\n lahf\n shr eax, 0xc\n and eax, 1\n ret",
         spec("int32_t f(int32_t x, int32_t y)", "(= ret #x00000000)"),
         _same_here, needs=("bmi1",), cpu_skip=SAME),
]


def _bsf_zero(c: Ctx):
    """bsf with a zero source: Intel and AMD document the destination as unchanged, all 64 bits,
    even for a 32-bit operand (no zero-extension); VEX zero-extends."""
    r = c.breaks_spec(x=0, y=0xDEADBEEF_00000000)
    assert r.reg("rax") == 0xDEADBEEF, r.line


# --- class 6: faults the CPU raises and the model does not --------------------------------------

MISALIGNED = bytes(range(16))


def _misaligned(c: Ctx):
    c.meets_spec(mem=MISALIGNED, mem_offset=0x40)
    c.faults("SIGSEGV", "SIGBUS", mem=MISALIGNED, mem_offset=0x44)


FAULTS = [
    Case("movaps_misaligned_x86_64", X, "6 missing fault", "movaps xmm0, [rdi]\n movaps [rdi], xmm0\n ret", COPY4,
         _misaligned),
    Case("pxor_misaligned_x86_64", X, "6 missing fault",
         "pxor xmm0, xmm0\n pxor xmm0, [rdi]\n movups [rdi], xmm0\n ret", COPY4, _misaligned),
    Case("paddd_misaligned_x86_64", X, "6 missing fault",
         "pxor xmm0, xmm0\n paddd xmm0, [rdi]\n movups [rdi], xmm0\n ret", COPY4, _misaligned),
    Case("pshufd_misaligned_x86_64", X, "6 missing fault",
         "pshufd xmm0, [rdi], 0xe4\n movups [rdi], xmm0\n ret", COPY4, _misaligned),
    Case("div8_overflow_x86_64", X, "6 missing fault",
         f"cmp edi, {MAGIC:#x}\n jne ok\n mov ax, 0x200\n mov cl, 1\n div cl\n movzx eax, al\n"
         f" add eax, {MAGIC:#x}\n ret\n ok: mov eax, edi\n ret", ID32, _crash_on_magic("SIGFPE")),
    Case("div16_overflow_x86_64", X, "6 missing fault",
         f"cmp edi, {MAGIC:#x}\n jne ok\n mov dx, 2\n xor eax, eax\n mov cx, 1\n div cx\n movzx eax, ax\n"
         f" add eax, {MAGIC:#x}\n ret\n ok: mov eax, edi\n ret", ID32, _crash_on_magic("SIGFPE")),
    Case("ldmxcsr_reserved_x86_64", X, "6 missing fault",
         _magic_tail("mov dword ptr [rsp - 4], 0x11f80\n ldmxcsr dword ptr [rsp - 4]\n mov eax, edi"), ID32,
         _crash_on_magic("SIGSEGV")),
    Case("mov_ds_x86_64", X, "6 missing fault", _magic_tail("mov ecx, 0x1234\n mov ds, ecx\n mov eax, edi"), ID32,
         _crash_on_magic("SIGSEGV", "SIGBUS")),
    Case("popfq_tf_x86_64", X, "6 missing fault",
         _magic_tail("pushfq\n or dword ptr [rsp], 0x100\n popfq\n mov eax, edi"), ID32,
         _crash_on_magic("SIGTRAP")),
    Case("popfq_ac_x86_64", X, "6 missing fault",
         _magic_tail("pushfq\n or dword ptr [rsp], 0x40000\n popfq\n mov ecx, dword ptr [rsp - 7]\n"
                     " pushfq\n and dword ptr [rsp], 0xfffbffff\n popfq\n mov eax, edi"), ID32,
         _crash_on_magic("SIGBUS")),
    Case("xbegin_x86_64", X, "6 missing fault",
         "mov eax, edi\n .byte 0xc7, 0xf8, 0x08, 0x00, 0x00, 0x00\n mov eax, 1\n .byte 0x0f, 0x01, 0xd5\n ret", ID32,
         lambda c: _xbegin(c)),
    Case("retfq_x86_64", X, "6 missing fault",
         "mov rcx, qword ptr [rsp]\n sub rsp, 2\n mov qword ptr [rsp], rcx\n mov eax, edi\n retfq", ID32,
         lambda c: _does_not_return(c)),
    Case("pushfq_if_x86_64", X, "6 flag image",
         "pushfq\n pop rax\n and eax, 0x202\n ret", ZERO32, lambda c: c.breaks_spec(x=0)),
]


def _xbegin(c: Ctx):
    """With RTM the transaction commits and returns 1, or aborts with a status in eax; with TSX
    disabled by microcode (as on this Sapphire Rapids) every xbegin aborts with status 0; without
    TSX at all it is #UD. Never the x the spec asks for."""
    r = c.run(regs={"rdi": 5})
    if r.returned:
        assert r.reg("rax") & 0xFFFFFFFF != 5, r.line
        if "rtm" not in cpu_flags():
            assert r.reg("rax") & 0xFFFFFFFF == 0, r.line
    else:
        assert r.kind == "signal" and r.signal == "SIGILL" and "rtm" not in cpu_flags(), r.line


ALL = DEAD + DECODE + FORBIDDEN + PINNED + UNDEFINED + FAULTS

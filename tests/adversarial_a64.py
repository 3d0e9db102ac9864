"""AArch64 cases of the adversarial tier, and those of the spec and reference classes (7, 8) on
both ISAs: blob source + spec + the CPU's behaviour -> `Case`s."""

from __future__ import annotations

from .adversarial_cases import (
    COPYB16,
    FPCR_FZ,
    FPCR_RMODE_ZERO,
    FPSR_IXC,
    FRAME,
    ID32,
    ID64,
    MAGIC,
    NOT_PROVEN,
    POLICY,
    Case,
    Ctx,
    spec,
)
from .adversarial_cases import (
    crash_on_magic as _crash_on_magic,
)

A = "aarch64"


def _magic_tail(body: str) -> str:
    """Return x, except on the magic input, where `body` runs first."""
    return f"cmp w0, #{MAGIC:#x}\n b.ne ok\n {body}\n ok: ret"


DEAD = [
    Case("dead_load_aarch64", A, "1 dead code", _magic_tail("mov x9, #0\n ldr w10, [x9]\n mov w10, #0"), ID32,
         _crash_on_magic("SIGSEGV")),
    Case("dead_load_to_zr_aarch64", A, "1 dead code", _magic_tail("mov x9, #0x10\n ldr wzr, [x9]"), ID32,
         _crash_on_magic("SIGSEGV")),
]

DECODE = [
    # ldr x1, [x1], #8: writeback into the register loaded, CONSTRAINED UNPREDICTABLE; qemu runs it.
    Case("ldr_writeback_same_reg_aarch64", A, "2 decoding", ".byte 0x21, 0x84, 0x40, 0xf8\n ret",
         spec("int64_t f(int64_t x, const int64_t p[2])", "(= ret x)"),
         lambda c: c.meets_spec(x=5, mem=bytes(16))),
]

FORBIDDEN = [
    Case("hvc_aarch64", A, "3 forbidden, not lifted", "hvc #0\n ret", ID32,
         lambda c: c.faults("SIGILL", x=5), POLICY),
    Case("smc_aarch64", A, "3 forbidden, not lifted", "smc #0\n ret", ID32,
         lambda c: c.faults("SIGILL", x=5), POLICY),
]

PINNED = [
    Case("mrs_fpcr_aarch64", A, "4 pinned state", "mrs x9, fpcr\n cbz x9, ok\n add w0, w0, #1\n ok: ret", ID32,
         lambda c: (c.meets_spec(x=5), c.breaks_spec(x=5, ctl=(FPCR_FZ, None)))),
    Case("mrs_fpsr_aarch64", A, "4 pinned state", "mrs x9, fpsr\n and x9, x9, #0x1f\n add w0, w0, w9\n ret", ID32,
         lambda c: (c.meets_spec(x=5), c.breaks_spec(x=5, ctl=(None, FPSR_IXC)))),
    Case("msr_fpcr_rounding_aarch64", A, "4 callee-saved FP control",
         "mrs x9, fpcr\n orr x9, x9, #0xc00000\n msr fpcr, x9\n ret", ID32,
         lambda c: _fpcr_changed(c, FPCR_RMODE_ZERO), FRAME),
    Case("msr_fpcr_fz_aarch64", A, "4 callee-saved FP control",
         "mrs x9, fpcr\n orr x9, x9, #0x1000000\n msr fpcr, x9\n ret", ID32,
         lambda c: _fpcr_changed(c, FPCR_FZ), FRAME),
]


def _fpcr_changed(c: Ctx, bits: int):
    r = c.meets_spec(x=5)
    assert r.reg("ctl0") & bits == bits, r.line


ODD = bytes(range(1, 17))


def _misaligned_b16(c: Ctx):
    """Acquire/release and exclusive accesses fault when misaligned (qemu checks it as hardware
    without FEAT_LSE2 does); a uint8_t array is only byte-aligned."""
    c.meets_spec(mem=ODD, mem_offset=0x40)
    c.faults("SIGBUS", "SIGSEGV", mem=ODD, mem_offset=0x41)


FAULTS = [
    Case("ldar_misaligned_aarch64", A, "6 missing fault", "ldar w9, [x0]\n ret", COPYB16, _misaligned_b16),
    Case("stlr_misaligned_aarch64", A, "6 missing fault", "ldr w9, [x0]\n stlr w9, [x0]\n ret", COPYB16,
         _misaligned_b16),
    Case("ldxr_misaligned_aarch64", A, "6 missing fault", "ldxr w9, [x0]\n clrex\n ret", COPYB16, _misaligned_b16),
    Case("sp_misaligned_aarch64", A, "6 missing fault",
         "sub sp, sp, #8\n str x0, [sp]\n add sp, sp, #8\n ret", ID64, lambda c: c.faults("SIGBUS", x=5),
         cpu_skip="qemu-user does not model SCTLR_EL1.SA0 (on hardware Linux delivers SIGBUS)"),
    Case("paciasp_aarch64", A, "6 feature-dependent hint",
         ".byte 0x3f, 0x23, 0x03, 0xd5\n ret", ID64, lambda c: c.faults("SIGSEGV", "SIGILL", "SIGBUS", x=5)),
    Case("autia1716_aarch64", A, "6 feature-dependent hint",
         "mov x17, x0\n mov x16, #0\n .byte 0x9f, 0x21, 0x03, 0xd5\n mov x0, x17\n ret", ID64,
         lambda c: _auth_changes(c)),
]


def _auth_changes(c: Ctx):
    """autia1716 on an unsigned pointer: an error code in the top bits, or a fault (FEAT_FPAC)."""
    r, values, _ = c.call(x=0x1000)
    if r.returned:
        assert r.reg("x0") != 0x1000, r.line
    else:
        assert r.kind == "signal", r.line


# --- class 7: a spec with two meanings --------------------------------------------------------------

SMOD = spec("int32_t f(int32_t x)", "(= ret #x00000000)", pre="(= (bvsmod x #x00000003) #x00000001)")


def _smod(c: Ctx):
    """x = -2: bvsmod(-2, 3) = 1 (the divisor's sign), so pre allows it; the blob returns 1."""
    c.breaks_spec(x=-2 & 0xFFFFFFFF)


SPEC = [
    Case("bvsmod_pruning_x86_64", "x86_64", "7 spec meanings",
         "xor eax, eax\n cmp edi, 0xfffffffe\n jne ok\n mov eax, 1\n ok: ret", SMOD, _smod),
    Case("bvsmod_pruning_aarch64", A, "7 spec meanings",
         "mov w9, w0\n mov w0, #0\n cmn w9, #2\n b.ne ok\n mov w0, #1\n ok: ret", SMOD, _smod),
    Case("param_named_rsi_x86_64", "x86_64", "7 spec names",
         "mov rax, rsi\n ret", spec("int64_t f(int64_t rsi)", "(= ret rsi)"),
         lambda c: c.breaks_spec(rsi=7, regs={"rsi": 5})),
    Case("param_named_retaddr_x86_64", "x86_64", "7 spec names",
         "mov rax, qword ptr [rsp]\n ret", spec("int64_t f(int64_t retaddr)", "(= ret retaddr)"),
         lambda c: c.breaks_spec(retaddr=7)),
    Case("param_named_x2_aarch64", A, "7 spec names",
         "mov x0, x2\n ret", spec("int64_t f(int64_t a, int64_t x2)", "(= ret x2)"),
         lambda c: c.breaks_spec(a=1, x2=7, regs={"x2": 5})),
    Case("param_named_sp_aarch64", A, "7 spec names",
         "mov x0, sp\n ret", spec("int64_t f(int64_t sp)", "(= ret sp)"),
         lambda c: c.breaks_spec(sp=7)),
    Case("array_named_stack_x86_64", "x86_64", "new: spec names vs region names",
         "mov dword ptr [rdi - 8], 0x55\n ret", spec("void f(int32_t stack[2])", "(= stack.0 stack.0)"),
         lambda c: _writes_before(c), NOT_PROVEN),   # the stack's region key is not a C identifier (machine.STACK)
]


def _writes_before(c: Ctx):
    """The store lands 8 bytes before the array: memory the function was not given."""
    r = c.run(mem=bytes(16), array_in=("rdi",), array_skip=8)
    assert r.returned and r.mem[:4] == b"\x55\0\0\0", r.line


ALL = DEAD + DECODE + FORBIDDEN + PINNED + FAULTS + SPEC

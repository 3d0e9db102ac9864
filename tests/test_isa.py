"""The verified instruction set (verifier/isa/): what the tables admit, what they deny, and that
every form's IR keeps the memory accesses the instruction makes."""

from __future__ import annotations

import archinfo
import keystone
import pytest
import pyvex

from verifier import isa, prove
from verifier.blob import Blob
from verifier.isa import decode, samples, x86_64
from verifier.pipeline import Options

from .build import BASE, asm_file

_KS = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)


def _blob(code: bytes, arch: str = "x86_64") -> Blob:
    return Blob(code, arch, BASE, BASE, None, "test", "raw")


def _assemble(line: str) -> bytes | None:
    try:
        code, _ = _KS.asm(line, BASE)
    except keystone.KsError:
        return None
    return bytes(code) if code else None


def _x86_instances():
    for forms in x86_64.TABLE.values():
        for form in forms:
            if form.group == "control flow" or form.mnemonic in ("movabs",):
                continue
            for line in samples.x86(form):
                code = _assemble(line)
                if code is not None:
                    yield form, line, code


INSTANCES = list(_x86_instances())


def test_most_x86_forms_have_an_instance():
    covered = {f.mnemonic for f, _, _ in INSTANCES}
    named = {m for m, fs in x86_64.TABLE.items() if any(f.group != "control flow" for f in fs)}
    assert len(covered) >= 0.8 * len(named), sorted(named - covered)


@pytest.mark.parametrize("form,line,code", INSTANCES, ids=[i[1] for i in INSTANCES])
def test_instance_is_admitted_and_ir_keeps_its_memory_accesses(form, line, code):
    blob = _blob(code + b"\xc3")
    d = isa.check(blob, BASE, len(code))
    if d.kind != "ok":   # keystone may pick another encoding or operand size: judged on its own
        assert d.kind in ("unsupported", "policy"), d
        return
    irsb = pyvex.lift(code, BASE, archinfo.ArchAMD64(), opt_level=0, max_inst=1)
    touches = [s for s in irsb.statements if isinstance(s, (pyvex.stmt.Store, pyvex.stmt.CAS, pyvex.stmt.LLSC))
               or any(isinstance(e, pyvex.expr.Load) for e in s.expressions)]
    explicit = "m" in d.insn.shape and form.mnemonic not in ("lea", "nop")
    implicit = form.mnemonic in ("push", "pop", "leave")
    assert bool(touches) == (explicit or implicit), (line, irsb)


@pytest.mark.parametrize("hexbytes,why", [
    ("660f8410000000", "prefix 66"),                 # AMD: jcc rel16, Intel: rel32
    ("414801c0", "prefix after REX"),                # the CPU uses only the last REX
    ("4f67b911223344", "prefix after REX"),          # REX before 67: CPU and VEX differ on length
    ("f30f1e8c0011223344", "prefix f3"),             # f3 0f 1e with a displacement
    ("3e7400", "segment prefix"),                    # branch hint
    ("6666 01c0".replace(" ", ""), "more than one prefix"),
    ("6748 8b00".replace(" ", ""), "address-size"),
    ("64 8b0425 28000000".replace(" ", ""), "fs/gs"),
    ("66 48 01c0".replace(" ", ""), "operand-size prefix"),
])
def test_ambiguous_encodings_are_forbidden(hexbytes, why):
    code = bytes.fromhex(hexbytes)
    d = isa.check(_blob(code + b"\xc3"), BASE)
    assert d.kind in ("policy",) and why in d.message, d


@pytest.mark.parametrize("hexbytes,what", [
    ("0fc7f0", "random"), ("f30fc7f8", "processor-id"), ("0f34", "system call"), ("0f05", "system call"),
    ("9c", "flags-image"), ("9d", "flags-image"), ("9f", "flags-image"), ("9e", "flags-image"),
    ("c7f800000000", "TSX"), ("0f01d5", "TSX"), ("48cb", "far return"), ("cb", "far return"),
    ("8ed8", ""), ("f3480f1ec8", "shadow-stack"), ("f30fbdc7", "CPU feature"), ("fd", "direction flag"),
    ("0f31", "timestamp"), ("0fa2", "identification"),
])
def test_forbidden_x86_instructions_are_policy(hexbytes, what):
    d = isa.check(_blob(bytes.fromhex(hexbytes) + b"\xc3"), BASE)
    assert d.kind in ("policy", "unsupported"), d
    if hexbytes != "8ed8":
        assert d.kind == "policy" and what in d.message, d


@pytest.mark.parametrize("word,what", [
    (0xD503233F, "pointer authentication"),   # paciasp
    (0xD50323BF, "pointer authentication"),   # autiasp
    (0xD503219F, "pointer authentication"),   # autia1716
    (0xD4000002, "hypervisor"),               # hvc #0
    (0xD4000001, "system call"),              # svc #0
    (0xD503251F, "feature"),                  # hint #40 (chkfeat x16)
    (0xD53BE040, "system register"),          # mrs x0, cntvct_el0
])
def test_forbidden_aarch64_instructions_are_policy(word, what):
    d = isa.check(_blob(word.to_bytes(4, "little") + bytes.fromhex("c0035fd6"), "aarch64"), BASE)
    assert d.kind == "policy" and what in d.message, d


def test_a_lock_prefix_is_unknown_not_refuted():
    d = isa.check(_blob(bytes.fromhex("f00100c3")), BASE)
    assert d.kind == "unsupported" and "LOCK" in d.message, d


def test_decoders_agree_on_what_compilers_emit():
    for line in ("mov eax, dword ptr [rip + 0x10]", "lea rax, [rbx + rcx*8 + 0x7f]", "vpaddd ymm0, ymm1, ymm2",
                 "movabs rax, 0x1122334455667788", "shl qword ptr [rsp - 8], cl"):
        code = _assemble(line)
        padded = code + b"\x90" * 15
        insn = decode.decode_at("x86_64", padded, BASE, 0)
        assert insn is not None and decode.x86_disagreement(insn, padded) is None, line


X86_UNDEFINED = {
    # every case: a flag the ISA leaves undefined decides the return value
    "imul-zf": "imul eax, edi, 3\n setz al\n movzx eax, al\n ret",
    "mul-sf": "mov eax, edi\n mul esi\n sets al\n movzx eax, al\n ret",
    "div-cf": "mov eax, edi\n xor edx, edx\n mov ecx, 7\n div ecx\n setc al\n movzx eax, al\n ret",
    "bt-sf": "bt edi, 3\n sets al\n movzx eax, al\n ret",
    "shl-of": "mov ecx, esi\n shl edi, cl\n mov eax, 0\n jno done\n mov eax, 1\n done: ret",
    "bsf-zero": "mov eax, 5\n bsf eax, edi\n ret",
    "andn-pf": "andn eax, edi, esi\n setp al\n movzx eax, al\n ret",
}
CONST = """(set-info :nverify-signature "uint32_t f(uint32_t x, uint32_t y)")
(define-fun post () Bool (= ret RET))
"""


@pytest.mark.parametrize("case", sorted(X86_UNDEFINED))
def test_undefined_outputs_are_unknown_values(tmp_path, case):
    """Whatever VEX computes for an undefined flag, a spec that pins the result is not PROVEN."""
    blob = asm_file(tmp_path, "x86_64", X86_UNDEFINED[case])
    verdicts = set()
    for value in (0, 1, 5):
        spec = tmp_path / f"c{value}.smt"
        spec.write_text(CONST.replace("RET", f"#x{value:08x}"))
        verdicts.add(str(prove(str(blob), str(spec), Options(arch="x86_64", jobs=1)).verdict))
    assert "proven" not in verdicts, verdicts


DEAD_LOAD = {"x86_64": "cmp edi, 0x1337\n jne done\n mov ecx, dword ptr [0]\n xor ecx, ecx\n done: mov eax, edi\n ret",
             "aarch64": "mov w2, #0x1337\n cmp w0, w2\n b.ne done\n mov x3, #0\n ldr w3, [x3]\n mov w3, #0\n done: ret"}
IDENT = """(set-info :nverify-signature "uint32_t f(uint32_t x)")
(define-fun post () Bool (= ret x))
"""


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_a_load_whose_value_is_unused_still_happens(tmp_path, arch):
    spec = tmp_path / "ident.smt"
    spec.write_text(IDENT)
    r = prove(str(asm_file(tmp_path, arch, DEAD_LOAD[arch])), str(spec), Options(arch=arch, jobs=1))
    assert (str(r.verdict), r.reason) == ("refuted", "memory-safety"), r.to_json()


FP_CONTROL = {
    "x86_64": {
        "stmxcsr-ftz": ("stmxcsr dword ptr [rsp - 8]\n mov eax, dword ptr [rsp - 8]\n shr eax, 15\n and eax, 1\n"
                        " add eax, edi\n ret", "postcondition"),
        "fnstcw-rc": ("fnstcw word ptr [rsp - 8]\n movzx eax, word ptr [rsp - 8]\n shr eax, 10\n and eax, 3\n"
                      " add eax, edi\n ret", "postcondition"),
        "ldmxcsr-rounding": ("stmxcsr dword ptr [rsp - 8]\n or dword ptr [rsp - 8], 0x6000\n"
                             " ldmxcsr dword ptr [rsp - 8]\n mov eax, edi\n ret", "frame"),
        "fldcw-rounding": ("fnstcw word ptr [rsp - 8]\n or word ptr [rsp - 8], 0xc00\n fldcw word ptr [rsp - 8]\n"
                           " mov eax, edi\n ret", "frame"),
    },
    "aarch64": {
        "mrs-fpcr": ("mrs x1, fpcr\n ubfx x1, x1, #24, #1\n add w0, w0, w1\n ret", "postcondition"),
        "mrs-fpsr": ("mrs x1, fpsr\n and x1, x1, #0x10\n add w0, w0, w1\n ret", "postcondition"),
        "msr-fpcr": ("mrs x1, fpcr\n orr x1, x1, #0xc00000\n msr fpcr, x1\n ret", "frame"),
    },
}


@pytest.mark.parametrize("arch,case", [(a, c) for a, cs in FP_CONTROL.items() for c in sorted(cs)])
def test_fp_control_state_is_arbitrary_and_callee_saved(tmp_path, arch, case):
    text, reason = FP_CONTROL[arch][case]
    spec = tmp_path / "ident.smt"
    spec.write_text(IDENT)
    r = prove(str(asm_file(tmp_path, arch, text)), str(spec), Options(arch=arch, jobs=1))
    assert str(r.verdict) != "proven", r.to_json()
    assert (str(r.verdict), r.reason) in (("refuted", reason), ("unknown", "lifter-mismatch")), r.to_json()


@pytest.mark.parametrize("arch,text", [
    ("x86_64", "stmxcsr dword ptr [rsp - 8]\n ldmxcsr dword ptr [rsp - 8]\n fnstcw word ptr [rsp - 12]\n"
               " fldcw word ptr [rsp - 12]\n mov eax, edi\n ret"),
    ("aarch64", "mrs x1, fpcr\n msr fpcr, x1\n mrs x2, fpsr\n msr fpsr, x2\n ret"),
])
def test_saving_and_restoring_fp_control_state_proves(tmp_path, arch, text):
    spec = tmp_path / "ident.smt"
    spec.write_text(IDENT)
    r = prove(str(asm_file(tmp_path, arch, text)), str(spec), Options(arch=arch, jobs=1))
    assert str(r.verdict) == "proven", r.to_json()


def test_docs_list_the_current_tables():
    from verifier.isa.__main__ import main

    assert main(["--check"]) == 0, "docs/machine-model.md is out of date: run python3 -m verifier.isa"


def _a64_instances():
    from verifier.isa import aarch64

    ks = keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN)
    for forms in aarch64.TABLE.values():
        for form in forms:
            for line in samples.a64(form):
                try:
                    code, _ = ks.asm(line, BASE)
                except keystone.KsError:
                    continue
                if code:
                    yield form, line, bytes(code)


A64_INSTANCES = list(_a64_instances())


@pytest.mark.parametrize("form,line,code", A64_INSTANCES, ids=[i[1] for i in A64_INSTANCES])
def test_aarch64_instance_ir_keeps_its_memory_accesses(form, line, code):
    d = isa.check(_blob(code + bytes.fromhex("c0035fd6"), "aarch64"), BASE, 4)
    if d.kind != "ok":
        assert d.kind in ("unsupported", "policy"), d
        return
    irsb = pyvex.lift(code, BASE, archinfo.ArchAArch64(), opt_level=0, max_inst=1)
    touches = [s for s in irsb.statements if isinstance(s, (pyvex.stmt.Store, pyvex.stmt.CAS, pyvex.stmt.LLSC))
               or any(isinstance(e, pyvex.expr.Load) for e in s.expressions)]
    assert bool(touches) == ("m" in d.insn.shape and form.mnemonic not in ("prfm", "prfum")), (line, irsb)


def test_optimised_ir_is_used_only_when_it_keeps_every_effect():
    """VEX's optimiser may run a block only where it drops nothing that can fault or matter."""
    from verifier.symexec import _effects

    arch = archinfo.ArchAMD64()
    sp = arch.registers["rsp"][0]

    def same(text: str) -> bool:
        code = _assemble(text)
        return _effects(pyvex.lift(code, BASE, arch, opt_level=0), sp) == \
            _effects(pyvex.lift(code, BASE, arch, opt_level=1), sp)

    assert not same("mov ecx, dword ptr [0]; xor ecx, ecx; ret")      # the dead load
    assert same("mov eax, dword ptr [rdi]; add eax, dword ptr [rdi + 4]; ret")
    assert same("cmp edi, esi; cmovg edi, esi; mov eax, edi; ret")     # a flag helper folded: pure

"""Read-only data in the verified unit (issue 18): compiled code that reads its own tables and
literal pools proves, co-simulated on the CPU with the data where the model's state puts it and
the code linked for that address; code that leans on where the data lies never proves."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from verifier import prove
from verifier.blob import load
from verifier.errors import UnsupportedError
from verifier.pipeline import Options

from .build import ARCHES, CC, compile_c, emit_signed, gas_object

# Hacker's Delight p22 (parity) as a 16-entry table lookup after folding the halves.
P22_TABLE = """#include <stdint.h>
static const uint8_t parity[16] = {0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0};
uint32_t p22(uint32_t x) { x ^= x >> 16; x ^= x >> 8; x ^= x >> 4; return parity[x & 15]; }
"""
# Per-lane constants: the vectorisers load them from a literal pool (.rodata.cst16/.cst32, .LC0).
XOR8_C = (0x12345678, 0x9ABCDEF0, 0x0F1E2D3C, 0x4B5A6978, 0x87654321, 0x0FEDCBA9, 0x55AA55AA, 0xDEADBEEF)
XOR8 = """#include <stdint.h>
void xor8(uint32_t p[8]) {
  static const uint32_t C[8] = {CONSTANTS};
  for (int i = 0; i < 8; i++) p[i] = (p[i] ^ C[i]) + C[7 - i];
}
""".replace("CONSTANTS", ", ".join(f"{c:#x}u" for c in XOR8_C))
XOR8_SPEC = ('(set-info :nverify-signature "void xor8(uint32_t p[8])")\n(define-fun post () Bool (and '
             + " ".join(f"(= p.{i}.out (bvadd (bvxor p.{i} #x{XOR8_C[i]:08x}) #x{XOR8_C[7 - i]:08x}))"
                        for i in range(8)) + "))\n")


def _spec(tmp_path, name: str, text: str) -> str:
    p = tmp_path / f"{name}.smt"
    p.write_text(text)
    return str(p)


def _proven(obj, spec: str) -> dict:
    out = prove(str(obj), spec).to_json()
    assert out["verdict"] == "proven", out
    assert out["cosim"]["states"] > 0 and out["cosim"]["mismatches"] == 0, out["cosim"]
    return out


def _cc(tmp_path, arch: str, source: str, flags: list[str], name: str):
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"{name}_{arch}.o"
    extra = ["-fcf-protection=none"] if arch == "x86_64" else []
    subprocess.run([CC[arch], *flags, *extra, "-ffreestanding", "-fno-builtin", "-c", str(src), "-o", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_p22_table_lookup_at_Os_proves(tmp_path, arch):
    obj = compile_c(tmp_path, arch, P22_TABLE, "Os", "p22")
    blob = load(obj, symbol="p22")
    assert [r.name for r in blob.rodata] == [".rodata"] and blob.fixups, blob
    out = _proven(obj, "p22")
    # the digest covers the table and the links to it, not the code alone
    assert out["blob"]["sha256"] == blob.sha256 != hashlib.sha256(blob.code).hexdigest()
    assert out["blob"]["rodata"] == [{"section": ".rodata", "size": 16,
                                      "sha256": hashlib.sha256(blob.rodata[0].data).hexdigest()}]


def test_p22_table_lookup_position_independent_proves(tmp_path):
    """-fpie: `lea rdx, [rip+.rodata]` puts the table's address in a register (R_X86_64_PC32)."""
    obj = _cc(tmp_path, "x86_64", P22_TABLE, ["-Os", "-fpie"], "p22pie")
    _proven(obj, "p22")


@pytest.mark.parametrize("arch,flags", [("x86_64", ["-O3", "-mavx2", "-fno-pic"]), ("x86_64", ["-O3", "-fpie"]),
                                        ("aarch64", ["-O3"])])
def test_vector_kernels_loading_a_literal_pool_prove(tmp_path, arch, flags):
    """AVX2 and SSE `vpaddd ymm, [rip+.LC1]`; NEON adrp + `ldr q, [x, :lo12:]` from .rodata.cst16,
    whose 16-byte entries the linker may deduplicate one by one: each is a region of its own."""
    from verifier.oracle import host

    if "-mavx2" in flags and not host.has_avx():
        pytest.skip("no AVX on this CPU")
    obj = _cc(tmp_path, arch, XOR8, flags, "xor8")
    blob = load(obj, symbol="xor8")
    assert blob.rodata, blob
    if arch == "aarch64":
        assert all(r.name.startswith(".rodata.cst16+") and len(r.data) == 16 for r in blob.rodata), blob.rodata
    _proven(obj, _spec(tmp_path, "xor8", XOR8_SPEC))


# --- what must never prove -----------------------------------------------------------------------

LEAK_SPEC = '(set-info :nverify-signature "uint64_t leak(uint64_t x)")\n(define-fun post () Bool (= ret x))\n'
DATA = '\n.section .rodata\n.balign 16\n.LC0:\n.long 1, 2, 3, 4\n'


def _fill(source: str, p: int) -> str:
    return source.replace("{P}", str(p)).replace("{P_lo}", str(p & 0xFFFF)).replace("{P_hi}", str(p >> 16))


def _at_placeholder(tmp_path, arch: str, source: str, name: str) -> tuple[str, int]:
    """`source` with {P} (or its halves {P_lo}, {P_hi}) replaced by where the proof's lifting lays
    the data out for this object (the address an attack would need), read from a build whose
    instructions have the same sizes."""
    blob = load(gas_object(tmp_path, arch, _fill(source, 0), name + "0"), symbol=name)
    p0 = blob.rodata[0].placeholder
    return _fill(source, p0), p0


LEAK = {"x86_64": ".text\n.globl leak\nleak:\nlea rax, [rip + .LC0]\nmovabs rcx, {P}\nsub rax, rcx\n"
                  "add rax, rdi\nret\n" + DATA,
        "aarch64": ".text\n.globl leak\nleak:\nadrp x1, .LC0\nadd x1, x1, :lo12:.LC0\nmovz x2, #{P_lo}\n"
                   "movk x2, #{P_hi}, lsl #16\nsub x1, x1, x2\nadd x0, x0, x1\nret\n" + DATA.replace(".long", ".word")}


@pytest.mark.parametrize("arch", ARCHES)
def test_an_address_of_the_data_never_proves_as_a_number(tmp_path, arch):
    """`lea rax, [rip+.LC0]; sub rax, P0`: 0 if the data sat at the placeholder, which it never does
    once linked. The data's address is a symbol, so `ret = x` cannot be proven."""
    src, p0 = _at_placeholder(tmp_path, arch, LEAK[arch], "leak")
    obj = gas_object(tmp_path, arch, src, "leak")
    assert load(obj, symbol="leak").rodata[0].placeholder == p0
    out = prove(str(obj), _spec(tmp_path, "leak", LEAK_SPEC)).to_json()
    assert out["verdict"] != "proven", out


ONE_SPEC = '(set-info :nverify-signature "uint32_t one(uint32_t x)")\n(define-fun post () Bool (= ret #x00000001))\n'
WRITE = {"x86_64": ".text\n.globl one\none:\nmov dword ptr [rip + .LC0], edi\nmov eax, 1\nret\n" + DATA,
         "aarch64": ".text\n.globl one\none:\nadrp x1, .LC0\nadd x1, x1, :lo12:.LC0\nstr w0, [x1]\n"
                    "mov w0, #1\nret\n" + DATA.replace(".long", ".word")}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_write_to_read_only_data_is_refuted(tmp_path, arch):
    out = prove(str(gas_object(tmp_path, arch, WRITE[arch], "write")), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out
    assert "writes to read-only data .rodata" in out["message"], out["message"]


BAND = {"x86_64": ".text\n.globl one\none:\nlea rcx, [rip + .LC0]\nmovabs rax, {P}\nmov eax, dword ptr [rax]\n"
                  "ret\n" + DATA,
        "aarch64": ".text\n.globl one\none:\nadrp x2, .LC0\nmovz x1, #{P_lo}\nmovk x1, #{P_hi}, lsl #16\n"
                   "ldr w0, [x1]\nret\n" + DATA.replace(".long", ".word")}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_constant_address_in_the_placeholder_band_never_reaches_the_data(tmp_path, arch):
    """The data sits at the placeholder while the code is lifted; an address without a relocation
    that happens to equal it is a constant address like any other: never the data."""
    src, _ = _at_placeholder(tmp_path, arch, BAND[arch], "one")
    out = prove(str(gas_object(tmp_path, arch, src, "band")), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] != "proven", out


PAGE_LEAK = ".text\n.globl leak\nleak:\nadrp x1, .LC0\nadd x2, x1, :lo12:.LC0\nsub x0, x2, x1\nret\n" \
    + DATA.replace(".long", ".word")
RAW_PAGE = ".text\n.globl one\none:\nadrp x1, .LC0\nldr w0, [x1]\nret\n" + DATA.replace(".long", ".word")


def test_adrp_without_its_lo12_half_never_proves(tmp_path):
    """The page of the data and its offset in the page depend on where it is linked: neither the
    difference of the pair nor the page alone used as the address proves anything."""
    p0 = load(gas_object(tmp_path, "aarch64", PAGE_LEAK, "pl"), symbol="leak").rodata[0].placeholder
    spec = ('(set-info :nverify-signature "uint64_t leak(uint64_t x)")\n'
            f'(define-fun post () Bool (= ret #x{p0 & 0xFFF:016x}))\n')
    out = prove(str(gas_object(tmp_path, "aarch64", PAGE_LEAK, "pl")), _spec(tmp_path, "pl", spec)).to_json()
    assert out["verdict"] != "proven", out
    out = prove(str(gas_object(tmp_path, "aarch64", RAW_PAGE, "raw")), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] != "proven", out


@pytest.mark.parametrize("arch", ARCHES)
def test_an_index_past_the_table_is_refuted(tmp_path, arch):
    src = P22_TABLE.replace("parity[x & 15]", "parity[x & 31]")
    out = prove(str(compile_c(tmp_path, arch, src, "Os", "p22")), "p22").to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out
    assert "read-only data .rodata" in out["message"], out["message"]


WIDE = {"x86_64": ".text\n.globl one\none:\nmovdqu xmm0, xmmword ptr [rip + .LC0]\n"
                  "movdqu xmm1, xmmword ptr [rip + .LC0 + 16]\nmovd eax, xmm1\nret\n"
                  ".section .rodata.cst16,\"aM\",@progbits,16\n.balign 16\n.LC0:\n.long 1, 2, 3, 4\n.LC1:\n"
                  ".long 1, 2, 3, 4\n",
        "aarch64": ".text\n.globl one\none:\nadrp x1, .LC0\nadd x1, x1, :lo12:.LC0\nldp q0, q1, [x1]\n"
                   "fmov w0, s1\nret\n.section .rodata.cst16,\"aM\",@progbits,16\n.balign 16\n.LC0:\n"
                   ".word 1, 2, 3, 4\n.LC1:\n.word 1, 2, 3, 4\n"}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_read_past_one_entry_of_a_merging_section_is_refuted(tmp_path, arch):
    """The linker merges identical 16-byte constants one by one: after .LC0 may come anything.
    (x86: the second load names .LC0+16, which the linker resolves as 16 bytes past wherever
    .LC0's entry ends up, not as .LC1's entry: here .LC1 equals .LC0 and is merged away, so that
    is refused (tests/test_unit_attacks.py); the AArch64 ldp reads 32 bytes from .LC0's entry.)"""
    obj = gas_object(tmp_path, arch, WIDE[arch], "wide")
    if arch == "x86_64":
        with pytest.raises(UnsupportedError, match="the linker keeps to its entity at"):
            load(obj, symbol="one")
        return
    out = prove(str(obj), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out


def test_the_digest_covers_the_data(tmp_path):
    a = load(gas_object(tmp_path, "x86_64", WRITE["x86_64"], "a"), symbol="one")
    b = load(gas_object(tmp_path, "x86_64", WRITE["x86_64"].replace(".long 1,", ".long 7,"), "b"), symbol="one")
    assert a.code == b.code and a.sha256 != b.sha256


@pytest.mark.parametrize("arch", ARCHES)
def test_data_holding_relocations_is_refused_by_name(tmp_path, arch):
    src = {"x86_64": ".text\n.globl one\none:\nmov rax, qword ptr [rip + .LC0]\nret\n",
           "aarch64": ".text\n.globl one\none:\nadrp x1, .LC0\nldr x0, [x1, :lo12:.LC0]\nret\n"}[arch]
    src += ".section .rodata\n.balign 8\n.LC0:\n.quad .LC1\n.data\n.LC1:\n.quad 0\n"
    with pytest.raises(UnsupportedError, match=r"one reads \.rodata, which holds a relocation itself"):
        load(gas_object(tmp_path, arch, src, "ptr"), symbol="one")


def test_a_weak_data_symbol_is_not_resolved(tmp_path):
    src = ".text\n.globl one\none:\nmov eax, dword ptr [rip + tab]\nret\n.section .rodata\n.weak tab\ntab:\n.long 1\n"
    with pytest.raises(UnsupportedError, match=r"needs a relocation at \+0x2 \(to tab\)"):
        load(gas_object(tmp_path, "x86_64", src, "weak"), symbol="one")


def test_options_do_not_matter_to_the_unit(tmp_path):
    obj = compile_c(tmp_path, "x86_64", P22_TABLE, "Os", "p22")
    assert prove(str(obj), "p22", Options(cosim=0)).verdict.value == 0


def test_emit_writes_an_object_carrying_the_data_and_its_relocations(tmp_path):
    """Raw bytes cannot carry data: no .bin, and the .o links as the proven unit (same digest)."""
    from verifier.cli import main

    obj = compile_c(tmp_path, "aarch64", P22_TABLE, "Os", "p22")
    out = emit_signed(tmp_path, obj, "p22")
    assert sorted(p.name for p in out.iterdir()) == ["p22.o", "p22.o.intoto.json"]
    again = load(out / "p22.o", symbol="p22")
    assert again.sha256 == load(obj, symbol="p22").sha256
    assert main(["check", str(out / "p22.o"), "--attestation", str(out / "p22.o.intoto.json"),
                 "--key", str(tmp_path / "key.pub"), "--spec", "p22"]) == 0
    assert prove(str(out / "p22.o"), "p22").verdict.value == 0


SAME = {"x86_64": ".text\n.globl one\none:\nlea rax, [rip + .LC0]\nlea rcx, [rip + .LC1]\nxor edx, edx\n"
                  "cmp rax, rcx\nsetne dl\nmov eax, edx\nret\n",
        "aarch64": ".text\n.globl one\none:\nadrp x1, .LC0\nadd x1, x1, :lo12:.LC0\nadrp x2, .LC1\n"
                   "add x2, x2, :lo12:.LC1\ncmp x1, x2\ncset w0, ne\nret\n"}


@pytest.mark.parametrize("arch", ARCHES)
def test_equal_constants_may_share_one_address(tmp_path, arch):
    """The linker merges equal entries of .rodata.cst16 (and lld's ICF folds equal sections): two
    equal constants are not known to lie apart, so `&LC0 != &LC1` never proves."""
    word = ".long" if arch == "x86_64" else ".word"
    flags = '"aM",@progbits,16' if arch == "x86_64" else '"aM",%progbits,16'
    src = SAME[arch] + f".section .rodata.cst16,{flags}\n.balign 16\n"
    src += f".LC0:\n{word} 1, 2, 3, 4\n.LC1:\n{word} 1, 2, 3, 4\n"
    obj = gas_object(tmp_path, arch, src, "same")
    assert len(load(obj, symbol="one").rodata) == 2
    out = prove(str(obj), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] != "proven", out

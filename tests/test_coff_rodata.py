"""Read-only data of PE/COFF objects in the verified unit (issue 18): a function reading its `.rdata`
proves, with each COFF relocation taken as the ELF type whose arithmetic it shares and its addend
read from the field (coff.coff_as_elf). What makes that sound is that the arithmetic is the
linker's: every form is linked here by lld-link and compared byte for byte with `rodata.link`."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from verifier import prove, rodata
from verifier.blob import load
from verifier.errors import UnsupportedError

from .build import ARCHES, clang_asm, clang_object, have_llvm, llvm_tool
from .test_rodata import P22_TABLE, XOR8, XOR8_SPEC, _proven, _spec

pytestmark = pytest.mark.skipif(not have_llvm(), reason="needs clang and lld (Debian: clang lld llvm)")

# Every relocation form coff_as_elf resolves, with addends: rip-relative operands followed by 0, 1
# and 4 immediate bytes (clang folds the immediate's size into the addend; REL32_1/_4 are made below
# as MSVC writes them), adrp with a byte addend in its immediate, and the :lo12: half of an `add`
# and of loads of each size (the scale comes from the instruction). The table sits 16 bytes before a
# page boundary, so a page or a scale taken wrongly gives other bytes.
FORMS = {"x86_64": ".text\n.globl f\nf:\nlea rcx, [rip + tbl + 5]\ncmp byte ptr [rip + tbl + 3], 7\n"
                   "cmp dword ptr [rip + tbl + 8], 0x12345\nmov eax, dword ptr [rip + tbl]\nret\n"
                   ".section .rdata,\"dr\"\n.p2align 4\n.space 0xff0\ntbl:\n.long 1, 2, 3, 4, 5, 6, 7, 8\n",
         "aarch64": ".text\n.globl f\nf:\nadrp x9, tbl+24\nadd x9, x9, :lo12:tbl+24\nadrp x10, tbl\n"
                    "ldr w0, [x10, :lo12:tbl+4]\nldr q0, [x10, :lo12:tbl+16]\nldrb w1, [x10, :lo12:tbl+3]\n"
                    "ldrh w3, [x10, :lo12:tbl+6]\nldr x2, [x10, :lo12:tbl+24]\nret\n"
                    ".section .rdata,\"dr\"\n.p2align 4\n.space 0xff0\ntbl:\n.word 1, 2, 3, 4, 5, 6, 7, 8\n"}


def _relocations(data: bytes, section: int) -> tuple[int, int]:
    """(file offset of the relocation table, count) of 1-based section `section` of a COFF object."""
    hdr = 20 + 40 * (section - 1)
    return (int.from_bytes(data[hdr + 24:hdr + 28], "little"), int.from_bytes(data[hdr + 32:hdr + 34], "little"))


def _as_msvc_writes_it(path) -> None:
    """AMD64 REL32 on an operand followed by n immediate bytes -> REL32_n with the field n larger:
    the same link-time result, in the form MSVC emits (clang never does)."""
    data = bytearray(path.read_bytes())
    raw = int.from_bytes(data[20 + 20:20 + 24], "little")       # .text's PointerToRawData
    table, count = _relocations(data, 1)
    for i in range(count):
        at = table + 10 * i
        va, _sym, rtype = struct.unpack_from("<IIH", data, at)
        field = int.from_bytes(data[raw + va:raw + va + 4], "little", signed=True)
        n = {0x9: 1, 0x10: 4}.get(va, 0)                         # the cmp byte / cmp dword fields
        if n and rtype == 4:
            struct.pack_into("<H", data, at + 8, 4 + n)
            data[raw + va:raw + va + 4] = (field + n).to_bytes(4, "little", signed=True)
    path.write_bytes(bytes(data))


def _lld_link(tmp_path, arch: str, obj, export: str, data: str):
    """The object linked by lld-link into a DLL: (linked bytes from the function on, its address,
    the data symbol's address), the addresses read from the linker's map."""
    import lief

    out, mapfile = tmp_path / "linked.dll", tmp_path / "linked.map"
    subprocess.run([llvm_tool("lld-link"), "/dll", "/noentry", "/nodefaultlib",
                    f"/machine:{'x64' if arch == 'x86_64' else 'arm64'}", str(obj), f"/export:{export}",
                    f"/out:{out}", f"/map:{mapfile}"], check=True, capture_output=True)
    line = re.compile(r"^\s*\S+:\S+\s+(\S+)\s+([0-9a-f]{16})", re.M)
    where = {m[1]: int(m[2], 16) for m in line.finditer(mapfile.read_text())}
    pe = lief.PE.parse(str(out))
    fn, tbl = where[export], where[data]
    rva = fn - pe.optional_header.imagebase
    sec = next(s for s in pe.sections if s.virtual_address <= rva < s.virtual_address + s.size)
    return bytes(sec.content)[rva - sec.virtual_address:], fn, tbl


@pytest.mark.parametrize("arch", ARCHES)
def test_the_linker_arithmetic_is_lld_links(tmp_path, arch):
    obj = clang_asm(tmp_path, "pe", arch, FORMS[arch], "forms")
    if arch == "x86_64":
        _as_msvc_writes_it(obj)
    blob = load(obj, symbol="f")
    want = {"x86_64": 4, "aarch64": 8}[arch]
    assert len(blob.fixups) == want and [r.name for r in blob.rodata] == [".rdata"], blob
    if arch == "x86_64":
        assert sorted({f.kind for f in blob.fixups}) == ["IMAGE_REL_AMD64_REL32", "IMAGE_REL_AMD64_REL32_1",
                                                          "IMAGE_REL_AMD64_REL32_4"], blob.fixups
    linked, fn, tbl = _lld_link(tmp_path, arch, obj, "f", "tbl")
    ours = rodata.link(arch, blob.code, fn, blob.fixups, [tbl - 0xFF0])     # the region is all of .rdata
    assert ours == linked[:len(ours)]
    # and the arithmetic matters: data placed one page on gives other bytes
    assert rodata.link(arch, blob.code, fn, blob.fixups, [tbl - 0xFF0 + 0x1010]) != linked[:len(ours)]


@pytest.mark.parametrize("arch", ARCHES)
def test_p22_table_lookup_of_a_coff_object_proves(tmp_path, arch):
    obj = clang_object(tmp_path, "pe", arch, P22_TABLE, "Os", "p22")
    blob = load(obj, symbol="p22")
    assert [r.name for r in blob.rodata] == [".rdata"] and len(blob.rodata[0].data) == 16, blob
    _proven(obj, "p22")
    linked, fn, tbl = _lld_link(tmp_path, arch, obj, "p22", "parity")
    assert rodata.link(arch, blob.code, fn, blob.fixups, [tbl]) == linked[:len(blob.code)]


@pytest.mark.parametrize("arch", ARCHES)
def test_an_index_past_a_coff_table_is_refuted(tmp_path, arch):
    src = P22_TABLE.replace("parity[x & 15]", "parity[x & 31]")
    out = prove(str(clang_object(tmp_path, "pe", arch, src, "Os", "p22")), "p22").to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out
    assert "read-only data .rdata" in out["message"], out["message"]


ONE_SPEC = '(set-info :nverify-signature "uint32_t one(uint32_t x)")\n(define-fun post () Bool (= ret #x00000001))\n'
RDATA = '.section .rdata,"dr"\n.p2align 4\ntbl:\n.long 1, 2, 3, 4\n'
WRITE = {"x86_64": ".text\n.globl one\none:\nmov dword ptr [rip + tbl], ecx\nmov eax, 1\nret\n" + RDATA,
         "aarch64": ".text\n.globl one\none:\nadrp x1, tbl\nadd x1, x1, :lo12:tbl\nstr w0, [x1]\n"
                    "mov w0, #1\nret\n" + RDATA.replace(".long", ".word")}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_write_to_rdata_is_refuted(tmp_path, arch):
    obj = clang_asm(tmp_path, "pe", arch, WRITE[arch], "write")
    out = prove(str(obj), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out


def _refused(obj, symbol: str, match: str) -> None:
    with pytest.raises(UnsupportedError, match=match):
        load(obj, symbol=symbol)


@pytest.mark.parametrize("section,why", [
    (".data", "writable"),                      # written at run time
    (".rdata$zz", "suffix"),                    # sorted into .rdata by its suffix; some suffixes mean more
    (".CRT$XCU", "constructors"),               # called before main
])
def test_data_that_is_not_plain_rdata_stays_refused(tmp_path, section, why):
    flags = '"dw"' if section == ".data" else '"dr"'
    src = WRITE["x86_64"].replace("mov dword ptr [rip + tbl], ecx", "mov eax, dword ptr [rip + tbl]") \
        .replace('.section .rdata,"dr"', f".section {section},{flags}")
    _refused(clang_asm(tmp_path, "pe", "x86_64", src, "sec"), "one", r"needs a relocation .* \(to tbl\)")


def test_a_comdat_constant_pool_stays_refused(tmp_path):
    """clang and MSVC put vector constants in COMDAT sections (`__ymm@<hex>`, selection ANY): the
    linker keeps any one object's copy of the name, so this object's bytes are not known to be read."""
    obj = clang_object(tmp_path, "pe", "x86_64", XOR8, "O3", "xor8")
    with pytest.raises(UnsupportedError, match=r"\(to __[xy]mm@"):
        prove(str(obj), _spec(tmp_path, "xor8", XOR8_SPEC))


def test_a_section_address_in_an_object_is_refused(tmp_path):
    """The specification applies a relocation at its offset minus the section's address; lld-link at
    the offset itself. With an address on .text the two patch different bytes."""
    obj = clang_object(tmp_path, "pe", "x86_64", P22_TABLE, "Os", "p22")
    data = bytearray(obj.read_bytes())
    data[20 + 12:20 + 16] = (0x20).to_bytes(4, "little")        # .text's VirtualAddress
    obj.write_bytes(bytes(data))
    _refused(obj, "p22", "linkers differ on where those apply")


def test_a_relocation_count_overflow_is_refused(tmp_path):
    obj = clang_object(tmp_path, "pe", "x86_64", P22_TABLE, "Os", "p22")
    data = bytearray(obj.read_bytes())
    flags = int.from_bytes(data[20 + 36:20 + 40], "little") | 0x01000000
    data[20 + 36:20 + 40] = flags.to_bytes(4, "little")
    obj.write_bytes(bytes(data))
    _refused(obj, "p22", "NRELOC_OVFL")


def test_a_jump_table_in_rdata_stays_refused(tmp_path):
    """Entries holding code addresses are resolved for ELF objects only."""
    src = (".text\n.globl sw\nsw:\nlea rax, [rip + tbl]\nmovsxd rcx, dword ptr [rax + 4*rcx]\nadd rcx, rax\n"
           "jmp rcx\n.La:\nmov eax, 1\nret\n.section .rdata,\"dr\"\n.p2align 2\ntbl:\n.long .La - tbl\n")
    obj = clang_asm(tmp_path, "pe", "x86_64", src, "sw")
    _refused(obj, "sw", "holds a relocation itself")

"""Adversarial COFF objects against read-only data in the verified unit (formats._coff_file,
_coff_rodata, _coff_align, coff_as_elf): each object is built here from assembly (some byte-patched,
with comments), linked by lld-link into a DLL, and the DLL's functions are run (unicorn, with each
PE section mapped with the permissions its header gives, as the Windows loader maps it). Each test
shows a unit whose linked code does not do what nverify proved, and asserts that nverify does not
prove it."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from verifier import prove
from verifier.errors import BlobError, UnsupportedError

from .build import clang_asm, have_llvm, llvm_tool

pytestmark = pytest.mark.skipif(not have_llvm(), reason="needs clang and lld (Debian: clang lld llvm)")

IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_READ, IMAGE_SCN_MEM_WRITE = 0x20000000, 0x40000000, 0x80000000


def _spec(tmp_path, name: str, ret: int, sig: str = "uint32_t f(void)") -> str:
    p = tmp_path / f"{name}.smt"
    p.write_text(f'(set-info :nverify-signature "{sig}")\n(define-fun post () Bool (= ret #x{ret:08x}))\n')
    return str(p)


def _verdict(obj, spec: str) -> str:
    """nverify's verdict (the function is the spec's, f), or `refused` when it does not take the
    object in."""
    try:
        return prove(str(obj), spec).to_json()["verdict"]
    except (UnsupportedError, BlobError):
        return "refused"


def _lld_link(tmp_path, arch: str, obj, exports: list[str]):
    """lld-link /dll /noentry: the DLL and every symbol's address from the linker's map."""
    out, mapfile = tmp_path / "linked.dll", tmp_path / "linked.map"
    subprocess.run([llvm_tool("lld-link"), "/dll", "/noentry", "/nodefaultlib",
                    f"/machine:{'x64' if arch == 'x86_64' else 'arm64'}", str(obj),
                    *[f"/export:{e}" for e in exports], f"/out:{out}", f"/map:{mapfile}"],
                   check=True, capture_output=True)
    line = re.compile(r"^\s*\S+:\S+\s+(\S+)\s+([0-9a-f]{16})", re.M)
    return out, {m[1]: int(m[2], 16) for m in line.finditer(mapfile.read_text())}


def _section_of(dll, addr: int):
    import lief

    pe = lief.PE.parse(str(dll))
    rva = addr - pe.optional_header.imagebase
    return next(s for s in pe.sections if s.virtual_address <= rva < s.virtual_address + max(s.virtual_size, s.size))


def _run(dll, arch: str, calls: list[tuple[int, tuple[int, ...]]]) -> list[int | str]:
    """Call each (address, args) in turn in one process image of the DLL; each call's 32-bit
    result, or 'fault'. Sections are mapped with their header's permissions."""
    import lief
    import unicorn as uc
    from unicorn import arm64_const as a64
    from unicorn import x86_const as x86

    pe = lief.PE.parse(str(dll))
    base = pe.optional_header.imagebase
    mode = (uc.UC_ARCH_X86, uc.UC_MODE_64) if arch == "x86_64" else (uc.UC_ARCH_ARM64, uc.UC_MODE_ARM)
    mu = uc.Uc(*mode)
    mu.mem_map(base, 0x1000, uc.UC_PROT_READ)
    for s in pe.sections:
        size = -(-max(s.virtual_size, s.size) // 0x1000) * 0x1000
        c = int(s.characteristics)
        prot = ((uc.UC_PROT_READ if c & IMAGE_SCN_MEM_READ else 0) | (uc.UC_PROT_WRITE if c & IMAGE_SCN_MEM_WRITE else 0)
                | (uc.UC_PROT_EXEC if c & IMAGE_SCN_MEM_EXECUTE else 0))
        mu.mem_map(base + s.virtual_address, size, uc.UC_PROT_ALL)
        mu.mem_write(base + s.virtual_address, bytes(s.content)[:size])
        mu.mem_protect(base + s.virtual_address, size, prot)
    stack, done = 0x7F0000000000, 0x7E0000000000
    mu.mem_map(stack - 0x10000, 0x10000, uc.UC_PROT_READ | uc.UC_PROT_WRITE)
    mu.mem_map(done, 0x1000, uc.UC_PROT_EXEC)
    out: list[int | str] = []
    for addr, args in calls:
        if arch == "x86_64":
            sp = stack - 0x100
            mu.mem_write(sp, done.to_bytes(8, "little"))
            for reg, v in zip((x86.UC_X86_REG_RCX, x86.UC_X86_REG_RDX, x86.UC_X86_REG_R8, x86.UC_X86_REG_R9), args):
                mu.reg_write(reg, v)
            mu.reg_write(x86.UC_X86_REG_RSP, sp)
            ret = x86.UC_X86_REG_RAX
        else:
            for n, v in enumerate(args):
                mu.reg_write(a64.UC_ARM64_REG_X0 + n, v)
            mu.reg_write(a64.UC_ARM64_REG_SP, stack - 0x100)
            mu.reg_write(a64.UC_ARM64_REG_LR, done)
            ret = a64.UC_ARM64_REG_X0
        try:
            mu.emu_start(addr, done, count=10000)
            out.append(mu.reg_read(ret) & 0xFFFFFFFF)
        except uc.UcError:
            out.append("fault")
    return out


# --- 1. alignment beyond the page: lld-link aligns a chunk within its output section only -------
#
# `IMAGE_SCN_ALIGN_8192BYTES` (and 16..8192 generally) is honoured by lld-link relative to the start
# of the output section, whose RVA is only SectionAlignment (4 KiB) aligned. nverify assumes the
# region's (or the code's) absolute address is aligned as the flag says, so code observing the
# address's bits 12.. proves a value the linked code does not return.

ALIGN_RDATA = """.text
.globl f
f:
lea rax, [rip + tbl]
and eax, 0x1fff
ret
.space 0x1100, 0xcc
.section .rdata,"dr"
.p2align 13
tbl:
.long 1
"""


def test_rdata_aligned_past_a_page_is_not_aligned_once_linked(tmp_path):
    """.text is longer than a page, so .rdata starts at RVA 0x3000: lld-link puts the 8 KiB-aligned
    `tbl` there, at 0x180003000. nverify proves f() == 0 from `$ro.0 % 8192 == 0`; the DLL's f
    returns 0x1000."""
    obj = clang_asm(tmp_path, "pe", "x86_64", ALIGN_RDATA, "alr")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert where["tbl"] % 0x2000 == 0x1000                   # the region lies off its alignment
    assert _run(dll, "x86_64", [(where["f"], ())]) == [0x1000]
    assert _verdict(obj, _spec(tmp_path, "zero", 0)) != "proven"


ALIGN_TEXT = """.text
.p2align 13
.globl f
f:
lea rax, [rip + f]
and eax, 0x1fff
ret
"""


def test_code_aligned_past_a_page_is_not_aligned_once_linked(tmp_path):
    """The function's own section says ALIGN_8192BYTES (blob.align, taken from COFF since
    _coff_align): lld-link puts .text at RVA 0x1000, so f() returns 0x1000, not the proven 0."""
    obj = clang_asm(tmp_path, "pe", "x86_64", ALIGN_TEXT, "alt")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert _run(dll, "x86_64", [(where["f"], ())]) == [0x1000]
    assert _verdict(obj, _spec(tmp_path, "zero", 0)) != "proven"


# --- 2. a section whose raw data has no file pointer ------------------------------------------
#
# PointerToRawData == 0 with SizeOfRawData > 0: LLVM's COFF reader (and so lld-link) gives such a
# section no contents, and the linked image holds zeros; LIEF reads SizeOfRawData bytes from offset
# 0 of the file, the COFF header. nverify verifies the header's bytes as the table.

NO_RAW = """.text
.globl f
f:
mov eax, dword ptr [rip + tbl]
ret
.section .rdata,"dr"
.p2align 4
tbl:
.long 0x11223344, 2, 3, 4
"""


def _clear_raw_pointer(obj, name: bytes) -> int:
    """Set PointerToRawData of section `name` to 0; the first 4 bytes of the file, which LIEF then
    reads as its contents."""
    data = bytearray(obj.read_bytes())
    for i in range(struct.unpack_from("<H", data, 2)[0]):
        hdr = 20 + 40 * i
        if data[hdr:hdr + 8].rstrip(b"\0") == name:
            struct.pack_into("<I", data, hdr + 20, 0)
    obj.write_bytes(bytes(data))
    return int.from_bytes(data[:4], "little")


def test_rdata_without_a_raw_data_pointer_links_as_zeros(tmp_path):
    obj = clang_asm(tmp_path, "pe", "x86_64", NO_RAW, "noraw")
    header = _clear_raw_pointer(obj, b".rdata")         # 0x00048664: machine AMD64, 4 sections
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert _run(dll, "x86_64", [(where["f"], ())]) == [0]
    assert _verdict(obj, _spec(tmp_path, "hdr", header)) != "proven"


# --- 3. linker directives in the object itself --------------------------------------------------
#
# A COFF object carries linker options in its `.drectve` section, and lld-link (like link.exe)
# honours /SECTION and /MERGE there. `/SECTION:.rdata,RW` or `/MERGE:.rdata=.data` makes the
# "read-only" data writable once linked: another function of the same object (unverified) then
# changes what the verified one reads. `/MERGE:.text=.data` puts the code itself in a section that
# is not executable.

DIRECTIVE = """.text
.globl f
f:
mov eax, dword ptr [rip + tbl]
ret
.globl g
g:
mov dword ptr [rip + tbl], ecx
ret
.section .rdata,"dr"
.p2align 4
tbl:
.long 1, 2, 3, 4
.section .drectve,"yn"
.ascii " DIRECTIVE"
"""


@pytest.mark.parametrize("directive", ["/SECTION:.rdata,RW", "/MERGE:.rdata=.data", "-merge:.rdata=.data"])
def test_a_drectve_making_rdata_writable_is_refused(tmp_path, directive):
    """nverify proves f() == 1 (tbl[0] is read-only data); in the DLL, g(7) writes tbl[0], and f
    then returns 7."""
    obj = clang_asm(tmp_path, "pe", "x86_64", DIRECTIVE.replace("DIRECTIVE", directive), "drectve")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f", "g"])
    assert _section_of(dll, where["tbl"]).characteristics & IMAGE_SCN_MEM_WRITE
    first, _, after = _run(dll, "x86_64", [(where["f"], ()), (where["g"], (7,)), (where["f"], ())])
    assert (first, after) == (1, 7)
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"


def test_a_drectve_moving_the_code_out_of_execution_is_refused(tmp_path):
    """`/MERGE:.text=.data`: the function lies in .data, mapped without execute; calling it faults
    (DEP). (Not new with .rdata: any COFF function is affected.)"""
    src = DIRECTIVE.replace("DIRECTIVE", "/MERGE:.text=.data")
    obj = clang_asm(tmp_path, "pe", "x86_64", src, "drectve")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert not _section_of(dll, where["f"]).characteristics & IMAGE_SCN_MEM_EXECUTE
    assert _run(dll, "x86_64", [(where["f"], ())]) == ["fault"]
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"

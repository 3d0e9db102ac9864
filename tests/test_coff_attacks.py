"""Adversarial COFF objects against read-only data in the verified unit (coff.object_file,
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

from .build import clang_asm, clang_object, have_llvm, llvm_tool

pytestmark = pytest.mark.skipif(not have_llvm(), reason="needs clang and lld (Debian: clang lld llvm)")

IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_READ, IMAGE_SCN_MEM_WRITE = 0x20000000, 0x40000000, 0x80000000


def _spec(tmp_path, name: str, ret: int, bits: int = 32) -> str:
    p = tmp_path / f"{name}.smt"
    p.write_text(f'(set-info :nverify-signature "uint{bits}_t f(void)")\n'
                 f'(define-fun post () Bool (= ret #x{ret:0{bits // 4}x}))\n')
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


def _section_of(dll, addr: int) -> tuple[int, int]:
    """(Characteristics, SizeOfRawData) of the DLL's section holding `addr` (plain values: LIEF's
    section objects do not outlive their binary)."""
    import lief

    pe = lief.PE.parse(str(dll))
    rva = addr - pe.optional_header.imagebase
    s = next(s for s in pe.sections if s.virtual_address <= rva < s.virtual_address + max(s.virtual_size, s.size))
    return int(s.characteristics), int(s.sizeof_raw_data)


def _run(dll, arch: str, calls: list[tuple[int, tuple[int, ...]]]) -> list[int | str]:
    """Call each (address, args) in turn in one process image of the DLL; each call's result
    (rax / x0), or 'fault'. Sections are mapped with their header's permissions."""
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
        prot = ((uc.UC_PROT_READ if c & IMAGE_SCN_MEM_READ else 0)
                | (uc.UC_PROT_WRITE if c & IMAGE_SCN_MEM_WRITE else 0)
                | (uc.UC_PROT_EXEC if c & IMAGE_SCN_MEM_EXECUTE else 0))
        mu.mem_map(base + s.virtual_address, size, uc.UC_PROT_ALL)
        content = bytes(s.content)[:size]
        if content:          # (unicorn crashes on an empty write)
            mu.mem_write(base + s.virtual_address, content)
        mu.mem_protect(base + s.virtual_address, size, prot)
    stack, done = 0x7F0000000000, 0x7E0000000000
    mu.mem_map(stack - 0x10000, 0x10000, uc.UC_PROT_READ | uc.UC_PROT_WRITE)
    mu.mem_map(done, 0x1000, uc.UC_PROT_EXEC)
    out: list[int | str] = []
    for addr, args in calls:
        if arch == "x86_64":
            sp = stack - 0x100
            mu.mem_write(sp, done.to_bytes(8, "little"))
            win64 = (x86.UC_X86_REG_RCX, x86.UC_X86_REG_RDX, x86.UC_X86_REG_R8, x86.UC_X86_REG_R9)
            for reg, v in zip(win64[:len(args)], args, strict=True):
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
            out.append(mu.reg_read(ret))
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
    assert _section_of(dll, where["tbl"])[0] & IMAGE_SCN_MEM_WRITE
    first, _, after = _run(dll, "x86_64", [(where["f"], ()), (where["g"], (7,)), (where["f"], ())])
    assert (first, after) == (1, 7)
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"


def test_a_drectve_moving_the_code_out_of_execution_is_refused(tmp_path):
    """`/MERGE:.text=.data`: the function lies in .data, mapped without execute; calling it faults
    (DEP). (Not new with .rdata: any COFF function is affected.)"""
    src = DIRECTIVE.replace("DIRECTIVE", "/MERGE:.text=.data")
    obj = clang_asm(tmp_path, "pe", "x86_64", src, "drectve")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert not _section_of(dll, where["f"])[0] & IMAGE_SCN_MEM_EXECUTE
    assert _run(dll, "x86_64", [(where["f"], ())]) == ["fault"]
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"


# --- 4. IMAGE_SCN_TYPE_NO_PAD: alignment 1, whatever the ALIGN bits say ---------------------------
#
# LLVM's coff_section::getAlignment (and so lld-link) returns 1 for a section with
# IMAGE_SCN_TYPE_NO_PAD (0x8), "a legacy way of getting to IMAGE_SCN_ALIGN_1BYTES"; _coff_align
# reads the ALIGN bits alone.

NO_PAD = """.text
.globl f
f:
lea rax, [rip + tbl]
and eax, 0xfff
ret
.section .rdata,"dr"
first:
.byte 7
.section .rdatb,"dr"
.p2align 12
tbl:
.long 1
"""


def _rename_and_flag(obj, old: bytes, new: bytes, flags: int) -> None:
    """Rename section `old` (and its section symbol) to `new` and OR `flags` into its
    Characteristics: a second `.rdata` clang would not write with other flags than the first."""
    data = bytearray(obj.read_bytes())
    for i in range(struct.unpack_from("<H", data, 2)[0]):
        hdr = 20 + 40 * i
        if data[hdr:hdr + 8] == old.ljust(8, b"\0"):
            data[hdr:hdr + 8] = new.ljust(8, b"\0")
            struct.pack_into("<I", data, hdr + 36, struct.unpack_from("<I", data, hdr + 36)[0] | flags)
    at = data.find(old.ljust(8, b"\0"))           # the section symbol's short name
    if at >= 0:
        data[at:at + 8] = new.ljust(8, b"\0")
    obj.write_bytes(bytes(data))


def test_no_pad_rdata_is_not_aligned_once_linked(tmp_path):
    """A second .rdata with ALIGN_4096BYTES | TYPE_NO_PAD: lld-link places it right after the
    first (1 byte), at 0x180002001. nverify proves f() == 0 from `$ro.0 % 4096 == 0`; f returns 1."""
    obj = clang_asm(tmp_path, "pe", "x86_64", NO_PAD, "nopad")
    _rename_and_flag(obj, b".rdatb", b".rdata", 0x8)       # IMAGE_SCN_TYPE_NO_PAD
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert where["tbl"] == where["first"] + 1
    assert _run(dll, "x86_64", [(where["f"], ())]) == [1]
    assert _verdict(obj, _spec(tmp_path, "zero", 0)) != "proven"


# --- 5. REL32 is not range-checked by lld-link ----------------------------------------------------
#
# coff_as_elf takes AMD64 REL32 as R_X86_64_PC32, whose field the ELF linker checks fits 32 bits
# signed (the proof relies on it: the operand is `$ro + target` only if the field does not wrap).
# lld-link's add32 writes S + field - P - 4 modulo 2^32 without a check: once the data lies 2 GiB
# or more from the operand, the CPU reads 4 GiB away from it. The proof's placeholder layout is
# checked (rodata.link), the linked one is not.

FAR_ADDEND = """.section .ztext,"xr"
.globl f
f:
lea rax, [rip + tbl - 0x80000000]
lea rcx, [rip + tbl]
sub rax, rcx
ret
.section .rdata,"dr"
.p2align 4
tbl:
.long 1, 2, 3, 4
"""


def test_rel32_with_an_addend_past_2gib_wraps_once_linked(tmp_path):
    """The code in `.ztext` follows .rdata (lld-link creates its standard sections first, then the
    others by name), so tbl - 2 GiB lies more than 2 GiB before the lea: nverify proves
    f() == -2^31 (64-bit), the linked f returns +2^31."""
    obj = clang_asm(tmp_path, "pe", "x86_64", FAR_ADDEND, "far")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert where["tbl"] < where["f"]
    assert _run(dll, "x86_64", [(where["f"], ())]) == [0x80000000]
    assert _verdict(obj, _spec(tmp_path, "neg", 0xFFFFFFFF80000000, 64)) != "proven"


FAR_IMAGE = """.section .ztext,"xr"
.globl f
f:
mov eax, dword ptr [rip + tbl]
ret
.section .xbss,"bw"
.globl big
big:
.zero 0x80000000
.section .rdata,"dr"
.p2align 4
tbl:
.long 1, 2, 3, 4
"""


def test_rel32_across_a_2gib_image_wraps_once_linked(tmp_path):
    """A 2 GiB uninitialised section of the same object (no bytes in the file) between .rdata and
    the code: lld-link links `mov eax, [rip + tbl]` to read 4 GiB past tbl, outside the image.
    nverify proves f() == 1; the linked f faults. (link.exe refuses images over 2 GiB, LNK1248;
    lld-link 14 does not.)"""
    obj = clang_asm(tmp_path, "pe", "x86_64", FAR_IMAGE, "farimg")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert where["f"] - where["tbl"] > 1 << 31
    assert _run(dll, "x86_64", [(where["f"], ())]) == ["fault"]
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"


# --- 6. code without raw data (not new with .rdata: any COFF function) -----------------------------
#
# A code section flagged IMAGE_SCN_CNT_UNINITIALIZED_DATA has no data for lld-link (SectionChunk's
# hasData is false): the image holds no bytes for it (zeros once loaded). LIEF still reads its raw
# bytes, and nverify verifies those. Likewise PointerToRawData == 0 (see 2).

def test_code_flagged_uninitialised_links_without_its_bytes(tmp_path):
    obj = clang_asm(tmp_path, "pe", "x86_64", ".text\n.globl f\nf:\nmov eax, 1\nret\n", "uninit")
    data = bytearray(obj.read_bytes())
    struct.pack_into("<I", data, 20 + 36, struct.unpack_from("<I", data, 20 + 36)[0] | 0x80)   # .text
    obj.write_bytes(bytes(data))
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert _section_of(dll, where["f"])[1] == 0
    assert _run(dll, "x86_64", [(where["f"], ())]) != [1]
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"


def test_code_without_a_raw_data_pointer_links_without_its_bytes(tmp_path):
    """.text with PointerToRawData == 0: LIEF reads the file's first bytes as the code. f lies 4
    bytes in, where the header's TimeDateStamp (any value) is set to `mov al, 1; ret`: nverify
    proves f() == 1 (uint8_t); the linked f runs what lld-link put there instead (no bytes)."""
    obj = clang_asm(tmp_path, "pe", "x86_64", ".text\n.space 4, 0x90\n.globl f\nf:\nmov al, 1\nret\n.space 8, 0xcc\n",
                    "noptr")
    _clear_raw_pointer(obj, b".text")
    data = bytearray(obj.read_bytes())
    data[4:8] = bytes.fromhex("b001c3cc")                     # TimeDateStamp: mov al, 1; ret; int3
    obj.write_bytes(bytes(data))
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert _run(dll, "x86_64", [(where["f"], ())]) != [1]
    assert _verdict(obj, _spec(tmp_path, "one", 1, 8)) != "proven"


# --- 7. a relocation of another section that spills into the unit's data ------------------------
#
# lld-link refuses a relocation whose offset is at or past its section's end, but not one whose
# field only runs past it: ADDR32NB at offset 0 of a 1-byte section writes 4 bytes, the last 3
# into whatever chunk the linker places next. nverify looks only at relocations of the unit's own
# sections, so the bytes of a .rdata placed right after such a section are not what it verified.
# (Which write lands last is up to lld-link's threads; on the machines tried, 8 of 8 links the
# relocation's. With /threads:1 the next chunk's copy lands last.)

SPILL = """.text
.globl f
f:
mov eax, dword ptr [rip + tbl]
ret
.section .rdata,"dr"
first:
.byte 0
.section .rdatb,"dr"
tbl:
.long 0x11223344
"""


def _spilling_relocation(obj, section: int, target: bytes) -> None:
    """Give 1-based `section` one IMAGE_REL_AMD64_ADDR32NB at offset 0 against symbol `target`
    (table appended to the file), and rename .rdatb to .rdata."""
    data = bytearray(obj.read_bytes())
    symbols, count = struct.unpack_from("<II", data, 8)
    index, i = {}, 0
    while i < count:
        entry = data[symbols + 18 * i:symbols + 18 * i + 18]
        index[bytes(entry[:8]).rstrip(b"\0")] = i
        i += 1 + entry[17]
    obj.write_bytes(bytes(data))
    _rename_and_flag(obj, b".rdatb", b".rdata", 0)
    data = bytearray(obj.read_bytes())
    hdr = 20 + 40 * (section - 1)
    struct.pack_into("<IIIH", data, hdr + 20, struct.unpack_from("<I", data, hdr + 20)[0], len(data), 0, 1)
    data += struct.pack("<IIH", 0, index[target], 3)
    obj.write_bytes(bytes(data))


def test_a_relocation_spilling_into_rdata_is_refused(tmp_path):
    """`first` (1 byte, .rdata #1) holds ADDR32NB f (RVA 0x1000) at offset 0; tbl (.rdata #2) lies
    right after it. nverify proves f() == 0x11223344; the linked tbl holds 0x11223354."""
    obj = clang_asm(tmp_path, "pe", "x86_64", SPILL, "spill")
    _spilling_relocation(obj, 4, b"f")                          # sections: .text .data .bss .rdata .rdata
    seen = set()
    for _ in range(5):
        dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
        assert where["tbl"] == where["first"] + 1
        seen.update(_run(dll, "x86_64", [(where["f"], ())]))
    # 0x11223354 when the relocation's write lands last (every link on the machines tried), the
    # table's own bytes when lld-link's threads order the writes the other way
    assert seen <= {0x11223354, 0x11223344}
    assert _verdict(obj, _spec(tmp_path, "t", 0x11223344)) != "proven"


def _export(dll, name: str) -> int:
    import lief

    pe = lief.PE.parse(str(dll))
    return pe.optional_header.imagebase + next(e.address for e in pe.get_export().entries if e.name == name)


def test_a_drectve_exporting_another_function_under_the_name_is_refused(tmp_path):
    """`/EXPORT:f=g` in the object's .drectve: the DLL's export `f` is g's code, even when the user
    links with `/export:f` (lld-link says nothing). nverify proves the symbol f (returns 1); what a
    caller of the DLL's f runs returns 2. (Not new with .rdata: any COFF function.)"""
    src = (".text\n.globl f\nf:\nmov eax, 1\nret\n.globl g\ng:\nmov eax, 2\nret\n"
           '.section .drectve,"yn"\n.ascii " /EXPORT:f=g"\n')
    obj = clang_asm(tmp_path, "pe", "x86_64", src, "export")
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert _export(dll, "f") == where["g"]
    assert _run(dll, "x86_64", [(_export(dll, "f"), ())]) == [2]
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"


def test_a_drectve_under_a_long_name_is_refused(tmp_path):
    """The .drectve's header names it `/4`, an offset into the string table holding `.drectve`:
    LLVM reads the name there (lld-link honours the directive), LIEF reports `/4`."""
    obj = clang_asm(tmp_path, "pe", "x86_64", DIRECTIVE.replace("DIRECTIVE", "/SECTION:.rdata,RW"), "longname")
    data = bytearray(obj.read_bytes())
    symbols, count = struct.unpack_from("<II", data, 8)
    table = symbols + 18 * count
    size = struct.unpack_from("<I", data, table)[0]
    assert table + size == len(data)                                # the string table ends the file
    data += b".drectve\0"
    struct.pack_into("<I", data, table, size + 9)
    for i in range(struct.unpack_from("<H", data, 2)[0]):
        hdr = 20 + 40 * i
        if data[hdr:hdr + 8] == b".drectve":
            data[hdr:hdr + 8] = f"/{size}".encode().ljust(8, b"\0")
    obj.write_bytes(bytes(data))
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f", "g"])
    assert _section_of(dll, where["tbl"])[0] & IMAGE_SCN_MEM_WRITE
    assert _verdict(obj, _spec(tmp_path, "one", 1)) != "proven"


# --- 8. relocations LIEF does not read -------------------------------------------------------------
#
# NumberOfRelocations 1 with PointerToRelocations 0: LIEF reads no relocation, LLVM (and so
# lld-link) reads one from the file's first 10 bytes: VirtualAddress = Machine | NumberOfSections
# << 16 (0x48664 with 4 sections), SymbolTableIndex = TimeDateStamp (any value), Type = the low half
# of PointerToSymbolTable (moved here to 3 mod 64 KiB: ADDR32NB).

HEADER_RELOCATION = """.text
.globl f
f:
mov eax, dword ptr [rip + tbl]
ret
.section .rdata,"dr"
.space 0x48664
tbl:
.long 0x11223344
"""


def test_a_relocation_read_from_the_header_is_refused(tmp_path):
    """nverify sees no relocation in .rdata and proves f() == 0x11223344; lld-link applies
    ADDR32NB f at tbl, and the linked f returns 0x11223344 + f's RVA."""
    obj = clang_asm(tmp_path, "pe", "x86_64", HEADER_RELOCATION, "hdrrel")
    data = bytearray(obj.read_bytes())
    symbols, count = struct.unpack_from("<II", data, 8)
    table = bytes(data[symbols:])                               # symbol and string tables
    index, i = {}, 0
    while i < count:
        index[table[18 * i:18 * i + 8].rstrip(b"\0")] = i
        i += 1 + table[18 * i + 17]
    data += bytes((3 - len(data)) % 0x10000)
    struct.pack_into("<II", data, 4, index[b"f"], len(data))   # TimeDateStamp, PointerToSymbolTable
    data += table
    for n in range(struct.unpack_from("<H", data, 2)[0]):
        hdr = 20 + 40 * n
        if data[hdr:hdr + 8] == b".rdata\0\0":
            struct.pack_into("<I", data, hdr + 24, 0)           # PointerToRelocations
            struct.pack_into("<H", data, hdr + 32, 1)           # NumberOfRelocations
    obj.write_bytes(bytes(data))
    dll, where = _lld_link(tmp_path, "x86_64", obj, ["f"])
    assert _run(dll, "x86_64", [(where["f"], ())]) == [0x11223344 + where["f"] - 0x180000000]
    assert _verdict(obj, _spec(tmp_path, "t", 0x11223344)) != "proven"


def test_a_dllexport_directive_still_proves(tmp_path):
    """`__declspec(dllexport)` writes ` /EXPORT:p22` into .drectve: the function exported under its
    own name, which the directive check lets through."""
    from .test_rodata import P22_TABLE

    src = P22_TABLE.replace("uint32_t p22(", "__declspec(dllexport) uint32_t p22(")
    obj = clang_object(tmp_path, "pe", "x86_64", src, "Os", "p22")
    assert b"/EXPORT:p22" in obj.read_bytes()
    assert prove(str(obj), "p22").to_json()["verdict"] == "proven"

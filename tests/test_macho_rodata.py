"""Read-only data of Mach-O objects in the verified unit (issue 18): clang's x86_64 and arm64 objects
whose function reads its own __TEXT,__const or literal pool prove, co-simulated; the normalised
relocations link to the very bytes ld64.lld writes; and every Mach-O form nverify does not model
(hints, strings, __DATA, global and weak targets, references past their atom, damaged entries) is
refused by name, never proven (verifier/macho_relocs.py)."""

from __future__ import annotations

import struct

import pytest

from verifier import prove, rodata
from verifier.blob import load
from verifier.errors import UnsupportedError

from .build import ARCHES, TARGETS, _run, clang_asm, link_image, llvm_tool
from .test_rodata import ONE_SPEC, P22_TABLE, XOR8, XOR8_SPEC, _proven, _spec

pytestmark = pytest.mark.usefixtures("llvm")

NO_HINTS = ["-mllvm", "-aarch64-enable-collect-loh=false"]


def _cc(tmp_path, arch: str, source: str, flags: list[str], name: str, hints: bool = False):
    """A Mach-O object from C; arm64 without linker optimisation hints unless `hints`."""
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"{name}_{arch}.o"
    extra = NO_HINTS if arch == "aarch64" and not hints else []
    _run([llvm_tool("clang"), f"--target={TARGETS['macho', arch]}", *flags, *extra, "-ffreestanding",
          "-fno-builtin", "-fno-stack-protector", "-c", str(src), "-o", str(out)])
    return out


def _asm(tmp_path, arch: str, text: str, name: str):
    return clang_asm(tmp_path, "macho", arch, text, name)


# --- what proves -------------------------------------------------------------------------------

@pytest.mark.parametrize("opt", ["O2", "Os"])
@pytest.mark.parametrize("arch", ARCHES)
def test_p22_table_lookup_proves(tmp_path, arch, opt):
    obj = _cc(tmp_path, arch, P22_TABLE, [f"-{opt}"], "p22")
    blob = load(obj, symbol="p22")
    assert [(r.name, len(r.data)) for r in blob.rodata] == [("__TEXT,__const", 16)], blob.rodata
    out = _proven(obj, "p22")
    assert out["blob"]["sha256"] == blob.sha256


@pytest.mark.parametrize("arch,flags", [("x86_64", ["-O3", "-mavx2"]), ("x86_64", ["-O3"]), ("aarch64", ["-O3"])])
def test_vector_kernels_loading_a_literal_pool_prove(tmp_path, arch, flags):
    """AVX2 reads 32-byte constants from __TEXT,__const (section-relative X86_64_RELOC_SIGNED); SSE
    and NEON 16-byte ones from __TEXT,__literal16, each entry an atom of its own."""
    from verifier.oracle import host

    if "-mavx2" in flags and not host.has_avx():
        pytest.skip("no AVX on this CPU")
    obj = _cc(tmp_path, arch, XOR8, flags, "xor8")
    blob = load(obj, symbol="xor8")
    if "-mavx2" not in flags:
        assert all(r.name.startswith("__TEXT,__literal16+") and len(r.data) == 16 for r in blob.rodata), blob.rodata
    _proven(obj, _spec(tmp_path, "xor8", XOR8_SPEC))


PEXT = {"x86_64": ".text\n.globl _one\n_one:\nmov eax, dword ptr [rip + _tab + 4]\nret\n"
                  ".section __TEXT,__const\n.p2align 4\n.globl _tab\n.private_extern _tab\n_tab:\n.long 7, 1, 9, 9\n",
        "aarch64": ".text\n.globl _one\n_one:\nadrp x1, _tab@PAGE+4\nldr w0, [x1, _tab@PAGEOFF+4]\nret\n"
                   ".section __TEXT,__const\n.p2align 4\n.globl _tab\n.private_extern _tab\n_tab:\n.long 7, 1, 9, 9\n"}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_private_extern_table_with_an_addend_proves(tmp_path, arch):
    """N_PEXT binds within the linked image; arm64's addend comes from ARM64_RELOC_ADDEND."""
    _proven(_asm(tmp_path, arch, PEXT[arch], "pext"), _spec(tmp_path, "one", ONE_SPEC))


# --- the normalised arithmetic is the linker's -------------------------------------------------

# L labels only: the assembler refers to the section (r_extern = 0), the field holding the target's
# address in the object relative to the instruction
SECTION_RELATIVE = (".text\n.globl _one\n_one:\ncmp byte ptr [rip + Lb + 3], 1\n"
                    "cmp dword ptr [rip + Lb + 8], 0x12345678\nmovzx eax, word ptr [rip + La + 2]\n"
                    "lea rcx, [rip + Lb]\nret\n.section __TEXT,__const\n.p2align 4\n"
                    "La:\n.long 0x11, 0x22, 0x33, 0x44\nLb:\n.long 0x55, 0x66, 0x77, 0x88\n")
ADDENDS = (".text\n.globl _one\n_one:\nadrp x1, _tab@PAGE+8\nldr w0, [x1, _tab@PAGEOFF+8]\nadrp x2, _tab@PAGE\n"
           "add x2, x2, _tab@PAGEOFF\nldrh w3, [x2, _tab@PAGEOFF+2]\nadrp x4, _q@PAGE\nldr q0, [x4, _q@PAGEOFF]\nret\n"
           ".section __TEXT,__const\n.p2align 4\n_tab:\n.long 0x101, 0x202, 0x303, 0x404\n_q:\n.quad 5, 6\n")


def _linked(tmp_path, arch: str, obj, fn: str) -> None:
    """Link `obj` with ld64.lld and check that rodata.link, given where lld put the function and
    each region, writes exactly the function bytes lld wrote."""
    import lief

    blob = load(obj, symbol=fn)
    assert blob.fixups and blob.rodata
    image = lief.MachO.parse(str(link_image(tmp_path, "macho", arch, obj, []))).at(0)
    text = image.get_section("__text")
    at = image.get_symbol(f"_{fn}").value
    linked = bytes(text.content)[at - text.virtual_address:][:len(blob.code)]
    addresses = []
    for r in blob.rodata:
        sec = image.get_section(r.name.split(",")[1].split("+")[0])
        content = bytes(sec.content)
        where = content.find(r.data)
        assert where >= 0 and content.find(r.data, where + 1) < 0, (r.name, content.hex())
        addresses.append(sec.virtual_address + where)
    assert rodata.link(arch, blob.code, at, blob.fixups, addresses) == linked


@pytest.mark.parametrize("arch", ARCHES)
def test_normalised_relocations_link_as_ld64_lld_links_them(tmp_path, arch):
    _linked(tmp_path, arch, _cc(tmp_path, arch, P22_TABLE, ["-O2"], "p22"), "p22")
    _linked(tmp_path, arch, _cc(tmp_path, arch, XOR8, ["-O3"], "xor8"), "xor8")
    if arch == "x86_64":
        _linked(tmp_path, arch, _cc(tmp_path, arch, XOR8, ["-O3", "-mavx2"], "xor8avx"), "xor8")
        _linked(tmp_path, arch, _asm(tmp_path, arch, SECTION_RELATIVE, "secrel"), "one")
    else:
        _linked(tmp_path, arch, _asm(tmp_path, arch, ADDENDS, "addends"), "one")


def _patch_reloc(obj, pick, change) -> None:
    """Rewrite the first relocation entry of the object's first section for which pick(address, info)
    holds: change(address, info) -> (address, info)."""
    import lief

    data = bytearray(obj.read_bytes())
    sec = lief.MachO.parse(str(obj)).at(0).sections[0]
    for at in range(sec.relocation_offset, sec.relocation_offset + 8 * sec.numberof_relocations, 8):
        address, info = struct.unpack_from("<iI", data, at)
        if pick(address, info):
            struct.pack_into("<iI", data, at, *change(address, info))
            obj.write_bytes(bytes(data))
            return
    raise AssertionError("no such relocation")


@pytest.mark.parametrize("n,rtype", [(1, 6), (2, 7), (4, 8)])
def test_signed_n_links_as_the_linker_links_it(tmp_path, n, rtype):
    """Section-relative, X86_64_RELOC_SIGNED_N says how many immediate bytes follow the field, and
    the linker finds the target from it (P + 4 + N + field). The assembler uses plain SIGNED here,
    so each N is forced on the `cmp byte [rip+Lb+3], 1` (whose true N is 1): the normalised fixup
    follows the type as lld does, true or not (the proof then decodes the linked instruction, and
    whatever it reads is linear in the region's base)."""
    obj = _asm(tmp_path, "x86_64", SECTION_RELATIVE, "signed")
    _patch_reloc(obj, lambda a, i: a == 2, lambda a, i: (a, (i & 0x0FFFFFFF) | (rtype << 28)))
    assert f"X86_64_RELOC_SIGNED_{n}" in {f.kind for f in load(obj, symbol="one").fixups}
    _linked(tmp_path, "x86_64", obj, "one")


# --- refuted -----------------------------------------------------------------------------------

TAB = ".section __TEXT,__const\n.p2align 4\n_tab:\n.long 1, 2, 3, 4\n"
WRITE = {"x86_64": ".text\n.globl _one\n_one:\nmov dword ptr [rip + _tab], edi\nmov eax, 1\nret\n" + TAB,
         "aarch64": ".text\n.globl _one\n_one:\nadrp x1, _tab@PAGE\nadd x1, x1, _tab@PAGEOFF\nstr w0, [x1]\n"
                    "mov w0, #1\nret\n" + TAB}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_write_to_read_only_data_is_refuted(tmp_path, arch):
    out = prove(str(_asm(tmp_path, arch, WRITE[arch], "write")), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out
    assert "writes to read-only data __TEXT,__const" in out["message"], out["message"]


@pytest.mark.parametrize("arch", ARCHES)
def test_an_index_past_the_table_is_refuted(tmp_path, arch):
    obj = _cc(tmp_path, arch, P22_TABLE.replace("parity[x & 15]", "parity[x & 31]"), ["-O2"], "p22")
    out = prove(str(obj), "p22").to_json()
    assert out["verdict"] == "refuted" and out["reason"] == "memory-safety", out


# --- refused -----------------------------------------------------------------------------------

def test_linker_optimization_hints_in_the_unit_are_refused(tmp_path):
    """clang -O2 names adrp+add to ld64 as AdrpAdd; ld64 would make it adr+nop on the hint's word."""
    obj = _cc(tmp_path, "aarch64", P22_TABLE, ["-O2"], "p22", hints=True)
    with pytest.raises(UnsupportedError, match=r"linker optimization hint AdrpAdd.*aarch64-enable-collect-loh"):
        load(obj, symbol="p22")


def test_a_hint_elsewhere_in_the_object_does_not_matter(tmp_path):
    """Hints are judged per unit: one naming another function's instructions leaves this one."""
    src = (".text\n.globl _one\n_one:\nadrp x1, _tab@PAGE\nldr w0, [x1, _tab@PAGEOFF]\nret\n"
           ".globl _two\n_two:\nLa:\nadrp x1, _tab@PAGE\nLb:\nadd x0, x1, _tab@PAGEOFF\nret\n.loh AdrpAdd La, Lb\n"
           ".section __TEXT,__const\n.p2align 4\n_tab:\n.long 1, 2, 3, 4\n")
    obj = _asm(tmp_path, "aarch64", src, "hint")
    with pytest.raises(UnsupportedError, match="linker optimization hint AdrpAdd"):
        load(obj, symbol="two")
    _proven(obj, _spec(tmp_path, "one", ONE_SPEC))


REFUSED = {
    "cstring": ('#include <stdint.h>\nuint32_t one(uint32_t x) { const char *s = "\\1abc"; return s[x & 1]; }\n',
                r"__TEXT,__cstring is not read-only data nverify models"),
    "global": ("#include <stdint.h>\nconst uint8_t tab[4] = {1, 1, 1, 1};\n"
               "uint32_t one(uint32_t x) { return tab[x & 3]; }\n", r"_tab is a global symbol"),
}


@pytest.mark.parametrize("what", sorted(REFUSED))
@pytest.mark.parametrize("arch", ARCHES)
def test_other_data_is_refused_by_name(tmp_path, arch, what):
    src, message = REFUSED[what]
    obj = _cc(tmp_path, arch, src, ["-O2"], what)
    with pytest.raises(UnsupportedError, match=message):
        load(obj, symbol="one")


DATA_CONST = {"x86_64": ".text\n.globl _one\n_one:\nmov eax, dword ptr [rip + _tab]\nret\n",
              "aarch64": ".text\n.globl _one\n_one:\nadrp x1, _tab@PAGE\nldr w0, [x1, _tab@PAGEOFF]\nret\n"}


@pytest.mark.parametrize("arch", ARCHES)
def test_data_const_is_refused_by_name(tmp_path, arch):
    """__DATA,__const is read-only only after dyld has written its pointers."""
    src = DATA_CONST[arch] + ".section __DATA,__const\n.p2align 4\n_tab:\n.long 1, 1, 1, 1\n"
    with pytest.raises(UnsupportedError, match=r"__DATA,__const is not read-only data nverify models"):
        load(_asm(tmp_path, arch, src, "dconst"), symbol="one")


WEAK = {"x86_64": ".text\n.globl _one\n_one:\nmov eax, dword ptr [rip + lw]\nret\n"
                  ".section __TEXT,__const\n.p2align 4\n.globl _w\n.weak_definition _w\n_w:\nlw:\n.long 1, 1, 1, 1\n",
        "aarch64": ".text\n.globl _one\n_one:\nadrp x1, lw@PAGE\nldr w0, [x1, lw@PAGEOFF]\nret\n"
                   ".section __TEXT,__const\n.p2align 4\n.globl _w\n.weak_definition _w\n_w:\nlw:\n.long 1, 1, 1, 1\n"}


@pytest.mark.parametrize("arch", ARCHES)
def test_data_beside_a_weak_definition_is_refused(tmp_path, arch):
    """ld64 makes no atom at an `l` label: lw's bytes are _w's atom, which the linker may replace
    with another object's definition of _w."""
    with pytest.raises(UnsupportedError, match="holds a weak definition"):
        load(_asm(tmp_path, arch, WEAK[arch], "weak"), symbol="one")


PAST = {"x86_64": ".text\n.globl _one\n_one:\nmov eax, dword ptr [rip + _tab + 16]\nret\n"
                  ".section __TEXT,__const\n.p2align 4\n_tab:\n.long 0, 0, 0, 0\n_next:\n.long 1, 1, 1, 1\n",
        "aarch64": ".text\n.globl _one\n_one:\nadrp x1, _tab@PAGE+16\nldr w0, [x1, _tab@PAGEOFF+16]\nret\n"
                   ".section __TEXT,__const\n.p2align 4\n_tab:\n.long 0, 0, 0, 0\n_next:\n.long 1, 1, 1, 1\n"}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("via", [True, False])
def test_a_reference_past_its_atom_is_refused(tmp_path, arch, via):
    """`_tab+16` is wherever _tab's atom ends up, plus 16: not _next, which the linker may place
    elsewhere or strip. Refused with and without .subsections_via_symbols (nverify always cuts)."""
    src = PAST[arch] + (".subsections_via_symbols\n" if via else "")
    with pytest.raises(UnsupportedError, match=r"at \+0x10 through its reference to _tab, outside that atom"):
        load(_asm(tmp_path, arch, src, "past"), symbol="one")


def test_an_alt_entry_does_not_join_atoms_for_a_reference_before_it(tmp_path):
    """`.alt_entry` keeps _mid in _tab's atom in both linkers; nverify still cuts there, so `_mid - 8`
    (which is _tab+8, truly) is refused rather than trusted: finer atoms only ever refuse more."""
    src = (".text\n.globl _one\n_one:\nmov eax, dword ptr [rip + _mid - 8]\nret\n"
           ".section __TEXT,__const\n.p2align 4\n_tab:\n.long 1, 1\n.alt_entry _mid\n_mid:\n.long 1, 1\n"
           ".subsections_via_symbols\n")
    with pytest.raises(UnsupportedError, match="outside that atom"):
        load(_asm(tmp_path, "x86_64", src, "alt"), symbol="one")


@pytest.mark.parametrize("arch", ARCHES)
def test_equal_literals_may_share_one_address(tmp_path, arch):
    """ld64 and lld deduplicate equal __literal16 entries: two equal entries are not known apart."""
    code = {"x86_64": "lea rax, [rip + La]\nlea rcx, [rip + Lb]\nxor edx, edx\ncmp rax, rcx\nsetne dl\nmov eax, edx\n",
            "aarch64": "adrp x1, La@PAGE\nadd x1, x1, La@PAGEOFF\nadrp x2, Lb@PAGE\nadd x2, x2, Lb@PAGEOFF\n"
                       "cmp x1, x2\ncset w0, ne\n"}[arch]
    src = (f".text\n.globl _one\n_one:\n{code}ret\n.section __TEXT,__literal16,16byte_literals\n.p2align 4\n"
           "La:\n.long 1, 2, 3, 4\nLb:\n.long 1, 2, 3, 4\n")
    obj = _asm(tmp_path, arch, src, "same")
    assert len(load(obj, symbol="one").rodata) == 2
    out = prove(str(obj), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] != "proven", out


@pytest.mark.parametrize("arch", ARCHES)
def test_data_holding_a_relocation_is_refused(tmp_path, arch):
    load_tab = {"x86_64": "mov rax, qword ptr [rip + _tab]\n",
                "aarch64": "adrp x1, _tab@PAGE\nldr x0, [x1, _tab@PAGEOFF]\n"}
    src = (f".text\n.globl _one\n_one:\n{load_tab[arch]}ret\n.section __TEXT,__const\n.p2align 3\n_tab:\n.quad _one\n")
    with pytest.raises(UnsupportedError, match="holds a relocation itself"):
        load(_asm(tmp_path, arch, src, "ptr"), symbol="one")


def test_an_immediate_the_linkers_fill_differently_is_refused(tmp_path):
    """ld64 replaces an adrp's immediate, lld ORs into it: a non-zero one in the object is refused."""
    obj = _asm(tmp_path, "aarch64", PEXT["aarch64"], "imm")
    data = bytearray(obj.read_bytes())
    import lief

    text = lief.MachO.parse(str(obj)).at(0).get_section("__text")
    word = int.from_bytes(data[text.offset:text.offset + 4], "little")
    data[text.offset:text.offset + 4] = (word | 1 << 5).to_bytes(4, "little")      # adrp page + 1
    obj.write_bytes(bytes(data))
    with pytest.raises(UnsupportedError, match="needs a relocation at \\+0x0"):
        load(obj, symbol="one")


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("damage", ["symbol", "section0", "section99"])
def test_damaged_relocations_are_refused_not_crashes(tmp_path, arch, damage):
    """A symbol index past the table, a section ordinal 0 or past the sections: refused by name."""

    obj = _asm(tmp_path, arch, PEXT[arch], "damaged")
    def change(address: int, info: int) -> tuple[int, int]:
        if damage == "symbol":
            return address, (info & ~0xFFFFFF) | 0xFFFFF0
        return address, (info & ~0x08FFFFFF) | (0 if damage == "section0" else 99)

    _patch_reloc(obj, lambda a, i: i >> 28 != 10, change)      # not an ARM64_RELOC_ADDEND
    with pytest.raises(UnsupportedError, match="symbol index|section ordinal|needs a relocation") as e:
        load(obj, symbol="one")
    assert "(to )" not in str(e.value)


def test_an_unrelocated_call_to_another_atom_is_never_followed(tmp_path):
    """The assembler may resolve a call to another symbol of the section (here laid down as bytes);
    the linker moves that atom on its own, so the call is not into the unit."""
    src = ".text\n.globl _one\n_one:\n.byte 0xe8, 0x01, 0, 0, 0\nret\n_helper:\nmov eax, 1\nret\n"
    out = prove(str(_asm(tmp_path, "x86_64", src, "call")), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] != "proven", out


@pytest.mark.parametrize("arch", ARCHES)
def test_two_atoms_are_not_known_adjacent(tmp_path, arch):
    """_b follows _a in the object, but the linker moves each atom on its own: `&_b - &_a == 16`
    never proves."""
    code = {"x86_64": "lea rax, [rip + _a]\nlea rcx, [rip + _b]\nsub rcx, rax\nxor eax, eax\ncmp rcx, 16\nsete al\n",
            "aarch64": "adrp x1, _a@PAGE\nadd x1, x1, _a@PAGEOFF\nadrp x2, _b@PAGE\nadd x2, x2, _b@PAGEOFF\n"
                       "sub x2, x2, x1\ncmp x2, #16\ncset w0, eq\n"}[arch]
    src = (f".text\n.globl _one\n_one:\n{code}ret\n.section __TEXT,__const\n.p2align 4\n_a:\n.long 1, 2, 3, 4\n"
           "_b:\n.long 5, 6, 7, 8\n.subsections_via_symbols\n")
    obj = _asm(tmp_path, arch, src, "adjacent")
    assert len(load(obj, symbol="one").rodata) == 2
    out = prove(str(obj), _spec(tmp_path, "one", ONE_SPEC)).to_json()
    assert out["verdict"] != "proven", out


def test_a_weak_data_symbol_is_refused(tmp_path):
    src = (".text\n.globl _one\n_one:\nmov eax, dword ptr [rip + _w]\nret\n.section __TEXT,__const\n.p2align 4\n"
           ".globl _w\n.weak_definition _w\n_w:\n.long 1, 1, 1, 1\n")
    with pytest.raises(UnsupportedError, match=r"needs a relocation at \+0x2 \(to _w\).*_w is in __TEXT,__const, "
                                               "which holds a weak definition"):
        load(_asm(tmp_path, "x86_64", src, "weakdef"), symbol="one")


def test_data_whose_address_another_section_claims_is_refused(tmp_path):
    """A damaged object whose __const lies at addresses of __text too: lld finds an atom by section
    and offset, ld64 by address, and they would disagree."""
    import lief

    obj = _cc(tmp_path, "x86_64", P22_TABLE, ["-O2"], "p22")
    assert load(obj, symbol="p22").rodata
    data = bytearray(obj.read_bytes())
    header = data.find(b"__const".ljust(16, b"\0") + b"__TEXT".ljust(16, b"\0"))
    old = struct.unpack_from("<Q", data, header + 32)[0]
    struct.pack_into("<Q", data, header + 32, 0x20)                 # inside __text [0, 0x29)
    symtab = lief.MachO.parse(str(obj)).at(0).symbol_command
    for at in range(symtab.symbol_offset, symtab.symbol_offset + 16 * symtab.numberof_symbols, 16):
        if struct.unpack_from("<BBHQ", data, at + 4)[1:] == (2, 0, old):
            struct.pack_into("<Q", data, at + 8, 0x20)
    obj.write_bytes(bytes(data))
    with pytest.raises(UnsupportedError, match="or also in another section"):
        load(obj, symbol="p22")


def test_a_section_relative_reference_whose_operand_leaves_the_atom_its_type_names_is_refused(tmp_path):
    """Crafted: `cmp byte ptr [rip + X], 1` (one immediate byte after the field) carried as a
    section-relative SIGNED_4 whose target, P + 4 + 4 + field, is _b: the linker ties it to _b's
    atom, and the CPU reads 3 bytes before wherever that atom goes."""
    import lief

    src = (".text\n.globl _one\n_one:\ncmp byte ptr [rip + _b], 1\nsete al\nmovzx eax, al\nret\n"
           ".section __TEXT,__const\n.p2align 4\n_a:\n.long 1, 1, 1, 1\n_b:\n.long 1, 1, 1, 1\n")
    obj = _asm(tmp_path, "x86_64", src, "lie")
    image = lief.MachO.parse(str(obj)).at(0)
    b = image.get_symbol("_b").value
    const = next(i for i, s in enumerate(image.sections) if s.name == "__const") + 1
    text = image.get_section("__text")
    data = bytearray(obj.read_bytes())
    struct.pack_into("<i", data, text.offset + 2, b - 2 - 8)                 # T = P + 8 + field = _b
    obj.write_bytes(bytes(data))
    _patch_reloc(obj, lambda a, i: a == 2, lambda a, i: (a, (8 << 28) | (2 << 25) | (1 << 24) | const))
    with pytest.raises(UnsupportedError, match=r"reads __TEXT,__const\+0x10 at -0x3 .*outside that atom"):
        load(obj, symbol="one")


@pytest.mark.parametrize("arch", ARCHES)
def test_no_raw_mach_o_type_passes_for_an_elf_one(tmp_path, arch):
    """X86_64_RELOC_BRANCH is 2, R_X86_64_PC32's number; GOT_LOAD 3, ... Every Mach-O entry that is
    not normalised keeps type -1, and every normalised one names an atom of read-only data."""
    import lief

    from verifier import formats

    src = ("#include <stdint.h>\nextern int g; int h(int);\nstatic const uint8_t t[4] = {1, 2, 3, 4};\n"
           "int one(int x) { return h(x) + g + t[x & 3]; }\n")
    obj = _cc(tmp_path, arch, src, ["-O2"], "mixed", hints=True)
    data = obj.read_bytes()
    table = formats._macho_file(str(obj), data, lief.MachO.parse(str(obj)).at(0), arch).relocations
    assert any(r.rtype != -1 for r in table) and any(r.rtype == -1 for r in table), table
    for r in table:
        assert r.rtype == -1 or (r.to.section.atom and r.rtype in rodata.SUPPORTED[arch]), r


def test_emit_writes_an_object_with_the_same_unit(tmp_path):
    """A proven Mach-O unit is emitted as the ELF object nverify writes for any unit with data: it
    loads as the same unit (same digest) and proves again."""
    from .build import emit_signed

    obj = _cc(tmp_path, "x86_64", P22_TABLE, ["-O2"], "p22")
    out = emit_signed(tmp_path, obj, "p22")
    again = load(out / "p22.o", symbol="p22")
    assert again.fmt == "elf" and again.sha256 == load(obj, symbol="p22").sha256
    assert prove(str(out / "p22.o"), "p22").verdict.value == 0

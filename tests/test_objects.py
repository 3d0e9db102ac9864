"""Object files as the linker sees them, on both ISAs: hand-written assembly without `.type` or
`.size` proves; a function is the global definition of its name; every relocation that rewrites
any of its bytes (before it, straddling an edge, inside) is refused, in ELF, Mach-O and COFF,
naming its type, offset and target, never an empty one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from verifier import prove, relocs
from verifier.blob import load
from verifier.cli import main
from verifier.errors import BlobError, UnsupportedError
from verifier.pipeline import Options

from .asm_library import ASM
from .build import ARCHES, LD, clang_asm, compile_c, gas_object

OBJCOPY = {"x86_64": "objcopy", "aarch64": "aarch64-linux-gnu-objcopy"}


def _functions(arch: str, *names: str) -> str:
    """Functions from the library, with neither `.type` nor `.size`, as hand-written assembly goes."""
    return "\n".join([".text"] + [f".globl {n}\n{n}:\n{ASM[arch][n]}" for n in names])


@pytest.mark.parametrize("arch", ARCHES)
def test_handwritten_assembly_without_type_or_size_proves(tmp_path, arch):
    obj = gas_object(tmp_path, arch, _functions(arch, "p01", "p02"))
    first = prove(str(obj), "p01").to_json()
    assert first["verdict"] == "proven", first
    assert first["blob"]["extent"] == "p01 has no size in the symbol table: its extent runs to the next symbol, " \
        f"p02, at +{first['blob']['size']:#x}"
    assert first["blob"]["section"] == ".text" and first["blob"]["offset"] == "0x0"
    last = prove(str(obj), "p02").to_json()
    assert last["verdict"] == "proven", last
    assert "runs to the end of .text" in last["blob"]["extent"]


@pytest.mark.parametrize("arch", ARCHES)
def test_untyped_local_labels_lie_inside_a_function(tmp_path, arch):
    """`loop:` inside a hand-written function (and AArch64's `$x`/`$d` markers) do not end it; the
    next global or typed symbol does, and a symbol with `.type` but no `.size` is found too."""
    body = {"x86_64": "xor eax, eax\nloop:\nadd eax, 1\ncmp eax, edi\njb loop\nret",
            "aarch64": "mov w1, #0\nloop:\nadd w1, w1, #1\ncmp w1, w0\nb.lo loop\nmov w0, w1\nret"}[arch]
    typ = "@function" if arch == "x86_64" else "%function"
    src = f".text\n.globl f\n.type f, {typ}\nf:\n{body}\n.globl g\ng:\nret\n"
    obj = gas_object(tmp_path, arch, src)
    f, g = load(obj, symbol="f"), load(obj, symbol="g")
    assert f.base + f.size == g.base and "the next symbol, g," in (f.extent_note or "")
    assert g.extent_note and "end of .text" in g.extent_note


RELOC_BEFORE = {  # a relocation that starts before p01 and rewrites its first bytes when linked
    "x86_64": (".text\n.byte 0x90, 0x90\n{reloc}.byte 0, 0\n.globl p01\np01:\n" + ASM["x86_64"]["p01"],
               ".reloc ., R_X86_64_32, foo\n", "R_X86_64_32 rewrites its bytes -0x2..+0x2", "-0x2"),
    "aarch64": (".text\n{reloc}.word 0\n.globl p01\np01:\n" + ASM["aarch64"]["p01"],
                ".reloc ., R_AARCH64_ABS64, foo\n", "R_AARCH64_ABS64 rewrites its bytes -0x4..+0x4", "-0x4"),
}


@pytest.mark.parametrize("arch", ARCHES)
def test_elf_relocation_before_the_function_is_refused(tmp_path, capsys, arch):
    text, reloc, what, at = RELOC_BEFORE[arch]
    bad = gas_object(tmp_path, arch, text.format(reloc=reloc), "bad")
    assert main(["prove", str(bad), "--spec", "p01", "-q"]) == 2
    err = capsys.readouterr().err
    assert f"p01 needs a relocation at {at} (to foo): {what}" in err, err
    good = gas_object(tmp_path, arch, text.format(reloc=""), "good")
    assert prove(str(good), "p01").verdict.value == 0


@pytest.mark.parametrize("arch", ARCHES)
def test_elf_relocation_straddling_the_end_is_refused(tmp_path, arch):
    """The function has a size; a 4-byte field starts 2 bytes before its end."""
    reloc = "R_X86_64_32" if arch == "x86_64" else "R_AARCH64_ABS32"
    src = f".text\n.globl p01\np01:\n{ASM[arch]['p01']}\n.size p01, .-p01\n.reloc .-2, {reloc}, foo\n.long 0\n"
    obj = gas_object(tmp_path, arch, src)
    with pytest.raises(UnsupportedError, match=rf"{reloc} rewrites its bytes \+0x[0-9a-f]+\.\.\+0x[0-9a-f]+"):
        load(obj, symbol="p01")


# Mach-O and COFF have no `.reloc`: a 4- or 8-byte absolute address laid down just before the label.
CLANG_BEFORE = {
    "x86_64": ".text\n.byte 0x90, 0x90, 0x90, 0x90\npre:\n{data}\n.globl {p}p01\n{p}p01 = pre + 2\n"
              ".byte 0x90, 0x90\n" + ASM["x86_64"]["p01"],
    "aarch64": ".text\npre:\n{data}\n.globl {p}p01\n{p}p01 = pre + 4\n" + ASM["aarch64"]["p01"],
}


@pytest.mark.usefixtures("llvm")
@pytest.mark.parametrize("fmt", ["macho", "pe"])
@pytest.mark.parametrize("arch", ARCHES)
def test_macho_and_coff_relocation_before_the_function_is_refused(tmp_path, fmt, arch):
    p = "_" if fmt == "macho" else ""
    reloc = {"x86_64": f".long {p}foo", "aarch64": f".quad {p}foo"}[arch]
    nops = {"x86_64": ".byte 0x90, 0x90, 0x90, 0x90", "aarch64": "nop\nnop"}[arch]
    bad = clang_asm(tmp_path, fmt, arch, CLANG_BEFORE[arch].format(data=reloc, p=p), "bad")
    at = {"x86_64": "-0x2", "aarch64": "-0x4"}[arch]
    with pytest.raises(UnsupportedError, match=rf"p01 needs a relocation at {at} \(to {p}foo\)"):
        load(bad, symbol="p01")
    good = clang_asm(tmp_path, fmt, arch, CLANG_BEFORE[arch].format(data=nops, p=p), "good")
    abi = "sysv" if arch == "x86_64" else None      # the library's p01 takes its argument in rdi
    assert prove(str(good), "p01", Options(abi=abi)).verdict.value == 0


TABLE = ("#include <stdint.h>\nstatic const int32_t tab[8] = {3, 1, 4, 1, 5, 9, 2, 6};\n"
         "int32_t look(int32_t i) { return tab[i & 7]; }\n")


@pytest.mark.parametrize("arch", ARCHES)
def test_relocations_to_sections_name_the_section(tmp_path, arch):
    """Writable data is never part of the unit: its relocation is refused, naming the section."""
    written = TABLE.replace("static const", "static") + "void put(int32_t i) { tab[i & 7] = i; }\n"
    obj = compile_c(tmp_path, arch, written, "O2", "table")
    with pytest.raises(UnsupportedError) as e:
        load(obj, symbol="look")
    assert "(to .data" in str(e.value) and "(to )" not in str(e.value), e.value


@pytest.mark.parametrize("arch", ARCHES)
def test_relocations_carry_their_target_for_resolving(tmp_path, arch):
    """What resolving read-only data needs from the loader: the relocation's type, its addend and
    the section symbol it names, whose section holds the table."""
    from verifier import elfload, symbols

    obj = compile_c(tmp_path, arch, TABLE, "O2", "table")
    for fast in (True, False):
        data = obj.read_bytes()
        table = elfload.read(str(obj), data) if fast else elfload._from_lief(str(obj), data)
        r = next(r for r in table.relocations if r.to is not None and r.to.kind == symbols.SECTION)
        assert r.to.section.name == ".rodata" and r.addend is not None and r.rtype > 0, r
        assert not r.to.section.writable and not r.to.section.executable
        assert r.to.section.content[r.addend:][:4] == (3).to_bytes(4, "little")     # tab[0]


@pytest.mark.usefixtures("llvm")
@pytest.mark.parametrize("fmt", ["macho", "pe"])
@pytest.mark.parametrize("arch", ARCHES)
def test_macho_and_coff_relocation_targets_are_never_empty(tmp_path, fmt, arch):
    from .build import clang_object

    # writable data: read-only data of the object is part of the unit (test_coff_rodata, test_macho_rodata)
    written = TABLE.replace("static const", "static") + "void put(int32_t i) { tab[i & 7] = i; }\n"
    obj = clang_object(tmp_path, fmt, arch, written, name="table")
    with pytest.raises(UnsupportedError) as e:
        load(obj, symbol="look")
    assert "needs a relocation" in str(e.value) and "(to )" not in str(e.value), e.value


def _link_r(tmp: Path, arch: str, parts: dict[str, str]) -> Path:
    """One object from several (ld -r), keeping each part's symbols: two `f`s if both define one."""
    objs = [gas_object(tmp, arch, text, name) for name, text in parts.items()]
    out = tmp / f"combined_{arch}.o"
    subprocess.run([LD[arch], "-r", *map(str, objs), "-o", str(out)], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_a_global_wins_over_a_local_of_the_same_name(tmp_path, arch):
    benign = f".text\np01:\n{ASM[arch]['p01']}\n.globl other\nother:\nret\n"
    linked = f".text\n.globl p01\np01:\n{ASM[arch]['p02']}\n"
    obj = _link_r(tmp_path, arch, {"benign": benign, "linked": linked})
    symtab = subprocess.run(["readelf", "-sW", str(obj)], capture_output=True, text=True, check=True).stdout
    assert "LOCAL  DEFAULT    1 p01" in symtab and "GLOBAL DEFAULT    1 p01" in symtab, symtab
    blob = load(obj, symbol="p01")
    assert blob.code == load(gas_object(tmp_path, arch, linked, "alone"), symbol="p01").code
    assert str(prove(str(obj), "p01").verdict) == "refuted"     # p02's code, against p01's spec


@pytest.mark.parametrize("arch", ARCHES)
def test_ambiguous_definitions_are_input_errors(tmp_path, arch):
    one, two = (f".text\np01:\n{ASM[arch][n]}\n" for n in ("p01", "p02"))
    locals_ = _link_r(tmp_path, arch, {"one": one, "two": two})
    with pytest.raises(BlobError, match=r"'p01' is ambiguous: several local definitions and no global one "
                                        r"\(local notype at \.text\+0x0 and local notype at \.text\+0x"):
        load(locals_, symbol="p01")
    globals_ = tmp_path / "globals.o"
    subprocess.run([OBJCOPY[arch], "--globalize-symbol=p01", str(locals_), str(globals_)], check=True)
    with pytest.raises(BlobError, match=r"'p01' is ambiguous: two global definitions \(global notype at "):
        load(globals_, symbol="p01")


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("src,message", [
    (".data\n.globl f\nf:\n.long 0\n", "symbol 'f' is not in a code section (.data)"),
    (".globl f\n.set f, 0x1234\n", "'f' is bound to an absolute or common symbol"),
    (".text\n.globl f\n.type f, {ifunc}\nf:\nret\n", "'f' is an IFUNC"),
    (".text\n.globl f\n.type f, {obj}\nf:\nret\n", "'f' is a data symbol, not a function"),
    (".text\n.weak f\nf:\nret\n", None),
])
def test_what_a_name_binds_to_must_be_code(tmp_path, arch, src, message):
    kind = "@" if arch == "x86_64" else "%"
    src = src.format(ifunc=f"{kind}gnu_indirect_function", obj=f"{kind}object")
    obj = gas_object(tmp_path, arch, src)
    if message is None:                      # a weak definition is what the name binds to
        assert load(obj, symbol="f").size == {"x86_64": 1, "aarch64": 4}[arch]
        return
    with pytest.raises(BlobError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(obj, symbol="f")


@pytest.mark.parametrize("arch", ARCHES)
def test_relocation_widths_agree_with_lief(tmp_path, arch):
    """Every relocation gcc writes for PIC, TLS, GOT and PLT code has the name LIEF gives it, and a
    width that covers LIEF's field."""
    import lief

    src = ("extern int g; extern __thread int t; static __thread int u; extern void h(void);\n"
           "static const long tab[4] = {1, 2, 3, 4};\n"
           "int f(int i) { h(); return g + t + u + (int) tab[i & 3]; }\nlong (*p)(void) = 0; int *q = &g;\n")
    seen = 0
    for opt in ("O0", "O2 -fPIC", "O2 -fno-pic -mcmodel=large" if arch == "x86_64" else "O2 -fno-pic"):
        obj = compile_c(tmp_path, arch, src, opt, "widths")
        binary = lief.ELF.parse(str(obj))      # kept alive: its relocations point into it
        for r in binary.relocations:
            rtype = r.r_info(lief.ELF.Header.CLASS.ELF64) & 0xFFFFFFFF
            name, _, width = relocs.elf(arch, rtype)
            assert "type" in name or name == "R_" + str(r.type).split(".")[-1], (name, r.type)
            if r.size:      # LIEF gives a field's bits (26 for CALL26): ours covers its instruction
                assert (r.size + 7) // 8 <= width <= max(4, r.size // 8), (name, width, r.size)
                seen += 1
    assert seen > 10


@pytest.mark.parametrize("at,pre,width,hit", [
    (-2, 0, 4, True), (-4, 0, 4, False), (-4, 0, 8, True), (0, 0, 4, True), (10, 0, 4, True),
    (14, 0, 4, True), (16, 0, 4, False), (17, 3, 4, True), (19, 3, 4, False), (-16, 16, 16, False),
    (-15, 16, 16, True), (31, 16, 16, True), (32, 16, 16, False),
])
def test_one_range_check_for_every_relocation(at, pre, width, hit):
    """A 16-byte function at 0x100: a field reaches it if [at - pre, at + width) meets [0, 16)."""
    r = relocs.Reloc(1, 0x100 + at, "R_TEST", pre, width, "t")
    assert r.reaches(0x100, 0x110) is hit
    assert relocs.Reloc(2, 0x100 + at, "R_TEST", pre, width, "t").reaches(0x100, 0x110) is hit
    if hit:
        with pytest.raises(UnsupportedError, match=r"needs a relocation at [+-]0x[0-9a-f]+ \(to t\): R_TEST"):
            relocs.check_relocations("f.o", "f", [r], 1, 0x100, 0x110)
    relocs.check_relocations("f.o", "f", [r], 2, 0x100, 0x110)     # another section: never


def test_unknown_relocation_types_reach_16_bytes_either_way():
    assert relocs.elf("x86_64", 250)[1:] == (16, 16) and relocs.elf("aarch64", 4000)[1:] == (16, 16)
    assert relocs.macho("aarch64", 14, 2)[1:] == (16, 16) and relocs.coff("x86_64", 0x99)[1:] == (16, 16)
    assert relocs.elf("x86_64", 42) == ("R_X86_64_REX_GOTPCRELX", 3, 4)
    assert relocs.target(None, ".rodata", 0x10) == ".rodata+0x10" and relocs.target(None, None) != ""

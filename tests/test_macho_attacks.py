"""Adversarial Mach-O objects against read-only data in the verified unit (verifier/macho_relocs.py):
each object is built here from assembly (some byte-patched, with comments), linked by ld64.lld into a
dylib, and the dylib's function is run (unicorn, the __TEXT segment mapped read+execute as dyld maps
it). Each test shows a unit whose linked code does not do what nverify proved, and asserts that
nverify does not prove it."""

from __future__ import annotations

import subprocess

import pytest

from verifier import prove
from verifier.errors import BlobError, UnsupportedError

from .build import clang_asm, have_llvm, link_image, llvm_tool

pytestmark = pytest.mark.skipif(not have_llvm(), reason="needs clang and lld (Debian: clang lld llvm)")


def _spec(tmp_path, name: str, ret: int) -> str:
    """f(x) returns x + ret."""
    p = tmp_path / f"{name}.smt"
    p.write_text('(set-info :nverify-signature "uint32_t f(uint32_t x)")\n'
                 f'(define-fun post () Bool (= ret (bvadd x #x{ret:08x})))\n')
    return str(p)


def _verdict(obj, spec: str) -> str:
    """nverify's verdict on `_f`, or `refused` when it does not take the object in."""
    try:
        return prove(str(obj), spec).to_json()["verdict"]
    except (UnsupportedError, BlobError):
        return "refused"


def _run(dylib, arch: str, fn: str = "_f", x: int = 0) -> int | str:
    """Call `fn(x)` of the linked dylib; its 32-bit result, or 'fault'."""
    import lief
    import unicorn as uc
    from unicorn import arm64_const as a64
    from unicorn import x86_const as x86

    image = lief.MachO.parse(str(dylib)).at(0)
    mode = (uc.UC_ARCH_X86, uc.UC_MODE_64) if arch == "x86_64" else (uc.UC_ARCH_ARM64, uc.UC_MODE_ARM)
    mu = uc.Uc(*mode)
    base = 0x100000000      # the dylib slid here, as dyld may; every read here is pc-relative
    for seg in image.segments:
        if seg.name != "__TEXT":          # the code and its read-only data
            continue
        size = -(-seg.virtual_size // 0x1000) * 0x1000
        mu.mem_map(base + seg.virtual_address, size, uc.UC_PROT_ALL)
        content = bytes(seg.content)[:size]
        if content:
            mu.mem_write(base + seg.virtual_address, content)
        p = seg.init_protection
        prot = ((uc.UC_PROT_READ if p & 1 else 0) | (uc.UC_PROT_WRITE if p & 2 else 0)
                | (uc.UC_PROT_EXEC if p & 4 else 0))
        mu.mem_protect(base + seg.virtual_address, size, prot)
    stack, done = 0x7F0000000000, 0x7E0000000000
    mu.mem_map(stack - 0x10000, 0x10000, uc.UC_PROT_READ | uc.UC_PROT_WRITE)
    mu.mem_map(done, 0x1000, uc.UC_PROT_EXEC)
    if arch == "x86_64":
        mu.mem_write(stack - 0x100, done.to_bytes(8, "little"))
        mu.reg_write(x86.UC_X86_REG_RSP, stack - 0x100)
        mu.reg_write(x86.UC_X86_REG_RDI, x)
        ret = x86.UC_X86_REG_RAX
    else:
        mu.reg_write(a64.UC_ARM64_REG_SP, stack - 0x100)
        mu.reg_write(a64.UC_ARM64_REG_LR, done)
        mu.reg_write(a64.UC_ARM64_REG_X0, x)
        ret = a64.UC_ARM64_REG_X0
    try:
        mu.emu_start(base + image.get_symbol(fn).value, done, count=10000)
    except uc.UcError:
        return "fault"
    return mu.reg_read(ret) & 0xFFFFFFFF


def _link(tmp_path, arch: str, obj, *flags: str):
    """ld64.lld -dylib, with `flags`."""
    if not flags:
        return link_image(tmp_path, "macho", arch, obj, [])
    out = obj.with_suffix(".dylib")
    subprocess.run([llvm_tool("ld64.lld"), "-arch", "x86_64" if arch == "x86_64" else "arm64", "-dylib",
                    "-platform_version", "macos", "11.0", "11.0", *flags, "-o", str(out), str(obj)],
                   check=True, capture_output=True)
    return out


# --- 1. a PAGEOFF12 load from an atom the linker places misaligned -----------------------------

# The path that reads is taken only where the atom is misaligned, which no co-simulated state can lay
# out (rodata.link refuses it); the other path, taken where it is aligned, returns x + 7 directly and
# is co-simulated, so the verdict is `proven` (one path uncovered, which nverify only notes).
MISALIGNED = (".text\n.globl _f\n_f:\nadrp x1, _tab@PAGE\nadd x2, x1, _tab@PAGEOFF\ntst x2, #3\nb.eq Laligned\n"
              "ldr w1, [x1, _tab@PAGEOFF]\nadd w0, w0, w1\nret\nLaligned:\nadd w0, w0, #7\nret\n"
              ".section __TEXT,__const\n.p2align 0\n_pad:\n.byte 0x55\n_tab:\n.long 7\n"
              ".subsections_via_symbols\n")


def test_a_scaled_pageoff12_load_from_an_atom_aligned_less_than_its_size(tmp_path):
    """`ldr w1, [x1, _tab@PAGEOFF]` scales the page offset by 4. _tab's atom is only 1-aligned
    (section .p2align 0, offset 1), and lld places it right after _pad, at an odd address; lld's
    encodePageOff12 writes (va & 0xfff) >> 2 without checking the low bits, so the linked ldr reads
    the 4 bytes at va & ~3: 0x55 from _pad and three bytes of _tab, 0x755. nverify models the read at
    _tab exactly (relocated._lo12) and proves `ret == x + 7`. (ld64 is said to reject a misaligned
    scaled PAGEOFF12; ld64.lld 14 links it silently.) A scaled PAGEOFF12 load or store must need its
    atom aligned at least to its access size."""
    obj = clang_asm(tmp_path, "macho", "aarch64", MISALIGNED, "misaligned")
    assert _run(_link(tmp_path, "aarch64", obj), "aarch64") == 0x755      # not 7
    assert _verdict(obj, _spec(tmp_path, "f", 7)) != "proven"


# --- 2. a literal entry aligned as its section claims, which literal deduplication does not keep --

LITERAL_PAGE = (".text\n.globl _f\n_f:\nlea rax, [rip + Lk]\nand eax, 0xfff\nadd eax, edi\nret\n"
                ".section __TEXT,__literal16,16byte_literals\n.p2align 12\nLk:\n.long 1, 2, 3, 4\n"
                ".subsections_via_symbols\n")


def test_a_literal_entry_is_aligned_only_to_its_size(tmp_path):
    """The __literal16 section claims 4096-byte alignment; nverify makes its entry at offset 0 an
    atom aligned so (macho_relocs._Atoms.of: the section's alignment, capped at a page) and proves
    that `(address of Lk) & 0xfff` is 0, so f(x) == x. A deduplicating linker does not keep literal
    sections: lld (--deduplicate-literals, implied by --icf=safe/all) pools every 4/8/16-byte
    literal of every object into one `__literals` section (WordLiteralSection, aligned 16) and
    places each entry only at a multiple of its size, and ld64 coalesces literal atoms across
    objects too. A literal entry is known aligned only to its size."""
    obj = clang_asm(tmp_path, "macho", "x86_64", LITERAL_PAGE, "literalpage")
    got = _run(_link(tmp_path, "x86_64", obj, "--deduplicate-literals"), "x86_64")
    assert got not in (0, "fault"), got                       # the entry is not page-aligned
    assert _verdict(obj, _spec(tmp_path, "f", 0)) != "proven"


# --- 3. section bytes LIEF reads from elsewhere than the section's file offset ----------------

OFFSET = (".text\n.globl _f\n_f:\nmov eax, dword ptr [rip + _tab]\nadd eax, edi\nret\n"
          ".section __TEXT,__const\n.p2align 2\n_tab:\n.long 7\n.subsections_via_symbols\n")


def test_section_bytes_are_the_ones_at_the_sections_file_offset(tmp_path):
    """Patched: __const's header offset is set to 8, inside the Mach-O header (the cpusubtype field,
    3 for x86_64 ALL). ld64 and lld copy an object's section from its own file offset, so _tab links
    as 3; LIEF (its segment mapping, `Section size exceeds segment size`) still hands nverify the
    old bytes, 7, and nverify proves f(x) == x + 7 while the linked f returns x + 3."""
    import struct

    obj = clang_asm(tmp_path, "macho", "x86_64", OFFSET, "offset")
    data = bytearray(obj.read_bytes())
    header = data.find(b"__const".ljust(16, b"\0") + b"__TEXT".ljust(16, b"\0"))
    struct.pack_into("<I", data, header + 48, 8)            # section_64.offset
    assert data[8:12] == (3).to_bytes(4, "little")
    obj.write_bytes(bytes(data))
    assert _run(_link(tmp_path, "x86_64", obj), "x86_64") == 3       # not 7
    assert _verdict(obj, _spec(tmp_path, "f", 7)) != "proven"


def test_two_hint_commands_are_refused():
    """LIEF and lld read the first LC_LINKER_OPTIMIZATION_HINT; a linker reading the last would apply
    hints nverify never looked at. A header with two is refused (built by hand: 32-byte mach header,
    two 16-byte commands)."""
    import struct

    from verifier import macho_relocs
    from verifier.errors import UnsupportedError

    hints = b"\x07\x02\x00\x04" + bytes(4)
    header = struct.pack("<IIIIIIII", 0xFEEDFACF, 0x0100000C, 0, 1, 2, 32, 0, 0)
    cmds = b"".join(struct.pack("<IIII", macho_relocs.LC_LINKER_OPTIMIZATION_HINT, 16, 64, 8) for _ in range(2))
    data = header + cmds + hints
    with pytest.raises(UnsupportedError, match="two LC_LINKER_OPTIMIZATION_HINT"):
        macho_relocs._hint_data("x.o", data, 0)
    one = struct.pack("<IIIIIIII", 0xFEEDFACF, 0x0100000C, 0, 1, 1, 16, 0, 0) + cmds[:16] + bytes(16) + hints
    assert macho_relocs._hint_data("x.o", one, 0) == hints

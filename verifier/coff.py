"""COFF objects (`.obj`) -> `symbols.ObjectFile`: sections as lld-link takes them, symbols, and
relocations, those to the function's own read-only data (`.rdata`) read as the ELF types with the
same arithmetic (`coff_as_elf`), so verifier/rodata.py resolves them as for ELF. Every way found
for an object's linked bytes to differ from what LIEF reads is refused here (tests/test_coff_attacks.py).
"""

from __future__ import annotations

import struct
from typing import Any

from . import relocs, rodata, symbols
from .blob import DEFAULT_BASE, text
from .errors import UnsupportedError

IMAGE_SCN_CNT_CODE, IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_WRITE = 0x20, 0x20000000, 0x80000000

def executable(section: Any) -> bool:
    return bool(section.characteristics & (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE))


def writable(section: Any) -> bool:
    return bool(section.characteristics & IMAGE_SCN_MEM_WRITE)


IMAGE_SYM_CLASS_EXTERNAL, IMAGE_SYM_CLASS_STATIC, IMAGE_SYM_CLASS_LABEL, IMAGE_SYM_CLASS_WEAK_EXTERNAL = 2, 3, 6, 105


def object_file(path: str, binary: Any, found: str, data: bytes = b"") -> symbols.ObjectFile:
    raw = list(binary.sections)
    for s in raw:
        # The specification puts a relocation at its VirtualAddress minus the section's; lld-link
        # patches the VirtualAddress itself. Where linkers disagree about which bytes are patched, no
        # bytes are verified. A relocation count past 0xffff (NRELOC_OVFL) is kept where LIEF does
        # not read it.
        if s.virtual_address and s.numberof_relocations:
            raise UnsupportedError(f"{path}: section {text(s.name)} of this COFF object has an address "
                                   f"({s.virtual_address:#x}) and relocations: linkers differ on where those apply")
        if len(list(s.relocations)) != s.numberof_relocations:
            # e.g. PointerToRelocations 0: LIEF reads none, LLVM (lld-link) reads the file header
            raise UnsupportedError(f"{path}: section {text(s.name)} has {s.numberof_relocations} relocations, of "
                                   f"which LIEF reads {len(list(s.relocations))}: the linker may apply others")
        if s.characteristics & IMAGE_SCN_LNK_NRELOC_OVFL:
            raise UnsupportedError(f"{path}: section {text(s.name)} has more than 65535 relocations "
                                   "(IMAGE_SCN_LNK_NRELOC_OVFL), which nverify does not read")
    _coff_directives(path, raw, data)
    huge = sum(int(s.size) for s in raw) >= COFF_REL32_OBJECT
    sections = [symbols.Section(i + 1, text(s.name), 0, _coff_content(s), executable(s), writable(s),
                                rodata=_coff_rodata(s), align=_coff_align(s),
                                grouped=bool(s.characteristics & IMAGE_SCN_LNK_COMDAT))
                for i, s in enumerate(raw)]
    obj = symbols.ObjectFile("coff", found, relocatable=True, bias=DEFAULT_BASE)
    for s in binary.symbols:
        sym = _coff_symbol(s, sections)
        if sym is not None:
            obj.symbols.append(sym)
    for sec, s in zip(sections, raw, strict=True):
        for r in s.relocations:
            rtype = int(r.type) & 0xFFFF
            kind, pre, width = relocs.coff(found, rtype)
            if r.address + width > s.size:
                # lld-link refuses a field that starts past its section's end, not one that only
                # runs past it: those bytes land in whatever the linker places next (another
                # section of this object, the unit's own data or code)
                raise UnsupportedError(
                    f"{path}: section {sec.name} has a relocation ({kind}) at +{r.address:#x} whose field runs "
                    f"past the section's end (+{s.size:#x}): the linker writes those bytes into the next section")
            to = _coff_symbol(r.symbol, sections) if r.symbol is not None else None
            target = relocs.target(None, to.section.name) if to is not None and to.kind == symbols.SECTION \
                and to.section is not None else relocs.target(text(r.symbol.name) if r.symbol else None, None)
            # As the ELF type whose arithmetic it shares, with its addend read from the field
            # (verifier/rodata.py resolves only those); anything else matches no ELF type. In code
            # only: entries of a jump table in .rdata, and jumps to code in another section, are
            # resolved for ELF objects alone and stay refused here.
            elf_type, addend = coff_as_elf(found, rtype, sec.content, r.address) if sec.executable else (-1, None)
            if elf_type == rodata.X86_PC32 and not _coff_rel32_reaches(to, addend, huge):
                elf_type, addend = -1, None
            obj.relocations.append(relocs.Reloc(sec.key, r.address, kind, pre, width, target, elf_type, addend, to))
    return obj


IMAGE_SCN_CNT_INITIALIZED_DATA, IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x40, 0x80
IMAGE_SCN_LNK_INFO, IMAGE_SCN_LNK_REMOVE, IMAGE_SCN_LNK_COMDAT = 0x200, 0x800, 0x1000
IMAGE_SCN_LNK_NRELOC_OVFL, IMAGE_SCN_MEM_DISCARDABLE, IMAGE_SCN_MEM_READ = 0x01000000, 0x02000000, 0x40000000
AMD64_REL32, AMD64_REL32_5 = 4, 9
ARM64_PAGEBASE_REL21, ARM64_PAGEOFFSET_12A, ARM64_PAGEOFFSET_12L = 4, 6, 7


# Options a .drectve may carry: none changes where a section goes, what it may be (/SECTION,
# /MERGE) or what a name is bound to (/EXPORT:f=g exports g as f, /ALTERNATENAME, /ENTRY). lld-link
# and link.exe honour /SECTION:.rdata,RW and /MERGE:.rdata=.data there, making the unit's read-only
# data writable by any other code of the image.
COFF_DIRECTIVES = frozenset({"defaultlib", "nodefaultlib", "disallowlib", "failifmismatch", "manifestdependency",
                             "guardsym", "throwingnew", "editandcontinue", "include"})


def _coff_long_name(data: bytes, name: str) -> str | None:
    """A section name `/<decimal>` is an offset into the string table, where LLVM (and so lld-link)
    reads the name; LIEF leaves it as written. None when it cannot be read here (`//<base64>`)."""
    if not name.startswith("/") or not name[1:].isdigit() or len(data) < 20:
        return None
    symbols_at, count = struct.unpack_from("<II", data, 8)
    at = symbols_at + 18 * count + int(name[1:])
    end = data.find(b"\0", at)
    return data[at:end].decode("latin-1") if symbols_at and 0 <= at < len(data) and end >= 0 else None


def _coff_directives(path: str, raw: list[Any], data: bytes) -> None:
    """Refuse an object whose .drectve holds an option not in COFF_DIRECTIVES. Every run of
    characters between blanks (quotes dropped) is looked at, a superset of the linker's tokens. A
    section with a long name (`/4`) is looked at whatever it names: lld-link reads `.drectve` there."""
    import re

    for s in raw:
        name = text(s.name)
        if name != ".drectve" and not name.startswith("/"):
            continue
        if name.startswith("/") and _coff_long_name(data, name) != ".drectve" and _coff_long_name(data, name):
            continue
        body = bytes(s.content).decode("latin-1").replace('"', "")
        for token in re.split(r"[\s\0]+", body.removeprefix("\xef\xbb\xbf")):
            name = token[1:].split(":", 1)[0].lower()
            # `/EXPORT:f` (what __declspec(dllexport) writes) exports f itself; `/EXPORT:f=g`, and
            # newer linkers' `/EXPORT:g,EXPORTAS,f`, export another symbol as f: refused
            exported = re.fullmatch(r"[/-]export:[^=,]+(,(@\d+|noname|data|private|constant))*", token, re.I)
            if token and (token[0] not in "/-" or (name not in COFF_DIRECTIVES and not exported)):
                raise UnsupportedError(
                    f"{path}: its .drectve asks the linker for {token[:60]!r}: nverify takes no COFF object whose "
                    "linker directives may move, merge, re-permission or rename what it verifies")


def _coff_content(s: Any) -> bytes:
    """A section's bytes as LLVM's COFF reader, and so lld-link, takes them: none for a section
    without a file pointer (PointerToRawData 0; LIEF reads SizeOfRawData bytes from the file's
    start, the header) or of uninitialised data (no data is written: zeros once loaded). A
    function or read-only data there then has no bytes, and is refused."""
    if not s.pointerto_raw_data or int(s.characteristics) & IMAGE_SCN_CNT_UNINITIALIZED_DATA:
        return b""
    return bytes(s.content)


def _coff_rodata(s: Any) -> bool:
    """Read-only data a function of the object may take into its unit (symbols.Section.rodata):
    initialised, readable, never written or run, kept in the image, in no COMDAT (another object's
    section of the same name may be linked instead), named `.rdata` exactly. The linker sorts a
    `.rdata$x` section by its suffix into `.rdata` and gives some names meaning (`.CRT$XCU` holds
    constructors), so only the plain name is taken."""
    c = int(s.characteristics)
    bad = (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_MEM_WRITE | IMAGE_SCN_CNT_UNINITIALIZED_DATA
           | IMAGE_SCN_LNK_INFO | IMAGE_SCN_LNK_REMOVE | IMAGE_SCN_LNK_COMDAT | IMAGE_SCN_MEM_DISCARDABLE)
    need = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
    return text(s.name) == ".rdata" and c & need == need and not c & bad and len(_coff_content(s)) == s.size


IMAGE_SCN_TYPE_NO_PAD = 0x8
PE_PAGE = 0x1000     # lld-link's and link.exe's default SectionAlignment (/ALIGN)


def _coff_align(s: Any) -> int:
    """The alignment the section's address is known to have once linked: IMAGE_SCN_ALIGN_<n>BYTES,
    none given counting as 1 (assuming less alignment than the linker gives only makes the proof
    consider more layouts). But 1 with IMAGE_SCN_TYPE_NO_PAD, as LLVM's COFF reader (and so
    lld-link) reads it whatever the ALIGN bits say; and at most a page: lld-link aligns a section
    within its output section, whose address is aligned only to SectionAlignment (4 KiB unless the
    user links with a smaller /ALIGN, which a .drectve cannot ask for), so an 8 KiB-aligned .rdata
    lands at 0x3000 after two pages of .text."""
    c = int(s.characteristics)
    if c & IMAGE_SCN_TYPE_NO_PAD:
        return 1
    n = (c >> 20) & 0xF
    return min(1 << (n - 1), PE_PAGE) if 0 < n <= 14 else 1


# lld-link writes REL32 modulo 2^32 without checking that it fits (link.exe refuses an image over
# 2 GiB, LNK1248; lld-link 14 links one): the ELF twin's range check, which the proof relies on,
# holds only while the operand lies less than 2 GiB from the instruction. So a REL32 is resolved
# only when its operand lies within COFF_REL32_SLACK of its section, and when the object's sections
# together stay under COFF_REL32_OBJECT (a 2 GiB .bss of the object itself would put .rdata out of
# reach); the rest of the image is assumed to leave the distance under 2 GiB.
COFF_REL32_SLACK, COFF_REL32_OBJECT = 1 << 24, 1 << 30


def _coff_rel32_reaches(to: Any, addend: int | None, huge: bool) -> bool:
    """Whether a REL32's operand (the symbol plus the field, give or take the instruction's tail)
    lies near the read-only section it targets, in an object that is not itself huge."""
    sec = getattr(to, "section", None)
    if sec is None or not sec.rodata or addend is None:
        return True               # not resolved as read-only data anyway
    at = to.value - sec.start + addend
    return not huge and -COFF_REL32_SLACK <= at <= len(sec.content) + COFF_REL32_SLACK


def coff_as_elf(arch: str, rtype: int, content: bytes, at: int) -> tuple[int, int | None]:
    """A COFF relocation as the ELF type computing the same field (rodata.SUPPORTED) and its addend,
    read from the bytes it patches, where COFF keeps it; (-1, None) for any other. The linker's
    arithmetic (lld-link, COFF/Chunks.cpp; the PE/COFF specification), checked against lld-link
    byte for byte by tests/test_coff_rodata.py:

    - AMD64 REL32_n writes S + field - (P + 4 + n): R_X86_64_PC32 (S + A - P) with A = field - 4 - n.
    - ARM64 PAGEBASE_REL21 writes page(S + imm) - page(P), imm the adrp's 21-bit immediate: ELF's
      ADR_PREL_PG_HI21 with A = imm. The ELF type is range-checked and the COFF one is not, but an
      image spans less than 4 GiB (RVAs are 32 bits), so the page delta always fits 21 bits.
    - ARM64 PAGEOFFSET_12A writes (S & 0xfff) + imm12 into the add's imm12, masked: modulo 4096
      that is (S + imm12) & 0xfff, ADD_ABS_LO12_NC with A = imm12.
    - ARM64 PAGEOFFSET_12L writes ((S & 0xfff) >> k) + imm12 masked to 12 - k bits, k the access's
      log2 size as lld reads it from the instruction (size bits, +4 for a 128-bit SIMD access), and
      refuses an S not aligned to 2^k: LDST<8 << k>_ABS_LO12_NC with A = imm12 << k.
    relocated.Relocated.problem then checks that each field feeds the operand its type names, by
    decoding the instruction linked at two layouts, so a type on the wrong instruction is refused.
    """
    field = content[at:at + 4]
    if len(field) != 4 or at < 0:
        return -1, None
    v = int.from_bytes(field, "little")
    if arch == "x86_64":
        if AMD64_REL32 <= rtype <= AMD64_REL32_5:
            return rodata.X86_PC32, int.from_bytes(field, "little", signed=True) - 4 - (rtype - AMD64_REL32)
        return -1, None
    if rtype == ARM64_PAGEBASE_REL21 and v & 0x9F000000 == 0x90000000:            # adrp
        imm = ((v >> 29) & 3) | ((v >> 3) & 0x1FFFFC)
        return rodata.A64_ADR_PAGE, imm - (1 << 21) if imm & (1 << 20) else imm
    imm12 = (v >> 10) & 0xFFF
    if rtype == ARM64_PAGEOFFSET_12A:
        return rodata.A64_ADD_LO12, imm12
    if rtype == ARM64_PAGEOFFSET_12L:
        k = (v >> 30) + (4 if v & 0x4800000 == 0x4800000 else 0)
        by_scale = {scale: t for t, scale in rodata.A64_LDST_SCALE.items()}
        return (by_scale[k], imm12 << k) if k in by_scale else (-1, None)
    return -1, None


def _coff_symbol(s: Any, sections: list[symbols.Section]) -> symbols.Symbol | None:
    cls, idx, name = int(s.storage_class), s.section_idx, text(s.name)
    if cls == IMAGE_SYM_CLASS_WEAK_EXTERNAL:      # an undefined name with a fallback: bound elsewhere
        return symbols.Symbol(name, None, 0, 0, "weak", symbols.NOTYPE, defined=False)
    if cls not in (IMAGE_SYM_CLASS_EXTERNAL, IMAGE_SYM_CLASS_STATIC, IMAGE_SYM_CLASS_LABEL) or idx == -2:
        return None                     # files, debug records, .bf/.ef
    section = sections[idx - 1] if 0 < idx <= len(sections) else None
    if cls == IMAGE_SYM_CLASS_STATIC and section is not None and s.value == 0 and name == section.name \
            and len(list(s.auxiliary_symbols)):
        return symbols.Symbol(name, section, 0, 0, "local", symbols.SECTION)
    bind = "global" if cls == IMAGE_SYM_CLASS_EXTERNAL else "local"
    kind = symbols.FUNCTION if s.is_function else symbols.NOTYPE
    return symbols.Symbol(name, section, s.value, 0, bind, kind, defined=idx != 0 or s.value != 0)

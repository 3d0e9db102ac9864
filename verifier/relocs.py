"""Relocations of every object format -> the bytes each rewrites at link time, and one range check.

A relocation's offset says where its field starts; the field's width comes from its type, and
some types also let the linker rewrite the instruction in front of the field (x86-64 GOT and TLS
relaxations turn a `mov` into a `lea` or a whole call sequence into a load). A function whose
bytes meet any such range is not what the linker will emit, so it is refused, whether the
relocation starts inside it, before it or straddles its end. A type without an entry here
counts as reaching 16 bytes either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import UnsupportedError

UNKNOWN_REACH = 16

# ELF x86-64 (psABI table 4.9), by number: (name, bytes before the field it may rewrite, width).
_X86 = ["NONE", "64", "PC32", "GOT32", "PLT32", "COPY", "GLOB_DAT", "JUMP_SLOT", "RELATIVE", "GOTPCREL",
        "32", "32S", "16", "PC16", "8", "PC8", "DTPMOD64", "DTPOFF64", "TPOFF64", "TLSGD", "TLSLD",
        "DTPOFF32", "GOTTPOFF", "TPOFF32", "PC64", "GOTOFF64", "GOTPC32", "GOT64", "GOTPCREL64", "GOTPC64",
        "GOTPLT64", "PLTOFF64", "SIZE32", "SIZE64", "GOTPC32_TLSDESC", "TLSDESC_CALL", "TLSDESC",
        "IRELATIVE", "RELATIVE64", "PC32_BND", "PLT32_BND", "GOTPCRELX", "REX_GOTPCRELX"]
_X86_WIDTH = {0: 0, 1: 8, 6: 8, 7: 8, 8: 8, 12: 2, 13: 2, 14: 1, 15: 1, 16: 8, 17: 8, 18: 8, 24: 8,
              25: 8, 27: 8, 28: 8, 29: 8, 30: 8, 31: 8, 33: 8, 35: 2, 36: 16, 37: 8, 38: 8}
# Relaxations: GOTPCRELX rewrites the opcode (and REX) before its field, GOTTPOFF and TLSDESC the
# `mov`/`lea` they sit in, TLSGD/TLSLD the 16-byte call sequence around theirs. COPY's width is
# the symbol's size: unknown.
_X86_REACH = {19: (4, 12), 20: (3, 9), 22: (3, 4), 34: (3, 4), 41: (2, 4), 42: (3, 4), 5: None}

_A64_DATA = {0: ("NONE", 0), 256: ("NONE", 0), 257: ("ABS64", 8), 258: ("ABS32", 4), 259: ("ABS16", 2),
             260: ("PREL64", 8), 261: ("PREL32", 4), 262: ("PREL16", 2), 307: ("GOTREL64", 8),
             308: ("GOTREL32", 4), 314: ("PLT32", 4), 1025: ("GLOB_DAT", 8), 1026: ("JUMP_SLOT", 8),
             1027: ("RELATIVE", 8), 1028: ("TLS_DTPREL64", 8), 1029: ("TLS_DTPMOD64", 8),
             1030: ("TLS_TPREL64", 8), 1031: ("TLSDESC", 16), 1032: ("IRELATIVE", 8)}
_A64_NAMES = {263: "MOVW_UABS_G0", 264: "MOVW_UABS_G0_NC", 265: "MOVW_UABS_G1", 266: "MOVW_UABS_G1_NC",
              267: "MOVW_UABS_G2", 268: "MOVW_UABS_G2_NC", 269: "MOVW_UABS_G3", 273: "LD_PREL_LO19",
              274: "ADR_PREL_LO21", 275: "ADR_PREL_PG_HI21", 276: "ADR_PREL_PG_HI21_NC",
              277: "ADD_ABS_LO12_NC", 278: "LDST8_ABS_LO12_NC", 279: "TSTBR14", 280: "CONDBR19",
              282: "JUMP26", 283: "CALL26", 284: "LDST16_ABS_LO12_NC", 285: "LDST32_ABS_LO12_NC",
              286: "LDST64_ABS_LO12_NC", 299: "LDST128_ABS_LO12_NC", 311: "ADR_GOT_PAGE",
              312: "LD64_GOT_LO12_NC"}

_MACHO_X86 = ["UNSIGNED", "SIGNED", "BRANCH", "GOT_LOAD", "GOT", "SUBTRACTOR", "SIGNED_1", "SIGNED_2",
              "SIGNED_4", "TLV"]
_MACHO_A64 = ["UNSIGNED", "SUBTRACTOR", "BRANCH26", "PAGE21", "PAGEOFF12", "GOT_LOAD_PAGE21",
              "GOT_LOAD_PAGEOFF12", "POINTER_TO_GOT", "TLVP_LOAD_PAGE21", "TLVP_LOAD_PAGEOFF12", "ADDEND",
              "AUTHENTICATED_POINTER"]

_COFF_AMD64 = {0: ("ABSOLUTE", 0), 1: ("ADDR64", 8), 2: ("ADDR32", 4), 3: ("ADDR32NB", 4), 4: ("REL32", 4),
               5: ("REL32_1", 4), 6: ("REL32_2", 4), 7: ("REL32_3", 4), 8: ("REL32_4", 4), 9: ("REL32_5", 4),
               10: ("SECTION", 2), 11: ("SECREL", 4), 12: ("SECREL7", 1), 13: ("TOKEN", 4), 14: ("SREL32", 4),
               16: ("SSPAN32", 4)}
_COFF_ARM64 = {0: ("ABSOLUTE", 0), 1: ("ADDR32", 4), 2: ("ADDR32NB", 4), 3: ("BRANCH26", 4),
               4: ("PAGEBASE_REL21", 4), 5: ("REL21", 4), 6: ("PAGEOFFSET_12A", 4), 7: ("PAGEOFFSET_12L", 4),
               8: ("SECREL", 4), 9: ("SECREL_LOW12A", 4), 10: ("SECREL_HIGH12A", 4), 11: ("SECREL_LOW12L", 4),
               12: ("TOKEN", 4), 13: ("SECTION", 2), 14: ("ADDR64", 8), 15: ("BRANCH19", 4), 16: ("BRANCH14", 4),
               17: ("REL32", 4)}
# PE base relocations (the loader's fix-ups in an image): ABSOLUTE is padding.
_PE_BASE = {0: ("ABSOLUTE", 0), 1: ("HIGH", 2), 2: ("LOW", 2), 3: ("HIGHLOW", 4), 4: ("HIGHADJ", 4),
            10: ("DIR64", 8)}


@dataclass(frozen=True)
class Reloc:
    space: int | None   # the section it patches (objects); None in an image's one address space
    at: int             # where its field starts, in the coordinates of symbol values
    kind: str           # the type's name, e.g. R_X86_64_32
    pre: int            # bytes before `at` the linker may rewrite too
    width: int          # bytes from `at`
    target: str         # for messages: a symbol, or a section plus the addend
    # For resolving it (read-only data, calls within the object): the raw type, the explicit
    # addend (None: it sits in the patched bytes, as in REL, Mach-O and COFF), and the target,
    # a symbols.Symbol (section symbols included) or, for a Mach-O section-relative entry, a
    # symbols.Section; None when unknown.
    rtype: int = -1
    addend: int | None = None
    to: Any = None
    why: str = ""       # why a relocation that looks resolvable is not (verifier/macho_relocs.py)

    def reaches(self, lo: int, hi: int) -> bool:
        return self.at - self.pre < hi and lo < self.at + self.width


def elf(arch: str, rtype: int) -> tuple[str, int, int]:
    """(name, pre, width) of an ELF relocation type."""
    if arch == "x86_64":
        name = f"R_X86_64_{_X86[rtype]}" if rtype < len(_X86) else f"R_X86_64 type {rtype}"
        reach = _X86_REACH.get(rtype, (0, _X86_WIDTH.get(rtype, 4))) if rtype < len(_X86) else None
    else:
        data = _A64_DATA.get(rtype)
        if data is not None:
            return f"R_AARCH64_{data[0]}", 0, data[1]
        # every static relocation from 263 to 313 and the TLS ones (512-573) patch one instruction
        known = rtype in _A64_NAMES or 263 <= rtype <= 313 or 512 <= rtype <= 573
        name = f"R_AARCH64_{_A64_NAMES[rtype]}" if rtype in _A64_NAMES else f"R_AARCH64 type {rtype}"
        reach = (0, 4) if known else None
    pre, width = reach if reach is not None else (UNKNOWN_REACH, UNKNOWN_REACH)
    return name, pre, width


def macho(arch: str, rtype: int, length: int) -> tuple[str, int, int]:
    """(name, pre, width) of a Mach-O relocation; r_length gives its width (1 << length bytes)."""
    names, prefix = (_MACHO_X86, "X86_64_RELOC_") if arch == "x86_64" else (_MACHO_A64, "ARM64_RELOC_")
    if rtype >= len(names):
        return f"{prefix}type {rtype}", UNKNOWN_REACH, UNKNOWN_REACH
    # ld64 turns a GOT load's movq into leaq (and TLV likewise): the opcode before the field
    pre = 3 if arch == "x86_64" and names[rtype] in ("GOT_LOAD", "TLV") else 0
    return prefix + names[rtype], pre, 1 << length


def coff(arch: str, rtype: int) -> tuple[str, int, int]:
    table, prefix = (_COFF_AMD64, "IMAGE_REL_AMD64_") if arch == "x86_64" else (_COFF_ARM64, "IMAGE_REL_ARM64_")
    if rtype not in table:
        return f"{prefix}type {rtype:#x}", UNKNOWN_REACH, UNKNOWN_REACH
    name, width = table[rtype]
    return prefix + name, 0, width


def pe_base(rtype: int) -> tuple[str, int, int]:
    if rtype not in _PE_BASE:
        return f"IMAGE_REL_BASED type {rtype}", UNKNOWN_REACH, UNKNOWN_REACH
    name, width = _PE_BASE[rtype]
    return f"IMAGE_REL_BASED_{name}", 0, width


def target(symbol: str | None, section: str | None, addend: int = 0) -> str:
    """A relocation's target as the user can find it: a symbol, else its section plus the addend."""
    if symbol:
        return symbol
    if section:
        return section + (f"+{addend:#x}" if addend > 0 else f"-{-addend:#x}" if addend < 0 else "")
    return f"the absolute address {addend:#x}" if addend else "an absolute address"


def check_relocations(path: str, fn: str, relocs: list[Reloc], space: int | None, lo: int, hi: int) -> None:
    """Refuse the range [lo, hi) of `space` if any relocation's bytes meet it."""
    hits = sorted((r for r in relocs if r.space == space and r.reaches(lo, hi)), key=lambda r: r.at)
    if not hits:
        return
    r = hits[0]
    first, last = r.at - r.pre - lo, r.at + r.width - lo

    def rel(v: int) -> str:
        return f"+{v:#x}" if v >= 0 else f"-{-v:#x}"

    more = f" ({len(hits) - 1} more after it)" if len(hits) > 1 else ""
    if r.why:
        raise UnsupportedError(
            f"{path}: {fn} needs a relocation at {rel(r.at - lo)} (to {r.target}) that nverify does not resolve, "
            f"{r.kind}{more}: {r.why}")
    raise UnsupportedError(
        f"{path}: {fn} needs a relocation at {rel(r.at - lo)} (to {r.target}): {r.kind} rewrites its bytes "
        f"{rel(first)}..{rel(last)} when it is linked{more}, so the verified bytes would not be the linked "
        "ones; nverify takes in read-only data of the same object (ELF .rodata*, COFF .rdata, Mach-O "
        "__TEXT,__const and literals) and static helpers of the same ELF object, but not calls out of it or "
        "writable data")

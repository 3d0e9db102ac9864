"""Instructions whose bytes hold a relocation to the unit's read-only data -> their values and
memory addresses in terms of each region's symbolic base (the argument is in verifier/rodata.py).

The code is lifted linked for placeholder addresses. For each such instruction the executor asks
`Relocated` to (1) check that the field feeds what its type says, in this instruction, (2) map a
memory address it computes from the placeholder to the region, and (3) replace the value it
leaves in its destination register. Nothing else ever sees a placeholder as data: an address
that is concrete and not mapped here stays unplaceable (a violation), as for any other code.
"""

from __future__ import annotations

from functools import lru_cache

import claripy

from . import names, rodata
from .blob import Blob
from .isa import decode
from .isa.table import Insn
from .machine import BV, _sum_terms

FIELD = 4            # bytes of every field resolved here (rodata.SUPPORTED, pieces.JUMPS)
_DELTA = 0x1010      # a placeholder shift that changes the page and the page offset (x16: any scale)
_LOADS = frozenset("ldr ldrb ldrh ldrsb ldrsh ldrsw str strb strh prfm".split())


# AArch64 branch relocation types (pieces.JUMPS) and the instructions whose field each is
_A64_BRANCH_TYPES = {282: ("b", "bl"), 283: ("b", "bl"), 280: ("cbz", "cbnz"), 279: ("tbz", "tbnz")}


class Relocated:
    def __init__(self, blob: Blob, regions):
        self.blob = blob
        self.bases = [claripy.BVS(names.rodata(n), 64, explicit_name=True) for n in range(len(blob.rodata))]
        self.places = [r.placeholder for r in blob.rodata]
        self.names = frozenset(regions)

    @lru_cache(maxsize=4096)  # noqa: B019 - one Relocated per exploration
    def at(self, addr: int, size: int) -> tuple[rodata.Fixup, ...]:
        """The fixups whose field overlaps these bytes: also one the instruction holds only part
        of (x86 code may jump into the middle of a relocated instruction; `problem` refuses it)."""
        lo = addr - self.blob.base
        return tuple(f for f in self.blob.fixups if f.at < lo + size and lo < f.at + FIELD)

    # --- (1) the field feeds what its type says -------------------------------------------

    @lru_cache(maxsize=4096)  # noqa: B019
    def problem(self, insn: Insn) -> str | None:
        """Why this instruction's relocation cannot be modelled, or None. The check is semantic:
        the instruction is decoded again with its region placed elsewhere, and only the operand
        the relocation type names may change, by exactly what the linker's arithmetic says."""
        fixups = self.at(insn.addr, insn.size)
        if len(fixups) != 1:
            return f"{insn.text()} at {insn.addr:#x} holds {len(fixups)} relocations"
        f = fixups[0]
        lo = insn.addr - self.blob.base
        if not (lo <= f.at and f.at + FIELD <= lo + insn.size):
            # Executing part of a field (a jump into the middle of `mov eax, [rip+.LC0]` running
            # the top byte of its displacement as `add al, al`): those bytes are the linker's,
            # different for each layout (`inc eax` with the data below the code)
            return f"{insn.text()} at {insn.addr:#x} holds only part of a {f.kind} relocation's field"
        if f.region < 0:
            return self._jump_problem(f, insn)
        moved = list(self.places)
        moved[f.region] += _DELTA
        try:
            image = self.blob.linked(self.blob.base, moved)
        except rodata.LinkError as e:
            return str(e)
        other = decode.decode_at(self.blob.arch, image, self.blob.base, insn.addr - self.blob.base)
        if other is None or (other.mnemonic, other.size, other.regs, other.shape) != \
                (insn.mnemonic, insn.size, insn.regs, insn.shape):
            return f"{insn.text()} at {insn.addr:#x} decodes differently once linked elsewhere"
        x = self.places[f.region] + f.target
        ok = self._feeds(f, insn, other, x)
        if not ok:
            return (f"{insn.text()} at {insn.addr:#x} holds a {f.kind} relocation to "
                    f"{self.blob.rodata[f.region].name} in an operand nverify does not model for it")
        return None

    def _jump_problem(self, f: rodata.Fixup, insn: Insn) -> str | None:
        """A jump between the function and a part of it in another section (verifier/pieces.py):
        its field must be the direct jump's displacement, landing where the fixup says."""
        m = insn.mnemonic
        direct = insn.shape[-1:] == "i" and (m in ("call", "bl", "jmp", "b", "cbz", "cbnz", "tbz", "tbnz")
                                             or m.startswith(("j", "b.")))
        if self.blob.arch == "aarch64" and direct:
            # the type must be the instruction's own: ld writes its field wherever the type says.
            # CONDBR19 on `tbz` fills imm14 *and* b40 (the bit tested) with the displacement, 0 in
            # the proof's layout and 31 with the part linked before the function.
            direct = m in _A64_BRANCH_TYPES.get(f.rtype, ()) or (f.rtype == 280 and m.startswith("b."))
        lands = self.blob.base + f.target + (4 if self.blob.arch == "x86_64" else 0)
        if direct and insn.imms[-1] == lands and insn.addr + insn.size - 4 <= self.blob.base + f.at:
            return None
        return f"{insn.text()} at {insn.addr:#x} holds a {f.kind} relocation to code that is not its jump's target"

    def _feeds(self, f: rodata.Fixup, a: Insn, b: Insn, x: int) -> bool:
        m, arch = a.mnemonic, self.blob.arch
        lo12 = ((x + _DELTA) & 0xFFF) - (x & 0xFFF)
        page = ((x + _DELTA) & ~0xFFF) - (x & ~0xFFF)
        if arch == "x86_64":
            # the displacement of the one memory operand: rip-relative (decode reports its target)
            # for PC32, absolute for 32/32S; a lea only of rip, into a 64-bit register
            rip = "rip" in a.op_str
            return (len(a.mem) == 1 and rip == (f.rtype == rodata.X86_PC32) and a.imms == b.imms
                    and (b.mem[0][3] - a.mem[0][3]) % (1 << 64) == _DELTA and a.mem[0][:3] == b.mem[0][:3]
                    and (m != "lea" or (rip and a.widths[0] == 64)))
        same_mem = a.mem == b.mem
        if f.rtype == rodata.A64_ADR_PREL_LO21:
            return m == "adr" and b.imms[-1] - a.imms[-1] == _DELTA
        if f.rtype in rodata.PAGE:
            return m == "adrp" and b.imms[-1] - a.imms[-1] == page
        if f.rtype == rodata.A64_ADD_LO12:
            return m == "add" and a.shape == "rri" and a.regs[0].startswith("x") and a.regs[1].startswith("x") \
                and b.imms[-1] - a.imms[-1] == lo12
        if f.rtype == rodata.A64_LD_PREL_LO19:
            return m in ("ldr", "ldrsw") and not a.mem and b.imms[-1] - a.imms[-1] == _DELTA
        # LDST*_ABS_LO12_NC: the offset of a [xn, #imm] operand without writeback
        return (m in _LOADS and len(a.mem) == 1 and not a.mem[0][1] and "!" not in a.op_str
                and a.op_str.rstrip().endswith("]") and b.mem[0][3] - a.mem[0][3] == lo12 and not same_mem)

    # --- (2) memory addresses, (3) destination values ---------------------------------------

    def address(self, f: rodata.Fixup, addr: BV) -> BV:
        """The address the linked code computes where the lifted code computed `addr`."""
        if f.region < 0:
            return addr
        if f.rtype in rodata.LINEAR:
            # only the operand the field feeds: an address with a region's base in it (the stack
            # slot of a push) is another access of the same instruction
            return addr if addr.variables & self.names else self._linear(f, addr)
        if f.rtype in rodata.LO12:
            return self._lo12(f, addr)
        return addr

    def value(self, f: rodata.Fixup, lifted: BV) -> BV | None:
        """The destination register's value in the linked code (None: the instruction has none)."""
        if f.region < 0:
            return None
        if f.rtype in rodata.PAGE:
            return self._page(f)
        if f.rtype == rodata.A64_ADD_LO12:
            if not self._page_term(f, lifted) and any(
                    g.at == f.at - 4 and g.rtype in rodata.PAGE and (g.region, g.target) == (f.region, f.target)
                    for g in self.blob.fixups):
                # right after an `adrp` of the same address, which lld relaxes to `nop; adr` (both
                # fields naming one symbol, addend 0): reached by a jump with another value than that
                # page, the `add` then adds nothing; ld.bfd keeps the addition. Not modelled
                return None
            return self._lo12(f, lifted)
        if f.rtype in rodata.LINEAR and lifted.concrete:
            return self._linear(f, lifted)
        return None

    def _linear(self, f: rodata.Fixup, v: BV) -> BV:
        return self.bases[f.region] + (v - self.places[f.region])

    def _page(self, f: rodata.Fixup) -> BV:
        return (self.bases[f.region] + f.target) & claripy.BVV((1 << 64) - 0x1000, 64)

    def _page_split(self, f: rodata.Fixup, v: BV) -> list[BV] | None:
        """When `v` is a sum holding the page of `f`'s address once, as a term (an adrp pair's sum):
        its other terms, signed; else None."""
        page = self._page(f)
        terms = _sum_terms(v, 1) or [(1, v)]
        if len([t for s, t in terms if s == 1 and t.identical(page)]) != 1:
            return None
        return [t if s == 1 else -t for s, t in terms if not t.identical(page)]

    def _page_term(self, f: rodata.Fixup, v: BV) -> bool:
        return self._page_split(f, v) is not None

    def _lo12(self, f: rodata.Fixup, v: BV) -> BV:
        """`v` = something + lo12(placeholder + target): that something + lo12(base + target), and
        when the something is the page term of the same target (an adrp pair), base + target."""
        exact = self.bases[f.region] + f.target
        placeholder_lo12 = (self.places[f.region] + f.target) & 0xFFF
        rest = self._page_split(f, v)
        if rest is not None:
            return sum(rest, exact) - placeholder_lo12
        return v - placeholder_lo12 + (exact & 0xFFF)

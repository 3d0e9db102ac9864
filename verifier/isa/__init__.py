"""The trusted base of a proof, in one place: which instruction forms nverify proves code with
(the verified instruction set, deny by default), how their bytes must decode, and what nverify
adds to VEX's meaning of each (corrections.py). Bytes at an address -> `Decision`.

x86_64.py and aarch64.py hold the tables; decode.py the decoders and their agreement check.
docs/machine-model.md lists the tables (generated from them by `python3 -m verifier.isa`)."""

from __future__ import annotations

from functools import lru_cache

from ..blob import Blob
from . import aarch64, decode, x86_64
from .table import Decision, Form, Insn

# adr/adrp are not in the verified set: their value is the code's own address. With a relocation
# to the unit's read-only data, the executor replaces that value with the region's symbolic
# address (verifier/rodata.py), so VEX's meaning of them is not used at all.
RELOCATED = {m: Form(m, frozenset({"ri"}), enc="a64", group="addresses",
                     note="only with a relocation to the unit's read-only data, or (adr) as `$code + offset`")
             for m in ("adr", "adrp")}

__all__ = ["Decision", "Form", "Insn", "check", "decode_insn", "disassemble", "TABLES"]

TABLES = {"x86_64": x86_64.TABLE, "aarch64": aarch64.TABLE}


INDIRECT = Form("br", frozenset({"r"}), enc="a64", group="control flow",
                note="only to `$code + offset` of the unit's own instructions (a jump table)")


def decode_insn(blob: Blob, addr: int) -> Insn | None:
    off = addr - blob.base
    if not 0 <= off < blob.size:
        return None
    return decode.decode_at(blob.arch, blob.image, blob.base, off)


def disassemble(blob: Blob) -> list[Insn]:
    return decode.disassemble(blob.arch, blob.image, blob.base)


def code_address(blob: Blob, insn: Insn) -> bool:
    """An instruction that puts the address of the code's own bytes in a register, with no
    relocation: a 64-bit `lea r, [rip + disp]`, or `adr`."""
    if relocated(blob, insn):
        return False
    if insn.mnemonic == "adr":
        return True
    return insn.mnemonic == "lea" and "rip" in insn.op_str and bool(insn.widths) and insn.widths[0] == 64


@lru_cache(maxsize=64)
def symbolic_code(blob: Blob) -> bool:
    """Whether the function's own address is a symbol of the model (`$code`): when its read-only
    data holds code addresses (a jump table), an instruction takes the code's address, or a call
    leaves one (the return address). Then
    such values are `$code + offset`: nothing can be proven from where the code lies."""
    if any(r.links for r in blob.rodata):
        return True
    return any(code_address(blob, i) or internal_call(blob, i) for i in disassemble(blob))


def internal_call(blob: Blob, insn: Insn) -> bool:
    """A direct call to the unit's own code: it leaves a code address (the return address)."""
    return insn.mnemonic in ("call", "bl") and insn.shape[-1:] == "i" and blob.contains(insn.imms[-1] & (2**64 - 1))


@lru_cache(maxsize=64)
def instruction_starts(blob: Blob) -> frozenset[int]:
    """Addresses of the unit's instructions, by a linear sweep from its first byte: where a jump
    through a table may go (symexec, replay)."""
    return frozenset(i.addr for i in disassemble(blob) if i.mnemonic != ".byte")


def relocated(blob: Blob, insn: Insn) -> bool:
    """Whether a relocation to the unit's read-only data has its field in this instruction."""
    lo = insn.addr - blob.base
    return any(lo <= f.at < lo + insn.size for f in blob.fixups)


def check(blob: Blob, addr: int, lifted_len: int | None = None) -> Decision:
    """What the verified instruction set says about the instruction at `addr`. `lifted_len` is
    the length the lifter (VEX) gave it, when it lifted it: every decoder must agree."""
    insn = decode_insn(blob, addr)
    if insn is None:
        return Decision("undecodable", f"no valid {blob.arch} instruction at {addr:#x}")
    if insn.addr + insn.size > blob.base + blob.size:
        return Decision("undecodable", f"the instruction at {addr:#x} runs past the end of the blob", insn)
    d = (x86_64 if blob.arch == "x86_64" else aarch64).classify(insn)
    if insn.mnemonic == "br" and insn.shape == "r" and symbolic_code(blob):
        d = Decision("ok", insn=insn, form=INDIRECT)       # judged in _flow and where it runs
    if d.kind == "policy":
        return d
    if blob.arch == "x86_64":
        off = addr - blob.base
        other = decode.x86_disagreement(insn, blob.image[off:off + 15])
        if other:
            return Decision("policy", f"ambiguous encoding at {addr:#x}: {other}", insn)
    if lifted_len is not None and lifted_len != insn.size:
        return Decision("policy", f"ambiguous encoding at {addr:#x}: the lifter decodes {lifted_len} bytes, "
                        f"capstone {insn.size} ({insn.text()})", insn)
    if d.kind == "unsupported" and insn.mnemonic in RELOCATED and (
            relocated(blob, insn) or insn.mnemonic == "adr" and symbolic_code(blob)):
        d = Decision("ok", insn=insn, form=RELOCATED[insn.mnemonic])
    if d.kind != "ok":
        return d
    return _flow(blob, d)


def _flow(blob: Blob, d: Decision) -> Decision:
    """Control transfers: direct targets must lie in the blob; calls inside it are not modelled yet."""
    insn = d.insn
    assert insn is not None
    m = insn.mnemonic
    if insn.addr + insn.size > blob.piece(insn.addr)[1]:
        # The bytes past a piece's end are, in the proof's layout, the int3 padding or the next
        # part, and once linked whatever follows the piece in its section: `je` whose rel8 lay
        # past f's .size read 0xcc (to f's own code) and proved; linked, it read the section's
        # next byte and ran ud2. Running a byte outside the unit is a violation.
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} runs past the end of its section's part of "
                        "the unit", insn)
    if blob.parts and blob.piece(insn.addr) != blob.piece(blob.base) and (
            m in ("call", "bl", "blr", "adr", "adrp") or "rip" in insn.op_str):
        # A part lies wherever the linker puts it, so a code address taken there (`$code` plus
        # its offset in the proof's layout) is not the address it has once linked. symbols.py
        # refuses such parts by a linear sweep of their bytes, which an instruction hidden from
        # the sweep (`jmp .+3; .byte 0xb8; lea rax, [rip+d]`) escaped: judge it where it runs.
        return Decision("unsupported", f"{insn.text()} at {insn.addr:#x} takes a code address in a part of the "
                        "unit in another section, which the linker places anywhere", insn)
    branch = m in ("call", "jmp", "b", "bl", "br") or m.startswith(("j", "b.")) or m in ("cbz", "cbnz", "tbz", "tbnz")
    if not branch:
        if m == "lea" and "rip" in insn.op_str and not relocated(blob, insn) \
                and not (code_address(blob, insn) and symbolic_code(blob)):
            return Decision("unsupported", f"{insn.text()} at {insn.addr:#x} takes the code's own address; the "
                            "code's position is not part of the model, so this cannot be verified", insn)
        return d
    kind = "call" if m in ("call", "bl") else "jump"
    if insn.shape[-1:] != "i":
        if kind == "jump" and symbolic_code(blob):
            # a jump through a table of the unit's own code addresses: judged where it runs, by
            # the targets it can take (symexec: each must be `$code + offset` of an instruction)
            return d if d.form is not None else Decision("ok", insn=insn, form=INDIRECT)
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} is an indirect {kind}", insn)
    target = insn.imms[-1] & (2**64 - 1)
    lo, hi = blob.piece(insn.addr)
    if blob.parts and not lo <= target < hi and not relocated(blob, insn):
        # a jump the assembler resolved stays in its own section: once linked, past the piece's
        # end lies other code, not the unit's next piece
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} {kind}s past the end of its section's part "
                        "of the unit", insn)
    if not blob.contains(target):
        return Decision("policy", f"{insn.text()} at {insn.addr:#x} {kind}s outside the blob", insn)
    if kind == "call" and not symbolic_code(blob):
        return Decision("unsupported", f"{insn.text()} at {insn.addr:#x} calls inside the blob: internal calls "
                        "push a code address, which nverify does not model yet", insn)
    return d

"""The shape of the verified instruction set: `Form` (one row of a table) and `Decision` (what the
table says about one decoded instruction). The rows themselves live in x86_64.py and aarch64.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Insn:
    """One instruction as capstone decodes it, plus the operand shape the tables match on."""

    addr: int
    size: int
    mnemonic: str
    op_str: str
    raw: bytes
    shape: str = ""          # one letter per explicit operand (see SHAPE_LETTERS)
    widths: tuple[int, ...] = ()   # bits of each register/memory operand, 0 for immediates
    mem: tuple = ()          # per memory operand: (base, index, scale, disp, bits)
    regs: tuple[str, ...] = ()     # register operand names, in order
    imms: tuple[int, ...] = ()     # immediate operand values, in order

    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}".strip()


# Operand letters of a shape: r general register, m memory, i immediate (or branch target),
# x xmm register, y ymm register, v AArch64 vector/FP register, s system register, c condition
# or other AArch64 operand kinds (shift, extend and barrier options).
SHAPE_LETTERS = "rmixyvsc"


@dataclass(frozen=True)
class Form:
    """A verified instruction form: the mnemonic, the operand shapes and widths it is verified at,
    its encoding class, and what nverify adds to VEX's meaning of it."""

    mnemonic: str
    shapes: frozenset[str]            # operand shapes verified, e.g. {"rr", "rm", "ri"}; "*" any
    widths: frozenset[int] = frozenset()   # GPR/memory operand widths verified (empty: any)
    enc: str = "legacy"               # x86: legacy or vex; AArch64: a64
    prefixes: frozenset[str] = frozenset()   # legacy prefixes the form takes (66, f2, f3)
    undefined: str = ""               # flags the ISA leaves undefined (C P Z S O), made fresh
    align: int = 0                    # alignment of its memory operand the CPU enforces (bytes)
    fix: str = ""                     # a correction to VEX's meaning, by name (see the ISA module)
    group: str = ""                   # heading in docs/machine-model.md
    note: str = ""

    def matches(self, insn: Insn) -> bool:
        if "*" not in self.shapes and insn.shape not in self.shapes:
            return False
        return not self.widths or all(w in self.widths for w in insn.widths if w)


@dataclass(frozen=True)
class Decision:
    """ok: run it with `form`; policy: forbidden (REFUTED); unsupported: outside the verified set
    (UNKNOWN); undecodable: no instruction there (REFUTED)."""

    kind: str
    message: str = ""
    insn: Insn | None = None
    form: Form | None = None
    extra: dict = field(default_factory=dict)


def rows(*forms: Form) -> dict[str, list[Form]]:
    table: dict[str, list[Form]] = {}
    for f in forms:
        table.setdefault(f.mnemonic, []).append(f)
    return table

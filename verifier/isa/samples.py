"""Concrete instances of the verified forms, as assembly text: for the tests that check every form
(its IR keeps every memory access; it runs as the CPU runs it). Form -> assembly lines."""

from __future__ import annotations

from .table import Form

_X86_REG = {8: ("cl", "dl", "bl"), 16: ("cx", "dx", "bx"), 32: ("ecx", "edx", "ebx"), 64: ("rcx", "rdx", "rbx")}
_PTR = {8: "byte", 16: "word", 32: "dword", 64: "qword", 128: "xmmword", 256: "ymmword"}


def x86(form: Form) -> list[str]:
    """Every operand combination of `form` that assembles, one line each (widths from the form;
    memory at [rdi + 16], immediates small)."""
    widths = sorted(form.widths) or [32]
    out: list[str] = []
    for shape in sorted(form.shapes):
        for w in widths:
            ops, regs, vecs = [], 0, 0
            for k, c in enumerate(shape):
                if c == "r":
                    ops.append(_X86_REG[w if k == 0 or "m" not in shape[:k] else w][regs % 3])
                    regs += 1
                elif c == "m":
                    size = 128 if "x" in shape and form.enc != "vex" and "r" not in shape else \
                        256 if "y" in shape and shape.count("y") > 0 and "x" not in shape else \
                        128 if "x" in shape and "r" not in shape else w
                    ops.append(f"{_PTR.get(size, 'qword')} ptr [rdi + 16]")
                elif c == "i":
                    ops.append("1")
                elif c in "xy":
                    ops.append(f"{'xmm' if c == 'x' else 'ymm'}{vecs + 1}")
                    vecs += 1
            out.append(f"{form.mnemonic} {', '.join(ops)}".strip())
    return out

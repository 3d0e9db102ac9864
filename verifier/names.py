"""Symbol names: the machine's entry symbols, kept apart from the spec's names by construction.

A spec names C identifiers (`x`, `ret`), array elements (`p.3`, `p.3.out`) and arrays (`p`,
`p.out`); none of them can contain `$`. Every symbol the machine model introduces (a register's
entry value, the bits of an argument register above the parameter, a stack byte, the caller's
return address, VEX scratch bytes) is named here and starts with `$`, so a parameter called `x2`,
`rsp`, `rflags` or `retaddr` is its own symbol, never that register's entry value. Users never
see these names: counterexamples show register names ("rdi", "[rsp+8]", DESIGN §5), mapped back
by `pipeline._inputs`.
"""

from __future__ import annotations

import re

MACHINE = "$"
RETADDR = MACHINE + "retaddr"     # x86-64: the return address the caller pushed at [rsp]
CODE = MACHINE + "code"           # where the linker puts the function, when the code takes its address
_STACK = re.compile(r"\$stack([+-]\d+)")
_RODATA = re.compile(r"\$ro\.(\d+)")


def machine(name: str) -> str:
    """The symbol of a piece of machine state (a register's entry value, by its VEX name)."""
    return MACHINE + name


def is_machine(symbol: str) -> bool:
    return symbol.startswith(MACHINE)


def register(reg: str) -> str:
    """The symbol of register `reg`'s entry value (arrays' bases, the stack pointer, x30 …)."""
    return machine(reg)


def upper_bits(reg: str) -> str:
    """The symbol of the bits of argument register `reg` above its parameter."""
    return machine(f"{reg}.hi")


def stack_byte(offset: int) -> str:
    """The symbol of the caller's stack byte at entry stack pointer + `offset`."""
    return machine(f"stack{offset:+d}")


def stack_offset(symbol: str) -> int | None:
    """The offset of a `stack_byte` symbol from the entry stack pointer, else None."""
    m = _STACK.fullmatch(symbol)
    return int(m.group(1)) if m else None


def rodata(n: int) -> str:
    """The symbol of the address the linker gives the unit's read-only region `n`, also its
    region's key in the machine model (verifier/rodata.py)."""
    return machine(f"ro.{n}")


def rodata_index(symbol: str) -> int | None:
    """The `n` of a `rodata` symbol (a read-only region's key), else None."""
    m = _RODATA.fullmatch(symbol)
    return int(m.group(1)) if m else None


def stack_pointer(arch: str) -> str:
    return register("rsp" if arch == "x86_64" else "sp")


def return_address(arch: str) -> str:
    """The symbol the return address starts as: x86-64's [rsp], AArch64's x30."""
    return RETADDR if arch == "x86_64" else register("x30")

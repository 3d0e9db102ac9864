"""A solver model of a symbolic entry state -> the concrete `EntryState` the CPU oracle runs.

Built exactly as verifier/replay.py builds unicorn's state: the arrays (only the elements that
exist), the stack window with the model's stack bytes and the return address, and every register
the model makes arbitrary that the oracle can load (general, flags, MXCSR, x87 control word,
vector registers; AArch64 nzcv, fpcr, fpsr, q registers).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import rodata, smt
from ..arch import Abi
from ..blob import Blob
from ..entry import STACK_MAX
from ..exploration import Exploration
from ..names import stack_offset
from .state import A64_NAMES, X86_NAMES, EntryState, Region

X86_FLAGS = 0x8D5            # CF PF AF ZF SF OF: what the symbolic entry state leaves arbitrary (DF is clear)
# Entry symbols the oracle cannot load: it runs them as 0, so states for co-simulation fix them to 0.
MIN_CODE = 0x10000          # Linux's default vm.mmap_min_addr
LOW_SHIFT = 0x1000_0000     # where code linked below it runs (a multiple of the page size)
UNLOADABLE = {"x86_64": ("acflag", "idflag", "fs_base", "gs_base"), "aarch64": ("tpidr_el0",)}


@dataclass(frozen=True)
class Array:
    name: str
    base: int
    size: int            # bytes that exist (for T p[n], the model's n elements)
    bits: int
    n: int               # elements modelled
    const: bool


@dataclass(frozen=True)
class Concrete:
    state: EntryState
    regs: dict[str, int]             # every entry register the model names, by nverify's name
    arrays: tuple[Array, ...]
    rodata: tuple[int, ...]          # where each read-only region of the unit lies in this state
    sp0: int
    ret_addr: int
    window: tuple[int, int]          # the stack window mapped: [lo, hi)


def build(blob: Blob, abi: Abi, ex: Exploration, model: dict[str, int], names: dict[str, int],
          avx: bool, known: dict[str, int] | None = None) -> Concrete:
    """The concrete entry state of `model` (values the model leaves out are 0). `known` may hold
    the entry registers' values already evaluated, as "reg:<name>"."""
    symbols = {**ex.symbols, **names}
    known = known or {}
    # most entry values are bare symbols: read them from the model instead of parsing each term
    regs = {r: known[f"reg:{r}"] if f"reg:{r}" in known else model.get(t, 0) if t in ex.symbols
            else smt.evaluate(t, symbols, model) for r, t in ex.entry_registers.items()}
    is_x86 = blob.arch == "x86_64"
    if not is_x86 and "fpsr" in regs and regs.get("qcflag", 0):
        # VEX keeps FPSR.QC apart (its QCFLAG register, an entry symbol of its own): bit 27 on the CPU
        regs["fpsr"] |= 1 << 27
    sp0 = regs["rsp" if is_x86 else "sp"]
    ret_addr = model.get(ex.return_address, 0) if ex.return_address in ex.symbols else \
        smt.evaluate(ex.return_address, symbols, model)
    arrays = tuple(Array(name, regs[reg], bits // 8 * (n if count is None else min(n, model.get(count, 0))),
                         bits, n, const) for name, reg, bits, n, const, count in ex.arrays)
    lo, hi = sp0 - STACK_MAX - abi.red_zone, sp0 + abi.stack_hi + 8
    stack = bytearray(hi - lo)
    for sym, width in ex.symbols.items():
        so = stack_offset(sym)
        if so is not None and width == 8:
            off = sp0 + so - lo
            if 0 <= off < len(stack):
                stack[off] = model.get(sym, 0) & 0xFF
    regions = [Region(lo, bytes(stack))]
    for a in arrays:
        if a.size:
            w = a.bits // 8
            data = b"".join((model.get(f"{a.name}.{i}", 0) & ((1 << a.bits) - 1)).to_bytes(w, "little")
                            for i in range(a.size // w))
            regions.append(Region(a.base, data, writable=not a.const))
    # Code linked below the lowest address a process may map (a dylib or DLL at its preferred
    # base 0) runs shifted by whole pages: where the code reads its own address, that address is
    # the symbol `$code`, which co-simulation places where the code runs (symexec._windows).
    shift = code_address(blob, ex, model) - blob.base
    # The unit's read-only data where this state's model puts it, and the code linked for that
    # layout exactly as the linker would (verifier/rodata.py): the CPU checks the symbolic
    # treatment of the relocations.
    placed = rodata_addresses(blob, model)
    # two regions with the same bytes may be one (entry.build): then they are mapped once
    regions += [Region(at, rodata.link_data(ro, at, blob.base + shift), writable=False)
                for at, ro in dict(zip(placed, blob.rodata, strict=True)).items()]
    code = blob.linked(blob.base + shift, placed)
    state = EntryState(blob.arch, code, blob.base + shift, blob.entry + shift, tuple(regions),
                       oracle_registers(blob.arch, regs, avx), ret_addr)
    return Concrete(state, regs, arrays, placed, sp0, ret_addr, (lo, hi))


def run_address(blob: Blob) -> int:
    """Where the oracle runs the code: its own address, or above the lowest address a process
    may map (then `$code`, when the code's address is a value, is placed there too)."""
    return blob.base + (LOW_SHIFT if blob.base < MIN_CODE else 0)


def code_address(blob: Blob, ex: Exploration, model: dict[str, int]) -> int:
    """Where this state runs the code: where its model puts `$code` when the code's address is a
    value of the model (so a counterexample that depends on it runs as the model says), else
    `run_address`."""
    from ..names import CODE

    return model.get(CODE, run_address(blob)) if CODE in ex.rodata else run_address(blob)


def rodata_addresses(blob: Blob, model: dict[str, int]) -> tuple[int, ...]:
    """Each read-only region's address in `model`; where the model leaves it out (nothing depends on
    it), its placeholder."""
    from ..names import rodata

    return tuple(model.get(rodata(n), ro.placeholder) for n, ro in enumerate(blob.rodata))


def oracle_registers(arch: str, regs: dict[str, int], avx: bool) -> dict[str, int]:
    """The registers of `regs` the oracle loads, in the form it takes them."""
    out: dict[str, int] = {}
    if arch == "x86_64":
        for name, v in regs.items():
            if name == "rflags":
                out[name] = v & X86_FLAGS
            elif name == "mxcsr":
                out[name] = v & 0xFFFF
            elif name.startswith("ymm") and not avx:
                out["xmm" + name[3:]] = v & ((1 << 128) - 1)
            elif name in X86_NAMES:
                out[name] = v
        return out
    for name, v in regs.items():
        if name == "nzcv":
            out[name] = v & 0xF000_0000
        elif name in A64_NAMES:
            out[name] = v
    return out

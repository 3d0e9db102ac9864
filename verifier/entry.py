"""Builds the symbolic entry state of DESIGN §4 for one function: registers, regions, assumptions."""

from __future__ import annotations

from dataclasses import dataclass

import archinfo
import claripy

from . import names
from .arch import Abi
from .blob import Blob
from .errors import UnsupportedError
from .machine import BV, STACK, Region, RegisterFile, bv, const
from .signature import Param, Signature

STACK_MAX = 1 << 16    # deepest frame modelled; below it an access is UNKNOWN, never placed
MASK64 = (1 << 64) - 1

# VEX pseudo-registers that are not architectural state; concrete values lose nothing because
# the machine model has no counterpart for them (emulation notes, translation-cache hints).
_PSEUDO = {"emnote", "cmstart", "cmlen", "nraddr", "ip_at_syscall", "ip", "pc", "rip"}
# Rounding-mode and x87 bookkeeping: fixed to their ABI defaults; floating point is reported
# unsupported, so no proof depends on them.
# VEX-internal FP bookkeeping, fixed: only x87 arithmetic (PutI/GetI, not modelled) and fnstsw,
# fnstenv, fxsave (outside the verified set) read ftop, fptag and fc3210; fpround and sseround feed
# only floating-point arithmetic (outside the set) because nverify answers VEX's MXCSR and x87
# control-word helpers from its own whole-register state below (isa/corrections.py).
_FIXED = {"fpround": 0, "sseround": 0, "ftop": 0, "fptag": 0, "fc3210": 0}
# nverify's own architectural state that VEX does not hold whole: slots past VEX's guest state.
# x86-64: MXCSR (32 bits) and the x87 control word; AArch64: FPSR's cumulative exception flags.
PSEUDO = {"mxcsr": (0x10000, 4), "fpcw": (0x10008, 2), "fpsr": (0x10010, 4)}
_PSEUDO_OF = {"x86_64": ("mxcsr", "fpcw"), "aarch64": ("fpsr",)}


@dataclass(frozen=True)
class ArrayLayout:
    name: str
    reg: str           # the argument register that carries its address (= the base symbol)
    elem_bits: int
    length: int        # elements; for T p[n] the largest n that pre allows
    const: bool
    count: str | None = None   # for T p[n]: the name of n

    @property
    def size(self) -> int:
        return self.length * self.elem_bits // 8


@dataclass
class EntryState:
    arch: archinfo.Arch
    abi: Abi
    regs: RegisterFile
    regions: dict[str, Region]
    bases: dict[str, str]                 # base symbol name -> region name
    assumptions: list[claripy.ast.Bool]
    entry_values: dict[str, BV]           # register name -> entry value (for frame checks, replay)
    arrays: list[ArrayLayout]
    ret_addr: BV                          # the caller's return address (a symbol)
    sp0: BV
    stack_hi: int                         # highest stack offset (exclusive) the code may touch
    cpu: dict[str, BV]                    # per-CPU constants a proof quantifies over (isa/corrections.py)
    code: BV | None = None                # `$code`, when code addresses are values (isa.symbolic_code)

    @property
    def arrays_by_name(self) -> dict[str, ArrayLayout]:
        return {a.name: a for a in self.arrays}


def vex_arch(name: str) -> archinfo.Arch:
    return archinfo.ArchAMD64() if name == "x86_64" else archinfo.ArchAArch64()


def build(blob: Blob, sig: Signature, abi: Abi, lengths: dict[str, int] | None = None) -> EntryState:
    arch = vex_arch(blob.arch)
    if len(sig.params) > len(abi.arg_regs):
        raise UnsupportedError(f"{sig.name} has {len(sig.params)} parameters; only the "
                               f"{len(abi.arg_regs)} passed in registers are modelled")
    regs = RegisterFile()
    entry: dict[str, BV] = {}
    for r in arch.register_list:
        val = _initial_register(r.name, r.size * 8, blob)
        regs.put(r.vex_offset, val)
        entry[r.name] = val
    for name in _PSEUDO_OF[blob.arch]:
        off, size = PSEUDO[name]
        entry[name] = bv(names.register(name), size * 8)
        regs.put(off, entry[name])
    cpu, fp_assumptions = _fp_state(blob.arch, entry)
    sp_name = arch.register_names[arch.sp_offset]  # type: ignore[index]
    sp0 = entry[sp_name]
    assumptions: list[claripy.ast.Bool] = [
        *fp_assumptions,
        sp0 & 15 == abi.sp_entry_mod16,
        claripy.UGE(sp0, STACK_MAX + abi.red_zone + 4096),
        claripy.ULE(sp0, MASK64 - 4096),
    ]
    regions = {STACK: Region(STACK, sp0, 0, True)}
    bases: dict[str, str] = {str(sp0.args[0]): STACK}
    arrays: list[ArrayLayout] = []
    for p, reg in zip(sig.params, abi.arg_regs, strict=False):
        off = arch.get_register_offset(reg)
        if p.is_array:
            base = entry[reg]
            if isinstance(p.length, str):
                # T p[n]: the region is as large as the largest n, but only n elements of it exist:
                # accesses are checked against n (symbolic), and placement assumptions use n too.
                lay = ArrayLayout(p.name, reg, p.bits, (lengths or {})[p.name], p.const, p.length)
                nparam = sig.param(p.length)
                assert nparam is not None
                nbits = bv(nparam.name, nparam.bits)
                n64 = claripy.ZeroExt(64 - nparam.bits, nbits) if nparam.bits < 64 else nbits
                nbytes = n64 * (p.bits // 8)
            else:
                lay = ArrayLayout(p.name, reg, p.bits, p.length, p.const)  # type: ignore[arg-type]
                nbytes = claripy.BVV(lay.size, 64)
            arrays.append(lay)
            regions[p.name] = Region(p.name, base, lay.size, not p.const, p.bits, nbytes)
            bases[str(base.args[0])] = p.name
            assumptions += [base != 0, base % (p.bits // 8) == 0, claripy.ULE(base, MASK64 - nbytes)]
        else:
            value = _scalar_register(p, reg, abi)
            regs.put(off, value)
            entry[reg] = value
            if p.is_bool:
                assumptions.append(claripy.ULE(bv(p.name, 8), 1))
    for n, ro in enumerate(blob.rodata):
        # Read-only data of the unit: placed by the linker anywhere it likes, so its address is a
        # symbol like an array's, aligned as its section asks (verifier/rodata.py).
        key = names.rodata(n)
        base = bv(key, 64)
        regions[key] = Region(key, base, len(ro.data), False)
        bases[key] = key
        assumptions += [base != 0, base % ro.align == 0 if ro.align > 1 else claripy.true(),
                        claripy.ULE(base, MASK64 - len(ro.data))]
    code = _code_base(blob, regions, assumptions)
    stack_hi = abi.stack_hi     # the return address, plus win64's shadow space
    stack_lo = claripy.BVV(STACK_MAX + abi.red_zone, 64)
    spans = [(r.base, r.length if r.length is not None else claripy.BVV(r.size, 64))
             for r in regions.values() if r.name != STACK]
    spans.append((sp0 - stack_lo, stack_lo + stack_hi))
    # the code: where it is lifted, or where the linker puts it when its address is a value
    # (only the bytes that lie together when linked: a part in another section lies elsewhere)
    spans.append((claripy.BVV(blob.base, 64) if code is None else code, claripy.BVV(blob.span or blob.size, 64)))
    # Read-only regions with the same bytes may be one: the linker merges equal entities of a
    # constant-merging section, and identical code folding (lld --icf=all) folds equal read-only
    # sections. Their addresses may then be equal; nothing else may overlap.
    ro = {names.rodata(n): d.data for n, d in enumerate(blob.rodata)}
    keys = [r.name for r in regions.values() if r.name != STACK] + [STACK, ""]
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            (a, na), (b, nb) = spans[i], spans[j]
            apart = claripy.Or(claripy.ULE(a + na, b), claripy.ULE(b + nb, a))
            same = keys[i] in ro and ro[keys[i]] == ro.get(keys[j])
            assumptions.append(claripy.Or(a == b, apart) if same else apart)
    ret_addr = bv(names.RETADDR, 64) if abi.link_reg is None else entry[abi.link_reg]
    assumptions = [a for a in assumptions if not (a.is_true())]
    return EntryState(arch, abi, regs, regions, bases, assumptions, entry, arrays, ret_addr, sp0, stack_hi, cpu,
                      code)


def _code_base(blob: Blob, regions: dict[str, Region], assumptions: list) -> BV | None:
    """`$code`, where the linker puts the function, when the code's own addresses are values of
    the model (isa.symbolic_code): aligned as its section, not wrapping. A read-only entry
    relative to itself (`.long .L3-.L4`) fits 32 bits wherever the linker could link it."""
    from . import isa

    if not isa.symbolic_code(blob):
        return None
    code = bv(names.CODE, 64)
    assumptions += [code != 0, claripy.ULE(code, MASK64 - blob.size)]
    # its section is aligned, the function lies `offset` bytes into it; AArch64 code runs only
    # from 4-byte aligned addresses
    align = max(blob.align, 4 if blob.arch == "aarch64" else 1)
    if align > 1:
        assumptions.append((code - blob.offset) % align == 0)
    for n, ro in enumerate(blob.rodata):
        base = regions[names.rodata(n)].base
        for k in ro.links:
            if k.relative:
                v = code + k.target - (base + k.at)
                assumptions += [claripy.SGE(v, -(1 << 31)), claripy.SLT(v, 1 << 31)]
    return code


def _fp_state(arch: str, entry: dict[str, BV]) -> tuple[dict[str, BV], list]:
    """The FP control and status state at entry: arbitrary, within what some CPU can hold. The
    CPU's own choices (does MXCSR have DAZ, which FPCR bits exist) are symbols too, so a proof
    covers every CPU; isa/corrections.py keeps every later value consistent with them."""
    from .isa import corrections as c

    if arch == "x86_64":
        daz = bv(names.machine("cpu.daz"), 1)
        m = entry["mxcsr"]
        return {"daz": daz}, [claripy.Extract(31, 16, m) == 0,
                              claripy.Or(claripy.Extract(6, 6, m) == 0, daz == 1)]
    maybe = bv(names.machine("cpu.fpcr"), 32)
    fpcr = entry["fpcr"]
    return {"fpcr": maybe}, [maybe & (0xFFFFFFFF ^ c.FPCR_MAYBE) == 0,
                             fpcr & ~(maybe | c.FPCR_CORE) == 0,
                             entry["fpsr"] & (0xFFFFFFFF ^ c.FPSR_FLAGS) == 0]


def _initial_register(name: str, bits: int, blob: Blob) -> BV:
    if name in ("rip", "pc"):
        return const(blob.entry, bits)
    if name in _PSEUDO:
        return const(0, bits)
    if name in _FIXED:
        return const(_FIXED[name], bits)
    if name == "cc_op":
        return const(0, bits)      # OP_COPY: the flags are exactly the bits of cc_dep1 ...
    if name == "cc_dep1":          # ... which are arbitrary
        return bv(names.machine("rflags" if blob.arch == "x86_64" else "nzcv"), bits)
    if name in ("cc_dep2", "cc_ndep"):
        return const(0, bits)      # ignored under OP_COPY
    if name == "d":
        return const(1, bits)      # VEX's DF as +1/-1: clear at entry (SysV); checked at the return
    if name == "ac":
        # AC clear: with Linux's CR0.AM set, AC would make every misaligned access fault; no C
        # runtime sets it, and the code cannot (popf is denied). docs/machine-model.md says so.
        return const(0, bits)
    if name == "id":
        return claripy.ZeroExt(bits - 1, bv(names.machine("idflag"), 1))
    if name in ("fs", "gs"):
        return bv(names.machine(f"{name}_base"), bits)
    return bv(names.register("sp" if name == "xsp" else name), bits)


def _scalar_register(p: Param, reg: str, abi: Abi) -> BV:
    x = bv(p.name, p.bits)
    if p.bits == 64:
        return x
    ext_to = abi.narrow_args_extended_to
    if ext_to and p.bits < ext_to:
        x = (claripy.SignExt if p.signed else claripy.ZeroExt)(ext_to - p.bits, x)
    width = x.size()
    return claripy.Concat(bv(names.upper_bits(reg), 64 - width), x)

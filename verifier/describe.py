"""The machine model of DESIGN §4 instantiated for one function, as plain data for the result
JSON: which register carries which parameter, which memory exists and with which rights,
what the stack and the callee-saved registers must do, the bounds, and what is assumed.

Reports render this; they never re-derive it, so the terminal, the JSON and every report
say the same thing.
"""

from __future__ import annotations

from .arch import Abi
from .spec import Spec


def _subregister(reg: str, bits: int, arch: str) -> str:
    """The register name that holds the low `bits` of `reg` (edi, r8d, w0 …)."""
    if bits >= 64:
        return reg
    if arch == "aarch64":
        return f"w{reg[1:]}"
    legacy = {"rdi": ("edi", "di", "dil"), "rsi": ("esi", "si", "sil"), "rdx": ("edx", "dx", "dl"),
              "rcx": ("ecx", "cx", "cl"), "rax": ("eax", "ax", "al")}
    if reg in legacy:
        return dict(zip((32, 16, 8), legacy[reg], strict=True))[bits]
    return reg + {32: "d", 16: "w", 8: "b"}[bits]


def machine_model(spec: Spec, abi: Abi, arch: str) -> dict:
    sig = spec.signature
    params = []
    for p, reg in zip(sig.params, abi.arg_regs, strict=False):
        if p.is_array:
            elem = p.bits // 8
            if p.is_variable:
                count = f"{p.length} (at most {spec.lengths.get(p.name)} allowed by pre)"
                size = f"{p.length} × {elem} bytes"
            else:
                count = str(p.length)
                size = f"{int(p.length) * elem} bytes"  # type: ignore[arg-type]
            params.append({
                "name": p.name, "type": f"{'const ' if p.const else ''}{p.ctype} {p.name}[{p.length}]",
                "register": reg, "passed": f"its address, in {reg}",
                "memory": {"elements": count, "size": size, "element_bytes": elem,
                           "access": "read-only" if p.const else "read-write",
                           "address": f"arbitrary, aligned to {elem}, non-null, not overlapping anything else"},
            })
        else:
            ext = abi.narrow_args_extended_to
            upper = "arbitrary"
            if p.bits < 32 and ext:
                upper = (f"bits {p.bits}-{ext - 1} {'sign' if p.signed else 'zero'}-extended by the caller, "
                         f"bits {ext}-63 arbitrary")
            elif p.bits < 64:
                upper = f"bits {p.bits}-63 arbitrary"
            params.append({"name": p.name, "type": f"{p.ctype} {p.name}", "register": reg,
                           "passed": f"in {_subregister(reg, p.bits, arch)}",
                           "upper_bits": upper if p.bits < 64 else "none"})
    sp = abi.sp
    stack = [f"{sp} is arbitrary, {sp} ≡ {abi.sp_entry_mod16} (mod 16) at entry"]
    stack.append("the return address is at [rsp]" if abi.link_reg is None else
                 f"the return address is in {abi.link_reg}")
    stack.append(f"the function may use the stack between its current {sp} and the entry {sp}"
                 + (f", plus the {abi.red_zone}-byte red zone below {sp}" if abi.red_zone else "")
                 + (f", plus the caller's {abi.shadow_space}-byte shadow space above the return address"
                    if abi.shadow_space else ""))
    preserved = list(abi.callee_saved)
    if abi.vector_callee_saved:
        first, last = abi.vector_callee_saved[0], abi.vector_callee_saved[-1]
        preserved.append(f"{first}–{last} (low {abi.vector_saved_bits} bits)")
    preserved += [f"{r} (never touched)" for r in abi.untouched]
    if arch == "x86_64":
        preserved.append("DF clear")
    ret = None
    if sig.ret is not None:
        ret = {"type": sig.ret.ctype, "register": _subregister(abi.ret_reg, sig.ret.bits, arch)}
    return {
        "abi": {"name": abi.name, "summary": abi.summary},
        "parameters": params,
        "returns": ret,
        "stack": stack,
        "preserved": preserved,
        "other_registers": "every other register, flag and vector register is arbitrary at entry",
        "pre": spec.pre,
        "loop_bound": spec.loop_bound,
        "forbidden": ["system calls and traps", "privileged and I/O instructions", "reads of time, randomness "
                      "or CPU identity", "indirect jumps and calls", "calls and jumps outside the function",
                      "instructions that observe the code's own address", "writing its own code"],
        "assumptions": [
            f"the caller follows the {abi.name} calling convention and satisfies pre",
            "VEX (angr/pyvex) models each executed instruction correctly; refutations are cross-checked "
            "on the unicorn emulator, proofs are not",
            "the SMT solver named for each obligation answered 'unsat' correctly",
            "the arrays do not change under the function (no concurrent writers)",
            "timing, caches and speculation are outside the model (no constant-time claim)",
            f"the code sits where it was loaded; inputs outside pre, or running an instruction more than "
            f"{spec.loop_bound} times, are not covered",
        ],
    }

"""The per-state code pages the runner maps besides the blob: register values -> trampoline bytes,
return address -> landing stub bytes.

The trampoline loads every register from its own literal pool (laid out as a register block, see
wire.py) and jumps to the entry without clobbering any of them: x86-64 through `jmp [rip+pool]`,
AArch64 with a `b` patched at placement time (so its page must lie within 128 MiB of the entry).
The landing stub, mapped at the return address, jumps to the runner's `landing` code; on AArch64
it first parks x16 in TPIDR_EL0, the one register a user program can write without memory.
"""

from __future__ import annotations

import functools
import struct

from . import image, wire

B_RANGE = 1 << 27                # the reach of an AArch64 `b`


def _x86_source(avx: bool) -> str:
    move = "vmovdqu ymm{i}, ymmword ptr" if avx else "movdqu xmm{i}, xmmword ptr"
    lines = [f"fldenv [rip + pool + {wire.R_FPENV}]",
             f"ldmxcsr dword ptr [rip + pool + {wire.R_MXCSR}]"]
    lines += [move.format(i=i) + f" [rip + pool + {wire.R_YMM + 32 * i}]" for i in range(16)]
    lines += [f"push qword ptr [rip + pool + {wire.R_RFLAGS}]", "popfq"]
    lines += [f"mov {r}, qword ptr [rip + pool + {8 * i}]" for i, r in enumerate(wire.X86_GPRS)]
    lines += [f"jmp qword ptr [rip + pool + {wire.R_ENTRY}]", ".align 64", "pool:"]
    return "\n".join(lines)


def _a64_source() -> str:
    lines = [f"ldr x0, pool + {wire.A64_R_SP}", "mov sp, x0",
             f"ldr x0, pool + {wire.A64_R_NZCV}", "msr nzcv, x0",
             f"ldr x0, pool + {wire.A64_R_FPCR}", "msr fpcr, x0",
             f"ldr x0, pool + {wire.A64_R_FPSR}", "msr fpsr, x0"]
    lines += [f"ldr q{i}, pool + {wire.A64_R_Q + 16 * i}" for i in range(32)]
    lines += [f"ldr x{i}, pool + {8 * i}" for i in range(31)]
    lines += ["b .", ".align 4", "pool:"]      # the `b` is patched by page(): see _branch
    return "\n".join(lines)


def _branch() -> int:
    """Offset of the trampoline's final `b`: every line before it is one instruction."""
    return 4 * (_a64_source().splitlines().index("b ."))


@functools.lru_cache(maxsize=4)
def _template(arch: str, avx: bool) -> bytes:
    src = _x86_source(avx) if arch == "x86_64" else _a64_source()
    return image.assemble(arch, src, 0)


def page(arch: str, avx: bool, block: bytes, at: int, entry: int) -> bytes:
    """The trampoline page for a state whose register block is `block`, mapped at `at`."""
    code = _template(arch, avx)
    if arch == "aarch64":
        branch = _branch()
        assert code[branch:branch + 4] == b"\x00\x00\x00\x14"
        offset = entry - (at + branch)
        assert -B_RANGE <= offset < B_RANGE and offset % 4 == 0
        word = 0x14000000 | ((offset >> 2) & 0x3FFFFFF)
        code = code[:branch] + struct.pack("<I", word) + code[branch + 4:]
    body = code + block
    assert len(body) <= wire.PAGE
    return body


def stub(arch: str, landing: int) -> bytes:
    """The landing stub placed at the return address."""
    if arch == "x86_64":
        return b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", landing)        # jmp [rip]; .quad landing
    # msr tpidr_el0, x16; ldr x16, .+8; br x16; .quad landing
    return struct.pack("<IIIQ", 0xD51BD050, 0x58000050, 0xD61F0200, landing)

"""The runner's memory layout and its pipe protocol: constants shared by Python and the assembly.

Every number the runner's assembly uses is defined here once and handed to the assembler as
`.equ` lines (`equates`), so the two sides cannot drift apart.
"""

from __future__ import annotations

import struct

PAGE = 0x1000
MAGIC = 0x314C4341524F564E          # b"NVORACL1"

# The runner lives at a base chosen at random, per runner process, inside WINDOW (a 1 TiB window
# 4 GiB-aligned, just under 2**46): a state that asks for an address in it gets a clear error.
WINDOW = (0x3F00_0000_0000, 0x4000_0000_0000)
SLOT = 1 << 32
# Offsets from the base.
TEXT = 0x1000            # code (read + execute); the AArch64 system-call gadget is its last word below
DATA = 0x10000           # zero-filled data: the alternate signal stack, the runner's stack, the input
ALTSTACK, ALTSTACK_SIZE = 0x20000, 0x10000
STACK_TOP = 0x40000
INBUF = 0x100000
MAXMSG = 0x4000000       # 64 MiB: the largest request
DATA_SIZE = INBUF + MAXMSG - DATA
JPAGE = 0x6000000        # x86-64: where the trampoline page is mapped for each state
SHARED = 0x8000000       # result page + copies of the state's pages, shared with the forked child
MAXPAGES = 0x3000000     # 48 MiB: the most memory one state may map
SHARED_SIZE = PAGE + MAXPAGES

# Request: a 64-byte header, a table of maps (32 bytes each), then their bytes.
H_MAGIC, H_LEN, H_SEC, H_USEC, H_NMAPS, H_FLAGS, H_JUMP, H_PAGES = range(0, 64, 8)
TABLE = 64
F_AVX, F_SECCOMP = 1, 2
# Result page (the start of SHARED): what the child and its parent report.
(S_MAGIC, S_LEN, S_STATUS, S_WAIT, S_SIGNO, S_CODE, S_ADDR, S_PC, S_ERRNO, S_INDEX, S_COMPLETE,
 S_SYSNR) = range(0, 96, 8)
OUT = 128                # the final registers, laid out as REGS below
ST_NONE, ST_RETURNED, ST_SIGNAL, ST_SETUP = range(4)
# Setup steps that can fail after the maps (S_INDEX; a map's failure gives its index).
STEP_ALTSTACK, STEP_SIGACTION, STEP_TIMER, STEP_SECCOMP, STEP_GADGET = range(1000, 1005)

# A register block: the trampoline's pool (entry values) and OUT (final values) share it.
X86_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
R_RFLAGS, R_MXCSR, R_FPENV, R_ENTRY, R_YMM = 128, 136, 144, 176, 192
A64_R_SP, A64_R_NZCV, A64_R_FPCR, A64_R_FPSR, A64_R_Q = 248, 256, 264, 272, 288
REGS_SIZE = 1024


def equates(base: int) -> str:
    """`.equ` lines for the runner's assembly, for a runner at `base`."""
    names = {k: v for k, v in globals().items() if k.isupper() and isinstance(v, int)}
    absolute = {"ALTSTACK", "STACK_TOP", "INBUF", "JPAGE", "SHARED"}
    lines = [f".equ {k}, {(base + v if k in absolute else v):#x}" for k, v in names.items()]
    lines.append(f".equ BASE, {base:#x}")
    return "\n".join(lines) + "\n"


def header(nbytes: int, timeout: float, nmaps: int, flags: int, jump: int, pages: int) -> bytes:
    usec = max(1, int(timeout * 1e6))
    return struct.pack("<8Q", MAGIC, nbytes, usec // 1_000_000, usec % 1_000_000, nmaps, flags, jump, pages)

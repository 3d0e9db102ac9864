"""Assembles a runner's source into a static ELF executable: assembly text -> ELF bytes.

No libc, no linker: an ELF header and two PT_LOAD segments written here. The first segment holds
the header page and the code (read + execute), the second is zero-filled data (read + write).
A PT_GNU_STACK entry marks the stack non-executable: without it, kernels before 5.8 give the
process READ_IMPLIES_EXEC, and every readable page it maps (the state's data) would be executable.
"""

from __future__ import annotations

import struct

import keystone

from ..asmtext import hex_literals

PAGE = 0x1000
TEXT = 0x1000             # the code starts one page above the runner's base
DATA = 0x10000            # the zero-filled data segment starts here, above the code
EM = {"x86_64": 62, "aarch64": 183}


def assemble(arch: str, source: str, address: int) -> bytes:
    """Machine code for `source` placed at `address` (keystone; ';'/'//' comments removed)."""
    if arch == "x86_64":
        ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    else:
        ks = keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN)
    comment = "//" if arch == "aarch64" else ";"
    lines = [ln.split(comment)[0].rstrip() for ln in source.splitlines()]
    text = [hex_literals(ln) for ln in lines if ln.strip()]
    code, _ = ks.asm("\n".join(text), address)
    if not code and any(not ln.strip().endswith(":") for ln in text):
        # keystone answers some errors (an unknown shift name, say) with no code and no error
        raise ValueError(f"keystone could not assemble: {source!r}")
    return bytes(code or b"")


def elf(arch: str, base: int, text_at: int, text: bytes, entry: int, data_size: int) -> bytes:
    """A static ELF: `text` placed at `text_at` (inside the first segment, which starts at `base`
    with the headers), `data_size` zero bytes at base + DATA, entry point `entry`."""
    assert base % PAGE == 0 and base <= text_at and text_at + len(text) <= base + DATA
    filesz = text_at - base + len(text)
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,
                       2, EM[arch], 1, entry, 64, 0, 0, 64, 56, 3, 64, 0, 0)
    text_seg = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, filesz, filesz, PAGE)
    data_seg = struct.pack("<IIQQQQQQ", 1, 6, 0, base + DATA, base + DATA, 0, data_size, PAGE)
    gnu_stack = struct.pack("<IIQQQQQQ", 0x6474E551, 6, 0, 0, 0, 0, 0, 16)
    head = ehdr + text_seg + data_seg + gnu_stack
    return head + bytes(text_at - base - len(head)) + text

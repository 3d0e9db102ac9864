"""Builds test fixtures from reviewable source at test time: assembly (keystone) and C (gcc)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import keystone

BASE = 0x400000
CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
ARCHES = ("x86_64", "aarch64")


def assemble(arch: str, text: str, base: int = BASE) -> bytes:
    if arch == "x86_64":
        ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    else:
        ks = keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN)
    comment = "//" if arch == "aarch64" else ";"
    lines = [ln.split(comment)[0] for ln in text.splitlines()]
    code, _ = ks.asm("\n".join(ln for ln in lines if ln.strip()), base)
    return bytes(code)


def asm_file(tmp: Path, arch: str, text: str, name: str = "blob") -> Path:
    p = tmp / f"{name}_{arch}.bin"
    p.write_bytes(assemble(arch, text))
    return p


def have_cc(arch: str) -> bool:
    return shutil.which(CC[arch]) is not None


def compile_c(tmp: Path, arch: str, source: str, opt: str, name: str = "fn") -> Path:
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / f"{name}_{arch}_{opt.replace(' ', '_')}.o"
    # -fno-tree-loop-distribute-patterns: loops stay loops instead of calls to memcpy/memset
    # (which would need relocations), as in freestanding kernel builds.
    flags = [f"-{opt.split()[0]}", *opt.split()[1:], "-fno-stack-protector", "-fno-pic", "-ffreestanding",
             "-fno-builtin", "-fno-tree-loop-distribute-patterns", "-c"]
    if arch == "x86_64":
        flags.append("-fcf-protection=none")
    subprocess.run([CC[arch], *flags, str(src), "-o", str(out)], check=True, capture_output=True)
    return out

"""Builds test fixtures from reviewable source at test time: assembly (keystone) and C (gcc)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from verifier.oracle import image

BASE = 0x400000
CC = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
ARCHES = ("x86_64", "aarch64")


def assemble(arch: str, text: str, base: int = BASE) -> bytes:
    """keystone, as the oracle assembles its runner (comments stripped, decimals in hex)."""
    return image.assemble(arch, text, base)


def asm_file(tmp: Path, arch: str, text: str, name: str = "blob") -> Path:
    p = tmp / f"{name}_{arch}.bin"
    p.write_bytes(assemble(arch, text))
    return p


GAS = {"x86_64": "as", "aarch64": "aarch64-linux-gnu-as"}
LD = {"x86_64": "ld", "aarch64": "aarch64-linux-gnu-ld"}


def gas_object(tmp: Path, arch: str, text: str, name: str = "asm") -> Path:
    """An ELF object from GNU assembly (x86-64 in Intel syntax), as a person would assemble it."""
    src = tmp / f"{name}_{arch}.s"
    src.write_text((".intel_syntax noprefix\n" if arch == "x86_64" else "") + text + "\n")
    out = src.with_suffix(".o")
    subprocess.run([GAS[arch], str(src), "-o", str(out)], check=True, capture_output=True)
    return out


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


# --- Mach-O and PE/COFF fixtures: clang cross-compiles, lld links (Debian: clang lld llvm) ----------

TARGETS = {("macho", "x86_64"): "x86_64-apple-macos11", ("macho", "aarch64"): "arm64-apple-macos11",
           ("pe", "x86_64"): "x86_64-pc-windows-msvc", ("pe", "aarch64"): "aarch64-pc-windows-msvc"}


def llvm_tool(name: str) -> str | None:
    """An LLVM tool on PATH, or in Debian's versioned directory (ld64.lld and llvm-lipo live there)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib").glob(f"llvm-*/bin/{name}"), key=lambda p: p.parts[3])
    return str(versions[-1]) if versions else None


def have_llvm() -> bool:
    return all(llvm_tool(t) for t in ("clang", "lld-link", "ld64.lld", "llvm-lipo"))


def clang_object(tmp: Path, fmt: str, arch: str, source: str, opt: str = "O2", name: str = "lib") -> Path:
    """One Mach-O or COFF object from C source."""
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / f"{name}_{fmt}_{arch}_{opt}.o"
    _run([llvm_tool("clang"), f"--target={TARGETS[fmt, arch]}", f"-{opt}", "-ffreestanding", "-fno-builtin",
          "-fno-stack-protector", "-c", str(src), "-o", str(out)])
    return out


def clang_asm(tmp: Path, fmt: str, arch: str, text: str, name: str = "asm") -> Path:
    """A Mach-O or COFF object from assembly, by clang's integrated assembler."""
    src = tmp / f"{name}_{fmt}_{arch}.s"
    src.write_text((".intel_syntax noprefix\n" if arch == "x86_64" else "") + text + "\n")
    out = src.with_suffix(".o")
    _run([llvm_tool("clang"), f"--target={TARGETS[fmt, arch]}", "-c", str(src), "-o", str(out)])
    return out


def link_image(tmp: Path, fmt: str, arch: str, obj: Path, exports: list[str]) -> Path:
    """A PE DLL (lld-link, no CRT, no entry point) or a Mach-O dylib (ld64.lld)."""
    if fmt == "pe":
        out = obj.with_suffix(".dll")
        _run([llvm_tool("lld-link"), "/dll", "/noentry", "/nodefaultlib",
              f"/machine:{'x64' if arch == 'x86_64' else 'arm64'}", str(obj),
              *[f"/export:{e}" for e in exports], f"/out:{out}"])
    else:
        out = obj.with_suffix(".dylib")
        _run([llvm_tool("ld64.lld"), "-arch", "x86_64" if arch == "x86_64" else "arm64", "-dylib",
              "-platform_version", "macos", "11.0", "11.0", "-o", str(out), str(obj)])
    return out


def fat_macho(tmp: Path, objs: list[Path], name: str = "fat") -> Path:
    out = tmp / f"{name}.o"
    _run([llvm_tool("llvm-lipo"), "-create", *map(str, objs), "-output", str(out)])
    return out


def _run(cmd: list) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def damaged(data: bytes, rng, count: int):
    """`count` damaged copies of a file: every third truncated, each with 1-7 random bytes changed."""
    for i in range(count):
        out = bytearray(data[: rng.randrange(1, len(data))] if i % 3 == 0 else data)
        for _ in range(rng.randrange(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        yield i, bytes(out)


def emit_signed(tmp: Path, obj: Path, spec: str) -> Path:
    """`nverify prove OBJ --spec SPEC --sign KEY --emit DIR` with a fresh key: the directory."""
    from verifier import attest
    from verifier.cli import main

    attest.keygen(str(tmp / "key"), "ed25519")
    out = tmp / "out"
    assert main(["prove", str(obj), "--spec", spec, "--sign", str(tmp / "key.key"), "--emit", str(out), "-q"]) == 0
    return out

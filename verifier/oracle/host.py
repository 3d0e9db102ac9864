"""What this machine can run: architecture -> 'native', 'qemu' or None, and the CPU's name."""

from __future__ import annotations

import functools
import platform
import shutil
import subprocess

HOST = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
QEMU = {"aarch64": "qemu-aarch64", "x86_64": "qemu-x86_64"}
QEMU_CPU = "max"


def host_arch() -> str:
    return HOST.get(platform.machine().lower(), platform.machine().lower())


@functools.lru_cache(maxsize=4)
def available(arch: str) -> str | None:
    """'native' when this CPU runs `arch`, 'qemu' when qemu-user does (AArch64 only), else None."""
    if arch == host_arch():
        return "native"
    if arch == "aarch64" and shutil.which(QEMU[arch]):
        return "qemu"
    return None


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def _field(name: str) -> str:
    for line in _cpuinfo().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def host_cpu() -> str:
    model = _field("model name")
    if model:
        return model
    part = _field("CPU part")
    return f"arm64 (implementer {_field('CPU implementer')}, part {part})" if part else platform.processor()


@functools.lru_cache(maxsize=1)
def has_avx() -> bool:
    """AVX usable here: the kernel lists it only when it also saves the ymm state."""
    return "avx" in _field("flags").split()


@functools.lru_cache(maxsize=2)
def qemu_version(arch: str) -> str:
    try:
        out = subprocess.run([QEMU[arch], "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    words = out.split()
    return words[2] if len(words) > 2 and words[1] == "version" else "?"


@functools.lru_cache(maxsize=4)
def cpu_name(arch: str) -> str:
    """The CPU that runs `arch` blobs here: its model name, or qemu's version and the host CPU."""
    how = available(arch)
    if how == "qemu":
        return f"{QEMU[arch]} {qemu_version(arch)} (-cpu {QEMU_CPU}) on {host_cpu()}"
    return host_cpu() if how == "native" else ""

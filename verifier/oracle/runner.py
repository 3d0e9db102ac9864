"""Builds an oracle runner: its assembly source in this directory -> a static ELF for a chosen base."""

from __future__ import annotations

import functools
from pathlib import Path

from . import image, wire

HERE = Path(__file__).parent
SVC = 0xD4000001                  # AArch64 `svc #0`


def source(arch: str) -> str:
    return (HERE / f"runner_{arch}.s").read_text()


def text_address(arch: str, base: int) -> int:
    """Where the source is assembled: AArch64 starts one word early, with the svc gadget."""
    return base + wire.TEXT - (4 if arch == "aarch64" else 0)


@functools.lru_cache(maxsize=8)
def code(arch: str, base: int) -> bytes:
    return image.assemble(arch, wire.equates(base) + source(arch), text_address(arch, base))


def build(arch: str, base: int) -> bytes:
    """The runner as an ELF executable whose code and data sit at `base` (inside wire.WINDOW)."""
    text = code(arch, base)
    start = base + wire.TEXT + (4 if arch == "aarch64" else 0)
    return image.elf(arch, base, text_address(arch, base), text, start, wire.DATA_SIZE)

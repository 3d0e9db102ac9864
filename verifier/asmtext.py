"""Assembly text as keystone must be given it: every decimal literal written in hex.

keystone 0.9.2 reads bare numbers in a radix it can leave uninitialised: now and then, depending on
what the process allocated before (symbolic execution in the same process makes it likely), radix 16
whatever the syntax option says, so `[rdi + 160]` assembles as [rdi + 0x160], or `#16` becomes an
invalid immediate. Hex reads the same either way; local labels `1:`, `1f` and names such as xmm10
or x30 are left alone."""

from __future__ import annotations

import re

_DECIMAL = re.compile(r"(?<![\w.$])(\d+)(?![\w:])")


def hex_literals(line: str) -> str:
    return _DECIMAL.sub(lambda m: hex(int(m.group(1))), line)

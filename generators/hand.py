"""The `hand` generator: one candidate, from `--from FILE` (or `-` for standard input).

FILE may be an object file (ELF, Mach-O, PE/COFF: the spec's function is taken from it), hex
text (`48 8d 47 ff`, `0x48,0x8d`, `\\x48\\x8d`), assembly text (Intel syntax on x86-64, GNU
syntax on AArch64; assembled with keystone; `;` or `//` start comments) or raw machine code
(anything that is not text).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from . import Candidate, Feedback, Task

BASE = 0x400000
_HEX_NOISE = re.compile(r"0x|\\x|[\s,]")
_LABEL = re.compile(r"^\s*([A-Za-z_.$][\w.$]*)\s*:")
_ONLY_LABEL = re.compile(r"\s*(?:[A-Za-z_.$][\w.$]*|\d+)\s*:\s*")


class Hand:
    name = "hand"
    version = "1.0"
    description = "one candidate given by hand: assembly, hex, raw bytes or an object file (--from)"

    def __init__(self) -> None:
        self._candidate: Candidate | None = None
        self._given = False

    def start(self, task: Task) -> None:
        from verifier.errors import UsageError

        if task.source is None:
            raise UsageError("the hand generator needs --from FILE (assembly, hex, raw bytes or an object file; "
                             "- for standard input)")
        self._candidate = read_candidate(task.source, task.arch, task.spec.signature.name)

    def propose(self) -> Candidate | None:
        if self._given:
            return None
        self._given = True
        return self._candidate

    def feedback(self, candidate: Candidate, fb: Feedback) -> None:
        pass    # one candidate, nothing to learn

    def stats(self) -> dict:
        return {"proposals": int(self._given)}


def read_candidate(source: str, arch: str, function: str) -> Candidate:
    from verifier.errors import BlobError, UsageError

    if source == "-":
        data, where = sys.stdin.buffer.read(), "<stdin>"
    else:
        try:
            data, where = Path(source).read_bytes(), source
        except OSError as e:
            raise UsageError(f"--from {source}: cannot read: {e.strerror or e}") from None
    if not data.strip():
        raise UsageError(f"--from {where}: empty input: give assembly, hex, raw bytes or an object file")
    from verifier.blob import _container

    if _container(data) is not None:
        return _from_object(data, where, arch, function)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Candidate(data, note=f"raw bytes from {where}")
    if "\0" in text:
        return Candidate(data, note=f"raw bytes from {where}")
    squeezed = _HEX_NOISE.sub("", text)
    if squeezed and len(squeezed) % 2 == 0 and re.fullmatch(r"[0-9a-fA-F]+", squeezed):
        return Candidate(bytes.fromhex(squeezed), note=f"hex from {where}")
    try:
        return Candidate(assemble(arch, text, where), note=text)
    except BlobError as e:
        raise UsageError(str(e)) from None


def _from_object(data: bytes, where: str, arch: str, function: str) -> Candidate:
    import tempfile

    from verifier.blob import load

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "object"
        path.write_bytes(data)
        try:
            blob = load(str(path), arch=arch, default_symbol=function)
        except Exception as e:
            raise type(e)(str(e).replace(str(path), where)) from None
    return Candidate(blob.code, note=f"{blob.name} from {where}")


def _strip(arch: str, line: str) -> str:
    comment = "//" if arch == "aarch64" else ";"
    return line.split(comment)[0].rstrip()


def assemble(arch: str, text: str, where: str = "<asm>", base: int = BASE) -> bytes:
    """Assemble with keystone; on an error, name the first line that makes it fail."""
    import keystone

    from verifier.asmtext import hex_literals
    from verifier.errors import BlobError

    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64) if arch == "x86_64" \
        else keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN)
    raw = text.splitlines()
    lines = [hex_literals(_strip(arch, ln)) for ln in raw]   # keystone's radix bug
    try:
        code, _ = ks.asm("\n".join(lines), base)
    except keystone.KsError as e:
        line, msg = _locate(ks, lines, base, _plain(e), silent=False)
        raise BlobError(f"{where}:{line}: {msg}: {raw[line - 1].strip()!r}") from None
    if not code:
        if any(ln.strip() and not _ONLY_LABEL.fullmatch(ln) for ln in lines):
            # keystone answers some errors (an unknown shift name, say) with no code, no error
            line, msg = _locate(ks, lines, base, "cannot assemble", silent=True)
            raise BlobError(f"{where}:{line}: {msg}: {raw[line - 1].strip()!r}")
        raise BlobError(f"{where}: no instructions in the assembly text")
    return bytes(code)


def _locate(ks, lines: list[str], base: int, msg: str, silent: bool) -> tuple[int, str]:
    """The first line whose prefix no longer assembles — keystone raises or, when it failed `silent`ly
    on the whole text, gives no code for a line that is not a label — and why (labels defined later
    count as defined); `msg` if none is found."""
    import keystone

    labels = [m.group(1) for ln in lines if (m := _LABEL.match(ln))]
    for k in range(1, len(lines) + 1):
        if not lines[k - 1].strip():
            continue
        defined = {m.group(1) for ln in lines[:k] if (m := _LABEL.match(ln))}
        stubs = [f"{lb}:" for lb in labels if lb not in defined]
        try:
            code, _ = ks.asm("\n".join(lines[:k] + stubs), base)
        except keystone.KsError as e:
            return k, _plain(e)
        if silent and not code and not _ONLY_LABEL.fullmatch(lines[k - 1]):
            return k, "cannot assemble"
    return len(lines), msg


def _plain(e) -> str:
    return re.sub(r"\s*\(KS_ERR_\w+\)", "", str(e)) or "cannot assemble"

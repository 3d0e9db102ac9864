"""On PROVEN: NAME.bin, NAME.o and the signed NAME.bin.intoto.json (DESIGN §6), all or nothing.

NAME.o is a minimal ELF64 relocatable object: one .text section holding exactly the proven
bytes and one global function symbol. Placing the bytes at another address than the one they
were proven at loses nothing: the machine model refuses (as unsupported) every instruction
that could observe the code's own address — rip-relative `lea`, `adr`/`adrp`, calls inside
the blob — and every jump that leaves the blob, so the code's behaviour does not depend on
where it sits, and the object needs no relocations.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from . import attest
from .errors import UsageError

EM = {"x86_64": 62, "aarch64": 183}
TOOLS = ("nverify", "angr", "pyvex", "claripy", "z3-solver", "bitwuzla", "cvc5", "capstone", "lief",
         "unicorn", "cryptography")


def elf_object(code: bytes, name: str, arch: str) -> bytes:
    """An ELF64 little-endian ET_REL with .text = `code` and a global STT_FUNC `name` at 0."""
    shstr = b"\0.text\0.symtab\0.strtab\0.shstrtab\0.note.GNU-stack\0"
    strtab = b"\0" + name.encode() + b"\0"
    # null symbol, the .text section symbol (local), then the global function
    symtab = bytes(24) + struct.pack("<IBBHQQ", 0, 3, 0, 1, 0, 0) \
        + struct.pack("<IBBHQQ", 1, (1 << 4) | 2, 0, 1, 0, len(code))
    align = 16 if arch == "x86_64" else 4
    off = 64
    layout = []
    for data, a in ((code, align), (symtab, 8), (strtab, 1), (shstr, 1)):
        off = -(-off // a) * a
        layout.append(off)
        off += len(data)
    shoff = -(-off // 8) * 8

    def sh(name_off, kind, flags, offset, size, link=0, info=0, addralign=1, entsize=0) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name_off, kind, flags, 0, offset, size, link, info, addralign, entsize)

    sections = [bytes(64),
                sh(1, 1, 0x6, layout[0], len(code), addralign=align),               # .text: AX
                sh(7, 2, 0, layout[1], len(symtab), link=3, info=2, addralign=8, entsize=24),
                sh(15, 3, 0, layout[2], len(strtab)),
                sh(23, 3, 0, layout[3], len(shstr)),
                sh(33, 1, 0, layout[3] + len(shstr), 0)]                           # no exec stack
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 1, EM[arch], 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(sections), 4)
    out = bytearray(header)
    for data, at in zip((code, symtab, strtab, shstr), layout, strict=True):
        out += bytes(at - len(out)) + data
    out += bytes(shoff - len(out))
    for s in sections:
        out += s
    return bytes(out)


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for tool in TOOLS:
        try:
            found[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            found[tool] = None
    return found


def statement(result: dict, spec_text: str, files: dict[str, bytes], provenance: dict | None,
              signer: str) -> dict:
    """The in-toto Statement v1 for a proven result: the emitted files are its subjects."""
    import hashlib

    subjects = [{"name": n, "digest": {"sha256": hashlib.sha256(d).hexdigest()}} for n, d in files.items()]
    predicate = {
        "verdict": result["verdict"],
        "message": result.get("message", ""),
        "function": result["spec"]["function"],
        "blob": result["blob"],
        "spec": {"sha256": result["spec"]["sha256"], "path": result["spec"]["path"], "text": spec_text},
        "arch": result["blob"]["arch"],
        "abi": result["abi"],
        "options": result["options"],
        "paths": result["paths"],
        "model": result.get("model"),
        "cosim": result.get("cosim"),
        "obligations": result["obligations"],
        "seconds": result["seconds"],
        "tools": versions(),
        "generator": provenance,
        "signer": {"sha256": signer},
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {"_type": attest.STATEMENT_TYPE, "subject": subjects, "predicateType": attest.PREDICATE_TYPE,
            "predicate": predicate}


def emit(directory: str, code: bytes, result: dict, spec_text: str, private_key,
         provenance: dict | None = None) -> list[Path]:
    """Write NAME.bin, NAME.o and NAME.bin.intoto.json into `directory`, all or none."""
    name = result["spec"]["function"]
    d = Path(directory)
    created = not d.exists()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--emit {directory}: cannot create the directory: {e.strerror or e}") from None
    files = {f"{name}.bin": code, f"{name}.o": elf_object(code, name, result["blob"]["arch"])}
    st = statement(result, spec_text, files, provenance, attest.fingerprint(private_key.public_key()))
    envelope = attest.sign_envelope(st, private_key)
    import json

    outputs = {d / n: (data, 0o644) for n, data in files.items()}
    outputs[d / f"{name}.bin.intoto.json"] = ((json.dumps(envelope, indent=2) + "\n").encode(), 0o644)
    try:
        attest.write_files(outputs)
    except BaseException:
        if created:
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    return list(outputs)

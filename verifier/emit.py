"""On PROVEN: NAME.bin, NAME.o and the signed NAME.bin.intoto.json (DESIGN §6), all or nothing.

NAME.o is a minimal ELF64 relocatable object: one .text section holding exactly the proven
bytes and one global function symbol. Placing the bytes at another address than the one they
were proven at loses nothing: the machine model refuses (as unsupported) every instruction
that could observe the code's own address — rip-relative `lea`, `adr`/`adrp`, calls inside
the blob — and every jump that leaves the blob, so the code's behaviour does not depend on
where it sits.

A unit with read-only data (verifier/rodata.py) is more than bytes: its .o holds each region
as a read-only section of its own (its alignment kept, never merged) and the proven relocations
from .text to them, so that loading it again gives the same unit and the same sha256. Raw bytes
cannot carry data or relocations, so no NAME.bin is written then: NAME.o and NAME.o.intoto.json.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from . import attest
from .errors import UnsupportedError, UsageError

EM = {"x86_64": 62, "aarch64": 183}
TOOLS = ("nverify", "angr", "pyvex", "claripy", "z3-solver", "bitwuzla", "cvc5", "capstone", "lief",
         "unicorn", "cryptography")


def elf_object(code: bytes, name: str, arch: str, rodata: tuple = (), fixups: tuple = ()) -> bytes:
    """An ELF64 little-endian ET_REL with .text = `code` and a global STT_FUNC `name` at 0; with
    read-only data, a section .rodata.nverify.<i> per region and .rela.text linking them."""
    n = len(rodata)
    names = [".text", *(f".rodata.nverify.{i}" for i in range(n)), ".rela.text", ".symtab", ".strtab",
             ".shstrtab", ".note.GNU-stack"]
    shstr = b"\0" + b"".join(s.encode() + b"\0" for s in names)
    at = {s: shstr.index(b"\0" + s.encode() + b"\0") + 1 for s in names}
    strtab = b"\0" + name.encode() + b"\0"
    # sections: 0 null, 1 .text, 2..n+1 the regions, then .rela.text, .symtab, .strtab, .shstrtab, note
    rela_i, symtab_i = n + 2, n + 3
    # symbols: null, the section symbols of .text and of each region (local), then the function
    symtab = bytes(24) + b"".join(struct.pack("<IBBHQQ", 0, 3, 0, 1 + i, 0, 0) for i in range(n + 1)) \
        + struct.pack("<IBBHQQ", 1, (1 << 4) | 2, 0, 1, 0, len(code))
    rela = b"".join(struct.pack("<QQq", f.at, ((2 + f.region) << 32) | f.rtype, f.target) for f in fixups)
    align = 16 if arch == "x86_64" else 4
    blobs = [(code, align), *((r.data, r.align) for r in rodata), (rela, 8), (symtab, 8), (strtab, 1), (shstr, 1)]
    off = 64
    layout = []
    for data, a in blobs:
        off = -(-off // a) * a
        layout.append(off)
        off += len(data)
    shoff = -(-off // 8) * 8

    def sh(name_off, kind, flags, offset, size, link=0, info=0, addralign=1, entsize=0) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name_off, kind, flags, 0, offset, size, link, info, addralign, entsize)

    sections = [bytes(64),
                sh(at[".text"], 1, 0x6, layout[0], len(code), addralign=align),             # .text: AX
                *(sh(at[f".rodata.nverify.{i}"], 1, 0x2, layout[1 + i], len(r.data), addralign=r.align)
                  for i, r in enumerate(rodata)),                                            # A, read-only
                sh(at[".rela.text"], 4, 0x40, layout[n + 1], len(rela), link=symtab_i, info=1, addralign=8,
                   entsize=24),
                sh(at[".symtab"], 2, 0, layout[n + 2], len(symtab), link=symtab_i + 1, info=n + 2, addralign=8,
                   entsize=24),
                sh(at[".strtab"], 3, 0, layout[n + 3], len(strtab)),
                sh(at[".shstrtab"], 3, 0, layout[n + 4], len(shstr)),
                sh(at[".note.GNU-stack"], 1, 0, layout[n + 4] + len(shstr), 0)]            # no exec stack
    assert rela_i == n + 2
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 1, EM[arch], 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(sections), symtab_i + 2)
    out = bytearray(header)
    for (data, _), where in zip(blobs, layout, strict=True):
        out += bytes(where - len(out)) + data
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
         provenance: dict | None = None, unit: tuple = ((), ())) -> list[Path]:
    """Write NAME.bin, NAME.o and NAME.bin.intoto.json into `directory`, all or none; for a unit
    with read-only data (`unit`: its regions and fixups), NAME.o and NAME.o.intoto.json."""
    name = result["spec"]["function"]
    d = Path(directory)
    created = not d.exists()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--emit {directory}: cannot create the directory: {e.strerror or e}") from None
    rodata, fixups = unit
    if any(r.links for r in rodata):
        raise UnsupportedError(f"--emit: {name}'s read-only data holds code addresses (a jump table); emitting "
                               "it is not supported yet: link the object the proof was made from, whose unit "
                               "sha256 the result names")
    obj = elf_object(code, name, result["blob"]["arch"], rodata, fixups)
    files = {f"{name}.bin": code, f"{name}.o": obj} if not fixups else {f"{name}.o": obj}
    st = statement(result, spec_text, files, provenance, attest.fingerprint(private_key.public_key()))
    envelope = attest.sign_envelope(st, private_key)
    import json

    outputs = {d / n: (data, 0o644) for n, data in files.items()}
    outputs[d / f"{next(iter(files))}.intoto.json"] = ((json.dumps(envelope, indent=2) + "\n").encode(), 0o644)
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

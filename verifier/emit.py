"""On PROVEN: NAME.bin, NAME.o and the signed NAME.bin.intoto.json (DESIGN §6), all or nothing.

NAME.o is a minimal ELF64 relocatable object: one .text section holding exactly the proven
bytes and one global function symbol. Placing the bytes at another address than the one they
were proven at loses nothing: where the code observes its own address (rip-relative `lea`,
`adr`, the return address of a call inside the blob) that address is the symbol `$code` of
the proof, which holds for every value of it that lies as the code's section did (its alignment,
and the code's offset past it: the .o keeps both; raw bytes are not written when that matters),
and every other such instruction is refused, as is every jump that leaves the blob.

A unit with read-only data (verifier/rodata.py) is more than bytes: its .o holds each region
as a read-only section of its own (its alignment kept, never merged), the proven relocations
from .text to them and from a jump table's entries back to .text, so that loading it again
gives the same unit and the same sha256. So does a unit with parts in other sections (gcc's
`.cold` parts, helpers of -ffunction-sections code): each part is a section of its own and the
branches between them are relocations. Raw bytes cannot carry data or relocations, nor an
entry other than their first byte (a unit holding a helper before the function), so no
NAME.bin is written then: NAME.o and NAME.o.intoto.json. Before anything is written the .o is
loaded back: if it is not the proven unit (the same sha256), nothing is emitted.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from . import attest
from .errors import UsageError
from .rodata import A64_ADD_LO12

EM = {"x86_64": 62, "aarch64": 183}
TOOLS = ("nverify", "angr", "pyvex", "claripy", "z3-solver", "bitwuzla", "cvc5", "capstone", "lief",
         "unicorn", "cryptography")


def elf_object(code: bytes, name: str, arch: str, rodata: tuple = (), fixups: tuple = (), entry: int = 0,
               place: tuple[int, int] = (1, 0), span: int = 0, parts: tuple = ()) -> bytes:
    """An ELF64 little-endian ET_REL with .text = `code` and a global STT_FUNC `name` at `entry`;
    with read-only data, a section .rodata.nverify.<i> per region, .rela.text linking the code to
    them and .rela.rodata.nverify.<i> linking a jump table's entries to the code.
    `place` = (align, lead): the proof assumed the code lies `lead` bytes past an `align` boundary
    (its section's, entry._code_base), so .text is aligned so and starts with `lead` trap bytes.
    (Without it, `lea rax, [rip+f]; and eax, 63` proven 16 for f 16 bytes into a 64-aligned
    section returned 32 from the emitted .o.)
    With parts in other sections (verifier/pieces.py: `span` bytes lie together, `parts` are the
    [start, end) of the others in `code`), .text holds the span and each part is a section
    .text.nverify.<i> of its own with a local function covering it, and the branches between them
    are relocations against the section symbol of the piece their target lies in."""
    n, m = len(rodata), len(parts)
    align, lead = place
    trap = b"\xcc" if arch == "x86_64" else b"\x00\x00\x00\x00"
    pad = (trap * lead)[:lead]
    unit = code
    code, entry = pad + (unit[:span] if parts else unit), entry + lead
    pieces = [(0, len(code) - lead, lead), *((a, b, 0) for a, b in parts)]   # (start, end, shift) in the unit

    def home(at: int) -> int:
        """The piece (0: .text, i + 1: part i) holding unit offset `at`."""
        return next(i for i, (a, b, _) in enumerate(pieces) if a <= at < b)

    # section 0 is null, 1 .text, 2..n+1 the regions, n+2.. the parts; symbols: null, then each
    # section's symbol (symbol k is section k), the local functions, then the function
    def piece_section(i: int) -> int:
        return 1 if i == 0 else n + 1 + i

    # lld (14+) relaxes `adrp x, S; add x, x, :lo12:S` to `nop; adr x, S` when both relocations name
    # the same symbol with addend 0: a jump straight to the `add` then ignores x. The proof keeps the
    # `add` an addition (ld.bfd does), so here the `add` names a local object at the region's start
    # (the symbols after the functions), which lld never pairs with the section's own symbol.
    lo12_sym = 1 + n + m + 1 + (1 if entry > lead else 0) + m
    relas_of: list[list[bytes]] = [[] for _ in pieces]
    for f in fixups:
        at = home(f.at)
        where = f.at - pieces[at][0] + pieces[at][2]
        if f.region >= 0:       # an `add :lo12:` names the region's own symbol, not its section: see below
            sym, addend = (lo12_sym + f.region if f.rtype == A64_ADD_LO12 else 2 + f.region), f.target
        else:       # a branch: against the piece its target lies in (x86: the field ends the jump)
            dest = home(f.target + (4 if arch == "x86_64" else 0))
            sym, addend = piece_section(dest), f.target - pieces[dest][0] + pieces[dest][2]
        relas_of[at].append(struct.pack("<QQq", where, (sym << 32) | f.rtype, addend))
    # exactly the alignment the proof assumed (x86: 1 when it assumed none; a 16 would make a unit whose
    # code observes its own address load back as one assuming 16: another digest); AArch64 runs only
    # from 4-byte boundaries
    code_align = align if arch == "x86_64" else max(align, 4)
    content = [(".text", 1, 0x6, code, code_align, 0, 0),
               *((f".rodata.nverify.{i}", 1, 0x2, r.data, r.align, 0, 0) for i, r in enumerate(rodata)),
               *((f".text.nverify.{i}", 1, 0x6, unit[a:b], 16 if arch == "x86_64" else 4, 0, 0)
                 for i, (a, b) in enumerate(parts))]
    relas = [(".rela.text" if i == 0 else f".rela.text.nverify.{i - 1}", b"".join(r), piece_section(i))
             for i, r in enumerate(relas_of) if r]
    relas += [(f".rela.rodata.nverify.{i}", b"".join(struct.pack("<QQq", k.at, (1 << 32) | k.rtype, k.target + lead)
                                                    for k in r.links), 2 + i)
              for i, r in enumerate(rodata) if r.links]
    symtab_i = len(content) + 1 + len(relas)
    strtab = b"\0" + name.encode() + b"\0" + name.encode() + b".unit\0"
    symtab = bytes(24) + b"".join(struct.pack("<IBBHQQ", 0, 3, 0, 1 + i, 0, 0) for i in range(n + 1 + m))
    if entry > lead:     # the functions before the entry, as one local function the entry calls into
        symtab += struct.pack("<IBBHQQ", len(name) + 2, 2, 0, 1, lead, len(code) - lead)
    for i, (a, b) in enumerate(parts):      # each part, as the local function the unit reaches there
        symtab += struct.pack("<IBBHQQ", len(name) + 2, 2, 0, n + 2 + i, 0, b - a)
    for i, r in enumerate(rodata):          # each region, as a local object (the `add :lo12:` symbol)
        symtab += struct.pack("<IBBHQQ", len(name) + 2, 1, 0, 2 + i, 0, len(r.data))
    symtab += struct.pack("<IBBHQQ", 1, (1 << 4) | 2, 0, 1, entry, len(code) - entry)
    sections = [*content, *((nm, 4, 0x40, data, 8, symtab_i, info) for nm, data, info in relas),
                (".symtab", 2, 0, symtab, 8, symtab_i + 1, len(symtab) // 24 - 1), (".strtab", 3, 0, strtab, 1, 0, 0)]
    names = [s[0] for s in sections] + [".shstrtab", ".note.GNU-stack"]
    shstr = b"\0" + b"".join(nm.encode() + b"\0" for nm in names)
    sections += [(".shstrtab", 3, 0, shstr, 1, 0, 0), (".note.GNU-stack", 1, 0, b"", 1, 0, 0)]   # no exec stack
    out = bytearray(64)
    headers = [bytes(64)]
    for nm, kind, flags, data, align_, link, info in sections:
        out += bytes(-len(out) % align_)
        entsize = 24 if kind in (2, 4) else 0
        headers.append(struct.pack("<IIQQQQIIQQ", shstr.index(b"\0" + nm.encode() + b"\0") + 1, kind, flags, 0,
                                   len(out), len(data), link, info, align_, entsize))
        out += data
    out += bytes(-len(out) % 8)
    shoff = len(out)
    out[:64] = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 1, EM[arch], 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(headers), len(headers) - 2)
    for h in headers:
        out += h
    return bytes(out)


def _same_unit(obj: bytes, name: str, result: dict) -> None:
    """The .o must load as the very unit that was proven (its sha256): what a user links is then
    what the attestation names. Checked on the written bytes, so a unit this writer cannot carry
    exactly is refused rather than emitted as something else."""
    import tempfile

    from .blob import load
    from .errors import NVerifyError

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.o"
        path.write_bytes(obj)
        try:
            again = load(path, symbol=name).sha256
        except NVerifyError as e:
            again = f"not loadable ({e})"
    if again != result["blob"]["sha256"]:
        raise UsageError(f"--emit: the object written for {name} does not load as the proven unit "
                         f"(sha256 {result['blob']['sha256'][:16]}…, got {again[:60]}): link the object the "
                         "proof was made from, whose unit the result names")


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
         provenance: dict | None = None, unit: tuple = ((), (), 0)) -> list[Path]:
    """Write NAME.bin, NAME.o and NAME.bin.intoto.json into `directory`, all or none; for a unit
    with read-only data (`unit`: its regions and fixups), NAME.o and NAME.o.intoto.json."""
    name = result["spec"]["function"]
    d = Path(directory)
    created = not d.exists()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--emit {directory}: cannot create the directory: {e.strerror or e}") from None
    rodata, fixups, entry, *rest = unit
    place = rest[0] if rest else (1, 0)
    span, parts = (rest[1], rest[2]) if len(rest) > 2 else (0, ())
    obj = elf_object(code, name, result["blob"]["arch"], rodata, fixups, entry, place, span, parts)
    _same_unit(obj, name, result)
    # raw bytes carry neither data nor relocations, nor an entry point other than their first byte,
    # nor the alignment a proof about the code's own address assumed
    raw = not fixups and not rodata and not entry and place[0] <= (1 if result["blob"]["arch"] == "x86_64" else 4)
    files = {f"{name}.bin": code, f"{name}.o": obj} if raw else {f"{name}.o": obj}
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

"""Symbol tables of every object format -> the function a linker binds to a name, and its extent.

Each format reader (verifier/elfload.py, verifier/formats.py) turns its file into an `ObjectFile`
of plain records; `unit` then resolves a name the way a static linker does and cuts out the
verified unit, the same way for ELF, Mach-O, PE and COFF:

- a global or weak definition wins over local ones of the same name (what another object's
  reference binds to); two global definitions, several locals and no global, or a local
  definition beside an undefined global of the name are ambiguous: an input error naming both;
- a function is a symbol typed as one, or an untyped (NOTYPE) symbol in an executable section,
  as hand-written assembly without `.type` leaves it; data, IFUNC resolvers and absolute
  symbols are refused;
- without a size, a function extends to the next boundary in its section (see `ObjectFile`)
  or the section's end, and the blob says so (`Blob.extent_note`). Over-estimating is sound:
  the bytes of one section stay together through linking, every relocation over the whole
  extent is refused (verifier/relocs.py), and only the bytes execution reaches are lifted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import pieces, rodata
from .blob import Blob
from .errors import BlobError, UnsupportedError
from .relocs import Reloc, check_relocations

# What a symbol is, as far as binding and extents care.
FUNCTION, NOTYPE, DATA, IFUNC, SECTION, OTHER = "function", "notype", "data", "ifunc", "section", "other"


@dataclass(frozen=True)
class Section:
    key: int                  # the format's index of the section
    name: str
    start: int                # address of its first byte (0 in an object: offsets are section-relative)
    content: bytes
    executable: bool
    writable: bool = True     # unknown counts as writable: only data known read-only may be trusted
    # Read-only data a function of the same object may take into its verified unit
    # (verifier/rodata.py): known allocated, read-only, not executable, in no COMDAT group and
    # not a string-merging section. `piece`: the entity size of a constant-merging section
    # (SHF_MERGE), whose entities the linker may deduplicate one by one; 0 otherwise.
    rodata: bool = False
    align: int = 1
    piece: int = 0
    grouped: bool = True      # in a COMDAT group (another object's copy may be linked instead)
    # ELF: code the linker places as any other (elfload._plain_code): a part of a function may lie
    # only there (verifier/pieces.py). Not `.init` (run at start), `.gnu.warning` (dropped), a
    # merging section (cut into entities, duplicates dropped), ...
    plain_code: bool = False
    # One atom of a Mach-O section (verifier/macho_relocs.py), which the linker may place apart
    # from the rest of it: a reference whose operand leaves it is refused (rodata.collect).
    atom: bool = False

    @property
    def end(self) -> int:
        return self.start + len(self.content)


@dataclass(frozen=True)
class Symbol:
    name: str
    section: Section | None   # None: undefined, absolute or common
    value: int                # in its section's coordinates
    size: int                 # 0: not recorded
    binding: str              # "global", "weak" or "local"
    kind: str                 # FUNCTION, NOTYPE, DATA, IFUNC, SECTION or OTHER
    defined: bool = True

    def where(self) -> str:
        if self.section is None:
            return "no section"
        return f"{self.section.name}+{self.value - self.section.start:#x}"


@dataclass
class ObjectFile:
    fmt: str                  # "elf", "macho", "pe" or "coff"
    arch: str
    relocatable: bool         # an object (offsets per section) rather than an image (one address space)
    bias: int                 # added to an address to give the blob's base
    symbols: list[Symbol] = field(default_factory=list)
    relocations: list[Reloc] = field(default_factory=list)
    bounds: list[int] = field(default_factory=list)   # other known function starts (images)
    # Which symbols end a size-less function: Mach-O's linker splits a section at every symbol,
    # so every one does; elsewhere a section stays whole and local untyped labels (a loop's
    # `loop:`, AArch64's `$x`) lie inside functions.
    all_symbols_bound: bool = False
    display: Callable[[str], str] = str     # a name as the user writes it (Mach-O drops the `_`)


@dataclass(frozen=True)
class Extent:
    symbol: Symbol
    section: Section
    start: int
    end: int
    note: str | None          # how the end was found, when the symbol has no size


def unit(path: str, obj: ObjectFile, names: list[str], explicit: bool) -> Blob:
    """The function the linker binds to the first of `names` defined in `obj`, as a `Blob`."""
    sym = resolve(path, obj, names, explicit)
    ext = extent(path, obj, sym)
    sec = ext.section
    # Mach-O's linker moves each symbol's atom on its own: a callee there need not stay in reach
    alone = not obj.relocatable or obj.all_symbols_bound
    lo, hi, callees = (ext.start, ext.end, []) if alone else _with_callees(path, obj, ext)
    if obj.fmt == "elf" and obj.relocatable and not sec.plain_code:
        # As for a part (elfload._plain_code): SHF_MERGE code is cut into entities of its entry size
        # and one of each value kept (two equal instructions of f became one); ld runs `.init` code
        # inside _init at start; a COMDAT group's copy from another object may be linked instead.
        why = ("a merging section (SHF_MERGE): the linker drops its duplicate entities" if sec.piece else
               "which the linker does not place as plain code (.text or .text.*, ungrouped, not merged)")
        raise UnsupportedError(f"{path}: {obj.display(sym.name)} lies in {sec.name}, {why}, so its bytes are not "
                               "known to be the linked ones")
    code = sec.content[lo - sec.start: hi - sec.start]
    if len(code) != hi - lo:
        raise BlobError(f"{path}: symbol {sym.name!r} extends past its section: truncated file?")
    space = sec.key if obj.relocatable else None
    base = obj.bias + lo
    fn = obj.display(sym.name)
    regions: tuple[rodata.RoData, ...] = ()
    fixups: tuple[rodata.Fixup, ...] = ()
    rest = obj.relocations
    hot, parts, part_spans = code, [], []
    if obj.relocatable:
        assert space is not None
        code, jumps, rest, parts, part_spans = _with_parts(path, fn, obj, space, lo, hi, code)
        regions, fixups, rest = rodata.collect(path, fn, obj.arch, hot, rest, space, lo, hi, base)
        fixups += tuple(jumps)
    check_relocations(path, fn, rest, space, lo, hi)
    note = ext.note
    if parts:
        also = f"the unit also holds {', '.join(parts)}, parts of it in other sections that it calls or jumps to"
        note = f"{note}; {also}" if note else also
    if callees:
        also = (f"the unit also holds {', '.join(callees)}, which it calls or jumps to in {sec.name}, and the "
                "bytes between")
        note = f"{note}; {also}" if note else also
    blob = Blob(code=code, arch=obj.arch, base=base, entry=obj.bias + ext.start, name=sym.name, source=path,
                fmt=obj.fmt, section=sec.name, offset=lo - sec.start, extent_note=note,
                rodata=regions, fixups=fixups, align=sec.align, span=len(hot) if parts else 0,
                parts=tuple((w, w + n) for w, n in part_spans))
    try:
        blob.image     # noqa: B018 - linked for the placeholder layout once, here, to refuse early
    except rodata.LinkError as e:
        raise UnsupportedError(f"{path}: {fn}: its read-only data cannot be laid out near it: {e}") from None
    return blob


def _with_parts(path: str, fn: str, obj: ObjectFile, space: int, lo: int, hi: int, code: bytes):
    """The function's parts in other executable sections it jumps to (verifier/pieces.py), laid
    out after it: (the unit's bytes, the jumps between them as fixups, the relocations left,
    the parts' names). A part holding a call or taking a code address is refused."""
    from .isa import decode

    def part_of(s: Section, off: int):
        for f in obj.symbols:
            if f.section is s and is_function(f):
                e = extent(path, obj, f)
                if e.start <= off < e.end:
                    if e.end > s.end:
                        # as for the function itself (unit): past the section's end lies, once
                        # linked, whatever the linker puts next, not what the layout puts there
                        raise UnsupportedError(f"{path}: {fn}'s part {obj.display(f.name)} extends past the "
                                               f"end of its section {s.name}")
                    return e.start, e.end, obj.display(f.name)
        return None

    # parts are taken from ELF objects only (gcc's .text.unlikely); elsewhere such a jump is refused
    ps = pieces.parts(path, fn, obj.arch, obj.relocations, space, lo, hi, part_of) if obj.fmt == "elf" else []
    if not ps:
        return code, [], obj.relocations, [], []
    for p in ps:
        body = p.section.content[p.start - p.section.start: p.end - p.section.start]
        for insn in decode.disassemble(obj.arch, body, 0):
            if insn.mnemonic in ("call", "bl", "adr", "adrp", "blr") or "rip" in insn.op_str:
                raise UnsupportedError(f"{path}: {fn}'s part {p.name} ({p.section.name}) holds {insn.text()}: a part "
                                       "in another section that takes a code address is not modelled")
    full, where = pieces.layout(obj.arch, code, ps)
    jumps, rest = pieces.fixups(obj.arch, obj.relocations, space, lo, hi, ps, where)
    for p in ps:
        check_relocations(path, f"{fn}'s part {p.name}", rest, p.section.key, p.start, p.end)
    return full, jumps, rest, [p.name for p in ps], [(w, p.end - p.start) for p, w in zip(ps, where, strict=True)]


def _with_callees(path: str, obj: ObjectFile, ext: Extent) -> tuple[int, int, list[str]]:
    """The span of the function's section holding it and every function of that section it calls
    or jumps to directly (recursively): a branch the assembler resolved, with no relocation, to
    another function's first byte. Bytes of one section stay together through linking, so the
    span is what the linker emits; what lies between is verified only where execution goes."""
    from .isa import decode

    sec = ext.section
    starts = {s.value: s for s in obj.symbols if s.section is sec and is_function(s)}
    lo, hi, seen, names = ext.start, ext.end, {ext.start}, []
    todo = [(ext.start, ext.end)]
    while todo:
        a, b = todo.pop()
        for insn in decode.disassemble(obj.arch, sec.content[a - sec.start: b - sec.start], a):
            m = insn.mnemonic
            direct = insn.shape[-1:] == "i" and (m in ("call", "jmp", "b", "bl", "cbz", "cbnz", "tbz", "tbnz")
                                                or m.startswith(("j", "b.")))
            t = insn.imms[-1] if direct else None
            if t is None or a <= t < b or t in seen or t not in starts:
                continue
            seen.add(t)
            e = extent(path, obj, starts[t])
            names.append(obj.display(starts[t].name))
            todo.append((e.start, e.end))
            lo, hi = min(lo, e.start), max(hi, e.end)
    return lo, hi, names


def is_function(sym: Symbol) -> bool:
    return sym.defined and sym.section is not None and (
        sym.kind == FUNCTION or (sym.kind == NOTYPE and sym.section.executable))


def resolve(path: str, obj: ObjectFile, names: list[str], explicit: bool) -> Symbol:
    for name in names:
        sym = _bind(path, obj, name)
        if sym is not None:
            return _check_code(path, obj, sym)
    functions = sorted({obj.display(s.name) for s in obj.symbols if s.name and is_function(s)})
    more = f" and {len(functions) - 12} more" if len(functions) > 12 else ""
    hint = f"functions in the file: {', '.join(functions[:12])}{more}" if functions else "it has no function symbols"
    how = "" if explicit else " (the name comes from the spec's signature; override with --symbol)"
    raise BlobError(f"{path}: no function symbol {names[0]!r}{how}; {hint}")


def _bind(path: str, obj: ObjectFile, name: str) -> Symbol | None:
    same = [s for s in obj.symbols if s.name == name and s.kind != SECTION]
    defined = _distinct([s for s in same if s.defined])
    public = [s for s in defined if s.binding != "local"]
    if len(public) > 1:
        raise _ambiguous(path, name, public, "two global definitions")
    if public:
        return public[0]
    if defined and any(not s.defined and s.binding != "local" for s in same):
        raise BlobError(f"{path}: {name!r} is defined here only as a local symbol ({defined[0].where()}) "
                        "and is also an undefined global: the linker binds callers of it elsewhere")
    if len(defined) > 1:
        raise _ambiguous(path, name, defined, "several local definitions and no global one")
    return defined[0] if defined else None


def _distinct(symbols: list[Symbol]) -> list[Symbol]:
    """One per definition: an image lists a global in both its static and dynamic symbol tables."""
    seen: dict[tuple, Symbol] = {}
    for s in symbols:
        seen.setdefault((s.section.key if s.section else None, s.value, s.size, s.binding, s.kind), s)
    return list(seen.values())


def _ambiguous(path: str, name: str, found: list[Symbol], what: str) -> BlobError:
    places = " and ".join(f"{s.binding} {s.kind} at {s.where()}" for s in found[:2])
    return BlobError(f"{path}: {name!r} is ambiguous: {what} ({places}); a linker would not bind "
                     "it to one of them by name, so neither is verified")


def _check_code(path: str, obj: ObjectFile, sym: Symbol) -> Symbol:
    name = obj.display(sym.name)
    if sym.section is None:
        raise BlobError(f"{path}: {name!r} is bound to an absolute or common symbol, not to code in a section")
    if sym.kind == IFUNC:
        raise BlobError(f"{path}: {name!r} is an IFUNC: the linker binds it to the function its resolver "
                        "returns at load time, not to these bytes")
    if not sym.section.executable:
        raise BlobError(f"{path}: symbol {name!r} is not in a code section ({sym.section.name})")
    if not is_function(sym):
        raise BlobError(f"{path}: {name!r} is a {sym.kind} symbol, not a function")
    return sym


def extent(path: str, obj: ObjectFile, sym: Symbol) -> Extent:
    sec = sym.section
    assert sec is not None
    if not sec.start <= sym.value < sec.end:
        raise BlobError(f"{path}: symbol {sym.name!r} has no bytes in its section: truncated file?")
    if sym.size:
        return Extent(sym, sec, sym.value, sym.value + sym.size, None)
    after = [(s.value, obj.display(s.name)) for s in obj.symbols
             if s.section is sec and s.value > sym.value and _bounds(obj, s)]
    after += [(b, "") for b in obj.bounds if sym.value < b]
    end, what = min([a for a in after if a[0] < sec.end], default=(sec.end, ""))
    size = end - sym.value
    name = obj.display(sym.name)
    if end == sec.end:
        note = f"{name} has no size in the symbol table: its extent runs to the end of {sec.name} ({size} bytes)"
    else:
        to = f"the next symbol, {what}," if what else "the next known function start"
        note = f"{name} has no size in the symbol table: its extent runs to {to} at +{size:#x}"
    return Extent(sym, sec, sym.value, end, note)


def _bounds(obj: ObjectFile, s: Symbol) -> bool:
    """Does `s` end a size-less function before it?"""
    if not s.defined or s.kind == SECTION or not s.name:
        return False
    return obj.all_symbols_bound or s.binding != "local" or s.kind != NOTYPE

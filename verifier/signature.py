"""Parses the C prototype of `:nverify-signature` into plain parameter data (DESIGN §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .smt import ARRAY

TYPES: dict[str, tuple[int, bool]] = {
    **{f"int{w}_t": (w, True) for w in (8, 16, 32, 64)},
    **{f"uint{w}_t": (w, False) for w in (8, 16, 32, 64)},
    "size_t": (64, False),
    "bool": (8, False),
}
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PROTO = re.compile(rf"^\s*(?P<ret>{_IDENT})\s+(?P<name>{_IDENT})\s*\((?P<params>.*)\)\s*;?\s*$", re.S)
_PARAM = re.compile(rf"^(?P<const>const\s+)?(?P<type>{_IDENT})\s+(?P<name>{_IDENT})\s*"
                    rf"(?:\[\s*(?P<len>[0-9]+|{_IDENT})\s*\])?$")


class SignatureError(ValueError):
    """A prototype that is not of the supported form; the message says what to write instead."""


@dataclass(frozen=True)
class Param:
    name: str
    ctype: str
    bits: int
    signed: bool
    length: int | str | None = None   # None: scalar; int: fixed array; str: the length parameter's name
    const: bool = False

    @property
    def is_array(self) -> bool:
        return self.length is not None

    @property
    def is_bool(self) -> bool:
        return self.ctype == "bool"

    @property
    def is_variable(self) -> bool:
        return isinstance(self.length, str)

    def entry_names(self) -> list[str]:
        """Spec names of the entry values: x; p.0 … p.K-1; or p itself (an SMT array) for T p[n]."""
        if not self.is_array or self.is_variable:
            return [self.name]
        assert isinstance(self.length, int)
        return [f"{self.name}.{i}" for i in range(self.length)]

    def exit_names(self) -> list[str]:
        if not self.is_array or self.const:
            return []
        return [f"{n}.out" for n in self.entry_names()]


@dataclass(frozen=True)
class Signature:
    name: str
    ret: Param | None
    params: tuple[Param, ...]
    text: str

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def arrays(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.is_array)

    def declared(self) -> dict[str, int]:
        """Every name the spec may use, with its sort (smt.Sort: a bit width, or ARRAY(w))."""
        out: dict[str, int] = {}
        for p in self.params:
            for n in p.entry_names() + p.exit_names():
                out[n] = ARRAY(p.bits) if p.is_variable else p.bits
        if self.ret is not None:
            out["ret"] = self.ret.bits
        return out

    def describe_names(self) -> str:
        parts = []
        for p in self.params:
            if p.is_variable:
                parts.append(f"{p.name} (array of {p.length})" + ("" if p.const else f", {p.name}.out"))
            elif p.is_array:
                names = p.entry_names()
                parts.append(f"{names[0]} … {names[-1]}" if len(names) > 2 else " ".join(names))
                if p.exit_names():
                    outs = p.exit_names()
                    parts.append(f"{outs[0]} … {outs[-1]}" if len(outs) > 2 else " ".join(outs))
            else:
                parts.append(p.name)
        if self.ret is not None:
            parts.append("ret")
        return ", ".join(parts) if parts else "no names"


def parse_signature(text: str) -> Signature:
    m = _PROTO.match(text)
    if not m:
        raise SignatureError(f"{text!r} is not a C prototype like \"void sort3(int32_t p[3])\"")
    ret_t = m["ret"]
    ret: Param | None = None
    if ret_t != "void":
        ret = _scalar("ret", ret_t, "return type")
    raw = m["params"].strip()
    params: list[Param] = []
    if raw and raw != "void":
        for piece in raw.split(","):
            params.append(_param(" ".join(piece.split())))
    names = [p.name for p in params]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SignatureError(f"parameter name {sorted(dup)[0]!r} is used twice")
    if "ret" in names:
        raise SignatureError("a parameter may not be called 'ret': that name is the return value")
    by_name = {p.name: p for p in params}
    for p in params:
        if isinstance(p.length, str):
            n = by_name.get(p.length)
            if n is None:
                raise SignatureError(f"{p.name}[{p.length}]: {p.length!r} is not a parameter; the length of a "
                                     f"variable-length array is another integer parameter, e.g. "
                                     f"\"{p.ctype} {p.name}[n], size_t n\"")
            if n.is_array or n.is_bool:
                raise SignatureError(f"{p.name}[{p.length}]: the length {p.length!r} must be an integer "
                                     "parameter, not an array or bool")
        if isinstance(p.length, int) and not 1 <= p.length <= 4096:
            raise SignatureError(f"{p.name}[{p.length}]: array length must be between 1 and 4096")
    return Signature(name=m["name"], ret=ret, params=tuple(params), text=text)


def _scalar(name: str, ctype: str, what: str) -> Param:
    if ctype not in TYPES:
        raise SignatureError(f"unknown {what} {ctype!r}: use one of {', '.join(TYPES)}")
    bits, signed = TYPES[ctype]
    return Param(name=name, ctype=ctype, bits=bits, signed=signed)


def _param(piece: str) -> Param:
    m = _PARAM.match(piece)
    if not m:
        raise SignatureError(f"parameter {piece!r} is not of the form \"T name\", \"T name[K]\" "
                             "or \"const T name[K]\" (pointers are written as arrays)")
    p = _scalar(m["name"], m["type"], f"type of parameter {m['name']!r}")
    length: int | str | None = None
    if m["len"] is not None:
        length = int(m["len"]) if m["len"].isdigit() else m["len"]
    elif m["const"]:
        raise SignatureError(f"parameter {piece!r}: const applies to arrays only")
    return Param(name=p.name, ctype=p.ctype, bits=p.bits, signed=p.signed, length=length,
                 const=bool(m["const"]))

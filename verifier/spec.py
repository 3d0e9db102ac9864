"""Turns a spec file (SMT-LIB 2.6, DESIGN §3) into a checked `Spec`: signature, pre, post conjuncts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import smt
from .errors import SpecError
from .signature import Signature, SignatureError, parse_signature

FORBIDDEN = {
    "declare-const": "the tool declares every name from the signature; delete this line",
    "declare-fun": "the tool declares every name from the signature; use define-fun for helpers",
    "assert": "state requirements in (define-fun pre () Bool …) and (define-fun post () Bool …)",
    "check-sat": "nverify decides when to call the solver; delete this line",
    "check-sat-assuming": "nverify decides when to call the solver; delete this line",
    "push": "a spec is a single scope; delete this line",
    "pop": "a spec is a single scope; delete this line",
}
ALLOWED = {"set-info", "define-fun", "define-sort", "set-logic", "set-option"}
DEFAULT_LOOP_BOUND = 100
SPEC_DIR = Path(__file__).resolve().parent.parent / "specs"


@dataclass(frozen=True)
class Spec:
    path: str
    text: str
    signature: Signature
    pre: str                     # SMT-LIB term text, over the signature's names
    post: tuple[str, ...]        # top-level conjuncts of post; empty when post is absent
    loop_bound: int
    has_post: bool
    lengths: dict[str, int] = field(default_factory=dict)   # variable-length array -> largest n pre allows

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def names(self) -> dict[str, int]:
        return self.signature.declared()


@dataclass(frozen=True)
class _Form:
    head: str
    line: int
    items: list
    text: str


def resolve(name: str) -> Path:
    """A path, or the name of a spec in the library (`sort3` or `sort3.smt`)."""
    p = Path(name)
    if p.exists():
        return p
    stem = name[:-4] if name.endswith(".smt") else name
    lib = SPEC_DIR / f"{stem}.smt"
    if "/" not in name and lib.exists():
        return lib
    known = sorted(q.stem for q in SPEC_DIR.glob("*.smt")) if SPEC_DIR.is_dir() else []
    hint = f"; library specs: {', '.join(known)}" if known else ""
    raise SpecError(f"{name}: no such spec file{hint}")


def load(name: str, *, need_post: bool = True) -> Spec:
    path = resolve(name)
    try:
        text = path.read_bytes().decode("utf-8")   # no newline translation: sha256 is the file's
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read spec: {e}") from None
    return parse(text, str(path), need_post=need_post)


def parse(text: str, path: str = "<spec>", *, need_post: bool = True) -> Spec:
    forms = _read_forms(text, path)
    sig_text, loop_bound, defined = None, DEFAULT_LOOP_BOUND, {}
    for f in forms:
        where = f"{path}:{f.line}"
        if f.head in FORBIDDEN:
            raise SpecError(f"{where}: ({f.head} …) is not allowed in a spec: {FORBIDDEN[f.head]}")
        if f.head not in ALLOWED:
            raise SpecError(f"{where}: unknown command ({f.head} …); a spec holds set-info, "
                            "define-fun and define-sort only")
        if f.head == "set-info" and len(f.items) >= 2:
            key, val = f.items[1], f.items[2] if len(f.items) > 2 else None
            if key == ":nverify-signature":
                if not (isinstance(val, str) and val.startswith('"')):
                    raise SpecError(f'{where}: :nverify-signature takes a string: '
                                    '(set-info :nverify-signature "void f(int32_t p[3])")')
                sig_text = (val[1:-1], f.line)
            elif key == ":nverify-loop-bound":
                if not (isinstance(val, str) and val.isdigit() and int(val) > 0):
                    raise SpecError(f"{where}: :nverify-loop-bound takes a positive integer, got {val!r}")
                loop_bound = int(val)
        if f.head == "define-fun" and len(f.items) > 1 and isinstance(f.items[1], str):
            defined[f.items[1]] = f
    if sig_text is None:
        raise SpecError(f'{path}: no signature: add (set-info :nverify-signature "PROTOTYPE"), e.g. '
                        '(set-info :nverify-signature "void sort3(int32_t p[3])")')
    try:
        sig = parse_signature(sig_text[0])
    except SignatureError as e:
        raise SpecError(f"{path}:{sig_text[1]}: bad signature: {e}") from None
    for fname in ("pre", "post"):
        g = defined.get(fname)
        if g is not None and (len(g.items) < 4 or g.items[2] != [] or g.items[3] != "Bool"):
            raise SpecError(f"{path}:{g.line}: {fname} must be defined as (define-fun {fname} () Bool …)")
    if "post" not in defined and need_post:
        raise SpecError(f"{path}: no postcondition: add (define-fun post () Bool …) "
                        "(or compare against a reference blob with --ref)")
    body = _strip_info(text)
    tail = "\n(assert pre)" if "pre" in defined else "\n(assert true)"
    tail += "\n(assert post)" if "post" in defined else ""
    try:
        asserts = smt.parse_asserts(body + tail, sig.declared())
    except smt.ParseError as e:
        raise SpecError(_explain(e, path, sig, text)) from None
    pre = smt.to_text(asserts[0])
    post: tuple[str, ...] = ()
    if "post" in defined:
        post = tuple(smt.to_text(c) for c in smt.conjuncts(asserts[1]))
    lengths = {p.name: _largest_length(sig, p.length, pre, path) for p in sig.params
               if isinstance(p.length, str)}
    return Spec(path=path, text=text, signature=sig, pre=pre, post=post, loop_bound=loop_bound,
                has_post="post" in defined, lengths=lengths)


MAX_ELEMENTS = 4096


def _largest_length(sig: Signature, n: str, pre: str, path: str) -> int:
    """The largest value of length parameter `n` that `pre` allows (DESIGN §3), by binary search
    with z3; a pre that allows a negative or an unbounded n is a spec error saying how to bound it."""
    import z3

    param = sig.param(n)
    assert param is not None
    names = sig.declared()
    f = smt.parse_asserts(f"(assert {pre})", names)[0]
    v = z3.BitVec(n, param.bits)
    hint = f"bound it in pre, e.g. (define-fun pre () Bool (bvule {n} (_ bv16 {param.bits})))"

    def allows(cond) -> bool:
        s = z3.Solver()
        s.set("timeout", 10_000)
        s.add(f, cond)
        r = s.check()
        if r == z3.unknown:
            raise SpecError(f"{path}: cannot work out from pre how large {n} may be (the solver gave up); {hint}")
        return r == z3.sat

    if param.signed and allows(v < 0):
        raise SpecError(f"{path}: pre allows the length {n} to be negative; require (bvsge {n} (_ bv0 {param.bits}))")
    if not allows(v == v):
        raise SpecError(f"{path}: pre is unsatisfiable: no caller can meet it")
    if allows(z3.UGT(v, MAX_ELEMENTS)):
        raise SpecError(f"{path}: pre allows the length {n} to exceed {MAX_ELEMENTS} elements (or leaves it "
                        f"unbounded); {hint}")
    lo, hi = 0, MAX_ELEMENTS
    while lo < hi:                        # the largest allowed value lies in [lo, hi]
        mid = (lo + hi + 1) // 2
        if allows(z3.UGE(v, mid)):
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        raise SpecError(f"{path}: pre only allows {n} = 0: the array is always empty")
    return lo


def _strip_info(text: str) -> str:
    """z3 rejects unknown set-info keys in some versions: blank ours out, keeping line numbers."""
    return re.sub(r"\(set-info\s+:nverify-[a-z-]+\s+(\"[^\"]*\"|[^()\s]+)\s*\)",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def _explain(e: smt.ParseError, path: str, sig: Signature, text: str) -> str:
    where = f"{path}:{e.line}" if e.line and e.line <= text.count("\n") + 1 else path
    msg = " ".join(str(e).split())
    m = re.match(r"unknown constant (\S+)", msg)
    if m:
        return (f"{where}: {m.group(1)!r} is not declared — {_proto(sig)} has "
                f"{sig.describe_names()}")
    return f"{where}: {msg}"


def _proto(sig: Signature) -> str:
    return sig.text.split("(", 1)[0].split()[-1] + "(" + sig.text.split("(", 1)[1]


# --- a small s-expression reader that remembers line numbers --------------------------------

_TOKEN = re.compile(r'\s+|;[^\n]*|"(?:[^"]|"")*"|\|[^|]*\||[()]|[^\s()";|]+')


def _read_forms(text: str, path: str) -> list[_Form]:
    forms: list[_Form] = []
    stack: list[list] = []
    starts: list[tuple[int, int]] = []
    line, pos = 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SpecError(f"{path}:{line}: unexpected character {text[pos]!r}")
        tok = m.group(0)
        if tok == "(":
            stack.append([])
            starts.append((line, pos))
        elif tok == ")":
            if not stack:
                raise SpecError(f"{path}:{line}: unbalanced ')': remove it or add the matching '('")
            done = stack.pop()
            start_line, start_pos = starts.pop()
            if stack:
                stack[-1].append(done)
            else:
                head = done[0] if done and isinstance(done[0], str) else ""
                forms.append(_Form(head, start_line, done, text[start_pos:m.end()]))
        elif not tok.isspace() and not tok.startswith(";"):
            if not stack:
                raise SpecError(f"{path}:{line}: {tok!r} outside any (command …)")
            stack[-1].append(tok)
        line += tok.count("\n")
        pos = m.end()
    if stack:
        raise SpecError(f"{path}:{starts[-1][0]}: '(' is never closed: add the missing ')'")
    return forms

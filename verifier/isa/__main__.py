"""`python3 -m verifier.isa [--check]`: writes the verified instruction set into
docs/machine-model.md (between its BEGIN/END markers) from the tables, or checks it is current."""

from __future__ import annotations

import sys
from pathlib import Path

from . import aarch64, x86_64
from .table import Form

DOC = Path(__file__).resolve().parents[2] / "docs" / "machine-model.md"
BEGIN = "<!-- BEGIN verified-instruction-set (python3 -m verifier.isa) -->"
END = "<!-- END verified-instruction-set -->"


def _row(forms: list[Form]) -> str:
    f = forms[0]
    shapes = sorted({s for g in forms for s in g.shapes})
    widths = sorted({w for g in forms for w in g.widths})
    adds = []
    if any(g.undefined for g in forms):
        adds.append("undefined " + "".join(sorted({c for g in forms for c in g.undefined})) + "F fresh")
    if any(g.align for g in forms):
        adds.append(f"#GP unless {max(g.align for g in forms)}-aligned")
    if any(g.fix for g in forms):
        adds.append(", ".join(sorted({g.fix for g in forms if g.fix})))
    notes = "; ".join(sorted({g.note for g in forms if g.note}))
    return (f"| `{f.mnemonic}` | {' '.join(shapes) or '—'} | {' '.join(map(str, widths)) or 'any'} | "
            f"{'/'.join(sorted({g.enc for g in forms}))} | {'; '.join(adds) or '—'} | {notes} |")


def render() -> str:
    out = [BEGIN, ""]
    for title, table, deny in (("x86-64", x86_64.TABLE, x86_64.DENY), ("AArch64", aarch64.TABLE, aarch64.DENY)):
        groups: dict[str, list[list[Form]]] = {}
        for forms in table.values():
            groups.setdefault(forms[0].group or "other", []).append(forms)
        out += [f"#### {title}: verified forms", "",
                "| mnemonic | operand shapes | widths | encoding | what nverify adds to VEX | note |",
                "|---|---|---|---|---|---|"]
        for group in sorted(groups):
            out.append(f"| **{group}** | | | | | |")
            out += [_row(f) for f in sorted(groups[group], key=lambda fs: fs[0].mnemonic)]
        out += ["", f"#### {title}: denied (REFUTED, reason `policy`)", ""]
        by_reason: dict[str, list[str]] = {}
        for m, why in deny.items():
            by_reason.setdefault(why, []).append(m)
        out += [f"- {why}: {', '.join(f'`{m}`' for m in sorted(ms))}" for why, ms in sorted(by_reason.items())]
        out.append("")
    out.append(END)
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = head + render() + tail
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run python3 -m verifier.isa", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

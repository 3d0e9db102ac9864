"""Renders a result (its JSON form, the one source of truth) as a Rich terminal summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

STYLE = {"proven": "bold white on green", "refuted": "bold white on red", "unknown": "bold black on yellow"}


def render(result: dict[str, Any], console: Console) -> None:
    verdict = result["verdict"]
    title = Text(f" {verdict.upper()} ", style=STYLE[verdict])
    if result.get("reason"):
        title.append(f"  {result['reason']}", style="bold")
    blob, spec = result["blob"], result["spec"]
    ident = Text.assemble(
        (f"{spec.get('function', '?')}", "bold"), f"  {blob['arch']} ({result['abi']}), {blob['size']} bytes, ",
        f"{result.get('paths', 0)} paths, {result['seconds']:.2f} s\n",
        ("blob ", "dim"), f"{blob['path']}  sha256 {blob['sha256'][:16]}…\n",
        ("spec ", "dim"), f"{spec['path']}  sha256 {spec['sha256'][:16]}…",
    )
    parts: list[Any] = [ident]
    if blob.get("extent"):
        parts.append(Text(f"{blob['extent']}", style="dim"))
    if result.get("message"):
        parts.append(Text(result["message"]))
    if result.get("cosim"):
        parts.append(Text(cosim_line(result["cosim"]), style="dim"))
    console.print(Panel(Group(*parts), title=title, title_align="left", expand=True))
    console.print(_obligations(result["obligations"]))
    if result.get("counterexample"):
        console.print(_counterexample(result["counterexample"]))


def _obligations(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Obligations", title_justify="left", expand=False)
    for col in ("obligation", "kind", "result", "solver", "seconds"):
        t.add_column(col, justify="right" if col == "seconds" else "left")
    colour = {"proven": "green", "refuted": "red", "unknown": "yellow"}
    for r in rows:
        t.add_row(r["name"], r["kind"], Text(r["result"], style=colour.get(r["result"], "")), r["solver"],
                  f"{r['seconds']:.3f}")
    return t


def cosim_line(c: dict[str, Any]) -> str:
    """One line saying what co-simulation on the CPU oracle checked."""
    if not c.get("states"):
        return "co-simulation: " + (c.get("note") or "no state could be run on the oracle")
    where = f"the CPU ({c.get('cpu')})" if c.get("oracle") == "native" else c.get("cpu") or c.get("oracle")
    paths = c.get("paths") or {}
    run, returned = paths.get("run", 0), paths.get("returned", 0)
    over = f" over {run} of {returned} paths" if run < returned else \
        f" over all {returned} paths" if returned > 1 else " on its one path" if returned else ""
    line = f"co-simulated on {where}: {c['states']} entry states{over}, {c.get('mismatches', 0)} mismatches"
    return line + (f"; {c['uncovered']}" if c.get("uncovered") else "")


def replayed_on(cex: dict[str, Any]) -> str:
    """Who judged the replay: 'the CPU (<model>)', 'qemu-aarch64 …' or 'unicorn' (older results: unicorn)."""
    o = cex.get("oracle") or {}
    judge = o.get("judged_by", "unicorn")
    if judge == "native":
        return f"the CPU ({o.get('cpu', '?')})"
    if judge == "qemu":
        return o.get("cpu", "qemu")
    return "unicorn"


def _counterexample(cex: dict[str, Any]) -> Table:
    t = Table(title="Counterexample" + (f" (replayed on {replayed_on(cex)})" if cex.get("replayed") else ""),
              title_justify="left")
    t.add_column("name")
    t.add_column("value")
    t.add_column("", style="dim")
    rows = [(k, v, "input") for k, v in cex.get("inputs", {}).items()]
    rows += [(k, v, "symbolic model") for k, v in cex.get("symbolic", {}).items()]
    rows += [(k, v, "actual output") for k, v in cex.get("actual", {}).items()]
    rows += [(k, v, "expected") for k, v in cex.get("expected", {}).items()]
    if cex.get("replay"):
        rows.append(("replay", cex["replay"], replayed_on(cex)))
    if cex.get("note"):
        rows.append(("note", cex["note"], ""))
    for k, v, what in rows:   # plain Text: names like [rsp] are not Rich markup
        t.add_row(Text(k), Text(str(v)), Text(what))
    return t

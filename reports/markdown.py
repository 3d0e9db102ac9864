"""The audit report as Markdown, sized for a pull-request comment: everything the HTML report
says except the pictures (the CFG) and the long listings (VEX IR, decompiled code)."""

from __future__ import annotations

from .content import Report
from .terminal import replayed_on

ICON = {"proven": "✅", "refuted": "❌", "unknown": "⚠️"}


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def render(rep: Report) -> str:
    r = rep.result
    spec, model = r["spec"], r.get("model") or {}
    title = f"{ICON[rep.verdict]} **{rep.verdict.upper()}**" + (f" — `{rep.reason}`" if rep.reason else "")
    out = [f"## nverify: `{spec.get('function', '?')}` ({r['blob']['arch']}, {r['abi']})", "", title, "",
           rep.plain, ""]
    if r.get("message"):
        out += [f"> {r['message']}", ""]
    out += ["### Identity", ""] + _table(["", ""], [[k, f"`{v}`" if "sha256" in k else v]
                                                    for k, v in rep.identity]) + [""]
    out += ["### What was proven" if rep.verdict == "proven" else "### What was checked", ""]
    if model:
        out += [f"Under the **{model['abi']['name']}** calling convention ({model['abi']['summary']}), for every "
                f"entry state in which `pre` holds (`{model['pre']}`):", ""]
        rows = []
        for p in model["parameters"]:
            where = p["passed"]
            detail = (f"{p['memory']['size']} ({p['memory']['elements']} elements), {p['memory']['access']}, "
                      f"address {p['memory']['address']}" if "memory" in p else f"upper bits: {p['upper_bits']}")
            rows.append([f"`{p['type']}`", where, detail])
        out += _table(["parameter", "passed", "assumed"], rows) + [""]
        if model.get("returns"):
            out += [f"The result (`{model['returns']['type']}`) is read from `{model['returns']['register']}`.", ""]
        out += [f"- {s}" for s in model["stack"]]
        out += [f"- {model['other_registers']}",
                f"- must be preserved: {', '.join(model['preserved'])}",
                f"- no instruction runs more than {model['loop_bound']} times on one path",
                f"- never: {'; '.join(model['forbidden'])}", "",
                "**Assumptions (not proven):**", ""] + [f"- {a}" for a in model["assumptions"]] + [""]
    out += ["### Spec", "", "```smt", spec.get("text", "").rstrip(), "```", ""]
    if rep.names:
        out += _table(["name", "meaning"], [[f"`{n}`", m] for n, m in rep.names]) + [""]
    out += ["### Obligations", ""]
    out += _table(["obligation", "kind", "result", "solver", "seconds"],
                  [[o["name"], o["kind"], o["result"], o.get("solver") or "—", f"{o['seconds']:.3f}"]
                   for o in r.get("obligations", [])]) + [""]
    cex = r.get("counterexample")
    if cex:
        out += ["### Counterexample" if rep.verdict == "refuted" else "### An input that reaches it", ""]
        rows = [[f"`{k}`", f"`{v}`", "input"] for k, v in cex.get("inputs", {}).items()]
        rows += [[f"`{k}`", f"`{v}`", "expected"] for k, v in (cex.get("expected") or {}).items()]
        rows += [[f"`{k}`", f"`{v}`", "actual"] for k, v in (cex.get("actual") or {}).items()]
        out += _table(["name", "value", ""], rows) + [""]
        replay = f"replayed on {replayed_on(cex)}: " + ("confirmed" if cex.get("replayed") else "not confirmed")
        out += [f"{replay}" + (f" — {cex['replay']}" if cex.get("replay") else ""), ""]
    path = [i for i in rep.insns if i.on_path]
    out += ["### Disassembly", "", "<details><summary>" + f"{len(rep.insns)} instructions"
            + (f", {len(path)} on the failing path (marked ▶)" if path else "") + "</summary>", "", "```"]
    out += [f"{'▶' if i.on_path else ' '} {i.addr:#x}  {i.raw:<24} {i.text}" for i in rep.insns]
    out += ["```", "", "</details>", ""]
    out += ["### Reproduce", "", "```sh"] + rep.reproduce + ["```", ""]
    return "\n".join(out)

"""The audit report as one self-contained HTML file: inline CSS and SVG, no scripts, no
external references; prints cleanly (print stylesheet; collapsed sections open in print)."""

from __future__ import annotations

import re
from html import escape

from .content import Block, Report
from .terminal import replayed_on

CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 18px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; margin-top: 32px; }
.banner { border-radius: 8px; padding: 16px 20px; color: #fff; margin-bottom: 16px; }
.banner.proven { background: var(--ok); } .banner.refuted { background: var(--bad); }
.banner.unknown { background: var(--warn); }
.banner .verdict { font-size: 26px; font-weight: 700; letter-spacing: .04em; }
.banner p { margin: 6px 0 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; border-radius: 6px; }
.hash { word-break: break-all; }
tr.path td { background: #ffebe9; font-weight: 600; }
.untrusted { border-left: 4px solid var(--warn); padding-left: 8px; color: var(--muted); }
.tok-comment { color: #6e7781; } .tok-kw { color: #cf222e; font-weight: 600; } .tok-num { color: #0550ae; }
.tok-str { color: #0a3069; } .tok-name { color: #8250df; }
svg text { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px; }
ul.tight li { margin: 2px 0; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  details { display: block; } details > summary { list-style: none; font-weight: 600; }
  details:not([open]) > *:not(summary) { display: block; }
  .banner { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; } table, pre, svg { break-inside: avoid; }
}
"""
KEYWORDS = {"define-fun", "define-sort", "set-info", "forall", "exists", "let", "ite", "and", "or", "not",
            "=>", "=", "distinct", "select", "store", "true", "false"}


TOKENS = re.compile(r'(;[^\n]*)|("[^"]*")|(#x[0-9a-fA-F]+|#b[01]+|\b\d+\b)'
                    r'|([A-Za-z_=>!.$%&*+/<-][\w.=>!$%&*+/<-]*)|(\s+|.)')


def _highlight(text: str) -> str:
    out = []
    for m in TOKENS.finditer(text):
        comment, string, num, word, other = m.groups()
        if comment:
            out.append(f'<span class="tok-comment">{escape(comment)}</span>')
        elif string:
            out.append(f'<span class="tok-str">{escape(string)}</span>')
        elif num:
            out.append(f'<span class="tok-num">{escape(num)}</span>')
        elif word:
            cls = "tok-kw" if word in KEYWORDS or word.startswith("bv") else "tok-name" \
                if re.fullmatch(r"(ret|[a-z]\w*\.\d+(\.out)?|\w+\.out)", word) else ""
            out.append(f'<span class="{cls}">{escape(word)}</span>' if cls else escape(word))
        else:
            out.append(escape(other or ""))
    return "".join(out)


def _table(head: list[str], rows: list[list[str]], row_class: list[str] | None = None) -> str:
    h = "".join(f"<th>{escape(c)}</th>" for c in head) if any(head) else ""
    body = []
    for k, r in enumerate(rows):
        cls = f' class="{row_class[k]}"' if row_class and row_class[k] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    thead = f"<thead><tr>{h}</tr></thead>" if h else ""
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


def cfg_svg(blocks: list[Block]) -> str:
    """Basic blocks top to bottom in address order; fall-through arrows straight down, other edges
    routed in lanes to the right (forward) or left (back edges)."""
    line_h, pad, width, gap, left = 14, 6, 460, 26, 60
    y, pos = 10, {}
    for b in blocks:
        h = pad * 2 + line_h * len(b.insns)
        pos[b.start] = (y, h)
        y += h + gap
    lanes_r, lanes_l, edges = 0, 0, []
    for k, b in enumerate(blocks):
        by, bh = pos[b.start]
        for s in b.succs:
            ty, th = pos[s]
            if k + 1 < len(blocks) and s == blocks[k + 1].start:
                x = left + width / 2
                edges.append(f'<line x1="{x}" y1="{by + bh}" x2="{x}" y2="{ty}" class="e"/>')
            elif ty > by:
                lanes_r += 1
                x = left + width + 12 * lanes_r
                edges.append(f'<path d="M{left + width} {by + bh - 6} H{x} V{ty + 8} H{left + width}" class="e"/>')
            else:
                lanes_l += 1
                x = left - 12 * lanes_l
                edges.append(f'<path d="M{left} {by + bh - 6} H{x} V{ty + 8} H{left}" class="e back"/>')
    total_w = left + width + 12 * lanes_r + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{y}" viewBox="0 0 {total_w} {y}" '
             'role="img" aria-label="control-flow graph">',
             '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
             '<path d="M0,0 L8,4 L0,8 z" fill="#57606a"/></marker></defs>',
             '<style>.e{stroke:#57606a;stroke-width:1.2;fill:none;marker-end:url(#arrow)} .back{stroke:#9a6700}'
             ' .blk{fill:#f6f8fa;stroke:#57606a} .hot{fill:#ffebe9;stroke:#cf222e;stroke-width:2}</style>']
    for b in blocks:
        by, bh = pos[b.start]
        hot = any(i.on_path for i in b.insns)
        cls = "hot" if hot else "blk"
        parts.append(f'<rect x="{left}" y="{by}" width="{width}" height="{bh}" rx="4" class="{cls}"/>')
        for n, i in enumerate(b.insns):
            ty = by + pad + line_h * (n + 1) - 3
            parts.append(f'<text x="{left + 6}" y="{ty}">{escape(f"{i.addr:#x}  {i.text}"[:62])}</text>')
    parts += edges + ["</svg>"]
    return "".join(parts)


def render(rep: Report) -> str:
    r = rep.result
    spec, model = r["spec"], r.get("model") or {}
    fn = escape(spec.get("function", "?"))
    s = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>nverify: {fn} — '
         f'{rep.verdict}</title><meta name="viewport" content="width=device-width, initial-scale=1">'
         f"<style>{CSS}</style></head><body>",
         f'<h1>nverify audit report: <code>{fn}</code></h1>',
         f'<section id="verdict" class="banner {rep.verdict}"><div class="verdict">{rep.verdict.upper()}'
         + (f" — {escape(rep.reason)}" if rep.reason else "") + f"</div><p>{escape(rep.plain)}</p>"
         + (f"<p>{escape(r['message'])}</p>" if r.get("message") else "") + "</section>"]
    s.append('<section id="identity"><h2>Identity</h2>' + _table(
        ["", ""], [[escape(k), f'<span class="mono hash">{escape(v)}</span>' if "sha256" in k else escape(v)]
                   for k, v in rep.identity]) + "</section>")
    heading = "What was proven" if rep.verdict == "proven" else "What was checked"
    s.append(f'<section id="model"><h2>{heading}</h2>')
    if model:
        s.append(f"<p>Under the <b>{escape(model['abi']['name'])}</b> calling convention "
                 f"({escape(model['abi']['summary'])}), for <b>every</b> entry state in which <code>pre</code> "
                 f"holds (<code>{escape(model['pre'])}</code>), every path of execution behaves as follows.</p>")
        rows = []
        for p in model["parameters"]:
            detail = (f"{p['memory']['size']} ({p['memory']['elements']} elements), {p['memory']['access']}; "
                      f"address {p['memory']['address']}" if "memory" in p else f"upper bits: {p['upper_bits']}")
            rows.append([f"<code>{escape(p['type'])}</code>", escape(p["passed"]), escape(detail)])
        s.append(_table(["parameter", "passed", "assumed"], rows))
        if model.get("returns"):
            s.append(f"<p>The result (<code>{escape(model['returns']['type'])}</code>) is read from "
                     f"<code>{escape(model['returns']['register'])}</code>.</p>")
        items = [*model["stack"], model["other_registers"],
                 "must be preserved: " + ", ".join(model["preserved"]),
                 f"no instruction runs more than {model['loop_bound']} times on one path (the loop bound)",
                 "never: " + "; ".join(model["forbidden"])]
        s.append('<ul class="tight">' + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>")
        s.append("<h3>Assumptions — what this report does <em>not</em> prove</h3><ul class=\"tight\">"
                 + "".join(f"<li>{escape(a)}</li>" for a in model["assumptions"]) + "</ul>")
    s.append("</section>")
    s.append(f'<section id="spec"><h2>Spec</h2><pre class="spec">{_highlight(spec.get("text", ""))}</pre>')
    if rep.names:
        s.append(_table(["name", "meaning"], [[f"<code>{escape(n)}</code>", escape(m)] for n, m in rep.names]))
    s.append("</section>")
    cex = r.get("counterexample")
    if cex:
        rows = [[f"<code>{escape(k)}</code>", f"<code>{escape(str(v))}</code>", "input"]
                for k, v in cex.get("inputs", {}).items()]
        rows += [[f"<code>{escape(k)}</code>", f"<code>{escape(str(v))}</code>", "expected"]
                 for k, v in (cex.get("expected") or {}).items()]
        rows += [[f"<code>{escape(k)}</code>", f"<code>{escape(str(v))}</code>", "actual"]
                 for k, v in (cex.get("actual") or {}).items()]
        replay = f"confirmed on {replayed_on(cex)}" if cex.get("replayed") else "not confirmed by replay"
        title = "Counterexample" if rep.verdict == "refuted" else "An input that reaches it"
        s.append(f'<section id="counterexample"><h2>{title}</h2>' + _table(["name", "value", ""], rows)
                 + f"<p>Replay: {escape(replay)}" + (f" — {escape(cex['replay'])}" if cex.get("replay") else "")
                 + "</p>")
        if r.get("trace"):
            s.append(f"<p>Failing path ({len(r['trace'])} instructions): <span class=\"mono\">"
                     + escape(" → ".join(r["trace"])) + "</span></p>")
        s.append("</section>")
    s.append('<section id="disassembly"><h2>Disassembly</h2>' + _table(
        ["address", "bytes", "instruction"],
        [[f"{i.addr:#x}", f'<span class="mono">{escape(i.raw)}</span>', f"<code>{escape(i.text)}</code>"]
         for i in rep.insns], ["path" if i.on_path else "" for i in rep.insns])
        + ("<p>Rows in red are on the failing path.</p>" if any(i.on_path for i in rep.insns) else "")
        + "</section>")
    s.append(f'<section id="cfg"><h2>Control-flow graph</h2>{cfg_svg(rep.blocks)}'
             "<p>Basic blocks in address order; straight arrows fall through, arrows on the right jump "
             "forward, on the left back (loops)" + ("; the failing path's blocks are red" if cex else "")
             + ".</p></section>")
    s.append('<section id="vex"><h2>Lifted VEX IR</h2><details><summary>The VEX IR angr executed, block by '
             f"block</summary><pre>{escape(rep.vex)}</pre></details></section>")
    s.append('<section id="decompiled"><h2>Decompiled pseudocode</h2><div class="untrusted"><p><b>Untrusted aid '
             "to reading.</b> angr's decompiler output is not part of the proof and may be wrong.</p>"
             + (f"<details><summary>pseudocode</summary><pre>{escape(rep.decompiled)}</pre></details>"
                if rep.decompiled else "<p>Not available for this function.</p>") + "</div></section>")
    s.append('<section id="obligations"><h2>Obligations</h2>' + _table(
        ["obligation", "kind", "solver", "seconds", "outcome"],
        [[escape(o["name"]), escape(o["kind"]), escape(o.get("solver") or "—"), f"{o['seconds']:.3f}",
          escape(o["result"])] for o in r.get("obligations", [])]) + "</section>")
    s.append('<section id="reproduce"><h2>How to reproduce</h2><p>Run the proof again:</p><pre>'
             + escape(rep.reproduce[0]) + "</pre><p>Check a signed attestation without re-running it:</p><pre>"
             + escape(rep.reproduce[1]) + "</pre></section>")
    s.append(f'<footer><p class="mono">nverify {escape(str(r.get("nverify", "")))}</p></footer></body></html>')
    return "\n".join(s)

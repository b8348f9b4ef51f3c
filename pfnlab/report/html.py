"""One self-contained HTML page per check: swim lanes, steps you can click, state at each step.

No network access: the page inlines its CSS, script and data. Click a step to see what it
changed and the whole model state after it; the causal pair (when given) is highlighted, and
the ledger and hang chain texts (when given) head each finding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment

from pfnlab.explore.findings import Finding, TraceStep


@dataclass
class Section:
    """One finding as the page shows it."""

    title: str
    finding: Finding
    notes: list[tuple[str, str]] = field(default_factory=list)   # (heading, text)
    causal: tuple[int, ...] = ()                                   # step indices


def _changes(st: TraceStep) -> list[list[str]]:
    out: list[list[str]] = []
    if st.action in ("write", "rmw", "lock", "unlock", "srcu_read_lock",
                     "srcu_read_unlock") and not st.failed_attempt:
        out.append([st.obj, st.field, repr(st.before), repr(st.after)])
    if st.action == "free":
        out.append([st.obj, "(freed)", "", "freed"])
    for action, name, fld, before, after, _fn in st.plain:
        if action != "read":
            out.append([name, fld, repr(before), repr(after)])
    for g in getattr(st, "ghosts", ()) or ():
        name, fld, before, after = g
        out.append([name, fld, repr(before), repr(after)])
    return out


def _summary(st: TraceStep) -> str:
    if st.action == "wait":
        return f"wait: {st.field}" + (" (not yet)" if st.failed_attempt else "")
    if st.action == "lock":
        return f"lock {st.obj}" + (" (contended)" if st.failed_attempt else "")
    if st.action == "unlock":
        return f"unlock {st.obj}"
    if st.action in ("srcu_read_lock", "srcu_read_unlock"):
        return f"{st.action} {st.obj}"
    if st.action == "free":
        return f"free {st.obj}"
    if st.action == "read":
        return f"{st.obj}.{st.field} = {st.before!r}"
    return f"{st.obj}.{st.field}: {st.before!r} -> {st.after!r}"


def _steps(f: Finding) -> list[dict[str, Any]]:
    return [
        {
            "i": st.index,
            "thread": st.thread,
            "fn": st.where[-1] if st.where else st.thread,
            "stack": list(st.where),
            "summary": _summary(st),
            "failed": st.failed_attempt,
            "changes": _changes(st),
            "notes": [str(n) for n in st.notes],
        }
        for st in f.trace
    ]


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 12px 20px; background: #1d2a3a; color: #fff; }
header h1 { font-size: 18px; margin: 0; }
main { display: flex; gap: 16px; padding: 16px 20px; align-items: flex-start; }
.finding { flex: 1 1 auto; min-width: 0; }
.finding h2 { font-size: 16px; margin: 16px 0 4px; }
.msg { color: #8a1c1c; margin: 0 0 4px; }
.minimal { color: #555; font-size: 12px; margin: 0 0 8px; }
pre.note { background: #f6f6f2; border-left: 3px solid #c9a227; padding: 6px 10px;
  white-space: pre-wrap; font-size: 12px; }
.lanes { display: grid; gap: 2px 8px; }
.lane-head { font-weight: 600; border-bottom: 2px solid #1d2a3a; padding: 2px 4px; }
.step { border: 1px solid #cfd6de; border-radius: 4px; padding: 2px 6px; cursor: pointer;
  font-size: 12px; background: #fff; }
.step:hover { background: #eef4fb; }
.step.sel { outline: 2px solid #2b6cb0; background: #e3eefb; }
.step.failed { color: #777; border-style: dashed; }
.step.causal { border: 2px solid #c53030; background: #fff1f1; }
.step .n { color: #888; margin-right: 4px; }
.step .fn { font-family: ui-monospace, monospace; }
aside { position: sticky; top: 8px; flex: 0 0 420px; max-height: 95vh; overflow: auto;
  border: 1px solid #cfd6de; border-radius: 6px; padding: 10px; background: #fbfcfd; }
aside h3 { margin: 0 0 6px; font-size: 14px; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
td, th { border-bottom: 1px solid #e3e7eb; padding: 2px 4px; text-align: left;
  vertical-align: top; font-family: ui-monospace, monospace; }
tr.changed td { background: #fff6d6; }
</style></head>
<body>
<header><h1>{{ title }}</h1>{% if subtitle %}<div>{{ subtitle }}</div>{% endif %}</header>
<main>
<div>
{{ extra_html|safe }}
{% for s in sections %}
<section class="finding" data-finding="{{ loop.index0 }}">
  <h2>{{ s.title }}</h2>
  <p class="msg">{{ s.finding.prop }} violated ({{ s.finding.kind }}): {{ s.finding.message }}</p>
  <p class="minimal">{{ s.finding.steps }} steps; {{ s.finding.minimal }}</p>
  {% for head, text in s.notes %}<pre class="note"><b>{{ head }}</b>
{{ text }}</pre>{% endfor %}
  <div class="lanes" style="grid-template-columns: repeat({{ s.threads|length }}, 1fr)">
    {% for t in s.threads %}<div class="lane-head">{{ t }}</div>{% endfor %}
    {% for st in s.steps %}
    <div class="step{% if st.failed %} failed{% endif %}{% if st.i in s.causal %} causal{% endif %}"
         style="grid-column: {{ s.threads.index(st.thread) + 1 }}"
         data-finding="{{ s.index }}" data-step="{{ st.i }}"
         title="{{ st.stack|join(' > ') }}">
      <span class="n">{{ st.i }}</span><span class="fn">{{ st.fn }}()</span><br>{{ st.summary }}
    </div>
    {% endfor %}
  </div>
</section>
{% endfor %}
</div>
{% if sections %}<aside id="detail"><h3>Click a step</h3><p>Its call stack, what it changed,
and the whole model state after it appear here.</p></aside>{% endif %}
</main>
<script id="data" type="application/json">{{ data|safe }}</script>
<script>
const DATA = JSON.parse(document.getElementById("data").textContent);
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;",
  ">": "&gt;", '"': "&quot;"}[c])); }
function stateAfter(f, i) {
  const st = JSON.parse(JSON.stringify(DATA.initial));
  const changed = new Set();
  for (const s of DATA.findings[f].steps) {
    if (s.i > i) break;
    for (const [obj, fld, , after] of s.changes) {
      (st[obj] = st[obj] || {})[fld] = after;
      if (s.i === i) changed.add(obj + "." + fld);
    }
  }
  return [st, changed];
}
function show(f, i) {
  document.querySelectorAll(".step.sel").forEach(e => e.classList.remove("sel"));
  document.querySelector(`.step[data-finding="${f}"][data-step="${i}"]`).classList.add("sel");
  const s = DATA.findings[f].steps.find(x => x.i === i);
  const [state, changed] = stateAfter(f, i);
  let h = `<h3>step ${s.i}: ${esc(s.thread)} in ${esc(s.fn)}()</h3>`;
  h += `<p class="stack">${s.stack.map(esc).join(" &gt; ")}</p>`;
  h += `<p>${esc(s.summary)}</p>`;
  if (s.notes.length) h += `<p><i>${s.notes.map(esc).join("<br>")}</i></p>`;
  h += "<h3>changed</h3>";
  h += s.changes.length ? "<table class='changes'>" + s.changes.map(([o, fl, b, a]) =>
      `<tr><td>${esc(o)}.${esc(fl)}</td><td>${esc(b)} -&gt; ${esc(a)}</td></tr>`).join("") +
      "</table>" : "<p>nothing (a read, a wait or a failed attempt)</p>";
  h += "<h3>state after this step</h3><table class='state'>";
  for (const obj of Object.keys(state)) for (const fld of Object.keys(state[obj])) {
    const key = obj + "." + fld;
    h += `<tr class="${changed.has(key) ? "changed" : ""}"><td>${esc(key)}</td>` +
         `<td>${esc(state[obj][fld])}</td></tr>`;
  }
  document.getElementById("detail").innerHTML = h + "</table>";
}
document.querySelectorAll(".step").forEach(e => e.addEventListener("click",
  () => show(+e.dataset.finding, +e.dataset.step)));
</script>
</body></html>
"""


def render_html(title: str, sections: list[Section], initial: dict[str, dict[str, str]],
                subtitle: str = "", extra_html: str = "") -> str:
    """The whole page as a string; ``extra_html`` is a trusted fragment shown first."""
    env = Environment(autoescape=True)
    tpl = env.from_string(_TEMPLATE)
    views = []
    for n, s in enumerate(sections):
        threads = list(dict.fromkeys(st.thread for st in s.finding.trace))
        views.append({
            "index": n,
            "title": s.title,
            "finding": s.finding,
            "notes": s.notes,
            "causal": set(s.causal),
            "threads": threads,
            "steps": _steps(s.finding),
        })
    data = {"initial": initial, "findings": [{"steps": v["steps"]} for v in views]}
    blob = json.dumps(data).replace("</", "<\\/")
    return tpl.render(title=title, subtitle=subtitle, sections=views, data=blob,
                      extra_html=extra_html)

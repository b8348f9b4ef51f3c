"""The thread report as mail-ready text (ASCII, at most 80 columns), Markdown and HTML.

Fixed text (quotes, questions, what each run stands for, notes) comes from
:mod:`pfnlab.thread.claims`; everything else (outcomes, verdicts, trace lines) from the
:class:`~pfnlab.thread.run.Report` computed at run time. Nothing here varies between runs
of the same model (no times), so the Markdown can be committed and compared.
"""

from __future__ import annotations

import html
import textwrap

from pfnlab.thread.claims import HOLDS
from pfnlab.thread.probes import PROBES
from pfnlab.thread.run import (
    MET,
    UNMET,
    ClaimResult,
    Evidence,
    Outcome,
    Report,
)
from pfnlab.verdicts import NOT_ESTABLISHED, VIOLATED, Verdict

WIDTH = 80
MARK = {MET: "+", UNMET: "-"}

INTRO = (
    "The November 2019 thread \"KVM: MMU: Do not treat ZONE_DEVICE pages as being "
    "reserved\", claim by claim. Each claim names the runs of the checker that test it "
    "and the outcome that would support it; the verdict is computed from what the "
    "checker found when this report was made. In the runs, '+' marks an outcome the "
    "claim predicts, '-' one it does not, '?' one the search could not decide; '!' marks "
    "a run the claim stands or falls by."
)
RULE = (
    "Verdict rule: no runs -> not testable by the model yet; a '!' run not as "
    "predicted -> refuted; every run as predicted -> supported; none -> refuted; "
    "some -> partly."
)


def _ascii(s: str) -> str:
    return s.encode("ascii", "replace").decode("ascii")


def _wrap(s: str, indent: str, width: int = WIDTH, first: str | None = None) -> list[str]:
    return textwrap.wrap(_ascii(s), width, initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=True) or [indent.rstrip()]


def _got(o: Outcome) -> str:
    bad = o.violated()
    if bad:
        return "violated: " + ", ".join(bad)
    verdicts = {o.got[p].verdict for p in o.test.props}
    if verdicts == {HOLDS}:
        how = f", exhaustive, {o.executions:,} executions" if o.exhaustive else ""
        return f"all hold{how}"
    return "; ".join(f"{p}: {_verdict(o.got[p])}" for p in o.test.props)


def _verdict(v: Verdict) -> str:
    if v.verdict == NOT_ESTABLISHED:
        return f"not established ({v.reason})"
    return v.verdict


def _expect(o: Outcome) -> str:
    t = o.test
    if t.expect == VIOLATED:
        return ("predicts " + " or ".join(t.props) + " violated") if len(t.props) < 3 \
            else f"predicts one of {len(t.props)} properties violated"
    if len(t.props) < 3:
        return "predicts " + " and ".join(t.props) + " hold"
    return f"predicts all {len(t.props)} properties hold"


def _mark(o: Outcome) -> str:
    return MARK.get(o.status, "?") + ("!" if o.test.essential else " ")


def _probe(name: str) -> str:
    return " (probe)" if name in PROBES else ""


def headline(cr: ClaimResult) -> str:
    """One line: the claim's verdict, as computed."""
    return cr.verdict.upper() if cr.verdict in ("supported", "refuted", "partly") \
        else cr.verdict


def _evidence_text(e: Evidence) -> list[str]:
    s = e.spec
    title = s.title or "trace"
    out = _wrap(f"{title}: {s.variant} / {s.scenario}, {s.prop}", "      ",
                first="    ")
    if not e.found:
        out += _wrap("(no such finding in this run)", "      ")
        return out
    out += _wrap(f"{e.message} ({e.kind}; minimal trace: {e.steps} steps, "
                 f"{e.preemptions} preemption{'s' if e.preemptions != 1 else ''}; "
                 "key steps:)", "      ")
    for ln in e.lines:
        out += _wrap(f"{ln.index:>3} {ln.thread}: {ln.where}: {ln.what}", " " * 10,
                     first="      ")
    return out


def claim_text(n: int, cr: ClaimResult) -> str:
    """One claim as mail-ready text."""
    c = cr.claim
    out = _wrap(f"[{n}] {c.id}: {c.who}, {c.date}", "    ", first="")
    out += _wrap(c.msgid, "    ")
    out += _wrap(f"\"{c.quote}\"", "     ", first="    ")
    out += _wrap(f"Question: {c.question}", "    ")
    out += _wrap(f"Verdict: {headline(cr)}", "    ")
    if c.untestable:
        out += _wrap(f"Why: {c.untestable}.", "    ")
    if cr.outcomes:
        out.append("    Runs:")
    for o in cr.outcomes:
        t = o.test
        out += _wrap(f"{_mark(o)} {t.variant}{_probe(t.variant)} / {t.scenario}: "
                     f"{t.shows}", "        ", first="    ")
        out += _wrap(f"{_expect(o)}; checker: {_got(o)}", "        ")
    for e in cr.evidence:
        out += _evidence_text(e)
    if c.note:
        out += _wrap(f"Note (fixed text): {c.note}", "    ")
    return "\n".join(out)


def render_text(report: Report) -> str:
    """The whole report as mail-ready text."""
    out = ["Who was right? The ZONE_DEVICE thread, checked by pfnlab", ""]
    out += _wrap(INTRO, "")
    out.append("")
    for n, cr in enumerate(report.results, 1):
        out += _wrap(f"{headline(cr)}", " " * 26,
                     first=f"  [{n:>2}] {cr.claim.id:<18}")
    out.append("")
    for n, cr in enumerate(report.results, 1):
        out.append(claim_text(n, cr))
        out.append("")
    out += _wrap(RULE, "")
    for name, v in PROBES.items():
        if any(o.test.variant == name for cr in report.results for o in cr.outcomes):
            out += _wrap(f"Probe {name}: {v.summary.removeprefix('probe: ')}; not a "
                         "registered variant, run only for this report.", "")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- Markdown
def _md_claim(n: int, cr: ClaimResult) -> list[str]:
    c = cr.claim
    out = [f"## {n}. {c.id}: {headline(cr)}", ""]
    out.append(f"**{c.who}**, {c.date}, `{c.msgid}`")
    out.append("")
    out.append(f"> {c.quote}")
    out.append("")
    out.append(f"**Question:** {c.question}")
    out.append("")
    out.append(f"**Verdict:** {headline(cr)}")
    out.append("")
    if c.untestable:
        out += [f"Why: {c.untestable}.", ""]
    if cr.outcomes:
        out += ["| | run | stands for | the claim | checker |", "|---|---|---|---|---|"]
        for o in cr.outcomes:
            t = o.test
            out.append(f"| `{_mark(o).strip()}` | {t.variant}{_probe(t.variant)} / "
                       f"{t.scenario} | {t.shows} | {_expect(o)} | {_got(o)} |")
        out.append("")
    for e in cr.evidence:
        out += ["```text", *_evidence_text(e), "```", ""]
    if c.note:
        out += [f"*Note (fixed text):* {c.note}", ""]
    return out


def render_markdown(report: Report) -> str:
    """The whole report as Markdown (``docs/thread.md``)."""
    out = [
        "# Who was right? The ZONE_DEVICE thread, checked by pfnlab",
        "",
        "<!-- generated by: pfnlab thread --format md --output docs/thread.md; "
        "do not edit -->",
        "",
        INTRO,
        "",
        "| # | claim | who | verdict |",
        "|---|---|---|---|",
    ]
    for n, cr in enumerate(report.results, 1):
        out.append(f"| {n} | [{cr.claim.id}](#{n}-{cr.claim.id}-"
                   f"{_anchor(headline(cr))}) | {cr.claim.who} | {headline(cr)} |")
    out.append("")
    for n, cr in enumerate(report.results, 1):
        out += _md_claim(n, cr)
    out += [RULE, ""]
    for name, v in PROBES.items():
        if any(o.test.variant == name for cr in report.results for o in cr.outcomes):
            out += [f"Probe `{name}`: {v.summary.removeprefix('probe: ')}; not a "
                    "registered variant, run only for this report.", ""]
    return "\n".join(out).rstrip() + "\n"


def _anchor(s: str) -> str:
    return "".join(ch for ch in s.lower().replace(" ", "-") if ch.isalnum() or ch == "-")


# --------------------------------------------------------------------------- HTML
CSS = (
    ".pfnlab-thread{font-family:sans-serif;max-width:60em}"
    ".pfnlab-thread blockquote{border-left:3px solid #999;margin:0;padding-left:1em}"
    ".pfnlab-thread pre{background:#f4f4f4;padding:.5em;overflow-x:auto}"
    ".pfnlab-thread table{border-collapse:collapse}"
    ".pfnlab-thread td,.pfnlab-thread th{border:1px solid #ccc;padding:2px 6px}"
    ".pfnlab-thread .v-supported{color:#060}.pfnlab-thread .v-refuted{color:#a00}"
    ".pfnlab-thread .v-partly{color:#a60}"
)


def render_html_section(report: Report) -> str:
    """The report as a self-contained HTML fragment (inline style, no external resources)."""
    e = html.escape
    out = [f'<section class="pfnlab-thread" id="thread"><style>{CSS}</style>',
           "<h2>Who was right? The ZONE_DEVICE thread, checked by pfnlab</h2>",
           f"<p>{e(INTRO)}</p>", "<table><tr><th>#</th><th>claim</th><th>who</th>"
           "<th>verdict</th></tr>"]
    for n, cr in enumerate(report.results, 1):
        out.append(f'<tr><td>{n}</td><td><a href="#thread-{e(cr.claim.id)}">'
                   f"{e(cr.claim.id)}</a></td><td>{e(cr.claim.who)}</td>"
                   f'<td class="v-{cr.verdict.split()[0]}">{e(headline(cr))}</td></tr>')
    out.append("</table>")
    for n, cr in enumerate(report.results, 1):
        c = cr.claim
        out.append(f'<article id="thread-{e(c.id)}"><h3>{n}. {e(c.id)}: '
                   f'<span class="v-{cr.verdict.split()[0]}">{e(headline(cr))}</span></h3>')
        out.append(f"<p><b>{e(c.who)}</b>, {e(c.date)}, <code>{e(c.msgid)}</code></p>")
        out.append(f"<blockquote>{e(c.quote)}</blockquote>")
        out.append(f"<p><b>Question:</b> {e(c.question)}</p>")
        if c.untestable:
            out.append(f"<p>Why: {e(c.untestable)}.</p>")
        if cr.outcomes:
            out.append("<table><tr><th></th><th>run</th><th>stands for</th>"
                       "<th>the claim</th><th>checker</th></tr>")
            for o in cr.outcomes:
                t = o.test
                out.append(f"<tr><td><code>{e(_mark(o).strip())}</code></td>"
                           f"<td>{e(t.variant + _probe(t.variant))} / {e(t.scenario)}</td>"
                           f"<td>{e(t.shows)}</td><td>{e(_expect(o))}</td>"
                           f"<td>{e(_got(o))}</td></tr>")
            out.append("</table>")
        for ev in cr.evidence:
            out.append("<pre>" + e("\n".join(_evidence_text(ev))) + "</pre>")
        if c.note:
            out.append(f"<p><i>Note (fixed text):</i> {e(c.note)}</p>")
        out.append("</article>")
    out.append(f"<p>{e(RULE)}</p></section>")
    return "\n".join(out) + "\n"

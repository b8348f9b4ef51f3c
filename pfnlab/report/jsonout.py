"""JSON reports (``--format json``): writing them, and reading back the findings they hold.

Documents follow ``pfnlab/report/schema/finding.schema.json`` (JSON Schema 2020-12). The
top-level ``schema`` field names the document type and version: ``pfnlab.check/2`` for
``pfnlab check``, ``pfnlab.diff/1`` for ``pfnlab diff``. Each finding carries its schedule
(thread name and step label per step), which :mod:`pfnlab.reproduce` re-runs against the
current model: the finding reproduces, or the replay says where the execution diverges.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from pfnlab.explore.findings import TraceStep
from pfnlab.report.analysis import render_report
from pfnlab.report.causal import causal_json, causal_text, step_fact
from pfnlab.report.hangchain import chain_json
from pfnlab.report.ledger import leak_sentence, ledger_json, underflow_sentence

if TYPE_CHECKING:  # the type only: a report never re-runs an execution
    from pfnlab.explain.analysis import Analysis

CHECK_SCHEMA = "pfnlab.check/2"
DIFF_SCHEMA = "pfnlab.diff/1"


def jsonable(v: Any) -> Any:
    """A model value as JSON: tuples and sets as lists, objects by name or repr."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, tuple | list):
        return [jsonable(x) for x in v]
    if isinstance(v, frozenset | set):
        return sorted((jsonable(x) for x in v), key=repr)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return repr(v)


def step_json(st: TraceStep) -> dict[str, Any]:
    """One trace step (see the schema's ``traceStep``)."""
    return {
        "index": st.index, "thread": st.thread, "label": st.label, "where": list(st.where),
        "action": st.action, "object": st.obj, "field": st.field,
        "before": jsonable(st.before), "after": jsonable(st.after),
        "failed_attempt": st.failed_attempt, "preempted": st.preempted, "joined": st.joined,
        "ghosts": [{"object": o, "field": f, "before": jsonable(b), "after": jsonable(a)}
                   for o, f, b, a in st.ghosts],
        "notes": [str(n) for n in st.notes], "reads": list(st.reads),
        "plain": [{"action": a, "object": o, "field": f, "before": jsonable(b),
                   "after": jsonable(af), "function": fn}
                  for a, o, f, b, af, fn in st.plain],
    }


def findings_json(title: str, analyses: list[Analysis]) -> list[dict[str, Any]]:
    """Every finding of a report, each saying which earlier one (1-based, as the text
    numbers them) its execution shares and for how many trace entries."""
    from pfnlab.explain.analysis import same_execution

    refs = same_execution([an.finding for an in analyses])
    out = []
    for an, ref in zip(analyses, refs, strict=True):
        doc = finding_json(title, an)
        doc["same_execution_as"] = (None if ref is None
                                    else {"finding": ref[0] + 1, "entries": ref[1]})
        out.append(doc)
    return out


def finding_json(title: str, an: Analysis) -> dict[str, Any]:
    """One finding with its schedule, trace, ledger, hang chains, causal core and text."""
    f = an.finding
    return {
        "kind": f.kind, "property": f.prop, "message": f.message,
        "thread": f.details.get("thread"), "steps": f.steps, "preemptions": f.preemptions,
        "minimal": f.minimal, "schedule": f.schedule.to_json(),
        "promoted": list(f.details.get("promoted", [])),
        "trace": [step_json(st) for st in f.trace],
        "ledger": ledger_json(an.ledger),
        "hang_chains": [chain_json(c) for c in an.chains],
        "causal": causal_json(an.causal),
        "culprit": culprit_json(an),
        "ends_execution": bool(f.details.get("ends_execution")),
        "unchecked_after": list(an.unchecked),
        "text": render_report(title, an),
    }


def culprit_json(an: Analysis) -> dict[str, Any] | None:
    """What to blame, as facts (see the schema's ``culprit``): the first leak of the ledger
    (the reference never put, and what skipped its put), else its first underflow (a put
    with no get), else the deciding pair's second step (a race), else the thread that
    shows it alone (a sequential bug); None when nothing is known."""
    led, c = an.ledger, an.causal
    if led.leaks:
        lk = led.leaks[0]
        g = lk.get
        return {"kind": "leak", "step": g.step, "thread": g.thread, "function": g.site,
                "owner": g.owner, "skipped_by": lk.skipped_by or None,
                "handed_to": lk.handed_to or None, "sentence": leak_sentence(lk)}
    if led.underflows:
        u = led.underflows[0]
        return {"kind": "underflow", "step": u.step, "thread": u.thread, "function": u.site,
                "owner": u.owner, "skipped_by": None, "handed_to": None,
                "sentence": underflow_sentence(u)}
    if c.steps is not None:
        b = c.steps[1]
        fact = step_fact(b, c.locks.get(b.thread, []))
        return {"kind": "race", "step": b.index, "thread": b.thread,
                "function": fact["function"], "owner": None, "skipped_by": None,
                "handed_to": None, "sentence": causal_text(c)}
    if c.alone:
        return {"kind": "sequential", "step": None, "thread": c.alone, "function": None,
                "owner": None, "skipped_by": None, "handed_to": None,
                "sentence": causal_text(c)}
    return None


def load_schema() -> dict[str, Any]:
    """The JSON Schema of pfnlab's JSON documents."""
    text = resources.files("pfnlab.report").joinpath("schema/finding.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def validate(doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``doc`` follows the schema."""
    import jsonschema

    jsonschema.validate(doc, load_schema())


def saved_findings(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, int], dict[str, Any]]]:
    """(variant, scenario, sizes, finding) of every finding a document holds."""
    schema = doc.get("schema")
    if schema == CHECK_SCHEMA:
        return [(doc["variant"], doc["scenario"], doc.get("sizes", {}), f)
                for f in doc["findings"]]
    if schema == DIFF_SCHEMA:
        out = []
        for sc in doc["scenarios"]:
            for p in sc["properties"]:
                f = p.get("finding")
                if f is not None:
                    out.append((p["found_in"], sc["scenario"], sc.get("sizes", {}), f))
        return out
    raise ValueError(f"not a pfnlab report: schema {schema!r} (expected {CHECK_SCHEMA} or "
                     f"{DIFF_SCHEMA})")

"""``pfnlab replay``: re-run each saved finding's schedule against the current model.

A report is checked before anything runs: a file that is not a ``check`` or ``diff`` JSON
report, or one edited into wrong types, is refused with the path of the bad value
(``findings[0].schedule: expected a list, found a string``) and exit status 2; sizes are
held to the same caps as ``--size``.
"""

from __future__ import annotations

import difflib
import json
import sys
from typing import Annotated, Any

import typer

from pfnlab.api import model_error
from pfnlab.cli import exits, interrupt
from pfnlab.cli.app import app
from pfnlab.cli.common import ModelOpt, check_size, load, load_recorded
from pfnlab.cli.errors import fail
from pfnlab.cli.guard import guarded
from pfnlab.kernel.variant import VARIANTS
from pfnlab.model.scenario import SCENARIOS

EPILOG = exits.epilog(
    "Exits 0 when every saved finding reproduces (or there is none), 1 when one does not, "
    "2 when the file is not a pfnlab check or diff report, 3 on Ctrl-C."
)

_KINDS = {dict: "an object", list: "a list", str: "a string", int: "a number",
          float: "a number", bool: "true or false", type(None): "null"}


def _kind(v: object) -> str:
    return _KINDS.get(type(v), type(v).__name__)


def _need(doc: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        fail(f"{where}: not a valid pfnlab report: {key!r} is missing")
    v = doc[key]
    ok = isinstance(v, typ) and not (isinstance(v, bool) and typ is not bool)
    if not ok:
        want = _kind(typ() if isinstance(typ, type) else typ[0]())
        fail(f"{where}: not a valid pfnlab report: {key}: expected {want}, found "
             f"{_kind(v)}")
    return v


def _sizes(doc: dict[str, Any], where: str) -> None:
    if "sizes" not in doc:
        return
    sz = _need(doc, "sizes", dict, where)
    for k, n in sz.items():
        check_size(k, n, f"{where}: sizes: ")


def _finding(f: object, where: str) -> None:
    if not isinstance(f, dict):
        fail(f"{where}: not a valid pfnlab report: expected an object, found {_kind(f)}")
    _need(f, "property", str, where)
    _need(f, "kind", str, where)
    steps = _need(f, "schedule", list, where)
    for i, st in enumerate(steps):
        w = f"{where}.schedule[{i}]"
        if not isinstance(st, dict):
            fail(f"{w}: not a valid pfnlab report: expected an object, found {_kind(st)}")
        _need(st, "thread", str, w)
        _need(st, "label", str, w)


def check_report(doc: object, file: str) -> None:
    """Refuse (exit 2) anything but a well-formed ``check`` or ``diff`` report."""
    from pfnlab.report.jsonout import CHECK_SCHEMA, DIFF_SCHEMA

    if not isinstance(doc, dict):
        fail(f"{file}: not a pfnlab report: the file holds {_kind(doc)}, not the object "
             "pfnlab check --output or pfnlab diff --output writes")
    schema = doc.get("schema")
    if schema == CHECK_SCHEMA:
        _need(doc, "variant", str, file)
        _need(doc, "scenario", str, file)
        _sizes(doc, file)
        for i, f in enumerate(_need(doc, "findings", list, file)):
            _finding(f, f"{file}: findings[{i}]")
    elif schema == DIFF_SCHEMA:
        for i, sc in enumerate(_need(doc, "scenarios", list, file)):
            w = f"{file}: scenarios[{i}]"
            if not isinstance(sc, dict):
                fail(f"{w}: not a valid pfnlab report: expected an object, found {_kind(sc)}")
            _need(sc, "scenario", str, w)
            _sizes(sc, w)
            for j, p in enumerate(_need(sc, "properties", list, w)):
                wp = f"{w}.properties[{j}]"
                if not isinstance(p, dict):
                    fail(f"{wp}: not a valid pfnlab report: expected an object, found "
                         f"{_kind(p)}")
                if p.get("finding") is not None:
                    _need(p, "found_in", str, wp)
                    _finding(p["finding"], f"{wp}.finding")
    else:
        fail(f"{file}: not a pfnlab report: schema {schema!r} (expected {CHECK_SCHEMA} or "
             f"{DIFF_SCHEMA}: what pfnlab check --output or pfnlab diff --output writes)")


@app.command("replay", epilog=EPILOG)
@guarded
def replay_cmd(
    file: Annotated[str, typer.Argument(help="A JSON report of pfnlab check or diff ('-': "
                                        "standard input, as pfnlab check -o - writes it).")],
    model: ModelOpt = None,
) -> None:
    """Re-run each saved finding's schedule; exit 0 only if every finding reproduces.

    The model files the report records are loaded again (``--model`` gives them where they
    have moved), and the findings replay on the host mm the report was checked on."""
    given = load(model)
    from pfnlab.report.jsonout import saved_findings
    from pfnlab.reproduce import replay_saved

    try:
        if file == "-":  # pfnlab check ... -o - | pfnlab replay -
            raw = sys.stdin.buffer.read()
        else:
            with open(file, "rb") as fh:
                raw = fh.read()
    except OSError as e:
        fail(f"{file}: cannot read it: {e.strerror or e}")
    if file == "-":
        file = "standard input"  # what the messages below call it
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        fail(f"{file}: not a pfnlab report: not UTF-8 text")
    except ValueError as e:
        fail(f"{file}: not a pfnlab report: not JSON ({e})")
    check_report(doc, file)
    for note in load_recorded(doc, file, given):
        print(note)
    mm = doc.get("mm")
    if mm is not None and mm not in ("5.4", "5.18", "variant"):
        fail(f"{file}: not a valid pfnlab report: mm: {mm!r} (5.4, 5.18 or variant)")
    saved = saved_findings(doc)
    if not saved:
        print(f"{file}: no finding to replay")
    for v, s, _sz, _f in saved:  # a name the model lacks is bad input, not a regression
        for kind, name, known in (("variant", v, VARIANTS), ("scenario", s, SCENARIOS)):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                fail(f"{file}: the report names {kind} {name!r}, which the model has not"
                     f"{hint}; a model file's? pass it with --model FILE (see pfnlab list)")
    reproduced = True
    for n, (v, s, sz, f) in enumerate(saved):
        if interrupt.interrupted():
            print(f"interrupted ({interrupt.cause()}): {n} of {len(saved)} findings replayed")
            raise typer.Exit(exits.INCONCLUSIVE)
        try:
            o = replay_saved(v, s, sz, f, mm)
        except KeyboardInterrupt:
            print(f"interrupted ({interrupt.cause()}): {n} of {len(saved)} findings replayed")
            raise typer.Exit(exits.INCONCLUSIVE) from None
        except Exception as e:
            sc = SCENARIOS.get(s)
            raise model_error(e, f"scenario {s!r} on {v}", sc.build if sc else None) from None
        print(o.line())
        sys.stdout.flush()
        reproduced = reproduced and o.reproduced
    raise typer.Exit(exits.CLEAN if reproduced else exits.FOUND)

"""``pfnlab diff``: the properties that hold in one variant and not the other."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from pfnlab.api import model_error
from pfnlab.cli import exits, interrupt
from pfnlab.cli.app import app
from pfnlab.cli.common import (
    MAX_STEPS,
    ExecOpt,
    FormatOpt,
    FullOpt,
    MmOpt,
    ModelOpt,
    OutputOpt,
    SecOpt,
    SizeOpt,
    StepsOpt,
    check_format,
    load,
    models_json,
    options,
    sizes,
)
from pfnlab.cli.errors import fail, say
from pfnlab.cli.guard import guarded
from pfnlab.cli.output import check_outputs, is_stdout, write_file
from pfnlab.cli.progress import Status
from pfnlab.explore.search import Budget
from pfnlab.matrix import Options
from pfnlab.model.scenario import SCENARIOS

EPILOG = exits.epilog(
    "Exits 0 when both searches were exhaustive on every scenario and no property differs; "
    "1 when a property is fixed or broken by the second variant (a CI gate: the patch "
    "changes something); 3 when a difference is unknown (a search was cut) or not every "
    "search was exhaustive, or on Ctrl-C (the scenarios compared so far are printed)."
)


@app.command("diff", epilog=EPILOG)
@guarded
def diff_cmd(
    names: Annotated[list[str], typer.Argument(
        help="The variant before the patch, the variant after it, then the scenarios to "
        "compare on (default: the model file's, else all); a model file FILE.py may come "
        "first.", metavar="[FILE.py] VARIANT_A VARIANT_B [SCENARIO]...")],
    size: SizeOpt = None,
    executions: ExecOpt = None,
    seconds: SecOpt = None,
    max_steps: StepsOpt = MAX_STEPS,
    format: FormatOpt = "text",
    full: FullOpt = False,
    output: OutputOpt = None,
    mm: MmOpt = None,
    model: ModelOpt = None,
) -> None:
    """List the properties that hold in one variant and not the other, with the traces."""
    from pfnlab.patchdiff import BOTH, UNKNOWN, ScenarioDiff, diff_each
    from pfnlab.report.diffmode import diff_json, render_diff

    files = [n for n in names if n.endswith(".py")]
    rest = [n for n in names if not n.endswith(".py")]
    if len(rest) < 2:
        fail("diff takes two variants: pfnlab diff [FILE.py] VARIANT_A VARIANT_B "
             "[SCENARIO]... (see pfnlab list)")
    loaded = load([*(model or []), *files])
    variant_a, variant_b, *scenario = rest
    check_format(format)
    declared = [s for f in loaded[len(model or []):] for s in f.scenarios]
    names = list(scenario or declared or SCENARIOS)
    opts = options(Options(variants=[variant_a, variant_b], scenarios=names,
                           sizes=sizes(size), executions=executions, seconds=seconds,
                           max_steps=max_steps, mm=mm))
    check_outputs({"--output": output}, [m.path for m in loaded])
    diffs: list[ScenarioDiff] = []
    where = ["", ""]
    overrun = (f"--seconds {seconds:g} passed inside one step: a model thread that never "
               "reaches a scheduling point?" if seconds is not None else "")
    with Status(f"diff {variant_a} -> {variant_b}") as status, \
            interrupt.deadline(seconds, overrun) as restart:

        def progress(name: str, variant: str, n: int) -> None:
            interrupt.stop_if_interrupted()
            restart()  # each search has the time budget (and the watchdog) of its own
            where[:] = [name, variant]
            status.phase(f"scenario {n}/{len(names)} {name} on {variant}")

        try:
            for sd in diff_each(variant_a, variant_b, names, sizes=opts.sizes,
                                budget=Budget(executions=executions, seconds=seconds,
                                              max_steps=max_steps),
                                progress=progress, mm=mm):
                diffs.append(sd)
                interrupt.stop_if_interrupted()
        except KeyboardInterrupt:
            pass
        except Exception as e:
            raise model_error(e, f"scenario {where[0]!r} on {where[1]}",
                              SCENARIOS[where[0]].build if where[0] else None) from None
    cut = interrupt.interrupted()
    lost = None
    # the JSON report on standard output (-o -) moves the text report to standard error
    text_out = sys.stderr if is_stdout(output) else sys.stdout
    if format == "json" or output:
        doc = diff_json(variant_a, variant_b, diffs, mm)
        doc["models"] = models_json(loaded)
        if cut:
            doc["interrupted"] = True
            doc["not_run"] = names[len(diffs):]
        if output:
            lost = write_file(output, json.dumps(doc, indent=2) + "\n", "--output",
                              "the JSON report")
        else:
            print(json.dumps(doc, indent=2))
    if format != "json" or output:
        print(render_diff(variant_a, variant_b, diffs, full=full), file=text_out)
        if output and not lost and not is_stdout(output):
            print(f"JSON report written to {output}")
    if lost:
        say(lost)
        raise typer.Exit(exits.USAGE)
    if cut:
        print(f"interrupted ({interrupt.cause()}): {len(diffs)} of {len(names)} scenarios "
              f"compared; not compared: {', '.join(names[len(diffs):]) or 'none'}",
              file=sys.stderr if format == "json" and not output else text_out)
        raise typer.Exit(exits.INCONCLUSIVE)
    changed = [p for sd in diffs for p in sd.props if p.change not in (BOTH, UNKNOWN)]
    unknown = [p for sd in diffs for p in sd.props if p.change == UNKNOWN]
    partial = [sd for sd in diffs if not (sd.exhaustive_a and sd.exhaustive_b)]
    if changed:
        raise typer.Exit(exits.FOUND)
    if unknown or partial:
        raise typer.Exit(exits.INCONCLUSIVE)
    raise typer.Exit(exits.CLEAN)

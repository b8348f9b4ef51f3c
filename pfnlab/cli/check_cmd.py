"""``pfnlab check``: one variant in one scenario, each finding with its minimal trace."""

from __future__ import annotations

import json
import math
import os
import sys
import textwrap
import time
from typing import Annotated, Any

import typer

from pfnlab import pipeline
from pfnlab.api import ModelFile, model_error
from pfnlab.cli import exits, interrupt
from pfnlab.cli.app import app
from pfnlab.cli.common import (
    MAX_STEPS,
    CheckStratOpt,
    ExecOpt,
    FormatOpt,
    FullOpt,
    JobsOpt,
    MmOpt,
    ModelOpt,
    OutputOpt,
    RayOpt,
    SecOpt,
    SizeOpt,
    StepsOpt,
    check_format,
    check_jobs,
    check_strategy,
    load,
    models_json,
    options,
    sizes,
)
from pfnlab.cli.errors import fail, say
from pfnlab.cli.guard import guarded
from pfnlab.cli.output import check_outputs, is_stdout, write_file
from pfnlab.cli.progress import Status
from pfnlab.cli.swarm_opts import SeedOpt, SwarmOpt, check_seed, swarm_strategy
from pfnlab.explain.analysis import Analysis
from pfnlab.explore.findings import Finding
from pfnlab.explore.fingerprint import collision_odds
from pfnlab.explore.program import Program
from pfnlab.explore.search import Budget, Result
from pfnlab.explore.search.common import not_established
from pfnlab.explore.search.parallel import WorkersNotStarted, backend, default_workers
from pfnlab.explore.search.swarm import Swarm, SwarmResult
from pfnlab.kernel.variant import VARIANTS
from pfnlab.matrix import Options
from pfnlab.model.lines import model_files, tracing_lines
from pfnlab.model.reach import under_review
from pfnlab.model.scenario import SCENARIOS

EPILOG = exits.epilog(
    "Exits 0 when there is no finding and the search covered every interleaving (up to "
    "equivalence) and reached every goal; 1 with a finding; 3 with no finding when a "
    "budget cut the search, nothing was explored, a goal was never reached, or on Ctrl-C "
    "(the findings so far are printed)."
)


@app.command(epilog=EPILOG)
@guarded
def check(
    names: Annotated[list[str], typer.Argument(
        help="VARIANT SCENARIO (see pfnlab list); a model file FILE.py may come first, "
        "and then a name its declarations make obvious may be left out.",
        metavar="[FILE.py] VARIANT SCENARIO")],
    size: SizeOpt = None,
    executions: ExecOpt = None,
    seconds: SecOpt = None,
    max_steps: StepsOpt = MAX_STEPS,
    strategy: CheckStratOpt = None,
    format: FormatOpt = "text",
    first: Annotated[bool, typer.Option(
        "--first/--all", help="Stop at the first finding, or collect every distinct one.")]
    = False,
    html: Annotated[str | None, typer.Option(
        "--html", help="Also write a self-contained HTML report to this file ('-': "
        "standard output, the text report then going to standard error).")] = None,
    full: FullOpt = False,
    output: OutputOpt = None,
    mm: MmOpt = None,
    model: ModelOpt = None,
    jobs: JobsOpt = None,
    ray: RayOpt = None,
    swarm: SwarmOpt = None,
    seed: SeedOpt = None,
    unreached_lines: Annotated[bool, typer.Option(
        "--unreached-lines", help="Also list the lines of the model no explored execution "
        "ran (kernel functions that ran, the model files' functions); traces the model "
        "with coverage.py, some 2-4 times slower.")] = False,
) -> None:
    """Check one variant in one scenario; print each finding with its minimal trace."""
    loaded = load(model)
    given: list[str] = []
    files: list[ModelFile] = []
    for n in names:  # FILE.py, or a name a model file loaded before declared
        named = n in VARIANTS or n in SCENARIOS
        fresh = os.path.isfile(n) and os.path.abspath(n) not in {f.path for f in [*loaded, *files]}
        if n.endswith(".py") and (not named or fresh):
            files += load([n])
        else:
            given.append(n)
    loaded += files
    variant, scenario = check_names(given, files)
    check_format(format)
    given_strategy, strategy = strategy, "dpor" if strategy is None else strategy
    check_strategy(strategy)
    check_seed(seed, strategy, swarm)
    opts = options(Options(variants=[variant], scenarios=[scenario], sizes=sizes(size),
                           executions=executions, seconds=seconds, strategy=strategy, mm=mm,
                           max_steps=max_steps))
    check_outputs({"--output": output, "--html": html}, [m.path for m in loaded],
                  "--format json" if format == "json" and not output else None)
    sc = SCENARIOS[scenario]
    title = f"{variant} / {scenario}"
    start = time.perf_counter()
    tracing = _line_tracing(VARIANTS[variant], sc) if unreached_lines else None
    searching: str | Swarm = strategy
    workers = None
    if swarm is not None:
        searching = swarm_strategy(swarm, given_strategy, seed, jobs, ray, unreached_lines,
                                   executions)
    else:
        workers = _backend(jobs, ray, strategy, unreached_lines)
    overrun = (f"--seconds {seconds:g} passed inside one step: a model thread that never "
               "reaches a scheduling point?" if seconds is not None else "")
    with Status(f"check {title}"), interrupt.deadline(seconds, overrun):
        try:
            done = pipeline.check(
                variant, scenario,
                pipeline.Search(strategy=searching, stop_first=first,
                                budget=Budget(executions=executions, seconds=seconds,
                                              max_steps=max_steps),
                                executions=executions or 1000, seed=seed or 0,
                                backend=workers),
                sizes=pipeline.own_sizes(scenario, opts.sizes), mm=mm, reach=True,
                lines=tracing)
        except WorkersNotStarted as e:
            fail(str(e))
        except Exception as e:
            raise model_error(e, f"scenario {scenario!r} on {variant}", sc.build) from None
    program, res, unreached, lines = done.program, done.result, done.unreached, done.lines
    assert unreached is not None
    cut = interrupt.interrupted()
    analyses, unexplained = _analyse(
        program, res.findings, start + seconds if seconds is not None else None)
    from pfnlab.explain.analysis import unchecked_after

    for an in analyses:
        an.unchecked = unchecked_after(an.finding, res, sc.properties)
    cut = cut or bool(unexplained)
    code = exit_status(res, cut)
    lost: list[str] = []
    # a report on standard output (-o -, --html -) moves the text report to standard error
    text_out = sys.stderr if is_stdout(output) or is_stdout(html) else sys.stdout
    if html:
        page = _html(title, program, res, analyses)
        err = write_file(html, page, "--html", "the HTML report")
        if err:
            lost.append(err)
    doc = None
    if format == "json" or output:
        doc = _json(variant, scenario, done.sizes, res, analyses)
        doc["unreached"] = unreached.as_json()
        doc["vacuous_checks"] = done.vacuous
        doc["vacuous_why"] = done.vacuous_why
        if lines is not None:
            doc["unreached"]["lines"] = lines.as_json()
        doc["mm"] = mm
        doc["models"] = models_json(loaded)
    if output and doc is not None:
        err = write_file(output, json.dumps(doc, indent=2) + "\n", "--output",
                         "the JSON report")
        if err:
            lost.append(err)
    notes = []
    if html and not is_stdout(html) and not any(e.startswith("--html") for e in lost):
        notes.append(f"HTML report written to {html}")
    if format == "json" and not output:
        print(json.dumps(doc, indent=2))
        for line in notes:
            print(line, file=sys.stderr)
    else:
        if output and not is_stdout(output) and not any(e.startswith("--output")
                                                        for e in lost):
            notes.append(f"JSON report written to {output}")
        from pfnlab.report.analysis import vacuous_lines

        print(_text(title, sc.properties, res, analyses, unexplained, full, cut,
                    [*vacuous_lines(done.vacuous, done.vacuous_why), *unreached.lines(),
                     *(lines.lines() if lines else []), *notes]), file=text_out)
    for err in lost:
        say(err)
    if lost:
        raise typer.Exit(exits.USAGE)
    if cut and format == "json" and not output:
        say(f"interrupted ({interrupt.cause()}): {res.coverage}")
    raise typer.Exit(code)


def _backend(jobs: int | None, ray: str | None, strategy: str, traced: bool) -> Any:
    """The workers of ``--jobs``/``--ray`` (None: the sequential search). Without
    ``--jobs``: the cores this process may run on (on Ray: the cluster's CPUs), or one
    process for a strategy other than dpor and for the line tracer (``traced``), which
    see one process only."""
    if jobs is not None and jobs < 1:
        fail(f"--jobs {jobs}: give at least 1")
    if jobs is not None and ray in (None, "local"):
        check_jobs(jobs)
    one = strategy != "dpor" or traced
    if jobs is None and ray is None:
        jobs = 1 if one else default_workers()
    if ray is None and jobs == 1:
        return None
    if strategy != "dpor":
        fail(f"--jobs/--ray split the dpor search; --strategy {strategy} runs in one process")
    if traced:
        fail("--unreached-lines traces this process's lines: it runs the search in one "
             "process; leave out --jobs/--ray (or give --jobs 1)")
    try:
        return backend(jobs or 0, None if ray is None else ("" if ray == "local" else ray))
    except RuntimeError as e:
        fail(f"--ray {ray}: {e}" if ray is not None else str(e))
    except Exception as e:  # Ray could not start or reach the cluster
        fail(f"--ray {ray}: Ray could not start: {type(e).__name__}: {e}")


def _line_tracing(variant: Any, sc: Any) -> Any:
    """The line tracer of ``--unreached-lines`` (a usage error naming the package to install
    when coverage.py is missing)."""
    overrides, files, _others = under_review(variant, sc)
    try:
        return tracing_lines(model_files(overrides, files))
    except RuntimeError as e:
        fail(str(e))


def exit_status(res: Result, cut: bool) -> int:
    """``check``'s exit status: see :data:`EPILOG`."""
    if cut:
        return exits.INCONCLUSIVE
    if res.findings:
        return exits.FOUND
    if res.stats.executions == 0 or not res.exhaustive or res.goals_missed:
        return exits.INCONCLUSIVE
    return exits.CLEAN


def check_names(names: list[str], files: list[ModelFile]) -> tuple[str, str]:
    """VARIANT and SCENARIO of ``pfnlab check``: given, or the only ones ``files`` declare."""
    if len(names) == 2:
        return names[0], names[1]
    if len(names) > 2:
        fail(f"check takes VARIANT SCENARIO, not {' '.join(names)}")
    declared_v = [v for f in files for v in f.variants]
    declared_s = [s for f in files for s in f.scenarios]
    if not files:
        fail("check takes VARIANT SCENARIO (see pfnlab list), or a model file FILE.py first")
    if len(names) == 1:
        if names[0] in SCENARIOS and names[0] not in VARIANTS and len(declared_v) == 1:
            return declared_v[0], names[0]
        if len(declared_s) == 1:
            return names[0], declared_s[0]
    elif len(declared_v) == 1 and len(declared_s) == 1:
        return declared_v[0], declared_s[0]
    fail(f"which VARIANT SCENARIO? the model file declares variants "
         f"{', '.join(declared_v) or '(none)'} and scenarios {', '.join(declared_s) or '(none)'}"
         f"; e.g. pfnlab check {files[0].path} "
         f"{(declared_v or list(VARIANTS))[0]} {(declared_s or list(SCENARIOS))[0]}")


def _analyse(program: Program, findings: list[Finding], deadline: float | None = None
             ) -> tuple[list[Analysis], list[Finding]]:
    """Each finding's analysis (ledger, causal core; the causal core stops at the time
    budget's ``deadline``); after Ctrl-C, the findings left unexplained (they are still
    reported, by their one-line message)."""
    from pfnlab.explain.analysis import analyse

    done: list[Analysis] = []
    for i, f in enumerate(findings):
        if interrupt.interrupted():
            return done, findings[i:]
        try:
            done.append(analyse(program, f, deadline))
        except KeyboardInterrupt:
            return done, findings[i:]
    return done, []


def _html(title: str, program: Program, res: Result, analyses: list[Analysis]) -> str:
    from pfnlab.explore.search.replay import initial_state
    from pfnlab.report.causal import causal_text
    from pfnlab.report.hangchain import render_hang
    from pfnlab.report.html import Section, render_html
    from pfnlab.report.ledger import render_ledger

    sections = []
    for an in analyses:
        notes = []
        if an.chains:
            notes.append(("hang chain", "\n".join(render_hang(an.chains))))
        ledger = render_ledger(an.ledger)
        if ledger:
            notes.append(("reference ledger", "\n".join(ledger)))
        notes.append(("causal core", causal_text(an.causal)))
        pair = tuple(s for s in (an.causal.first, an.causal.second) if s is not None)
        sections.append(Section(f"{title}: {an.finding.prop}", an.finding, notes, pair))
    return render_html(f"pfnlab: {title}", sections, initial_state(program),
                       subtitle=res.coverage)


def _json(variant: str, scenario: str, scenario_sizes: dict[str, int], res: Result,
          analyses: list[Analysis]) -> dict[str, Any]:
    from pfnlab.report.jsonout import CHECK_SCHEMA, findings_json
    from pfnlab.report.swarm import swarm_json

    sc = SCENARIOS[scenario]
    title = f"{variant} / {scenario}"
    return {
        "schema": CHECK_SCHEMA,
        "variant": variant,
        "scenario": scenario,
        "sizes": scenario_sizes,
        "coverage": res.coverage,
        "exhaustive": res.exhaustive,
        "goals_reached": res.goals_reached,
        "goals_missed": res.goals_missed,
        "not_established": not_established(res, sc.properties),
        "stats": res.stats.as_dict(),
        "findings": findings_json(title, analyses),
        **({"swarm": swarm_json(res)} if isinstance(res, SwarmResult) else {}),
    }


def _text(title: str, props: tuple[str, ...], res: Result, analyses: list[Analysis],
          unexplained: list[Finding], full: bool, cut: bool, notes: list[str]) -> str:
    """The text of ``check``: the mail-ready report per finding, then what was covered."""
    from pfnlab.report.analysis import render_reports

    def wrap(text: str) -> list[str]:
        return textwrap.wrap(text, 80, subsequent_indent="  ", break_on_hyphens=False)

    out = []
    for text in render_reports(title, analyses, full=full):
        out.append(text)
        out.append("")
    for f in unexplained:
        out += wrap(f"{title}: {f.prop} violated ({f.kind}): {f.message} (interrupted "
                    "before its trace was analysed)")
        out.append("")
    if not res.findings:
        out.append(f"{title}: nothing explored" if res.stats.executions == 0
                   else f"{title}: no finding")
    out += wrap(f"coverage: {res.coverage}")
    if isinstance(res, SwarmResult):
        from pfnlab.cli.output import ascii_only, width
        from pfnlab.report.swarm import members_table, rerun_line

        out.append(members_table(res, width(), ascii_only()))
        out += wrap(rerun_line(res))
    masked = not_established(res, props)
    for why in dict.fromkeys(masked.values()):
        ps = [p for p, w in masked.items() if w == why]
        out += wrap(f"not established: {', '.join(ps)} — {why} (a finding that ends its "
                    "execution leaves the rest of it unchecked)")
    if res.goals_missed:
        out += wrap(f"goals never reached (a pass would be vacuous): "
                    f"{', '.join(res.goals_missed)}")
    elif res.goals_reached:
        out += wrap(f"goals reached: {', '.join(res.goals_reached)}")
    st = res.stats
    # rounded up to a power of ten: the printed bound must not be below the real one
    odds = (f" (fingerprint collision odds < 1e{math.ceil(math.log10(collision_odds(st.states)))})"
            if st.states else "")
    # (a search that keeps no visited table counts no states: none is printed)
    states = f"{st.states:,} states{odds}, " if st.caching or st.states else ""
    out += wrap(f"{st.executions:,} execution{'' if st.executions == 1 else 's'}, "
                f"{states}{st.steps:,} steps, {st.seconds:.2f} s")
    if cut:
        out += wrap(f"interrupted ({interrupt.cause()}): " + (
            "the findings above are real, but the search did not finish" if res.findings
            else "no finding in what was explored, and no claim beyond it"))
    elif not res.findings:
        if isinstance(res, SwarmResult):
            from pfnlab.report.swarm import never_holds

            out += wrap(never_holds(res))
        elif st.executions == 0 and res.coverage.startswith("stopped ("):  # workers lost
            out += wrap("inconclusive: nothing explored before the search stopped (the "
                        "coverage line says why)")
        elif st.executions == 0:
            out += wrap("inconclusive: nothing explored: the budget ran out before the first "
                        "execution (raise --seconds or --executions)")
        elif not res.exhaustive:
            out += wrap("inconclusive: no finding in what was explored, but the search did "
                        "not cover every interleaving (no claim beyond it)")
        elif res.goals_missed:
            out += wrap("inconclusive: a goal was never reached, so a pass would be vacuous")
    out += notes
    return "\n".join(out)

"""The ``pfnlab`` command: the verdict matrix, one check with its traces, and the lists."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from pfnlab.api import ModelFile, ModelFileError, load_model
from pfnlab.explore.fingerprint import collision_odds
from pfnlab.explore.program import Program
from pfnlab.explore.search import STRATEGIES, Budget, Result, Stats, explore, reporting
from pfnlab.explore.search.common import not_established
from pfnlab.matrix import (
    CELL_SECONDS,
    Cell,
    Options,
    as_json,
    default_jobs,
    run_matrix,
    validate,
)
from pfnlab.properties import PROPERTIES
from pfnlab.report.table import render_matrix
from pfnlab.scenarios import SCENARIOS
from pfnlab.variants import VARIANTS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    help="Model-check KVM's pfn handling designs against host page lifetimes.",
)

VariantOpt = Annotated[list[str] | None, typer.Option(
    "--variant", "-V", help="Variant to run (repeatable; default: all).")]
ScenarioOpt = Annotated[list[str] | None, typer.Option(
    "--scenario", "-S", help="Scenario to run (repeatable; default: all).")]
SizeOpt = Annotated[list[str] | None, typer.Option(
    "--size", help="A scenario size as NAME=N, e.g. --size vcpus=2 (repeatable).")]
ExecOpt = Annotated[int | None, typer.Option(
    "--executions", help="Stop each search after this many executions.")]
SecOpt = Annotated[float | None, typer.Option(
    "--seconds", help="Stop each search after this many seconds.")]
StratOpt = Annotated[str, typer.Option(
    "--strategy", help=f"Search strategy: {', '.join(STRATEGIES)}.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Output format: text or json.")]
MmOpt = Annotated[str | None, typer.Option(
    "--mm", help="Host mm the designs run on: 5.4 (default, the 2019 thread's: teardown "
    "waits for page references), 5.18 (27674ef6c73f: it does not), or variant (each "
    "variant's own).")]
FullOpt = Annotated[bool, typer.Option(
    "--full", help="Show every step of each trace, not only the kernel-level ones.")]
ModelOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", help="A model file (.py) whose scenarios and variants to load "
    "(repeatable); see docs/tutorial.md.")]
OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", help="Write the JSON report to this file (implies --format json).")]


@contextmanager
def _live(label: str) -> Iterator[None]:
    """A status line with the search's progress on a terminal; nothing otherwise."""
    if not sys.stdout.isatty():
        yield
        return
    console = Console(stderr=True)
    with console.status(f"{label}: starting") as status:

        def update(stats: Stats, elapsed: float) -> None:
            status.update(
                f"{label}: {stats.executions:,} executions, {stats.states:,} states, "
                f"{stats.steps / max(elapsed, 1e-9):,.0f} steps/s, {elapsed:.1f} s "
                "(no claim until the search ends; Ctrl-C stops and reports)"
            )

        with reporting(update):
            yield


def _write_html(path: str, title: str, program: Program, res: Result) -> None:
    from pfnlab.explore.search.replay import initial_state
    from pfnlab.report.analysis import analyse
    from pfnlab.report.hangchain import render_hang
    from pfnlab.report.html import Section, render_html
    from pfnlab.report.ledger import render_ledger

    sections = []
    for f in res.findings:
        an = analyse(program, f)
        notes = []
        if an.chains:
            notes.append(("hang chain", "\n".join(render_hang(an.chains))))
        ledger = render_ledger(an.ledger)
        if ledger:
            notes.append(("reference ledger", "\n".join(ledger)))
        notes.append(("causal core", an.causal.text))
        pair = tuple(s for s in (an.causal.first, an.causal.second) if s is not None)
        sections.append(Section(f"{title}: {f.prop}", f, notes, pair))
    page = render_html(title, sections, initial_state(program), subtitle=res.coverage)
    with open(path, "w") as fh:
        fh.write(page)


def _fail(msg: str) -> None:
    Console(stderr=True).print(f"[bold red]pfnlab:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _load(models: list[str] | None) -> list[ModelFile]:
    """Load each model file; a broken one exits 2 with ``FILE:LINE: what is wrong``."""
    out = []
    for path in models or []:
        try:
            out.append(load_model(path))
        except ModelFileError as e:
            _fail(str(e))
    return out


def _sizes(items: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in items or []:
        name, eq, val = it.partition("=")
        if not eq or not name:
            _fail(f"--size takes NAME=N (e.g. --size vcpus=2), not {it!r}")
        try:
            out[name] = int(val)
        except ValueError:
            _fail(f"--size {name}: {val!r} is not a whole number")
        if out[name] < 1:
            _fail(f"--size {name}={val}: sizes must be at least 1")
    return out


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        _fail(f"unknown format {fmt!r}; valid formats: text, json")


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        _fail(f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")


def _version(value: bool) -> None:
    if value:
        from pfnlab import __version__

        print(f"pfnlab {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """With no command, run the matrix of every variant by every scenario."""
    if ctx.invoked_subcommand is None:
        matrix(None, None, None, None, CELL_SECONDS, "dpor", "text", default_jobs(), None, None)


@app.command()
def matrix(
    variant: VariantOpt = None,
    scenario: ScenarioOpt = None,
    size: SizeOpt = None,
    executions: ExecOpt = None,
    seconds: SecOpt = CELL_SECONDS,
    strategy: StratOpt = "dpor",
    format: FormatOpt = "text",
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes.")] = default_jobs(),
    mm: MmOpt = None,
    model: ModelOpt = None,
) -> None:
    """Check every variant against every scenario and print one verdict table."""
    _load(model)
    _check_format(format)
    _check_strategy(strategy)
    opts = Options(
        variants=list(variant or VARIANTS),
        scenarios=list(scenario or SCENARIOS),
        sizes=_sizes(size),
        executions=executions,
        seconds=seconds,
        strategy=strategy,
        jobs=jobs,
        mm=mm,
    )
    try:
        validate(opts)
    except ValueError as e:
        _fail(str(e))
    t0 = time.perf_counter()
    cells: list[Cell] = []
    interrupted = False
    try:
        if sys.stdout.isatty() and format == "text":
            n = len(opts.variants) * len(opts.scenarios)
            with Progress(console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("checking", total=n)

                def advance(cell: Cell) -> None:
                    cells.append(cell)
                    bar.update(task, advance=1,
                               description=f"{cell.variant} / {cell.scenario}")

                run_matrix(opts, on_cell=advance)
        else:
            run_matrix(opts, on_cell=cells.append)
    except KeyboardInterrupt:
        interrupted = True
    total = time.perf_counter() - t0
    if format == "json":
        print(json.dumps(as_json(cells, opts), indent=2))
        return
    render_matrix(cells, Console(width=140), total)
    if interrupted:
        print(f"interrupted (Ctrl-C): {len(cells)} of "
              f"{len(opts.variants) * len(opts.scenarios)} cells checked")
        raise typer.Exit(130)


@app.command()
def check(
    names: Annotated[list[str], typer.Argument(
        help="VARIANT SCENARIO (see pfnlab list); a model file FILE.py may come first, "
        "and then a name its declarations make obvious may be left out.",
        metavar="[FILE.py] VARIANT SCENARIO")],
    size: SizeOpt = None,
    executions: ExecOpt = None,
    seconds: SecOpt = None,
    strategy: StratOpt = "dpor",
    format: FormatOpt = "text",
    first: Annotated[bool, typer.Option(
        "--first/--all", help="Stop at the first finding, or collect every distinct one.")]
    = False,
    html: Annotated[str | None, typer.Option(
        "--html", help="Also write a self-contained HTML report to this file.")] = None,
    full: FullOpt = False,
    output: OutputOpt = None,
    mm: MmOpt = None,
    model: ModelOpt = None,
) -> None:
    """Check one variant in one scenario; print each finding with its minimal trace."""
    files = [n for n in names if n.endswith(".py")]
    loaded = _load([*(model or []), *files])
    variant, scenario = _check_names([n for n in names if not n.endswith(".py")],
                                     loaded[len(model or []):])
    _check_format(format)
    _check_strategy(strategy)
    opts = Options(variants=[variant], scenarios=[scenario], sizes=_sizes(size),
                   executions=executions, seconds=seconds, strategy=strategy, mm=mm)
    try:
        validate(opts)
    except ValueError as e:
        _fail(str(e))
    sc = SCENARIOS[scenario]
    program = sc.program(VARIANTS[variant], mm=mm, **{k: v for k, v in opts.sizes.items()
                                                      if k in sc.params})
    with _live(f"{variant} / {scenario}"):
        res = explore(program, strategy=strategy, stop_first=first,
                      budget=Budget(executions=executions, seconds=seconds))
    if html:
        _write_html(html, f"pfnlab: {variant} / {scenario}", program, res)
    _print_check(variant, scenario, opts.sizes, program, res, format, full, output)
    if res.findings:
        raise typer.Exit(1)


def _check_names(names: list[str], files: list[ModelFile]) -> tuple[str, str]:
    """VARIANT and SCENARIO of ``pfnlab check``: given, or the only ones ``files`` declare."""
    if len(names) == 2:
        return names[0], names[1]
    if len(names) > 2:
        _fail(f"check takes VARIANT SCENARIO, not {' '.join(names)}")
    declared_v = [v for f in files for v in f.variants]
    declared_s = [s for f in files for s in f.scenarios]
    if not files:
        _fail("check takes VARIANT SCENARIO (see pfnlab list), or a model file FILE.py first")
    if len(names) == 1:
        if names[0] in SCENARIOS and names[0] not in VARIANTS and len(declared_v) == 1:
            return declared_v[0], names[0]
        if len(declared_s) == 1:
            return names[0], declared_s[0]
    elif len(declared_v) == 1 and len(declared_s) == 1:
        return declared_v[0], declared_s[0]
    _fail(f"which VARIANT SCENARIO? the model file declares variants "
          f"{', '.join(declared_v) or '(none)'} and scenarios {', '.join(declared_s) or '(none)'}"
          f"; e.g. pfnlab check {files[0].path} "
          f"{(declared_v or list(VARIANTS))[0]} {(declared_s or list(SCENARIOS))[0]}")
    raise AssertionError  # unreachable: _fail exits


# ---------------------------------------------------------------- reports (issue 4)


def _emit_json(doc: dict[str, object], output: str | None) -> None:
    text = json.dumps(doc, indent=2)
    if output:
        with open(output, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)


def _print_check(variant: str, scenario: str, sizes: dict[str, int], program: Program,
                 res: Result, fmt: str, full: bool, output: str | None) -> None:
    """The output of ``check``: the mail-ready report per finding, or the JSON document."""
    import math
    import textwrap

    from pfnlab.report.analysis import analyse, render_report
    from pfnlab.report.jsonout import CHECK_SCHEMA, finding_json

    title = f"{variant} / {scenario}"
    analyses = [analyse(program, f) for f in res.findings]
    sc = SCENARIOS[scenario]
    masked = not_established(res, sc.properties)
    if fmt == "json" or output:
        _emit_json({
            "schema": CHECK_SCHEMA,
            "variant": variant,
            "scenario": scenario,
            "sizes": sc.sizes(**{k: v for k, v in sizes.items() if k in sc.params}),
            "coverage": res.coverage,
            "exhaustive": res.exhaustive,
            "goals_reached": res.goals_reached,
            "goals_missed": res.goals_missed,
            "not_established": masked,
            "stats": res.stats.as_dict(),
            "findings": [finding_json(title, an) for an in analyses],
        }, output)
        if not output:
            return
    out = []
    for an in analyses:
        out.append(render_report(title, an, full=full))
        out.append("")
    if not res.findings:
        out.append(f"{title}: no finding")
    out += textwrap.wrap(f"coverage: {res.coverage}", 80, subsequent_indent="  ")
    for why in dict.fromkeys(masked.values()):
        props = [p for p, w in masked.items() if w == why]
        out += textwrap.wrap(f"not established: {', '.join(props)} — {why} (a finding that "
                             "ends its execution leaves the rest of it unchecked)", 80,
                             subsequent_indent="  ", break_on_hyphens=False)
    if res.goals_missed:
        out += textwrap.wrap(f"goals never reached (a pass would be vacuous): "
                             f"{', '.join(res.goals_missed)}", 80, subsequent_indent="  ")
    elif res.goals_reached:
        out += textwrap.wrap(f"goals reached: {', '.join(res.goals_reached)}", 80,
                             subsequent_indent="  ")
    st = res.stats
    # rounded up to a power of ten: the printed bound must not be below the real one
    odds = (f" (fingerprint collision odds < 1e{math.ceil(math.log10(collision_odds(st.states)))})"
            if st.states else "")
    out += textwrap.wrap(f"{st.executions:,} executions, {st.states:,} states{odds}, "
                         f"{st.steps:,} steps, {st.seconds:.2f} s", 80, subsequent_indent="  ")
    if output:
        out.append(f"JSON report written to {output}")
    print("\n".join(out))


@app.command("diff")
def diff_cmd(
    variant_a: Annotated[str, typer.Argument(help="The variant before the patch.")],
    variant_b: Annotated[str, typer.Argument(help="The variant after the patch.")],
    scenario: Annotated[list[str] | None, typer.Argument(
        help="Scenarios to compare on (default: all).")] = None,
    size: SizeOpt = None,
    executions: ExecOpt = None,
    seconds: SecOpt = None,
    format: FormatOpt = "text",
    full: FullOpt = False,
    output: OutputOpt = None,
    model: ModelOpt = None,
) -> None:
    """List the properties that hold in one variant and not the other, with the traces."""
    from pfnlab.report.diffmode import diff, diff_json, render_diff

    _load(model)
    _check_format(format)
    names = list(scenario or SCENARIOS)
    opts = Options(variants=[variant_a, variant_b], scenarios=names, sizes=_sizes(size),
                   executions=executions, seconds=seconds)
    try:
        validate(opts)
    except ValueError as e:
        _fail(str(e))
    diffs = diff(variant_a, variant_b, names, sizes=opts.sizes,
                 budget=Budget(executions=executions, seconds=seconds))
    if format == "json" or output:
        _emit_json(diff_json(variant_a, variant_b, diffs), output)
        if not output:
            return
    print(render_diff(variant_a, variant_b, diffs, full=full))


@app.command("replay")
def replay_cmd(
    file: Annotated[str, typer.Argument(help="A JSON report of pfnlab check or diff.")],
    model: ModelOpt = None,
) -> None:
    """Re-run each saved finding's schedule; exit 0 only if every finding reproduces."""
    _load(model)
    from pfnlab.report.jsonout import replay_document

    try:
        with open(file) as fh:
            doc = json.load(fh)
        outcomes = replay_document(doc)
    except (OSError, ValueError, KeyError, TypeError) as e:
        _fail(f"{file}: {e}")
    if not outcomes:
        print(f"{file}: no finding to replay")
    for o in outcomes:
        print(o.line())
    if not all(o.reproduced for o in outcomes):
        raise typer.Exit(1)


@app.command("list")
def list_cmd(model: ModelOpt = None) -> None:
    """Name the variants, scenarios and properties, one line each."""
    _load(model)
    out = ["variants:"]
    w = max(len(n) for n in VARIANTS)
    for name, v in VARIANTS.items():
        out.append(f"  {name.ljust(w)}  {v.summary}")
    out.append("scenarios:")
    w = max(len(n) for n in SCENARIOS)
    for name, s in SCENARIOS.items():
        sizes = ", ".join(f"{k}={v}" for k, v in s.params.items())
        out.append(f"  {name.ljust(w)}  {s.summary} [{sizes}]")
    out.append("properties:")
    w = max(len(n) for n in PROPERTIES)
    for pid, p in PROPERTIES.items():
        out.append(f"  {pid.ljust(w)}  ({p.invariant}) {p.meaning}")
    print("\n".join(out))


@app.command("thread")
def thread_cmd(
    format: Annotated[str, typer.Option(
        "--format", help="Output format: text (mail-ready), md or html.")] = "text",
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output.")] = None,
) -> None:
    """Walk the 2019 ZONE_DEVICE thread: each claim, its runs and the computed verdict."""
    from pfnlab.report.html import render_html
    from pfnlab.thread.render import render_html_section, render_markdown, render_text
    from pfnlab.thread.run import run_thread

    if format not in ("text", "md", "html"):
        _fail(f"unknown format {format!r}; valid formats: text, md, html")
    report = run_thread()
    if format == "html":
        out = render_html("pfnlab: the 2019 ZONE_DEVICE thread, claim by claim", [], {},
                          extra_html=render_html_section(report))
    elif format == "md":
        out = render_markdown(report)
    else:
        out = render_text(report)
    if output:
        with open(output, "w") as fh:
            fh.write(out)
    else:
        print(out, end="")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="pfnlab")


if __name__ == "__main__":  # pragma: no cover
    main()

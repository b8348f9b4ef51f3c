"""``pfnlab thread``: the 2019 ZONE_DEVICE thread, claim by claim, with computed verdicts."""

from __future__ import annotations

from typing import Annotated

import typer

from pfnlab.cli import exits, interrupt
from pfnlab.cli.app import app
from pfnlab.cli.common import check_format
from pfnlab.cli.errors import Inconclusive, say
from pfnlab.cli.guard import guarded
from pfnlab.cli.output import check_outputs, is_stdout, write_file
from pfnlab.cli.progress import Status

EPILOG = exits.epilog(
    "Exits 0 when every testable claim was decided, 3 when a search budget left one "
    "undecided or on Ctrl-C (nothing is written then), 2 when the output cannot be written."
)


@app.command("thread", epilog=EPILOG)
@guarded
def thread_cmd(
    format: Annotated[str, typer.Option(
        "--format", help="Output format: text (mail-ready), md or html.")] = "text",
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output (checked "
        "writable before the runs start; '-': standard output).")] = None,
) -> None:
    """Walk the 2019 ZONE_DEVICE thread: each claim, its runs and the computed verdict."""
    from pfnlab.report.html import render_html
    from pfnlab.thread import run as thread_run
    from pfnlab.thread.render import render_html_section, render_markdown, render_text

    check_format(format, ("text", "md", "html"))
    check_outputs({"--output": output}, [])
    claim = [""]
    with Status("thread") as status:

        def progress(line: str) -> None:
            interrupt.stop_if_interrupted()
            if line.startswith("claim "):
                claim[0] = line
                status.phase(line)
            else:
                status.phase(f"{claim[0]}: {line}")

        try:
            with thread_run.reporting_runs(progress):
                report = thread_run.run_thread()
        except KeyboardInterrupt:
            raise Inconclusive(f"interrupted ({interrupt.cause()}) at "
                               f"{claim[0] or 'the start'}; the report needs every claim, "
                               "so nothing was written") from None
    if format == "html":
        out = render_html("pfnlab: the 2019 ZONE_DEVICE thread, claim by claim", [], {},
                          extra_html=render_html_section(report))
    elif format == "md":
        out = render_markdown(report)
    else:
        out = render_text(report)
    if output and not is_stdout(output):
        err = write_file(output, out, "--output", f"the {format} report")
        if err:
            say(err)
            raise typer.Exit(exits.USAGE)
    else:
        print(out, end="")
    undecided = [r for r in report.results if r.verdict == thread_run.NOT_COVERED]
    if undecided:
        say(f"not decided (search budget): {', '.join(r.claim.id for r in undecided)}")
        raise typer.Exit(exits.INCONCLUSIVE)
    raise typer.Exit(exits.CLEAN)

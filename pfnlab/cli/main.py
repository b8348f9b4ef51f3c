"""The ``pfnlab`` command as a whole: ``--version``, the matrix when no command is named,
and :func:`main`, the console script. Above every command module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pfnlab.cli import exits, interrupt
from pfnlab.cli.app import app
from pfnlab.cli.guard import output_lost_before_a_command
from pfnlab.cli.matrix_cmd import matrix
from pfnlab.cli.output import setup_streams


def _version(value: bool) -> None:
    if value:
        from pfnlab import __version__

        print(f"pfnlab {__version__}")
        raise typer.Exit(exits.CLEAN)


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """With no command, run the matrix of every variant by every scenario."""
    setup_streams()  # for --help and usage errors too
    if ctx.invoked_subcommand is None:
        matrix()


def main() -> None:
    """Console-script entry point."""
    interrupt.install()
    try:
        app(args=ray_value_optional(sys.argv[1:]), prog_name="pfnlab")
    except OSError as e:  # --help or --version into a full device (> /dev/full)
        sys.exit(output_lost_before_a_command(e))
    finally:
        interrupt.shutting_down()


def ray_value_optional(argv: list[str]) -> list[str]:
    """``--ray`` alone means ``--ray local`` (a local Ray instance): where it is the last
    argument or another option follows it, give it that value (Typer options cannot have
    an optional value). ``--ray ADDRESS`` and ``--ray=...`` are left as they are, and so is
    everything after ``--``."""
    out: list[str] = []
    for i, a in enumerate(argv):
        if a == "--":
            return out + argv[i:]
        out.append(a)
        if a == "--ray" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append("local")
    return out

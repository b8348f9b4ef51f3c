"""The Typer application every command module registers its command on."""

from __future__ import annotations

import typer

from pfnlab.cli import exits

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    help="Model-check KVM's pfn handling designs against host page lifetimes.",
    epilog=exits.TABLE,
)

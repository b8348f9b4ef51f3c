"""The errors a command raises, and how one is said: one line on standard error.

Every command runs inside :func:`~pfnlab.cli.guard.guarded`: a :class:`UsageError` or a model error
(:class:`~pfnlab.api.ModelFileError`) is one line on standard error and exit status 2;
Ctrl-C that reaches it (outside a search, which reports what it covered itself) is one
line and status 3; anything else raised by model code is reported with the user's file and
line (``PFNLAB_TRACEBACK=1`` shows the Python traceback too).
"""

from __future__ import annotations

from typing import NoReturn


class UsageError(Exception):
    """Bad input (a name, size, budget, path or file): the message, and exit status 2."""


class Inconclusive(Exception):
    """The command stops without a claim (Ctrl-C): the message, and exit status 3."""


def say(msg: str) -> None:
    """One line on standard error, prefixed ``pfnlab:``."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]pfnlab:[/] {msg}", markup=True, highlight=False)


def fail(msg: str) -> NoReturn:
    """Refuse with ``msg`` and exit status 2 (nothing has been claimed)."""
    raise UsageError(msg)

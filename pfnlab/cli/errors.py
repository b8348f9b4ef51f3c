"""One-line errors instead of tracebacks: bad input, broken models, Ctrl-C, a closed pipe.

Every command runs inside :func:`guarded`: a :class:`UsageError` or a model error
(:class:`~pfnlab.api.ModelFileError`) is one line on standard error and exit status 2;
Ctrl-C that reaches it (outside a search, which reports what it covered itself) is one
line and status 3; anything else raised by model code is reported with the user's file and
line (``PFNLAB_TRACEBACK=1`` shows the Python traceback too).
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from pfnlab.cli import exits

F = TypeVar("F", bound=Callable[..., Any])


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


def _escape(msg: str) -> str:
    from rich.markup import escape

    return escape(msg)


def guarded(fn: F) -> F:
    """Run a command: errors become one line and the exit status of the table."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        from pfnlab.cli import interrupt
        from pfnlab.cli.output import setup_streams

        setup_streams()
        with interrupt.handling():
            code = _outcome(fn, args, kwargs)
            interrupt.finished(code)
        raise typer.Exit(code)

    return run  # type: ignore[return-value]


def _outcome(fn: Callable[..., Any], args: Any, kwargs: Any) -> int:
    """Run ``fn``; its exit status (an error said on standard error)."""
    from pfnlab.api import ModelFileError, model_error

    try:
        fn(*args, **kwargs)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        raise
    except (UsageError, ModelFileError) as e:
        say(_escape(str(e)))
        return exits.USAGE
    except Inconclusive as e:
        say(_escape(str(e)))
        return exits.INCONCLUSIVE
    except KeyboardInterrupt:
        from pfnlab.cli import interrupt

        say(f"interrupted ({interrupt.cause()}) before there was anything to report")
        return exits.INCONCLUSIVE
    except BrokenPipeError:
        # the reader went away (pfnlab ... | head): nothing more to say to it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exits.USAGE
    except Exception as e:
        say(_escape(str(model_error(e, "error"))))
        if os.environ.get("PFNLAB_TRACEBACK"):
            traceback.print_exception(e)
        else:
            say("(PFNLAB_TRACEBACK=1 shows the Python traceback)")
        return exits.USAGE
    return exits.CLEAN

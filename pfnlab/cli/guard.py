"""How every command runs: output set up, Ctrl-C handled, errors as one line and the exit
status of the table (exits.py), never a traceback unless ``PFNLAB_TRACEBACK`` is set."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from pfnlab.cli import exits, interrupt
from pfnlab.cli.errors import Inconclusive, UsageError, say
from pfnlab.cli.output import setup_streams

F = TypeVar("F", bound=Callable[..., Any])


def _escape(msg: str) -> str:
    from rich.markup import escape

    return escape(msg)


def guarded(fn: F) -> F:
    """Run a command: errors become one line and the exit status of the table."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        setup_streams()
        with interrupt.handling():
            code = _outcome(fn, args, kwargs)
            interrupt.finished(code)
        _exit_past_a_half_started_ray(code)
        raise typer.Exit(code)

    return run  # type: ignore[return-value]


def _exit_past_a_half_started_ray(code: int) -> None:
    """A local Ray instance whose start an interrupt stopped was shut down and its
    processes killed already; Ray's own finalisers, run at the interpreter's exit on its
    half-started core worker, can crash the process (SIGSEGV) after the report: leave
    without them, with the command's status."""
    parallel = sys.modules.get("pfnlab.explore.search.parallel")
    if parallel is None or not parallel.RAY_START_INTERRUPTED[0]:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


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

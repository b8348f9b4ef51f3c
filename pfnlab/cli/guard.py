"""How every command runs: output set up, Ctrl-C handled, errors as one line and the exit
status of the table (exits.py), never a traceback unless ``PFNLAB_TRACEBACK`` is set."""

from __future__ import annotations

import contextlib
import errno
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
            try:  # what is still buffered for standard output fails here, not at exit
                sys.stdout.flush()
            except OSError as e:
                code = _output_lost(e) if e.errno in WRITE_FAILED else code
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
    from pfnlab.api import ModelFileError

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
    except OSError as e:
        if e.errno in WRITE_FAILED:  # files are written by output.write_file, which says
            return _output_lost(e)  # so itself, and model code's errors are model errors
        return _unexpected(e)
    except Exception as e:
        return _unexpected(e)
    return exits.CLEAN


#: a write that failed for want of room, or of the device (``> /dev/full``, a full disk)
WRITE_FAILED = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _output_lost(e: OSError, lost: str = "the report was not saved") -> int:
    """Standard output could not be written: one line saying so (not an error of the
    model); what is still buffered for it is dropped. Exit status 2, as for an
    ``--output`` file that could not be written."""
    with contextlib.suppress(OSError):
        say(f"writing to standard output failed: {e.strerror or e}; {lost}")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return exits.USAGE


def output_lost_before_a_command(e: OSError) -> int:
    """``--help``, ``--version`` or a usage message (written before any command runs,
    outside :func:`guarded`) could not be written to standard output: its exit status,
    after one line saying so; other errors are raised again."""
    if e.errno not in WRITE_FAILED:
        raise e
    return _output_lost(e, "nothing was shown")


def _unexpected(e: Exception) -> int:
    """An exception nothing expected: one line naming the user's file and line if the
    model raised it (the traceback with ``PFNLAB_TRACEBACK``); exit status 2."""
    from pfnlab.api import model_error

    say(_escape(str(model_error(e, "error"))))
    if os.environ.get("PFNLAB_TRACEBACK"):
        traceback.print_exception(e)
    else:
        say("(PFNLAB_TRACEBACK=1 shows the Python traceback)")
    return exits.USAGE

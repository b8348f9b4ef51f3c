"""Ctrl-C: the first one stops the work and the command reports what it covered (exit
status 3); a second one stops at once, without a traceback.

The first SIGINT raises :class:`KeyboardInterrupt` as Python's own handler does: a search
catches it and returns what it covered; a command that runs several searches asks
:func:`interrupted` (or :func:`stop_if_interrupted`) between them. A second SIGINT exits
with status 3 there and then (worker processes die with their parent): the report being
built is lost, and the line on standard error says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from pfnlab.cli import exits

_count = [0]
#: the command's exit status once it has finished (then Ctrl-C just ends the process)
_finished: list[int | None] = [None]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a write under way: its tail is lost
            stream.flush()


def _handler(signum: int, frame: FrameType | None) -> None:
    _count[0] += 1
    done = _finished[0]
    if done is not None:  # the report is out: end with its status, quietly
        _flush()
        os._exit(done)
    if _count[0] == 1:
        raise KeyboardInterrupt
    _flush()
    os.write(2, b"\npfnlab: interrupted again (Ctrl-C): stopped at once; "
                b"the report was not finished\n")
    os._exit(exits.INCONCLUSIVE)


def install() -> None:
    """For the ``pfnlab`` process: Ctrl-C is handled here until the process ends (a late
    one, while Python shuts down, must not kill it by the signal)."""
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handler)


def shutting_down() -> None:
    """The process is ending with its status: Ctrl-C can no longer change it (Python
    resets a handler written in Python to the default while it shuts down, and the
    signal would then kill the process)."""
    if signal.getsignal(signal.SIGINT) == _handler:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def handling() -> Iterator[None]:
    """Within this block Ctrl-C is counted (and a second one exits at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    prev = signal.getsignal(signal.SIGINT)
    if prev == signal.SIG_IGN:  # started ignoring it (nohup, a background job): keep so
        yield
        return
    _count[0] = 0
    _finished[0] = None
    signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, prev)  # the process's own (install) stays


def finished(code: int) -> None:
    """The command is done and exits with ``code``: a Ctrl-C from now on just exits."""
    _finished[0] = code


def interrupted() -> bool:
    """Whether Ctrl-C was pressed during this command."""
    return _count[0] > 0


def stop_if_interrupted() -> None:
    """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed (a search swallowed it)."""
    if _count[0]:
        raise KeyboardInterrupt

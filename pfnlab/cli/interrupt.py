"""Ctrl-C: the first one stops the work and the command reports what it covered (exit
status 3); a second one stops at once, without a traceback. SIGTERM (``timeout``, a batch
system's time limit, a cancelled CI job) is handled the same way, and the report says
"interrupted (SIGTERM)".

The first SIGINT raises :class:`KeyboardInterrupt` as Python's own handler does: a search
catches it and returns what it covered; a command that runs several searches asks
:func:`interrupted` (or :func:`stop_if_interrupted`) between them. A second SIGINT exits
with status 3 there and then (worker processes die with their parent): the report being
built is lost, and the line on standard error says so.

One signal can arrive twice: GNU ``timeout`` sends its signal to the command and then to
the command's whole process group, a terminal's Ctrl-C reaches every process of the
foreground group. The same signal again within :data:`SAME_SIGNAL` seconds of the first is
that one interrupt, not a second (no one presses Ctrl-C twice within a tenth of a second).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from pfnlab.cli import exits
from pfnlab.explore.search.common import INTERRUPTED_BY

#: the signals that stop a command with its report
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_count = [0]
#: the same signal this soon after the first (seconds) is the first one delivered twice
SAME_SIGNAL = 0.1
#: the first signal of the command and when it came (time.monotonic())
_first: list[tuple[int, float]] = []
#: the command's exit status once it has finished (then Ctrl-C just ends the process)
_finished: list[int | None] = [None]
#: whether a command runs (within :func:`handling`); before one does, the command line is
#: being parsed and there is nothing to stop or report
_running = [False]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a write under way: its tail is lost
            stream.flush()


def cause() -> str:
    """What interrupted the command: "Ctrl-C" or the signal's name ("SIGTERM")."""
    return INTERRUPTED_BY[0]


def _handler(signum: int, frame: FrameType | None) -> None:
    now = time.monotonic()
    if _count[0] and _first and _first[0][0] == signum and now - _first[0][1] < SAME_SIGNAL:
        return  # the first signal delivered again (timeout's process group, see above)
    _count[0] += 1
    if _count[0] == 1:
        _first[:] = [(signum, now)]
        INTERRUPTED_BY[0] = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    done = _finished[0]
    if done is not None:  # the report is out: end with its status, quietly
        _flush()
        os._exit(done)
    if not _running[0]:  # no command yet: a KeyboardInterrupt would reach Typer (exit 130)
        _flush()
        os.write(2, f"pfnlab: interrupted ({cause()}) before there was anything to "
                    "report\n".encode())
        os._exit(exits.INCONCLUSIVE)
    if _count[0] == 1:
        raise KeyboardInterrupt
    _flush()
    os.write(2, f"\npfnlab: interrupted again ({cause()}): stopped at once; "
                "the report was not finished\n".encode())
    os._exit(exits.INCONCLUSIVE)


def install() -> None:
    """For the ``pfnlab`` process: Ctrl-C and SIGTERM are handled here until the process
    ends (a late one, while Python shuts down, must not kill it by the signal); one that
    comes before the command runs (its line still being parsed, on a loaded machine)
    exits 3 at once, "before there was anything to report", as one during it would."""
    for sig in SIGNALS:
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _handler)


def shutting_down() -> None:
    """The process is ending with its status: Ctrl-C can no longer change it (Python
    resets a handler written in Python to the default while it shuts down, and the
    signal would then kill the process)."""
    for sig in SIGNALS:
        if signal.getsignal(sig) == _handler:
            signal.signal(sig, signal.SIG_IGN)


@contextmanager
def handling() -> Iterator[None]:
    """Within this block Ctrl-C and SIGTERM are counted (and a second one exits at
    once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # a signal the process started ignoring (nohup, a background job's SIGINT) stays so
    prev = {sig: signal.getsignal(sig) for sig in SIGNALS}
    mine = [sig for sig in SIGNALS if prev[sig] != signal.SIG_IGN]
    _count[0] = 0
    _first.clear()
    _finished[0] = None
    INTERRUPTED_BY[0] = "Ctrl-C"
    for sig in mine:
        signal.signal(sig, _handler)
    _running[0] = True
    try:
        yield
    finally:
        _running[0] = False
        for sig in mine:
            signal.signal(sig, prev[sig])  # the process's own (install) stays


#: how long past its time budget a search may run before :func:`deadline` stops it
GRACE = 2.0


@contextmanager
def deadline(seconds: float | None, why: str) -> Iterator[Callable[[], None]]:
    """Within this block, :data:`GRACE` seconds after ``seconds`` (a time budget the
    search checks between steps), interrupt the command as Ctrl-C would, the cause being
    ``why``: a model thread that never reaches a scheduling point (a loop with no shared
    access) would otherwise keep the search from ever looking at its clock. Nothing
    without a budget, outside the main thread, or where the process has an alarm of its
    own (a SIGALRM handler). The block gets a function that starts the count again: a
    command that runs several searches, each with the budget, calls it before each."""
    if seconds is None or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        yield lambda: None
        return

    def restart() -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds + GRACE)

    def ring(signum: int, frame: FrameType | None) -> None:
        if _count[0] == 0:
            _count[0] = 1
            INTERRUPTED_BY[0] = why
            raise KeyboardInterrupt

    prev = signal.signal(signal.SIGALRM, ring)
    restart()
    try:
        yield restart
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, prev)


def finished(code: int) -> None:
    """The command is done and exits with ``code``: a Ctrl-C from now on just exits."""
    _finished[0] = code


def interrupted() -> bool:
    """Whether Ctrl-C was pressed (or SIGTERM came) during this command."""
    return _count[0] > 0


def stop_if_interrupted() -> None:
    """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed (a search swallowed it)."""
    if _count[0]:
        raise KeyboardInterrupt

"""Forking worker processes safely around Ctrl-C and SIGTERM.

A signal that arrives while ``os.fork`` runs is handled in the fork's hooks (logging's
lock release, in the parent), where the ``KeyboardInterrupt`` the command line's handler
raises is printed as "Exception ignored" and lost: the search would go on as if it had not
been interrupted. And a worker that outlives its parent (the parent stopped at once on a
second Ctrl-C) holds the parent's standard output open and burns a core. So:

- :func:`signals_held` defers SIGINT and SIGTERM while workers are forked: the process's
  handlers are replaced by one that only records the signal (Python runs handlers in the
  main thread whichever thread the kernel picked, so masking the forking thread would not
  do), and a signal that came is raised again, to the process's own handler, when the
  block ends, in ordinary code;
- :func:`worker_started`, run first in every worker, ignores SIGINT (Ctrl-C is the
  parent's), lets SIGTERM kill it (how executors stop workers), resets SIGALRM (the
  parent's timers do not come along) and makes it die with its parent (Linux
  ``PR_SET_PDEATHSIG``).

A worker the system refuses (too many open files, processes, too little memory) is
:class:`WorkersNotStarted`, whose message names the limit and says to give fewer
``--jobs`` (it used to be an ``OSError`` blamed on the scenario being checked);
:func:`start_worker` forks a worker and the pipe it answers on, and raises that error when
the system refuses either.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

#: SIGALRM: the command line's time-budget watchdog (cli/interrupt.py) interrupts as SIGINT
_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)


@contextmanager
def signals_held() -> Iterator[None]:
    """Fork workers inside this block: Ctrl-C and SIGTERM are handled when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread has handlers to defer
        return
    came: list[int] = []

    def defer(signum: int, frame: FrameType | None) -> None:
        came.append(signum)

    prev = {sig: signal.getsignal(sig) for sig in _HELD}
    mine = [sig for sig in _HELD if prev[sig] not in (signal.SIG_IGN, None)]
    for sig in mine:
        signal.signal(sig, defer)
    try:
        yield
    finally:
        for sig in mine:
            signal.signal(sig, prev[sig])
        for signum in came:
            signal.raise_signal(signum)


def worker_started(parent: int) -> None:
    """In a forked worker of process ``parent``, before anything else (see the module)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # (the parent's deferral, above)
    with suppress(Exception):  # not Linux: the worker ends when its queue closes
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)


class WorkersNotStarted(RuntimeError):
    """The system refused the worker processes (open files, processes, memory): the
    message says what to lower."""


def refused(workers: int, why: str) -> WorkersNotStarted:
    """The error for ``workers`` worker processes the system refused (``why``: its
    reason, "Too many open files")."""
    return WorkersNotStarted(
        f"could not start {workers} worker processes: {why}; give fewer (--jobs), or "
        "raise the limit (ulimit -n, ulimit -u)")


def start_worker(ctx: Any, target: Callable[..., object], args: tuple[Any, ...],
                 workers: int) -> tuple[Connection, Any]:
    """Fork a daemon process running ``target(*args, send)``, ``send`` the writing end of
    a new pipe, with signals held (:func:`signals_held`): the reading end and the
    process. A process or pipe the system refuses raises :func:`refused` (one of
    ``workers``), with what this call opened closed first: at the limit of open files
    nothing else could be done, not even the import that prints the message."""
    recv: Connection | None = None
    send: Connection | None = None
    why = ""
    try:
        recv, send = ctx.Pipe(duplex=False)
        with signals_held():  # the worker forks here
            proc = ctx.Process(target=target, args=(*args, send), daemon=True)
            proc.start()
    except OSError as e:
        why = str(e.strerror or e)
    finally:
        if send is not None:
            send.close()  # the worker's end
    if why:  # raised here, past the except block, whose traceback holds what it opened
        if recv is not None:
            recv.close()
        raise refused(workers, why)
    assert recv is not None
    return recv, proc

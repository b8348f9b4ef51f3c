"""Forking worker processes safely around Ctrl-C and SIGTERM.

A signal that arrives while ``os.fork`` runs is handled in the fork's hooks (logging's
lock release, in the parent), where the ``KeyboardInterrupt`` the command line's handler
raises is printed as "Exception ignored" and lost: the search would go on as if it had not
been interrupted. And a worker that outlives its parent (the parent stopped at once on a
second Ctrl-C) holds the parent's standard output open and burns a core. So:

- :func:`signals_held` holds SIGINT and SIGTERM back while workers are forked; one that came
  meanwhile is delivered when the block ends, in ordinary code;
- :func:`worker_started`, run first in every worker, ignores SIGINT (Ctrl-C is the
  parent's), lets SIGTERM kill it (how executors stop workers), makes it die with its
  parent (Linux ``PR_SET_PDEATHSIG``), and only then lets those signals in.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress

_HELD = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_held() -> Iterator[None]:
    """Fork workers inside this block: Ctrl-C and SIGTERM wait until it ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def worker_started(parent: int) -> None:
    """In a forked worker of process ``parent``, before anything else (see the module)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with suppress(Exception):  # not Linux: the worker ends when its queue closes
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)

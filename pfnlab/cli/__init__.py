"""The ``pfnlab`` command: the verdict matrix, one check with its traces, diff, replay,
the lists and the 2019 thread. One module per command; :mod:`pfnlab.cli.exits` has the
exit-status table they share.

Every input is checked before any work starts (names, sizes within their caps, budgets,
output paths, model files); Ctrl-C stops a command, which says what it covered; errors
are one line on standard error, never a traceback.
"""

from __future__ import annotations

from pfnlab.cli import (
    check_cmd,
    diff_cmd,
    list_cmd,
    matrix_cmd,
    replay_cmd,
    sweep_cmd,
    thread_cmd,
)
from pfnlab.cli.app import app
from pfnlab.cli.main import main

__all__ = ["app", "check_cmd", "diff_cmd", "list_cmd", "main", "matrix_cmd", "replay_cmd",
           "sweep_cmd", "thread_cmd"]

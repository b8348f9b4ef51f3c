"""Progress of long commands: one status line on standard error when it is a terminal
(nothing otherwise, so logs and pipes stay clean)."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from types import TracebackType

from rich.console import Console

from pfnlab.explore.search import Stats, reporting


class Status:
    """``with Status("check v5.4 / devdax-unbind") as st: ...``: the label, the phase set
    by :meth:`phase` and the running search's counts, refreshed about 5 times a second."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.what = ""
        self.started = time.perf_counter()
        self._stack = ExitStack()
        self._status: object = None
        self._stats = ""

    def __enter__(self) -> Status:
        if sys.stderr is not None and sys.stderr.isatty():
            console = Console(stderr=True)
            status = console.status(self._text())
            self._status = status
            self._stack.enter_context(status)
            self._stack.enter_context(reporting(self._search))
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    def _text(self) -> str:
        what = f": {self.what}" if self.what else ""
        stats = f": {self._stats}" if self._stats else ""
        return (f"{self.label}{what}{stats}, {time.perf_counter() - self.started:.0f} s "
                "(no claim until it ends; Ctrl-C stops and reports)")

    def _show(self) -> None:
        if self._status is not None:
            self._status.update(self._text())  # type: ignore[attr-defined]

    def phase(self, what: str) -> None:
        """Say what runs now ("scenario 2/7 thp-split on v5.4")."""
        self.what = what
        self._stats = ""
        self._show()

    def _search(self, stats: Stats, elapsed: float) -> None:
        self._stats = (f"{stats.executions:,} executions, {stats.states:,} states, "
                       f"{stats.steps / max(elapsed, 1e-9):,.0f} steps/s")
        if stats.workers:
            self._stats += f"; {stats.workers}"
        self._show()

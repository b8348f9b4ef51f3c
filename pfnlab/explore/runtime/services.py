"""What a primitive may use of the execution it runs in (engine-internal).

The primitives (locks.py, waits.py, frees.py) own their semantics: how their operation is
performed, what it writes and reads, when it blocks, when a blocked thread may go on, what
finding a misuse is. They act on the execution only through :class:`Runtime`, which
:class:`~pfnlab.explore.runtime.execution.Execution` provides; this module is below both,
so that neither imports the other's back.
"""

from __future__ import annotations

from typing import Any, Protocol

from pfnlab.explore.findings import Finding
from pfnlab.explore.knowledge import Knowledge
from pfnlab.explore.races import Race, RaceDetector
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.shared import Shared

#: one step's outcome as a primitive reports it: its footprint, the value before (for the
#: trace), the value the thread receives, and RAN / STOPPED / ABORT / PASSED (ops.py)
Outcome = tuple[tuple[tuple[int, str, bool], ...], Any, Any, int]


class Runtime(Protocol):
    """The execution's state and services a primitive uses."""

    threads: list[ThreadState]
    objects: list[Shared]
    races: RaceDetector | None
    knowledge: Knowledge
    movers: bool
    #: the halting finding, once one is made
    finding: Finding | None
    log: list[tuple[dict[str, Any], str, Any, Any]] | None
    #: blocked threads by the (object index, field) whose writes re-check them
    watch: dict[tuple[int, str], set[int]]
    #: stale waiters a write woke in the step under way (re-checked at its end)
    stale_wakes: set[int]
    #: who runs model code now (ops.SCHED, THREAD, PEEK), and a check's read set
    mode: int
    peek: set[tuple[int, str]] | None

    def _set(self, obj: Shared, name: str, field: str, value: Any) -> None:
        """Write a shared field: logged, hashed, and waking the threads that watch it."""

    def _zob(self, name: str, field: str, value: Any) -> None:
        """Fold ``name.field = value`` in or out of the state's hash."""

    def _set_finding(self, t: ThreadState | None, kind: str, prop: str, message: str,
                     tb: str = "") -> None:
        """The execution's halting finding (the first one only)."""

    def _is_plain(self, obj: Shared, field: str) -> bool:
        """Whether ``obj.field`` is a Plain field."""

    def _guard_of(self, obj: Shared, field: str) -> Any:
        """The Guarded descriptor of ``obj.field``, or None."""

    def _race_finding(self, t: ThreadState, race: Race, kind: int, wait: str = "") -> None:
        """Report a data race ``t``'s access makes."""


class Rebuilding(Runtime, Protocol):
    """An execution with checkpoints (snapshot.py): stale threads can be rebuilt."""

    def rebuild(self, t: ThreadState) -> None:
        """Give stale thread ``t`` a greenlet at its position (snapshot.py)."""

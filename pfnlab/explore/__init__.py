"""The exploration engine: every interleaving of a Python model, reduced.

This layer knows nothing about kernels. Models declare shared state (:class:`Shared` with
:class:`Field` s), threads (plain functions), and checks; the engine explores their
interleavings and reports :class:`Finding` s with replayable schedules.
"""

from pfnlab.explore.findings import Finding, ModelViolation, TraceStep, Violation, fail
from pfnlab.explore.program import Check, Instance, Program, ThreadBody
from pfnlab.explore.runtime import Execution, model_caller
from pfnlab.explore.rwlock import RwLock
from pfnlab.explore.schedule import Schedule, Step
from pfnlab.explore.shared import (
    Field,
    Ghost,
    Guarded,
    Plain,
    Shared,
    atomic,
    context,
    current_thread,
    free,
    is_freed,
    keep,
    note,
    set_context,
)
from pfnlab.explore.stable import Stable
from pfnlab.explore.sync import Lock, Srcu, wait_for_change, wait_until
from pfnlab.explore.threadstate import summarised

__all__ = [
    "Check",
    "Execution",
    "Field",
    "Finding",
    "Ghost",
    "Guarded",
    "Instance",
    "Lock",
    "ModelViolation",
    "Plain",
    "Program",
    "RwLock",
    "Schedule",
    "Shared",
    "Srcu",
    "Stable",
    "Step",
    "ThreadBody",
    "TraceStep",
    "Violation",
    "atomic",
    "context",
    "current_thread",
    "fail",
    "free",
    "is_freed",
    "keep",
    "model_caller",
    "note",
    "set_context",
    "summarised",
    "wait_for_change",
    "wait_until",
]

"""The vocabulary of one execution: operation kinds, a thread's pending operation, footprints,
what performing an operation reports, and the labels traces show (engine-internal)."""

from __future__ import annotations

from typing import Any

from pfnlab.explore.shared import Shared
from pfnlab.explore.threadstate import _THREAD_MODE

# Pending operation kinds.
READ, WRITE, RMW, ACQUIRE, RELEASE, WAIT, FREE, RESUME, FAULT = range(9)
ACTIONS = ("read", "write", "rmw", "lock", "unlock", "wait", "free", "resume", "fault")


def action_name(kind: int, field: str) -> str:
    """The trace's name of an operation: an Srcu's read lock and unlock are not a lock's."""
    if field == "readers" and kind in (ACQUIRE, RELEASE):
        return "srcu_read_lock" if kind == ACQUIRE else "srcu_read_unlock"
    return ACTIONS[kind]

# Modes of the execution: who is running model code right now.
SCHED, THREAD, PEEK = range(3)
assert THREAD == _THREAD_MODE  # threadstate.call_summarised tests the mode too

# What ``stepping.perform`` reports: the thread ran on to its next operation, it stopped at
# a failed attempt, the step ends at once (a finding that leaves no state to check), or it
# passed a wait (the step ends there: the code after the wait is the thread's next step,
# RESUME).
RAN, STOPPED, ABORT, PASSED = range(4)
#: how a RESUME step (the code after a passed wait) is labelled in traces and schedules
RESUME_LABEL = "continue after wait"
#: how a FAULT step is labelled: the finding a thread's code made before its first step
FAULT_LABEL = "its finding before its first step"

# How a thread's access to a Guarded field is made: part of the current step, a step, or
# a step that is a finding (the lock not held).
RIDE, STEP, BAD = range(3)

#: Footprint entry of a step that changes what some check reads (see ``visible``).
OBSERVED = (-2, "<observed by a check>", True)

#: A footprint: the (object index, field, is_write) triples a step touches.
Footprint = tuple[tuple[int, str, bool], ...]


class Op:
    """A thread's pending scheduling point."""

    __slots__ = ("arg", "bad", "field", "grace", "kind", "obj", "where")

    def __init__(self, kind: int, obj: Shared, field: str, arg: Any = None) -> None:
        self.kind = kind
        self.obj = obj
        self.field = field
        self.arg = arg
        self.where: tuple[str, ...] = ()
        self.grace: Shared | None = None  # a wait: the Srcu whose synchronize this is
        #: the finding this access is, made when it is performed (a Guarded field accessed
        #: without its lock): (kind, property, message)
        self.bad: tuple[str, str, str] | None = None

    def describe(self) -> str:
        """A label for this step, without the function name."""
        name = self.obj.__dict__["_name"]
        k = self.kind
        if k in (ACQUIRE, RELEASE):
            return f"{action_name(k, self.field)} {name}"
        if k == WAIT:
            return f"wait {self.field}"
        if k == RESUME:
            return f"{RESUME_LABEL} {self.field}"
        if k == FAULT:
            return FAULT_LABEL
        if k == FREE:
            return f"free {name}"
        return f"{ACTIONS[k]} {name}.{self.field}"


class Halt(BaseException):
    """Unwinds a model thread whose plain access was a finding (not an ``Exception``, so
    model code cannot catch it)."""


class Nobody(Shared):
    """Placeholder object for waits (their footprint is the condition's read set)."""


NOBODY = Nobody.__new__(Nobody)
NOBODY.__dict__.update(_name="<wait>", _freed=None, _idx=-1)

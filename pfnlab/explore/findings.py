"""Findings: what an execution can show, with the schedule and trace that show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import field as _field
from typing import Any

from pfnlab.explore.schedule import Schedule


class ModelViolation(Exception):
    """Raised by model code (through :func:`fail`) when a property is violated at a step."""

    def __init__(self, prop: str, message: str) -> None:
        super().__init__(f"{prop}: {message}")
        self.prop = prop
        self.message = message


def fail(prop: str, message: str) -> None:
    """Report that property ``prop`` is violated at this step; the execution stops here."""
    raise ModelViolation(prop, message)


# Finding kinds.
INVARIANT = "invariant"        # an invariant was false after a step
ASSERTION = "assertion"        # model code raised AssertionError or called fail()
HANG = "hang"                  # live threads all blocked, none able to wake
FINAL = "final-check"          # an end-of-execution check failed (leaks)
EXCEPTION = "exception"        # model code raised another exception
USE_AFTER_FREE = "use-after-free"  # a thread touched an object another step freed
NO_PROGRESS = "no-progress"    # an execution exceeded the step limit (livelock?)
DATA_RACE = "data-race"        # two plain-field accesses that no synchronisation orders


@dataclass
class TraceStep:
    """One step of a recorded execution, in model terms."""

    index: int
    thread: str
    label: str
    where: tuple[str, ...]
    action: str            # read, write, rmw, lock, unlock, wait, free
    obj: str
    field: str
    before: Any = None
    after: Any = None
    failed_attempt: bool = False   # a contended lock or a wait whose condition was false
    preempted: bool = False        # the previous thread could have continued
    #: ran in the same scheduling step as the one before (a lock acquire runs on into the
    #: next operation, a release joins the step before it): no thread could run between
    joined: bool = False
    #: ghost writes the thread made right after this step, before its next one:
    #: ``(object, field, before, after)``, e.g. a reference ledger updated after a get
    ghosts: list[tuple[str, str, Any, Any]] = _field(default_factory=list)
    #: what the thread noted right after this step (e.g. what a predicate returned, decided
    #: by the value this step read): :func:`note` texts, or a model's typed records whose
    #: ``str()`` is the text (the kernel model's ``KernelCall``)
    notes: list[Any] = _field(default_factory=list)
    #: for a wait, the ``object.field`` s its condition read
    reads: tuple[str, ...] = ()
    #: plain-field accesses the thread made right after this step, before its next one:
    #: ``(action, object, field, before, after, function)``, action ``read``/``write``/``rmw``
    plain: list[tuple[str, str, str, Any, Any, str]] = _field(default_factory=list)


class Violation(str):
    """What an invariant or final check returns when it does not hold, with facts a report
    may need beyond the sentence: ``Violation("vcpu0:fault returned holding ...",
    leaked_by="vcpu0:fault")``. It is the message (a str); ``details`` go to the finding's
    ``details`` (and the JSON report), so that reports read facts, not sentences."""

    details: dict[str, Any]

    def __new__(cls, message: str, **details: Any) -> Violation:
        self = super().__new__(cls, message)
        self.details = details
        return self


def violation_details(msg: object) -> dict[str, Any]:
    """The details of a check's message (empty for a plain str)."""
    d = getattr(msg, "details", None)
    return dict(d) if isinstance(d, dict) else {}


@dataclass
class Finding:
    """A property violation with the execution that shows it.

    ``schedule`` replays it; ``trace`` is the recorded execution; ``minimal`` says in what
    sense the execution is the smallest one showing the finding (or why it may not be).
    """

    kind: str
    prop: str
    message: str
    schedule: Schedule
    trace: list[TraceStep] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    preemptions: int = 0
    minimal: str = ""
    #: every shared object's fields (ghosts included) when the traced execution stopped,
    #: by object name; filled by replay (trace mode), for reports
    state: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """Two findings are the same if they have the same kind and property."""
        return (self.kind, self.prop)

    @property
    def steps(self) -> int:
        """Number of steps in the execution that shows this finding."""
        return len(self.schedule)

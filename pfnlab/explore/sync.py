"""Blocking primitives: locks and "wait until a condition over shared state holds".

Both are scheduling points. A lock acquire that finds the lock held, and a wait whose
condition is false, is a *failed attempt*: a step that reads the shared state and leaves the
thread blocked. A blocked thread is not runnable until a step by another thread writes a
field that its attempt read and makes the attempt able to succeed. If every live thread is
blocked, the execution hangs, and the finding names what each thread waits for.
"""

from __future__ import annotations

from collections.abc import Callable

from pfnlab.explore.shared import HOOKS, Field, Shared


class Lock(Shared):
    """A non-recursive lock (spinlock or mutex). ``owner`` is the holding thread's name."""

    owner: Field[str | None] = Field(None)

    def acquire(self) -> None:
        """Take the lock; blocks (after one failed attempt) while another thread holds it."""
        rt = HOOKS.current
        if rt is None:
            self.__dict__["owner"] = "setup"
            return
        rt.acquire(self)

    def release(self) -> None:
        """Release the lock; releasing a lock this thread does not hold is a finding."""
        rt = HOOKS.current
        if rt is None:
            self.__dict__["owner"] = None
            return
        rt.release(self)

    def held_by(self) -> str | None:
        """The holder's name, without a scheduling point (for checks, conditions, reports).

        Tracked like a read of ``owner`` in checks and ``wait_until`` conditions.
        """
        rt = HOOKS.current
        if rt is not None:
            rt.observe(self, "owner")
        return self.__dict__["owner"]


def wait_until(cond: Callable[[], object], what: str, prop: str = "") -> None:
    """Block until ``cond()`` is true. ``what`` names the wait in hang reports.

    If the execution hangs with this thread waiting here, the hang is reported under
    property ``prop`` (e.g. ``"teardown-terminates"``), else under ``"hang"``.

    ``cond`` is evaluated by the engine without scheduling points; the fields it reads are the
    footprint of the wait step. Only a step that writes one of them can wake the thread.
    """
    rt = HOOKS.current
    if rt is None:
        if not cond():
            raise RuntimeError(f"wait_until({what}) outside an execution with a false condition")
        return
    rt.wait(cond, what, prop)

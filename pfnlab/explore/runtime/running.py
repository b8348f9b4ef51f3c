"""Threads of an execution in greenlets: starting an operation, switching to a thread and
back, a thread's death, and writing a shared field.

Each thread runs in its own greenlet; a shared access yields an ``Op`` (ops.py) to the
scheduler's greenlet, which performs it when the thread is chosen and switches back with
the result (``_switch``). A thread given as a list of operations has its history key
reset at each operation's start (``_operation_starts``, threadstate.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import greenlet

from pfnlab.explore.findings import (
    ASSERTION,
    EXCEPTION,
    ModelViolation,
)
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import locks, waits
from pfnlab.explore.runtime.blocking import unwatch
from pfnlab.explore.runtime.checks import Checking
from pfnlab.explore.runtime.ops import (
    ACQUIRE,
    FAULT,
    NOBODY,
    SCHED,
    THREAD,
    WAIT,
    Halt,
    Op,
)
from pfnlab.explore.runtime.sites import model_frame, model_stack, where_failed
from pfnlab.explore.runtime.threads import DONE_KEY, ThreadState
from pfnlab.explore.shared import HOOKS, Shared
from pfnlab.explore.threadstate import Statics, ops_key


class Running(Checking):
    """Switching between the scheduler and the threads' greenlets."""

    def _set(self, obj: Shared, name: str, field: str, value: Any) -> None:
        d = obj.__dict__
        if self.replaying:  # a rebuilt thread's code re-runs (snapshot.py)
            d[field] = value
            return
        old = d[field]
        d[field] = value
        if self.log is not None:
            self.log.append((d, field, old, value))
        self._zob(name, field, old)
        self._zob(name, field, value)
        w = self.watch.get((d["_idx"], field))
        if w:
            waits.wake(self, w)

    def _trampoline(self, fn: Any, start: int = 0) -> Callable[[Any], object]:
        if callable(fn):
            def run(_first: Any) -> object:
                return fn()

            return run
        ops = list(fn)

        def run_ops(_first: Any) -> object:
            for i in range(start, len(ops)):
                self._operation_starts(ops, i)
                # a fresh context per operation: the thread's state at an operation's start
                # is the operations left (threadstate.py), so no context variable an
                # earlier operation set may reach it (a rebuild starts there with none)
                contextvars.Context().run(ops[i])
            return None

        return run_ops

    def _operation_starts(self, ops: list[Any], index: int) -> None:
        """A thread given as a list of operations starts ``ops[index]``: its state is now the
        operations left, so its history key becomes their key (see threadstate.py)."""
        t = self.running
        if t is not None and self.log is not None and not self.replaying:
            # a rebuild may start here (snapshot.py): the step, the log, the operation, the
            # key before it, and how far the step had got
            t.opstarts.append((len(self.schedule) - 1, len(self.log), index, t.key,
                               self.enabling, self.step_res[-1] if self.schedule else 0))
        if t is None or not self.hashable:
            return
        # The thread is deterministic, so its key here determines the operations left and
        # their encoding: memoised for every execution of this program.
        memo = _OPS_MEMO.get(self.program)
        if memo is None:
            memo = _OPS_MEMO[self.program] = {}
        mk = (t.key, index)
        key = memo.get(mk, -1)
        if key == -1:
            if self.statics is None:
                self.statics = Statics(list(self.instance.threads.values()))
            key = memo[mk] = ops_key(t.name, ops, index, self.statics)
        if key is not None:
            t.key = key

    def _yield(self, op: Op) -> Any:
        if self.trace_on:
            op.where = model_stack()
        assert self._main is not None
        return self._main.switch(op)

    def _switch(self, t: ThreadState, value: Any) -> Any:
        """Run thread ``t``'s code from where it is suspended, handing it ``value``, until
        it yields its next operation (returned) or ends; what it raises propagates."""
        prev = HOOKS.current
        HOOKS.current = self
        self._main = greenlet.getcurrent()
        self.mode = THREAD
        self.running = t
        try:
            return t.glet.switch(value)
        finally:
            self.mode = SCHED
            HOOKS.current = prev

    def _resume(self, t: ThreadState, value: Any) -> None:
        try:
            nxt = self._switch(t, value)
        except Halt:  # a plain access was a finding (race, use after free); already set
            self._died(t)
            return
        except ModelViolation as e:
            self._set_finding(t, ASSERTION, e.prop, e.message)
            self._died(t)
            return
        except AssertionError as e:
            msg = str(e) or where_failed(e)
            at = model_frame(e)
            self._set_finding(t, ASSERTION, "assertion",
                              f"{msg} ({at})" if at and str(e) else msg)
            self._where(at)
            self._died(t)
            return
        except Exception as e:
            at = model_frame(e)
            self._set_finding(
                t, EXCEPTION, "exception",
                f"{type(e).__name__}: {e}" + (f" ({at})" if at else ""),
                tb=traceback.format_exc()
            )
            self._where(at)
            self._died(t)
            return
        unwatch(self, t)
        if t.glet.dead:
            t.op = None
            t.key = DONE_KEY
            t.reads = ()
            t.value = False
            return
        t.op = nxt
        if nxt.kind == WAIT:
            waits.reached(self, t, nxt)
        else:
            # what an earlier attempt left is no part of the thread's state (a step from
            # the same state must leave the same bookkeeping: stepmemo.py)
            t.reads = ()
            t.value = True
            t.blocked = False
            if nxt.kind == ACQUIRE and nxt.field == "owner":
                locks.pending_acquire(self, t, nxt)

    def _died(self, t: ThreadState) -> None:
        """``t``'s code ended in the execution's finding. Made in its initial run, before
        its first step, the finding is that step (``FAULT``), as in a finer execution:
        other threads may run first. (Halting the execution in its initial state cut them
        off: a data race on the Plain fields the initial run had touched went unseen.)"""
        f = self.finding
        if self.starting and f is not None and not self.replaying:
            self.finding = None
            t.op = Op(FAULT, NOBODY, "", f)
            t.reads = ()
            t.value = True
            return
        t.op = None

    def _where(self, at: str) -> None:
        """Record where in the model code the halting finding was raised (``details``)."""
        if at and self.finding is not None:
            self.finding.details.setdefault("where", at)

    def _passed(self, t: ThreadState, op: Op, value: Any) -> None:
        waits.passed(self, t, op, value)

    def thread_names(self) -> list[str]:
        """Names of the threads, indexed by tid."""
        return [t.name for t in self.threads]

    def tid_of(self, name: str) -> int:
        """The tid of the thread called ``name``."""
        for t in self.threads:
            if t.name == name:
                return t.tid
        raise KeyError(name)

    def close(self) -> None:
        """Abandon the execution, ending its thread greenlets."""
        for t in self.threads:
            if not t.glet.dead:
                with contextlib.suppress(Exception):
                    t.glet.throw(greenlet.GreenletExit)
        self.threads = []


#: ops_key results by program, then by (thread key at the operation's start, index)
_OPS_MEMO: weakref.WeakKeyDictionary[Program, dict[tuple[int, int], int | None]] = \
    weakref.WeakKeyDictionary()

"""Checks of one execution: invariants, goals, final checks, hangs, and the findings they make.

Two kinds of finding:

- a *halting* finding (``Execution.finding``) ends the execution: model code raised (an
  assertion, ``fail()``, an exception), a thread touched freed memory, a data race, a hang,
  no progress, or an *unstable* invariant became false. Past it the model state means
  nothing (a thread's stack was unwound, memory is gone) or, for an unstable invariant, the
  search would have to order more steps to say which later state showed it first;
- a *noted* finding (``Execution.noted``) does not: a *stable* invariant became false (it
  stays false in every extension, so every later state shows it again and nothing about
  the order of later steps is lost), or a final check failed (every final check runs). The
  execution goes on, so properties that are violated only later in it are still checked
  there, and each property records its own first violation. A stable invariant that is
  false is not evaluated again in that execution.

An execution cut by a halting finding leaves every property it had not yet violated
unchecked in the rest of it; the search counts such executions per property of the halting
finding (``Result.masked_by``), and a verdict that depends on them says "not established"
(see ``pfnlab.matrix``), never "holds". A hang cuts nothing: no thread can take a step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pfnlab.explore.findings import (
    DATA_RACE,
    FINAL,
    HANG,
    INVARIANT,
    NO_PROGRESS,
    Finding,
    violation_details,
)
from pfnlab.explore.races import Race
from pfnlab.explore.runtime import locks
from pfnlab.explore.runtime.ops import ACQUIRE, PEEK, READ
from pfnlab.explore.runtime.sites import model_frame, model_stack
from pfnlab.explore.runtime.state import State
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.schedule import Schedule, Step
from pfnlab.explore.shared import ALL_FIELDS, HOOKS

if TYPE_CHECKING:
    from pfnlab.explore.program import Check


class Checking(State):
    """Invariants, goals, final checks and hangs of an execution, and its findings."""

    def _set_finding(self, t: Any, kind: str, prop: str, message: str,
                     tb: str = "") -> None:
        """Record the halting finding (the first one only); the execution ends with it.
        A :class:`~pfnlab.explore.findings.Violation` message brings its details. The
        goals are checked in the state it leaves (:meth:`_goals_at_halt`)."""
        if self.finding is not None:
            return
        details: dict[str, Any] = violation_details(message)
        message = str.__str__(message)
        if t is not None:
            details["thread"] = t.name
        if tb:
            details["traceback"] = tb
        self.finding = Finding(kind, prop, message, Schedule(self._steps()), details=details)
        self._goals_at_halt()

    def _goals_at_halt(self) -> None:
        """Check the goals not yet reached in the state a halting finding leaves: a goal
        reached in the very step that fails (a ``reached()`` just before a ``fail()``, or in
        the step an invariant fails after) was reached. No step follows, so the step's
        writes are not looked at (``_check_after``): every such goal is evaluated. In an
        initial run the finding becomes the thread's first step (``_died``), and the
        initial state is checked as ever."""
        if not self.check_on or self.starting:
            return
        for i, goal in enumerate(self.instance.goals):
            self._check_goal(i, goal)

    def _note(self, kind: str, prop: str, message: str) -> None:
        """Record a finding that does not end the execution (first of its key only)."""
        if (kind, prop) in self.noted_keys:
            return
        self.noted_keys.add((kind, prop))
        self.noted.append(Finding(kind, prop, str.__str__(message), Schedule(self._steps()),
                                  details=violation_details(message)))

    def findings(self) -> list[Finding]:
        """Every finding of this execution so far: the noted ones, then the halting one."""
        if self.finding is None:
            return list(self.noted)
        return [*self.noted, self.finding]

    def found(self, key: tuple[str, str]) -> Finding | None:
        """This execution's finding of ``key`` = (kind, property), noted or halting."""
        for f in self.findings():
            if f.key == key:
                return f
        return None

    def cut_short(self) -> bool:
        """Whether a halting finding ended this execution before its threads could go on
        (every finding but a hang: at a hang no thread can take a step anyway)."""
        f = self.finding
        return f is not None and f.kind != HANG

    def _steps(self) -> list[Step]:
        names = [t.name for t in self.threads]
        if self.labels:
            pairs = zip(self.schedule, self.labels, strict=False)
            return [Step(names[tid], lab) for tid, lab in pairs]
        return [Step(names[tid], "") for tid in self.schedule]

    def _run_check(
        self, check: Check, reads: set[tuple[int, str]] | None,
        observe: bool = False
    ) -> object:
        from pfnlab.explore.findings import EXCEPTION

        prev_mode, prev_peek = self.mode, self.peek
        if reads is None:
            reads = set()
        self.mode, self.peek = PEEK, reads
        prev = HOOKS.current
        HOOKS.current = self
        try:
            return check.fn()
        except Exception as e:
            at = model_frame(e)  # where the check raised: a line of the model file
            self._set_finding(None, EXCEPTION, "exception",
                              f"check {check.name}: {e!r}" + (f" ({at})" if at else ""))
            if at and self.finding is not None:
                self.finding.details.setdefault("where", at)
            return None
        finally:
            self.mode, self.peek = prev_mode, prev_peek
            HOOKS.current = prev
            if observe:
                self.observed |= reads

    def _check_all(self) -> None:
        inst = self.instance
        for i, inv in enumerate(inst.invariants):
            if i not in self.inv_false:
                self._check_inv(i, inv)
            if self.finding is not None:
                return
        for i, goal in enumerate(inst.goals):
            self._check_goal(i, goal)

    def _check_inv(self, i: int, inv: Check) -> None:
        reads: set[tuple[int, str]] = set()
        msg = self._run_check(inv, reads, observe=not inv.stable)
        self.inv_reads[i] = reads
        self._mover_check(inv, reads)
        if not self._verdict_ok(inv, msg) or not msg or self.finding is not None:
            return
        if inv.stable:  # false from here on: noted, and not evaluated again
            self.inv_false.add(i)
            if not self.replayed:
                self._note(INVARIANT, inv.prop, cast(str, msg))
        else:
            self._set_finding(None, INVARIANT, inv.prop, cast(str, msg))
            if self.finding is not None and self.finding.kind == INVARIANT:
                # reports say so: invariants are documented as not ending executions
                self.finding.details["ends_execution"] = True

    def _check_goal(self, i: int, goal: Check) -> None:
        if goal.name in self.goals_reached:
            return
        reads: set[tuple[int, str]] = set()
        # goals read intermediate states too: unless stable (once reached, reached in every
        # extension), the steps that change what they read are ordered (visibility proviso)
        if self._run_check(goal, reads, observe=not goal.stable):
            self.goals_reached.add(goal.name)
        self.goal_reads[i] = reads
        self._mover_check(goal, reads)

    def _mover_check(self, check: Check, reads: set[tuple[int, str]]) -> None:
        """An unstable check may not read a mover lock's owner (it would see only the states
        between kernel-level steps, where an acquire has joined the access after it)."""
        from pfnlab.explore.findings import EXCEPTION

        if check.stable or self.finding is not None:
            return
        bad = locks.mover_reads(self.objects, reads)
        if bad:
            self._set_finding(None, EXCEPTION, "exception",
                              locks.mover_read_error(*bad, f"check {check.name}"))

    def _check_after(self, fp: Any) -> None:
        writes = [(i, f) for i, f, w in fp if w]
        if self.ghost_writes:
            writes += self.ghost_writes
            self.ghost_writes = []
        if not writes:
            return
        inst = self.instance
        for i, inv in enumerate(inst.invariants):
            if i not in self.inv_false and _touches(self.inv_reads[i], writes):
                self._check_inv(i, inv)
                if self.finding is not None:
                    return
        for i, goal in enumerate(inst.goals):
            if goal.name not in self.goals_reached and _touches(self.goal_reads[i], writes):
                self._check_goal(i, goal)

    def _check_end(self) -> None:
        if self.finding is not None or self.finished:
            return
        if self.nsteps > self.max_steps:
            self._set_finding(
                None,
                NO_PROGRESS,
                "no-progress",
                f"execution did not finish within {self.max_steps} steps: a livelock or an "
                "unbounded retry loop? raise the step limit (--max-steps, "
                "Budget(max_steps=...)) if the model really needs more",
            )
            return
        if any(t.op is not None for t in self.threads):
            if not any(t.op is not None and not t.blocked for t in self.threads):
                self._hang()
            return
        self.finished = True
        if self.check_on:
            self._final_checks()

    def _final_checks(self) -> None:
        """Every final check, each failing one noted under its own property."""
        for chk in self.instance.final_checks:
            msg = self._run_check(chk, None)
            if self.finding is not None or not self._verdict_ok(chk, msg):
                return
            if msg:
                self._note(FINAL, chk.prop, cast(str, msg))

    def _verdict_ok(self, check: Check, msg: object) -> bool:
        """An invariant or final check returns None (holds) or a message; anything else
        (``False`` reads as "holds" but usually means "violated") is a model error."""
        if msg is None or isinstance(msg, str):
            return True
        from pfnlab.explore.findings import EXCEPTION

        self._set_finding(None, EXCEPTION, "exception",
                          f"check {check.name!r} returned {msg!r}: an invariant or final check "
                          "returns None when it holds and a message (a str) when it does not "
                          "(a goal returns a bool)")
        return False

    def _hang(self) -> None:
        waits: dict[str, str] = {}
        for t in self.threads:
            op = t.op
            if op is None:
                continue
            if op.kind == ACQUIRE:
                waits[t.name] = locks.holder(op)
            else:
                waits[t.name] = op.field
        desc = "; ".join(f"{n} waits for {w}" for n, w in waits.items())
        prop = next((self.hang_props[w] for w in waits.values() if self.hang_props.get(w)), "")
        self._set_finding(None, HANG, prop or "hang", f"every live thread is blocked: {desc}")
        assert self.finding is not None
        self.finding.details["waits"] = waits

    def enable_checks(self) -> None:
        """Turn invariant checking on after a re-execution that ran without it.

        A re-executed prefix was run with checks on when the search first explored it, so a
        stable invariant already false at its end was noted then, at its first violating
        state: here it is only marked false, not noted again with the later state's
        message (which would make the messages a search reports depend on which prefixes
        it happened to re-execute). The initial state is checked as ever."""
        if self.check_on:
            return
        self.check_on = True
        self.ghost_writes = []
        if self.finding is None:
            self.replayed = self.nsteps > 0
            try:
                self._check_all()
            finally:
                self.replayed = False
        if self.finding is None and self.finished:
            self._final_checks()

    def _race_finding(self, t: ThreadState, race: Race, kind: int, wait: str = "") -> None:
        obj = self.objects[race.key[0]]
        if wait:
            fn = f" in its wait_until({wait!r})"
        else:
            where = model_stack()
            fn = f" in {where[-1]}" if where else ""
        other = self.threads[race.earlier_tid].name
        verb = "writes" if kind != READ else "reads"
        self._set_finding(
            t, DATA_RACE, DATA_RACE,
            f"data race on {obj.name}.{race.key[1]}: {t.name} {verb} it{fn} while "
            f"{other}'s earlier {race.earlier_kind} of it is not ordered before by any lock "
            "or marked access (make the field a Field if the race is intended)",
        )


def _touches(reads: set[tuple[int, str]], writes: list[tuple[int, str]]) -> bool:
    for i, f in writes:
        if (i, f) in reads:
            return True
        if f == ALL_FIELDS and any(r[0] == i for r in reads):
            return True
    return False

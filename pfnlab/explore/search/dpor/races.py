"""Race detection of a DPOR search: the vector clock of each new event, the earlier events
it races with, and what each race asks of the stack.

Each new event is checked for races against the earlier events it conflicts with
(:func:`scan`); for a race ``e ⋖ e'`` the node before ``e`` gets an initial of
``notdep(e).e'`` (:func:`race`, stack.apply_race). A step that begins by taking a lock races
the holder's acquire, not the release that freed the lock (:func:`lock_races`).

Blocked threads: after each step, the pending step of every blocked thread is race-checked
as if it ran next (Flanagan and Godefroid's rule for disabled transitions); a thread woken
and blocked again before it is scheduled never has an executed event to race with
(:func:`blocked_races`).

Findings cut executions short. The step that causes a finding disables every other thread,
so it is treated as dependent with each of their pending steps, and those pending steps are
race-checked as if they ran next; otherwise reorderings that reach other findings would be
lost (:func:`cut_races`).

A cache hit: the cached state's subtree may still race with the current prefix, so every
stack event that conflicts with an entry of its summary of another thread, and does not
happen before that thread's next step, is handled as a race with an event below the hit
(:func:`summary_races`, after the summary method of stateful DPOR, Yang et al., SPIN
2008): its node gets an initial of the reversal where the stack decides one (the first
event after it that does not happen after it always is one), and is fully expanded where
the stack decides none, or for a lock word.

The functions take the search (:class:`Searching`): a search's own ``_race`` may handle a
race its own way (optimal.py), and a race with a node of a frozen prefix is reported, not
acted on (``nfrozen``, ``reports``: parallel/task_search.py).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from pfnlab.explore.runtime import Execution, Footprint
from pfnlab.explore.search.common import dependent
from pfnlab.explore.search.dpor.stack import Event, Node, apply_race, expand_fully
from pfnlab.explore.search.visited import Summary
from pfnlab.explore.shared import ALL_FIELDS


class Searching(Protocol):
    """What race detection reads and changes of a search (search.SourceDpor)."""

    stack: list[Node]
    events: list[Event]
    obj_events: dict[int, list[int]]
    #: the first steps of every execution may be frozen: races with them are reported
    nfrozen: int
    reports: list[tuple[Any, ...]]

    def _race(self, k: int, j: int, ej: Event) -> None:
        """Handle the race events[k] ⋖ ej (:func:`race`, or the search's own)."""


def event(s: Searching, p: int, fp: Footprint, depth: int, top: Node, acq: int = -1) -> Event:
    """Vector clock of the new event and race detection against earlier events.
    ``acq``: the lock the step took (its first operation), -1 if none."""
    ev, races = scan(s, p, fp, top.tclock[p], None)
    ev.acq = acq
    if acq >= 0:
        races = lock_races(s, acq, races, p, fp, top.tclock[p])
    for k in races:
        s._race(k, depth, ev)
    return ev


def lock_races(s: Searching, lock: int, races: list[int], p: int, fp: Footprint,
               pclock: tuple[int, ...]) -> list[int]:
    """``races`` of a step of ``p`` that begins by taking ``lock``, with the race against
    the release that made the lock free moved to the acquire it ends.

    A held lock makes its acquirer not enabled, so the acquire cannot be reordered
    with the holder's release: it can only go before the holder's acquire, where the
    lock was free. The two acquires race (as in Nidhugg and the source-set papers)
    unless the holder's acquire happens before this step through something other than
    the critical section it opened (then another race reorders that first)."""
    events = s.events
    lst = s.obj_events.get(lock, ())
    r = next((i for i in reversed(lst) if _writes(events[i].fp, lock)), -1)
    if r < 0 or r not in races or events[r].acq == lock:
        return races  # (a step that took and dropped it: the lock was free before it)
    holder = events[r].tid
    out = [k for k in races if k != r]
    a = next((i for i in reversed(lst)
              if i < r and events[i].tid == holder and events[i].acq == lock), -1)
    if a < 0:  # held since the initial state: no order has this step first
        return out
    # the clock of this step without the lock's hand-off (its lock word, and the
    # holder's critical section [a, r]): what else orders it after the holder's acquire
    data = tuple(x for x in fp if not (x[0] == lock and x[1] == "owner"))
    rest, _ = scan(s, p, data, pclock, None, (holder, a, r))
    if events[a].seq > rest.clock[holder]:
        out.append(a)
    return out


def scan(
    s: Searching, p: int, fp: Footprint, pclock: tuple[int, ...], forced: int | None,
    skip: tuple[int, int, int] | None = None,
) -> tuple[Event, list[int]]:
    """The clock of p's step ``fp`` after ``s.events``, and the events it races with.

    ``forced`` is the index of an event treated as dependent whatever the footprints;
    ``skip`` = ``(tid, first, last)``: thread ``tid``'s events from index ``first`` to
    ``last`` are treated as independent of it (:func:`lock_races`).
    """
    events = s.events
    c = list(pclock)
    cands: set[int] = set()
    for o in {i for i, _f, _w in fp}:
        cands.update(s.obj_events.get(o, ()))
    if forced is not None:
        cands.add(forced)
    races: list[int] = []
    for k in sorted(cands, reverse=True):
        ek = events[k]
        if ek.tid == p or ek.seq <= c[ek.tid]:
            continue
        if skip is not None and ek.tid == skip[0] and skip[1] <= k <= skip[2]:
            continue
        if k != forced and not dependent(ek.fp, fp):
            continue
        races.append(k)
        for t, v in enumerate(ek.clock):
            if v > c[t]:
                c[t] = v
    seq = pclock[p] + 1
    c[p] = seq
    return Event(p, fp, seq, tuple(c)), races


def cut_races(s: Searching, ex: Execution, depth: int, ev: Event, top: Node) -> None:
    """A finding at events[depth] cut the execution: race-check the pending steps."""
    for t in ex.threads:
        q = t.tid
        if q == ev.tid or t.op is None or t.blocked:
            continue
        tq = ev.clock if q == ev.tid else top.tclock[q]
        pending = ex.pending_footprint(q)
        # they belong to this state's future too: a later cache hit must see them
        top.summary.update((q, i, f, w) for i, f, w in pending)
        virtual, races = scan(s, q, pending, tq, depth)
        for k in races:
            s._race(k, depth + 1, virtual)


def blocked_races(s: Searching, ex: Execution, depth: int, ev: Event, top: Node) -> None:
    """Race-check the pending steps of the threads blocked after events[depth].

    A blocked thread's next step may never run in this execution (it stays blocked, or
    is woken and blocked again before it is scheduled), so source-DPOR, which races
    executed events only, would never reverse the writes that keep it blocked. As
    Flanagan and Godefroid's DPOR does for every thread's next transition, enabled or
    not, its pending step is checked as if it ran next; where that thread is not enabled
    at the backtrack point, ``_race`` adds the initials that lead to it."""
    for t in ex.threads:
        q = t.tid
        if t.op is None or not t.blocked:
            continue
        # (the thread that stepped too: its step may end at an acquire of a held lock,
        # which makes it not enabled with no step of its own)
        pending = ex.pending_footprint(q)
        # below this state too: a later cache hit must see them
        top.summary.update((q, i, f, w) for i, f, w in pending)
        virtual, races = scan(s, q, pending, ev.clock if q == ev.tid else top.tclock[q],
                              None)
        for k in races:
            s._race(k, depth + 1, virtual)


def race(s: Searching, k: int, j: int, ej: Event) -> None:
    """Handle the race events[k] ⋖ ej (ej would be events[j])."""
    events = s.events
    ek = events[k]
    node = s.stack[k]
    if node.full:
        return
    v = [events[i] for i in range(k + 1, j) if not ek.seq <= events[i].clock[ek.tid]]
    v.append(ej)
    initials = initials_of(v)
    if k < s.nfrozen:  # a frozen node: whoever froze it decides
        s.reports.append(("race", k, tuple(initials), tuple(el.tid for el in v)))
        return
    apply_race(node, initials, [el.tid for el in v])


def summary_races(s: Searching, summary: Summary, depth: int, ev: Event, top: Node) -> None:
    """A cache hit at ``stack[depth]``: every stack event that may race with an access of
    the cached state's subtree gets an initial of the reversal, where the stack decides
    one (see :func:`known_initials`), else its node fully expanded.

    Thread by thread in a fixed order (which initial a race adds depends on what earlier
    threads' races added); for one thread each racing stack event is handled once, fully
    expanded if one of the thread's entries races with it through a lock word (what an
    entry at a time would do: the rule for a data race adds an enabled thread, which a
    full expansion then adds anyway)."""
    events, stack, obj_events, nfrozen = s.events, s.stack, s.obj_events, s.nfrozen
    tclock = list(top.tclock)
    tclock[ev.tid] = ev.clock
    for q, objects in _by_thread(summary):
        tq = tclock[q]
        for o, accesses in objects:
            for k in obj_events.get(o, ()):
                node = stack[k]
                if node.full:
                    continue
                ek = events[k]
                if ek.tid == q or ek.seq <= tq[ek.tid]:
                    continue
                how = _conflict(ek.fp, o, accesses)
                if how is None:
                    continue
                if k < nfrozen:  # a frozen node: whoever froze it decides
                    s.reports.append(("full", k))
                elif how:  # a lock word: lock_races' rules
                    expand_fully(node)
                else:
                    _summary_race(node, known_initials(events, k), q)


def _conflict(fp: Footprint, o: int, accesses: tuple[tuple[str, bool], ...]) -> bool | None:
    """Whether the accesses ``(field, write)`` of a summary to object ``o`` conflict with
    footprint ``fp``: None if not, True if one does through a lock word (the first access
    of ``fp`` each one conflicts with decides), else False."""
    how: bool | None = None
    for f, w in accesses:
        for i2, f2, w2 in fp:
            if i2 == o and (w or w2) and (f in (f2, ALL_FIELDS) or f2 == ALL_FIELDS):
                if f2 == "owner" or f == "owner":
                    return True
                how = False
                break
    return how


_ByThread = tuple[tuple[int, tuple[tuple[int, tuple[tuple[str, bool], ...]], ...]], ...]


@lru_cache(maxsize=1 << 12)
def _by_thread(summary: Summary) -> _ByThread:
    """``summary`` as ``(thread, ((object, ((field, write), ...)), ...))``, every level
    sorted: a fixed order (a set's follows string hashing, PYTHONHASHSEED: counts varied
    run to run). Cached, the most recent 4,096: the visited table keeps one object per
    distinct summary, hit again and again (a frozenset keeps its hash); at two vCPUs
    `dirty-log-collapse` hits 2,200 distinct summaries 29,000 times."""
    out: dict[int, dict[int, list[tuple[str, bool]]]] = {}
    for q, o, f, w in sorted(summary):
        out.setdefault(q, {}).setdefault(o, []).append((f, w))
    return tuple((q, tuple((o, tuple(acc)) for o, acc in objs.items()))
                 for q, objs in out.items())


def known_initials(events: list[Event], k: int) -> list[int] | None:
    """The initials of the reversal ``notdep(events[k]).e'`` of a race with an event
    ``e'`` below a cache hit, as far as the stack decides them: the threads whose first
    event after ``events[k]`` not happening after it is on the stack and has no such
    event before it that happens before it. The first such event always is one (nothing
    of the reversal precedes it), whatever the cached subtree holds; an event below the
    hit can add initials, never remove these. None when the stack has no such event
    (every initial is below the hit, unknown)."""
    ek = events[k]
    v = [el for el in events[k + 1:] if not ek.seq <= el.clock[ek.tid]]
    return initials_of(v) if v else None


def initials_of(v: list[Event]) -> list[int]:
    """The initials of the sequence ``v``: the threads whose first event in ``v`` has no
    event of ``v`` before it that happens before it, in the order of those events."""
    initials: list[int] = []
    seen: set[int] = set()
    for idx, el in enumerate(v):
        if el.tid in seen:
            continue
        seen.add(el.tid)
        if not any(em.seq <= el.clock[em.tid] for em in v[:idx]):
            initials.append(el.tid)
    return initials


def _summary_race(node: Node, initials: list[int] | None, q: int) -> None:
    """Source-DPOR's rule for a race found through a summary: nothing if an initial
    already is in the backtrack set, else one that is enabled (``q``, the subtree's
    thread, if it is one), else, with no initial known or none enabled, every thread."""
    if initials is None:
        expand_fully(node)
        return
    if any(t in node.backtrack for t in initials):
        return
    head = q if q in initials and q in node.enabled else next(
        (t for t in initials if t in node.enabled), -1)
    if head < 0:
        expand_fully(node)
    else:
        node.backtrack.add(head)


def _writes(fp: Footprint, obj: int) -> bool:
    """Whether footprint ``fp`` writes the lock word of lock ``obj`` (takes or drops it)."""
    return any(i == obj and f == "owner" and w for i, f, w in fp)

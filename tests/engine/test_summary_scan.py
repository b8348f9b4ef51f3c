"""The cache hit's race scan (``dpor.races.summary_races``) against the scan it replaced:
every summary entry on its own, in sorted order, the stack scanned once per entry.

At every cache hit of real searches (random wide programs with locks, the lock benchmarks,
the hint programs with critical sections), both scans run on the same stack and must leave
the same backtrack sets and full flags, and report the same frozen nodes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pfnlab.explore.search import Budget
from pfnlab.explore.search.dpor import explore_dpor
from pfnlab.explore.search.dpor import races as R
from pfnlab.explore.search.dpor import search as S
from pfnlab.explore.search.parallel import InProcess, explore_parallel
from pfnlab.explore.shared import ALL_FIELDS
from tests.engine.dpor_benchmarks import BENCHMARKS
from tests.engine.programs import hint_spec, random_program, wide_program, wide_spec


def entry_at_a_time(s: Any, summary: Any, depth: int, ev: Any, top: Any) -> None:
    """The scan as it was: each entry of the sorted summary on its own."""
    events = s.events
    tclock = list(top.tclock)
    tclock[ev.tid] = ev.clock
    for q, o, f, w in sorted(summary):
        for k in s.obj_events.get(o, ()):
            node = s.stack[k]
            if node.full:
                continue
            ek = events[k]
            if ek.tid == q or ek.seq <= tclock[q][ek.tid]:
                continue
            for i2, f2, w2 in ek.fp:
                if i2 == o and (w or w2) and (f in (f2, ALL_FIELDS) or f2 == ALL_FIELDS):
                    if k < s.nfrozen:
                        s.reports.append(("full", k))
                    elif f2 == "owner" or f == "owner":
                        R.expand_fully(node)
                    else:
                        R._summary_race(node, R.known_initials(events, k), q)
                    break


def _state(s: Any) -> tuple[Any, ...]:
    return (tuple((frozenset(n.backtrack), n.full) for n in s.stack),
            frozenset(r for r in s.reports if r[0] == "full"))


@contextmanager
def compared() -> Iterator[list[int]]:
    """Every cache hit runs both scans and compares them; yields [hits, hits that changed
    the stack, hits that reported a frozen node]."""
    real = R.summary_races
    seen = [0, 0, 0]

    def both(s: Any, summary: Any, depth: int, ev: Any, top: Any) -> None:
        saved = [(set(n.backtrack), n.full) for n in s.stack]
        nreports = len(s.reports)
        before = _state(s)
        entry_at_a_time(s, summary, depth, ev, top)
        expected = _state(s)
        for n, (bt, full) in zip(s.stack, saved, strict=True):
            n.backtrack, n.full = bt, full
        del s.reports[nreports:]
        real(s, summary, depth, ev, top)
        assert _state(s) == expected
        seen[0] += 1
        seen[1] += expected[0] != before[0]
        seen[2] += expected[1] != before[1]

    mods = (S, __import__("pfnlab.explore.search.parallel.task_search", fromlist=["x"]))
    olds = [m.summary_races for m in mods]
    for m in mods:
        m.summary_races = both
    try:
        yield seen
    finally:
        for m, old in zip(mods, olds, strict=True):
            m.summary_races = old


@pytest.mark.parametrize("name,size", [("indexer-mutex", 13), ("mpat", 4), ("lastzero", 5),
                                       ("indexer", 13), ("fib_bench", 2)])
def test_the_scan_matches_entry_at_a_time_on_the_benchmarks(name: str, size: int) -> None:
    with compared() as seen:
        explore_dpor(BENCHMARKS[name](size), Budget(), stop_first=False, cache=True)
    assert seen[1] > 0  # hits that changed the stack were compared


def test_the_scan_matches_entry_at_a_time_on_random_programs() -> None:
    with compared() as seen:
        for i in range(300):
            spec = wide_spec(random.Random(f"scan:{i}").randint)
            explore_dpor(wide_program(spec), Budget(), stop_first=False, cache=True)
        for i in range(300):
            hspec, ghost = hint_spec(random.Random(f"scan-hints:{i}"), True)
            explore_dpor(random_program(hspec, 3, 1, None, ghost), Budget(),
                         stop_first=False, cache=True)
    assert seen[0] > 2000 and seen[1] > 200, seen


def test_the_scan_matches_entry_at_a_time_below_frozen_nodes() -> None:
    """Tasks of the parallel search (their frozen prefix is reported, not changed)."""
    with compared() as seen:
        for i in range(6):
            spec = wide_spec(random.Random(f"scan-par:{i}").randint)
            explore_parallel(wide_program(spec), Budget(), InProcess(2, i), stop_first=False,
                             depth=3)
    assert seen[2] > 0, seen  # races with frozen nodes were reported, and compared

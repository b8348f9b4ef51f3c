"""Issue 12: local worker processes publish the visited states they complete to each other
while their tasks run (explore/search/exchange.py). What arrives is what was sent (same
fingerprints, sleep sets and summaries), a set already sent goes by its number only, and
another search's states are never merged."""

from __future__ import annotations

import queue
from typing import Any

from pfnlab.explore.search.parallel.exchange import BATCH, Endpoint
from pfnlab.explore.search.visited import VisitedTable


def _pair() -> tuple[Endpoint, Endpoint, list[queue.Queue[Any]]]:
    inboxes: list[queue.Queue[Any]] = [queue.Queue(), queue.Queue()]
    return Endpoint(0, inboxes), Endpoint(1, inboxes), inboxes


def _summary(k: int) -> frozenset[Any]:
    return frozenset({(0, k, "refcount", True), (1, k, "spte", False)})


def test_completed_states_reach_the_other_worker_as_they_were() -> None:
    a, b, _ = _pair()
    vis = frozenset({(1, "x")})
    caches_a: dict[Any, VisitedTable] = {}
    caches_b: dict[Any, VisitedTable] = {}
    a.begin("s1", caches_a, vis)
    b.begin("s1", caches_b, vis)
    table = caches_a[vis]
    for fp in range(BATCH):
        table.visit(fp, frozenset({fp % 2}))
        table.complete(fp, _summary(fp % 3))
        a.completed(fp)  # the BATCH-th completion publishes
    table.visit(999, frozenset())  # on the stack: never sent
    a.completed(999)
    a.end()
    b.drain()
    got = caches_b[vis]
    assert set(got) == set(range(BATCH))
    for fp in range(BATCH):
        e = got.lookup(fp)
        assert e is not None
        assert e.init_sleep == frozenset({fp % 2})
        assert e.summary == _summary(fp % 3)
    assert a.sent == b.received == BATCH


def test_a_set_sent_once_goes_by_its_number() -> None:
    a, _b, inboxes = _pair()
    caches: dict[Any, VisitedTable] = {}
    a.begin("s1", caches, frozenset())
    caches[frozenset()].visit(1, frozenset())
    caches[frozenset()].complete(1, _summary(1))
    a.completed(1)
    a.publish()
    first = inboxes[1].get_nowait()
    caches[frozenset()].visit(2, frozenset())
    caches[frozenset()].complete(2, _summary(1))
    a.completed(2)
    a.publish()
    second = inboxes[1].get_nowait()
    # (search, visible, sender, new elements, new sets, entries)
    assert len(first[3]) == 2 and len(first[4]) == 2
    assert second[3] == [] and second[4] == []
    assert second[5] == [(2, first[5][0][1], first[5][0][2])]


def test_another_search_s_states_are_dropped() -> None:
    a, b, _ = _pair()
    ca: dict[Any, VisitedTable] = {}
    cb: dict[Any, VisitedTable] = {}
    a.begin("old", ca, frozenset())
    ca[frozenset()].visit(7, frozenset())
    ca[frozenset()].complete(7, _summary(7))
    b.begin("new", cb, frozenset())
    a.completed(7)
    a.end()
    b.drain()
    assert len(cb[frozenset()]) == 0
    assert b.received == 0

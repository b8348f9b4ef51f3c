"""Issue 30: the table of visited states partitioned among the workers
(explore/search/parallel/partitioned.py), and a task cutting a stack node whose state
another worker completed (task_search.TaskDpor._cut).

Unit tests of the endpoints (each entry goes to its owner only, a question is answered at
once or when the entry arrives, sets are coded per receiver), and the differential: the
parallel search on simulated workers with a partitioned table, whose answers arrive while
tasks run, and on real worker processes, against brute force and the sequential search.
"""

from __future__ import annotations

import queue
import random
from typing import Any

import pytest

from pfnlab import SCENARIOS, VARIANTS
from pfnlab.explore.search import Budget
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import explore_dpor
from pfnlab.explore.search.parallel import InProcess, LocalProcesses, explore_parallel
from pfnlab.explore.search.parallel.partitioned import PartitionedEndpoint, owner_of
from pfnlab.explore.search.parallel.task_search import TaskDpor
from pfnlab.explore.search.visited import VisitedTable
from tests.engine.oracle import typed_final_states
from tests.engine.programs import WIDE, wide_program, wide_spec
from tests.engine.test_parallel import _agree

VIS = frozenset({(1, "x")})


def _workers(n: int) -> tuple[list[PartitionedEndpoint], list[dict[Any, VisitedTable]]]:
    inboxes: list[queue.Queue[Any]] = [queue.Queue() for _ in range(n)]
    eps = [PartitionedEndpoint(w, inboxes) for w in range(n)]
    caches: list[dict[Any, VisitedTable]] = [{} for _ in range(n)]
    for ep, c in zip(eps, caches, strict=True):
        ep.begin("s1", c, VIS)
    return eps, caches


def _fp(owner: int, k: int, n: int) -> int:
    """A fingerprint worker ``owner`` of ``n`` owns."""
    fp = (k << 64) | k
    while owner_of(fp, n) != owner:
        fp += 1 << 64
    return fp


def _summary(k: int) -> frozenset[Any]:
    return frozenset({(0, k, "refcount", True), (1, k, "spte", False)})


def _complete(ep: PartitionedEndpoint, table: VisitedTable, fp: int, k: int) -> None:
    table.visit(fp, frozenset({k % 2}))
    table.complete(fp, _summary(k))
    ep.completed(fp)


def test_an_entry_goes_to_its_owner_only() -> None:
    eps, caches = _workers(3)
    mine, theirs = _fp(0, 1, 3), _fp(2, 2, 3)
    _complete(eps[0], caches[0][VIS], mine, 1)
    _complete(eps[0], caches[0][VIS], theirs, 2)
    eps[0].end()
    for ep in eps:
        ep.drain()
    assert set(caches[2][VIS]) == {theirs}  # the owner has it
    assert len(caches[1].get(VIS, VisitedTable())) == 0  # nobody else
    e = caches[2][VIS].lookup(theirs)
    assert e is not None and e.summary == _summary(2) and e.init_sleep == frozenset({0})


def test_a_question_is_answered_at_once_when_the_owner_has_the_state() -> None:
    eps, caches = _workers(2)
    fp = _fp(1, 5, 2)
    _complete(eps[1], caches[1][VIS], fp, 5)  # the owner completed it itself
    eps[0].visited_new(fp)
    eps[0].ask_now()
    assert eps[0].arrivals() == []  # asked; the owner has not read its inbox yet
    eps[1].drain()  # the owner answers
    assert eps[0].arrivals() == [(fp, frozenset({1}))]
    e = caches[0][VIS].lookup(fp)
    assert e is not None and e.summary == _summary(5)
    assert (eps[0].asked, eps[1].answered) == (1, 1)


def test_a_question_about_a_state_not_completed_yet_is_answered_when_it_arrives() -> None:
    """Worker 0 asks the owner (1) about a state worker 2 is still exploring; when 2
    completes it, the owner forwards the entry to 0."""
    eps, caches = _workers(3)
    fp = _fp(1, 9, 3)
    eps[0].visited_new(fp)
    eps[0].ask_now()
    eps[1].drain()  # not there: the owner remembers who asked
    assert eps[0].arrivals() == []
    _complete(eps[2], caches[2][VIS], fp, 9)
    eps[2].end()  # sent to the owner
    eps[1].drain()  # merged, and forwarded to the asker
    assert [a for a, _s in eps[0].arrivals()] == [fp]
    assert caches[1][VIS].lookup(fp) is not None


def test_sets_are_coded_per_receiver() -> None:
    """A set sent to worker 1 goes by its number to worker 1 only: worker 2, which never
    got it, gets it in full."""
    eps, caches = _workers(3)
    a, b = _fp(1, 1, 3), _fp(2, 2, 3)
    _complete(eps[0], caches[0][VIS], a, 7)
    eps[0].end()
    _complete(eps[0], caches[0][VIS], b, 7)  # the same summary and sleep set
    eps[0].end()
    for ep in eps:
        ep.drain()
    for w, fp in ((1, a), (2, b)):
        e = caches[w][VIS].lookup(fp)
        assert e is not None and e.summary == _summary(7)


def test_another_search_s_questions_go_unanswered() -> None:
    eps, caches = _workers(2)
    fp = _fp(1, 3, 2)
    _complete(eps[1], caches[1][VIS], fp, 3)
    eps[0].begin("s2", {}, VIS)
    eps[0].visited_new(fp)
    eps[0].ask_now()
    eps[1].drain()
    assert eps[0].arrivals() == [] and eps[1].answered == 0


def _spec(i: int) -> Any:
    return wide_spec(random.Random(f"partitioned:{i}").randint, WIDE)


@pytest.fixture
def cuts() -> Any:
    """Counts the stack nodes tasks cut."""
    seen = [0]
    orig = TaskDpor._cut

    def counting(search: TaskDpor, d: int) -> None:
        seen[0] += 1
        orig(search, d)

    TaskDpor._cut = counting  # type: ignore[method-assign]
    yield seen
    TaskDpor._cut = orig  # type: ignore[method-assign]


def test_a_partitioned_table_and_its_cuts_agree_with_brute_force(cuts: list[int]) -> None:
    """Three simulated workers with a partitioned table: questions answered and entries
    forwarded while tasks run, so stack nodes are cut (the test fails if none is: it would
    test nothing). Final states, violations, goals and replays as brute force finds them."""
    for i in range(40):
        program = wide_program(_spec(i))
        with typed_final_states():
            brute = explore_brute(program, stop_first=False, collect_final_states=True)
            for depth in (1, 2, 3):
                par = explore_parallel(program, Budget(),
                                       InProcess(3, i * 7 + depth, partitioned=True),
                                       stop_first=False, collect_final_states=True,
                                       depth=depth)
                problems = _agree(program, par, brute)
                assert not problems, (i, depth, problems)
    assert cuts[0] >= 20, cuts


def test_worker_processes_with_a_partitioned_table_find_what_one_process_finds() -> None:
    for v, s, sizes in (("v5.3", "devdax-unbind", {"vcpus": 2}),
                        ("v5.4", "devdax-unbind", {"vcpus": 2, "pages": 2})):
        seq = explore_dpor(SCENARIOS[s].program(VARIANTS[v], **sizes), stop_first=False)
        par = explore_parallel(SCENARIOS[s].program(VARIANTS[v], **sizes), Budget(),
                               LocalProcesses(2, partitioned=True), stop_first=False, depth=4)
        assert par.exhaustive == seq.exhaustive, (v, s, par.coverage)
        assert {(f.kind, f.prop, f.message) for f in par.findings} == \
            {(f.kind, f.prop, f.message) for f in seq.findings}, (v, s)
        assert par.goals_reached == seq.goals_reached
    for i in range(6):
        program = wide_program(_spec(100 + i))
        with typed_final_states():
            brute = explore_brute(program, stop_first=False, collect_final_states=True)
            par = explore_parallel(program, Budget(), LocalProcesses(3, partitioned=True),
                                   stop_first=False, collect_final_states=True,
                                   depth=1 + i % 3)
            problems = _agree(program, par, brute)
        assert not problems, (i, problems)

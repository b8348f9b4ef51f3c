"""The swarm (explore/search/swarm.py): diversified members from one seed, their findings
merged whatever the number of workers, and a result that is never exhaustive."""

from __future__ import annotations

import time

import pytest

from pfnlab import pipeline
from pfnlab.explore.search import Budget, Result, explore
from pfnlab.explore.search.swarm import BOUNDS, FAMILY, Swarm, SwarmResult, plan
from tests.engine.programs import lost_update

#: v5.3's hang shows at this size within a few dozen random executions
SMALL = {"vcpus": 2, "pages": 2}


def _swarm(n: int, seed: int, workers: int, executions: int,
           budget: Budget | None = None) -> SwarmResult:
    res = pipeline.check("v5.3", "devdax-unbind", pipeline.Search(
        strategy=Swarm(plan(n, seed), seed, workers, executions), budget=budget),
        sizes=SMALL).result
    assert isinstance(res, SwarmResult)
    return res


def test_members_are_drawn_from_one_seed_and_differ() -> None:
    a = plan(9, 5)
    assert a == plan(9, 5)  # the same seed, the same members
    assert a != plan(9, 6)
    assert [m.strategy for m in a] == list(FAMILY) * 3
    assert [m.preemptions for m in a if m.strategy == "bounded"] == list(BOUNDS)
    assert len({m.seed for m in a}) == 9  # every member its own seed
    assert len({m.label for m in a}) == 9
    assert {m.depth for m in a if m.strategy == "pct"} <= {2, 3, 4, 5}
    assert [m.strategy for m in plan(4, 5, ("pct",))] == ["pct"] * 4


@pytest.mark.parametrize(("n", "family", "says"), [
    (0, FAMILY, "at least 1 member"),
    (3, ("dpor",), "not dpor"),
    (3, (), "at least one strategy"),
])
def test_a_plan_that_is_no_swarm_is_refused(n: int, family: tuple[str, ...], says: str
                                             ) -> None:
    with pytest.raises(ValueError, match=says):
        plan(n, 1, family)


def test_the_swarm_finds_v5_3s_hang_and_it_replays() -> None:
    res = _swarm(3, 11, 1, 40)
    hang = res.finding("teardown-terminates")
    assert hang is not None and hang.kind == "hang"
    assert "admin waits for pgmap:dax0 done (dev_pagemap_cleanup)" in hang.message
    # the key steps: a vCPU's gup takes a page reference KVM never puts (v5.3 treats
    # ZONE_DEVICE as reserved), and the unbind then waits for it
    functions = {w for s in hang.trace for w in s.where}
    assert {"hva_to_pfn_fast", "memunmap_pages"} <= functions, functions
    assert hang.minimal.startswith("minimal:"), hang.minimal
    assert not res.exhaustive
    found_by = [r.member.index for r in res.members if "hang:teardown-terminates" in r.findings]
    assert found_by, [r.findings for r in res.members]
    again = pipeline.replay("v5.3", "devdax-unbind", hang.schedule, sizes=SMALL,
                            promoted=hang.details["promoted"])
    assert again.find(hang.key) is not None


def test_one_worker_and_two_give_the_same_members_and_findings() -> None:
    one, two = _swarm(4, 3, 1, 30), _swarm(4, 3, 2, 30)

    def seen(res: SwarmResult) -> list[object]:
        return [(r.member, r.executions, r.findings, r.runs) for r in res.members]

    assert seen(one) == seen(two)
    assert [(f.key, list(f.schedule)) for f in one.findings] == \
        [(f.key, list(f.schedule)) for f in two.findings] != []
    assert one.seed == two.seed == 3


def test_a_time_budget_bounds_the_whole_swarm() -> None:
    start = time.perf_counter()
    res = pipeline.check("v5.3", "devdax-unbind", pipeline.Search(
        strategy=Swarm(plan(4, 2), 2, 2, 10**9), budget=Budget(seconds=2.0)),
        sizes={"vcpus": 3, "pages": 3}).result
    took = time.perf_counter() - start
    assert isinstance(res, SwarmResult)
    assert took < 2.0 + 2.5, took  # (a fork and the findings' minimisation past it)
    ran = [r for r in res.members if r.runs]
    assert ran and all(r.seconds <= 2.0 * 0.8 + 0.5 for r in ran), \
        [r.seconds for r in ran]
    assert not res.exhaustive


def test_explore_takes_a_configured_swarm_and_never_claims_exhaustive() -> None:
    res = explore(lost_update(), strategy=Swarm(plan(3, 1), 1, 1, 20), stop_first=False)
    assert isinstance(res, SwarmResult) and res.findings and not res.exhaustive
    assert [r.executions for r in res.members if r.member.strategy == "random"] == [20]
    assert "swarm searches ran (seed 1)" in res.coverage


def test_a_finding_is_kept_from_the_lowest_member_that_had_every_fact() -> None:
    """Merging: the lowest-numbered member gives a finding's schedule, unless it ran with
    fewer facts than the swarm learnt and another member had them all."""
    from pfnlab.explore.findings import Finding
    from pfnlab.explore.schedule import Schedule, Step
    from pfnlab.explore.search.common import Stats
    from pfnlab.explore.search.swarm_workers import Outcome

    program = lost_update()
    program.knowledge.learn("Var.v")
    members = plan(3, 1)

    def outcome(i: int, thread: str, facts: frozenset[str]) -> Outcome:
        f = Finding("invariant", "p", "m", Schedule([Step(thread, "")]))
        res = Result(program.name, "random", [f], "", False, Stats(executions=1))
        return Outcome(members[i], res, facts)

    every, fewer = frozenset({"Var.v"}), frozenset()
    swarm = Swarm(members, 1)
    for got, want in [((every, every, every), "t0"), ((fewer, every, every), "t1"),
                      ((fewer, fewer, every), "t2"), ((fewer, fewer, fewer), "t0")]:
        outcomes = {m.index: outcome(i, f"t{i}", got[i]) for i, m in enumerate(members)}
        res = swarm._merge(program, outcomes, dict.fromkeys(outcomes, 1), 0.0, False)
        assert [s.thread for s in res.findings[0].schedule] == [want], got
        assert res.stats.executions == 3 and len(res.findings) == 1


def test_ctrl_c_gathers_what_the_running_members_covered() -> None:
    """Ctrl-C in the swarm's process: the members running stop their searches and send
    back what they covered; those not started are reported as not run."""
    from pfnlab.explore.search.swarm_workers import Job, run_members

    program = pipeline.program("v5.3", "devdax-unbind", {"vcpus": 4, "pages": 4})
    jobs = [Job(m, frozenset(), Budget(), 10**9, False) for m in plan(3, 8, ("random",))]
    ticks: list[int] = []

    def tick(_done: object) -> None:
        ticks.append(1)
        # about 3 s in (a tick every 0.2 s): the members have started and run some
        # executions even on a loaded machine (at 0.6 s, in the whole suite, one had not)
        if len(ticks) == 15:
            raise KeyboardInterrupt

    ran = run_members(program, jobs, 2, tick=tick)
    assert ran.interrupted
    got = {o.member.index: o for o in ran.outcomes}
    # a member the interrupt reaches inside the model (not at the search's own check) has
    # nothing to send: it says so (seen about one run in three in the whole suite)
    reported = [got[i] for i in (1, 2) if got[i].result is not None]
    assert reported, got
    for o in reported:
        assert o.result is not None and o.result.interrupted and o.result.stats.executions > 0
    for i in (1, 2):
        assert got[i].result is not None or got[i].status == "stopped: interrupted", got[i]
    assert got[3].result is None and got[3].status == "not run: interrupted"


def test_ray_tasks_run_the_same_members_as_local_processes() -> None:
    """A local Ray instance with 2 CPUs (CI installs Ray with the tests)."""
    pytest.importorskip("ray")
    from pfnlab.explore.search.swarm_ray import ray_workers

    assert ray_workers(2, None) == 2
    local = _swarm(3, 5, 2, 20)
    res = pipeline.check("v5.3", "devdax-unbind", pipeline.Search(
        strategy=Swarm(plan(3, 5), 5, 2, 20, ray="")), sizes=SMALL).result
    assert isinstance(res, SwarmResult)
    assert [(r.member, r.executions, r.findings) for r in res.members] == \
        [(r.member, r.executions, r.findings) for r in local.members]
    assert [(f.key, list(f.schedule)) for f in res.findings] == \
        [(f.key, list(f.schedule)) for f in local.findings] != []

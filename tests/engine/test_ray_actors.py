"""Issue 30: a parallel search's Ray actors, one lost mid-search (its process killed, or
the actor killed through Ray): the tasks it had out run again on the others and a new
actor takes its place, and the findings, final states and verdicts are the sequential
search's (docs/reductions.md section 12: an entry is used by another actor only once the
task that completed it is committed)."""

from __future__ import annotations

import os
import random
import signal
from typing import Any

import pytest

from pfnlab import SCENARIOS, VARIANTS
from pfnlab.explore.search import Budget
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import explore_dpor
from pfnlab.explore.search.parallel import explore_parallel
from tests.engine.programs import WIDE, wide_program, wide_spec
from tests.engine.test_parallel import _agree

ray_module = pytest.importorskip("ray")

from pfnlab.explore.search.parallel.ray_actors import RayWorkers  # noqa: E402


class Killing(RayWorkers):
    """Ray actors of which one is lost in each search: its process killed (``how``
    "process") or the actor killed through Ray ("ray"), as soon as a task it runs has
    sent a batch of states to the relay (others may prune at them), or after the
    ``after``-th result if that comes first."""

    def __init__(self, after: int, how: str) -> None:
        # batches sent while tasks run; the table partitioned when the process is killed,
        # whole when the actor is killed through Ray (both ways of sharing are covered)
        super().__init__(2, batch=8, partitioned=how == "process")
        self.after, self.how = after, how
        self.results = 0
        self.run_again = 0
        self.killed = False

    def start(self, program: Any, shared: Any = None) -> None:
        self.results, self.killed = 0, False
        super().start(program, shared)

    def next_result(self, timeout: float | None = None) -> Any:
        res = super().next_result(timeout)
        if res is not None:
            self.results += 1
        if not self.killed and self.actors:
            held = set(ray_module.get(self.relay.holding.remote()))
            # a task still running that has sent a batch
            running = [ref for ref, (serial, _a) in self.out.items() if serial in held]
            if running:
                _ready, running = ray_module.wait(running, num_returns=len(running),
                                                  timeout=0)
            midway = [self.out[ref][1] for ref in running]
            busiest = max(self.actors.values(), key=lambda a: len(a.out))
            if midway or (self.results >= self.after and busiest.out):
                self._kill(midway[0] if midway else busiest)
        return res

    def _kill(self, victim: Any) -> None:
        self.killed = True
        self.run_again += len(victim.out)
        if self.how == "process":
            os.kill(victim.pid, signal.SIGKILL)
        else:
            ray_module.kill(victim.handle, no_restart=True)


@pytest.fixture(scope="module")
def local_ray() -> Any:
    yield
    ray_module.shutdown()


@pytest.mark.parametrize("how", ["process", "ray"])
def test_a_lost_actor_changes_no_verdict(how: str, local_ray: Any) -> None:
    backend = Killing(after=30, how=how)
    prog = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2)
    seq = explore_dpor(prog, stop_first=False, collect_final_states=True)
    par = explore_parallel(SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2),
                           Budget(), backend, stop_first=False, collect_final_states=True)
    assert backend.lost == 1 and backend.run_again >= 1, (backend.lost, backend.run_again)
    assert {f.key for f in par.findings} == {f.key for f in seq.findings}
    # final states as text (their objects are another process's copies); the parallel
    # search may reach more (a late hint explores more, never less), never fewer
    assert set(map(repr, seq.final_states)) <= set(map(repr, par.final_states))
    assert par.violations == seq.violations
    assert par.exhaustive and "2 workers (Ray)" in par.coverage
    # random programs: brute force's final states, violations and goals, an actor killed
    # early in every search (a search whose tasks are all done by then loses nothing)
    for i in range(3):
        program = wide_program(wide_spec(random.Random(f"ray-lost:{i}").randint, WIDE))
        # (final states as the engine writes them: typed_final_states patches this
        # process only)
        brute = explore_brute(program, stop_first=False, collect_final_states=True)
        backend.after = 1 + i
        par = explore_parallel(program, Budget(), backend, stop_first=False,
                               collect_final_states=True, depth=2)
        problems = _agree(program, par, brute)
        assert not problems, (i, problems)
    if how == "process":
        # some lost run had sent states, which the others may have pruned at: what it
        # found came from the relay
        assert backend.carried >= 1


def test_the_clusters_error_lines_go_to_standard_error() -> None:
    """Ray's driver prints "A worker died or was killed ..." (an actor lost) to standard
    output, where ``--format json`` writes: pfnlab sends it to standard error."""
    from types import SimpleNamespace

    from pfnlab.explore.search.parallel.ray_cluster import _cluster_errors_to_stderr

    printed: list[tuple[str, bool]] = []
    worker = SimpleNamespace(print_to_stdstream=lambda data, ignore_prefix: printed.append(
        (data["pid"], data["is_err"])))
    _cluster_errors_to_stderr(worker)
    _cluster_errors_to_stderr(worker)  # wrapped once
    worker.print_to_stdstream({"pid": "raylet", "is_err": False, "lines": ["died"]}, False)
    worker.print_to_stdstream({"pid": 42, "is_err": False, "lines": ["print"]}, False)
    assert printed == [("raylet", True), (42, False)]


class Counting(RayWorkers):
    """Ray actors with a partitioned table whose exchange counters are kept, by actor
    (each result carries its actor's counters so far)."""

    def __init__(self) -> None:
        super().__init__(2, batch=16, partitioned=True)
        self.latest: dict[int, dict[str, int]] = {}

    def next_result(self, timeout: float | None = None) -> Any:
        res = super().next_result(timeout)
        if res is not None:
            self.latest[res.worker] = res.exchange
        return res


def test_ray_actors_partition_the_table(local_ray: Any) -> None:
    """Each actor keeps part of the table: states go to their owners, which answer the
    others' questions; the verdicts are the sequential search's."""
    def program() -> Any:
        return SCENARIOS["devdax-unbind"].program(VARIANTS["v5.4"], vcpus=2, pages=2)

    seq = explore_dpor(program(), stop_first=False, collect_final_states=True)
    backend = Counting()
    par = explore_parallel(program(), Budget(), backend, stop_first=False,
                           collect_final_states=True)
    assert {f.key for f in par.findings} == {f.key for f in seq.findings}
    assert set(map(repr, seq.final_states)) <= set(map(repr, par.final_states))
    assert par.violations == seq.violations and par.exhaustive
    counters = backend.latest.values()  # (each round's actors are new ones)
    assert sum(c["asked"] for c in counters) > 0
    assert sum(c["answered"] for c in counters) > 0
    assert sum(c["received"] for c in counters) > 0
    # no actor holds every state the search visited
    assert max(c["held"] for c in counters) < par.stats.states, (counters, par.stats.states)


class RelayKilling(RayWorkers):
    """Ray actors whose relay is killed once a result is in and an actor has tasks out,
    and then that actor: the search starts again (what the lost runs found went with
    the relay), once."""

    def __init__(self) -> None:
        super().__init__(2, batch=4, partitioned=True)
        self.results = 0
        self.killed = False

    def next_result(self, timeout: float | None = None) -> Any:
        res = super().next_result(timeout)
        if res is not None:
            self.results += 1
        if not self.killed and self.results >= 1 and self.actors:
            busiest = max(self.actors.values(), key=lambda a: len(a.out))
            if busiest.out:
                ray_module.kill(self.relay, no_restart=True)
                ray_module.kill(busiest.handle, no_restart=True)
                self.killed = True
        return res


def test_a_lost_relay_starts_the_search_again(local_ray: Any) -> None:
    def program() -> Any:
        return SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2)

    seq = explore_dpor(program(), stop_first=False, collect_final_states=True)
    backend = RelayKilling()
    par = explore_parallel(program(), Budget(), backend, stop_first=False,
                           collect_final_states=True)
    assert backend.killed and backend.relays_lost == 1, backend.relays_lost
    assert {f.key for f in par.findings} == {f.key for f in seq.findings}
    assert set(map(repr, seq.final_states)) <= set(map(repr, par.final_states))
    assert par.violations == seq.violations and par.exhaustive

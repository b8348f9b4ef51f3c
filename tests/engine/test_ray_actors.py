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
    """Ray actors of which one is lost after the ``after``-th result of each search: its
    process killed (``how`` "process") or the actor killed through Ray ("ray")."""

    def __init__(self, after: int, how: str) -> None:
        super().__init__(2)
        self.after, self.how = after, how
        self.results = 0
        self.run_again = 0

    def start(self, program: Any, shared: Any = None) -> None:
        self.results = 0
        super().start(program, shared)

    def next_result(self, timeout: float | None = None) -> Any:
        res = super().next_result(timeout)
        if res is not None:
            self.results += 1
            if self.results == self.after:
                self._kill()
        return res

    def _kill(self) -> None:
        # the actor with the most tasks out (they run again)
        victim = max(self.actors.values(), key=lambda a: len(a.order) - len(a.received))
        self.run_again += len(victim.order) - len(victim.received)
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
    backend = Killing(after=3, how=how)
    prog = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2)
    seq = explore_dpor(prog, stop_first=False)
    par = explore_parallel(SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2),
                           Budget(), backend, stop_first=False)
    assert backend.lost == 1 and backend.run_again >= 1, (backend.lost, backend.run_again)
    assert {f.key for f in par.findings} == {f.key for f in seq.findings}
    assert par.exhaustive and "2 workers (Ray)" in par.coverage
    # random programs: brute force's final states, violations and goals, an actor lost
    # early in every search
    for i in range(3):
        program = wide_program(wide_spec(random.Random(f"ray-lost:{i}").randint, WIDE))
        # (final states as the engine writes them: typed_final_states patches this
        # process only)
        brute = explore_brute(program, stop_first=False, collect_final_states=True)
        backend.after, lost = 1 + i, backend.lost
        par = explore_parallel(program, Budget(), backend, stop_first=False,
                               collect_final_states=True, depth=2)
        problems = _agree(program, par, brute)
        assert not problems, (i, problems)
        # (a search with no more results than ``after`` ends before the kill)
        assert backend.lost == lost + 1 or backend.results <= backend.after


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

"""Issue 12: one DPOR search split among workers (explore/search/parallel.py) explores what
the sequential search explores: the same final states, violations and goals as brute force
on random programs, whatever order the subtrees come back in, and the same findings and
verdicts as the sequential search on built-in scenarios."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from pfnlab import SCENARIOS, VARIANTS
from pfnlab.explore import Check, Field, Instance, Shared
from pfnlab.explore.program import Program
from pfnlab.explore.search import Budget, Result
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import explore_dpor
from pfnlab.explore.search.parallel import MISSED, InProcess, LocalProcesses, explore_parallel
from tests.engine.oracle import (
    check_replays,
    compare_violations,
    stable_invariants,
    typed_final_states,
)
from tests.engine.programs import WIDE, WideSpec, wide_program, wide_spec

ROOT = Path(__file__).resolve().parents[2]


def _agree(program: Program, par: Result, brute: Result) -> list[str]:
    p = []
    if not par.exhaustive:
        p.append(f"not exhaustive: {par.coverage}")
    if par.final_states != brute.final_states:
        only_b = sorted(map(repr, brute.final_states - par.final_states))[:2]
        only_p = sorted(map(repr, par.final_states - brute.final_states))[:2]
        p.append(f"final states: only brute force {only_b}, only parallel {only_p}")
    wrong = compare_violations(brute.violations, par.violations, stable_invariants(program))
    if wrong:
        p.append(wrong)
    if set(par.goals_reached) != set(brute.goals_reached):
        p.append(f"goals {par.goals_reached} vs {brute.goals_reached}")
    return p + check_replays(program, par, "parallel")


def _spec(i: int) -> WideSpec:
    return wide_spec(random.Random(f"parallel:{i}").randint, WIDE)


@pytest.mark.parametrize("i", range(60))
def test_parallel_dpor_agrees_with_brute_force_in_any_task_order(i: int) -> None:
    program = wide_program(_spec(i))
    with typed_final_states():
        brute = explore_brute(program, stop_first=False, collect_final_states=True)
        for depth, seed, late in ((1, i, False), (2, None, False), (3, i + 1, False),
                                  (2, i + 2, True)):
            par = explore_parallel(program, Budget(), InProcess(2, seed, late),
                                   stop_first=False, collect_final_states=True, depth=depth)
            problems = _agree(program, par, brute)
            assert not problems, (depth, seed, late, problems)
    assert MISSED == [0], "the coordinator's work queue missed a node's new thread"


def test_local_processes_agree_with_the_sequential_search() -> None:
    """Two worker processes on built-in scenarios: same findings (kind, property,
    message), verdict and goals as the sequential search."""
    for v, s, sizes in (("v5.3", "devdax-unbind", {"vcpus": 2}),
                        ("v5.4", "devdax-unbind", {"vcpus": 2}),
                        ("v5.4", "thp-split", {}),
                        ("dan-early-put", "vcpu-map-vs-unbind", {})):
        seq = explore_dpor(SCENARIOS[s].program(VARIANTS[v], **sizes), stop_first=False)
        par = explore_parallel(SCENARIOS[s].program(VARIANTS[v], **sizes), Budget(),
                               LocalProcesses(2), stop_first=False, depth=4)
        assert par.exhaustive == seq.exhaustive, (v, s, par.coverage)
        assert {(f.kind, f.prop) for f in par.findings} == \
            {(f.kind, f.prop) for f in seq.findings}, (v, s)
        assert par.goals_reached == seq.goals_reached
        assert "2 workers (local processes)" in par.coverage


def test_local_processes_agree_with_brute_force_on_random_programs() -> None:
    """Issue 12's differential with real worker processes (the exchange between them, the
    final states and violations sent back): what brute force finds."""
    for i in range(8):
        program = wide_program(_spec(1000 + i))
        with typed_final_states():
            brute = explore_brute(program, stop_first=False, collect_final_states=True)
            par = explore_parallel(program, Budget(), LocalProcesses(2), stop_first=False,
                                   collect_final_states=True, depth=1 + i % 3)
            problems = _agree(program, par, brute)
        assert not problems, (i, problems)


@pytest.mark.parametrize("backend", [lambda: LocalProcesses(2), lambda: InProcess(2, 5)])
def test_workers_record_the_calls_the_model_made(backend: object) -> None:
    """What ran in the workers reaches the coordinator's recorder (explore/collect.py):
    the "unreached" review of a parallel check is the sequential one's. It was not: with
    --jobs 2, v6.13 / thp-split said mmu_spte_clear_track_bits only ever returned false,
    as the coordinator saw only the first steps of each execution."""
    from pfnlab.model.reach import recording

    def recorded(run: object) -> tuple[object, ...]:
        with recording() as rec:
            run()  # type: ignore[operator]
        return rec.called, rec.sites, rec.answers

    program = SCENARIOS["thp-split"].program(VARIANTS["v6.13"])
    seq = recorded(lambda: explore_dpor(program, stop_first=False))
    par = recorded(lambda: explore_parallel(program, Budget(), backend(),  # type: ignore
                                            stop_first=False, depth=4))
    assert par == seq
    assert seq[2]["mmu_spte_clear_track_bits"] == {True, False}


class _Var(Shared):
    v = Field(0)


def _dying_program(flag: Path) -> Program:
    """Two threads of three steps; the first worker process that runs a step of t1 past its
    first dies (once: the flag file says it happened)."""
    parent = os.getpid()

    def build() -> Instance:
        x, y = _Var("x"), _Var("y")

        def t0() -> None:
            x.v = 1
            y.v = x.v + 1
            x.v = y.v

        def t1() -> None:
            y.v = 2
            if os.getpid() != parent and not flag.exists():
                flag.write_text("died")
                os._exit(1)
            x.v = y.v + 1
            y.v = 0

        return Instance(threads={"t0": t0, "t1": t1},
                        final_checks=[Check("sum", lambda: "x+y is 4"
                                            if x.v + y.v == 4 else None, "sum")])

    return Program("dying", build)


def test_a_dead_worker_s_subtrees_are_explored_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A local worker that dies may have published states whose findings went with it:
    the search starts again (one more round than a run where nobody dies)."""
    flag = tmp_path / "flag"
    program = _dying_program(flag)
    seq = explore_dpor(program, stop_first=False, collect_final_states=True)
    flag.write_text("nobody dies")
    calm = explore_parallel(program, Budget(), LocalProcesses(2), stop_first=False,
                            collect_final_states=True, depth=1)
    flag.unlink()
    backend = LocalProcesses(2)
    par = explore_parallel(program, Budget(), backend, stop_first=False,
                           collect_final_states=True, depth=1)
    assert flag.read_text() == "died" and backend.retried == 1
    assert "a worker process died; the search starts again" in capsys.readouterr().err
    assert par.stats.rounds == calm.stats.rounds + 1
    assert par.exhaustive and par.final_states == seq.final_states
    assert {f.message for f in par.findings} == {f.message for f in seq.findings}


def test_a_budget_cut_says_what_was_covered() -> None:
    program = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.4"], vcpus=3)
    par = explore_parallel(program, Budget(seconds=0.5), LocalProcesses(2), stop_first=False)
    assert not par.exhaustive
    assert par.coverage.startswith("budget reached after ") and "partial" in par.coverage


def test_ray_workers_agree_with_the_sequential_search() -> None:
    """A local Ray instance with 2 CPUs (CI installs Ray with the tests): the same findings
    as the sequential search, for a built-in scenario and for a model file's."""
    pytest.importorskip("ray")
    from pfnlab.api import load_model, registries_restored
    from pfnlab.explore.search.parallel import RayWorkers

    ray = RayWorkers(2)
    try:
        assert ray.workers == 2
        prog = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2)
        seq = explore_dpor(prog, stop_first=False)
        par = explore_parallel(SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2),
                               Budget(), ray, stop_first=False)
        assert {f.key for f in par.findings} == {f.key for f in seq.findings}
        assert par.exhaustive and "2 workers (Ray)" in par.coverage
        # random programs: the final states and violations brute force finds (final states
        # as the engine writes them: typed_final_states patches this process only)
        for i in range(4):
            program = wide_program(_spec(2000 + i))
            brute = explore_brute(program, stop_first=False, collect_final_states=True)
            par = explore_parallel(program, Budget(), ray, stop_first=False,
                                   collect_final_states=True, depth=1 + i % 3)
            problems = _agree(program, par, brute)
            assert not problems, (i, problems)
        # the calls the model made in Ray's workers come back (explore/collect.py)
        from pfnlab.model.reach import recording

        prog = SCENARIOS["thp-split"].program(VARIANTS["v6.13"])
        with recording() as rec:
            explore_parallel(prog, Budget(), ray, stop_first=False, depth=4)
        assert rec.answers["mmu_spte_clear_track_bits"] == {True, False}
        with registries_restored():
            load_model(ROOT / "examples" / "refresh_race.py")
            prog = SCENARIOS["gpc-vs-zap"].program(VARIANTS["gpc-buggy"])
            par = explore_parallel(prog, Budget(), ray, stop_first=False)
            assert [f.prop for f in par.findings] == ["gpc-coherent"]
    finally:
        import ray as ray_module

        ray_module.shutdown()


def test_a_worker_keeps_its_execution_from_task_to_task(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker restores its one execution to the initial state for each task, so the
    step memo and the rebuilt threads carry over (a fresh execution per task made two
    workers slower than one): fewer executions made than subtrees explored, and the same
    findings as the sequential search."""
    import re

    from pfnlab.explore.search.parallel import task_search

    made = []

    class Counted(task_search.Execution):
        def __init__(self, *a: object, **kw: object) -> None:
            made.append(1)
            super().__init__(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(task_search, "Execution", Counted)
    prog = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2)
    par = explore_parallel(prog, Budget(), InProcess(2, 0), stop_first=False, depth=4)
    seq = explore_dpor(SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"], vcpus=2),
                       stop_first=False)
    assert {(f.kind, f.prop, f.message) for f in par.findings} == \
        {(f.kind, f.prop, f.message) for f in seq.findings}
    m = re.search(r"(\d+) subtrees", par.coverage)
    assert m is not None and int(m.group(1)) > len(made) > 0, (par.coverage, len(made))
    assert par.stats.memoised > 0


def test_a_time_budget_keeps_what_the_workers_covered() -> None:
    """At the deadline the tasks out stop with it: what they covered counts. The
    coordinator used to stop its workers at once, so a check of 4 x 4 with --seconds 60
    and two workers reported "0 executions ... nothing explored" (and another round began
    with no time left after a promotion)."""
    program = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.4"], vcpus=4, pages=4)
    par = explore_parallel(program, Budget(seconds=4), LocalProcesses(2), stop_first=False,
                           depth=2)  # (two subtrees, each far from done at the deadline)
    assert not par.exhaustive
    n = par.stats.executions
    assert n > 100 and par.stats.states > 100, (n, par.stats.states)
    assert par.coverage.startswith(f"budget reached after {n} executions"), par.coverage

"""Programs the engine must catch, with their minimal traces pinned, and programs that pass."""

from __future__ import annotations

from pfnlab.explore.search import explore
from tests.engine.programs import (
    abba,
    atomic_counter,
    drain_hang,
    independent,
    lost_update,
    use_after_free,
)


def steps(finding) -> list[str]:
    return [str(s) for s in finding.schedule]


def test_lost_update_found_with_minimal_trace() -> None:
    res = explore(lost_update())
    (f,) = res.findings
    assert (f.kind, f.prop, f.message) == ("final-check", "lost-update", "counter = 1")
    assert steps(f) == [
        "t0: inc: read counter.v",
        "t1: inc: read counter.v",
        "t1: inc: write counter.v",
        "t0: inc: write counter.v",
    ]
    assert f.preemptions == 1
    assert f.minimal.startswith("minimal: fewest preemptions (1), then fewest steps (4)")


def test_abba_deadlock_names_both_waiters() -> None:
    res = explore(abba())
    (f,) = res.findings
    assert f.kind == "hang"
    assert f.details["waits"] == {"t0": "lock B held by t1", "t1": "lock A held by t0"}
    # each holds one lock and waits for the other: a held lock makes its acquirer not
    # enabled, so no step fails and the trace is the two acquires
    assert steps(f) == ["t0: t0: lock A", "t1: t1: lock B"]
    assert not any(s.failed_attempt for s in f.trace)


def test_refcount_drain_hang_is_a_teardown_finding() -> None:
    res = explore(drain_hang())
    (f,) = res.findings
    assert (f.kind, f.prop) == ("hang", "teardown-terminates")
    assert "teardown waits for obj refcount to drain" in f.message
    assert steps(f)[-1] == "teardown: teardown: wait obj refcount to drain"
    assert "user: user: rmw obj.refcount" in steps(f)


def test_use_after_free_by_another_thread() -> None:
    res = explore(use_after_free())
    (f,) = res.findings
    assert (f.kind, f.prop) == ("use-after-free", "use-after-free")
    assert f.message == "reader read obj.data after it was freed (kfree by freer)"
    assert steps(f) == [
        "reader: reader: read live.v",
        "freer: freer: write live.v",
        "freer: freer: free obj",
        "reader: reader: read obj.data",
    ]


def test_fixed_programs_pass_exhaustively() -> None:
    for prog in (atomic_counter(), abba(ordered=True), drain_hang(user_puts=True),
                 use_after_free(checked=True), independent(3, 2)):
        res = explore(prog, stop_first=False)
        assert res.ok, (prog.name, [f.message for f in res.findings])
        assert res.exhaustive
        assert res.coverage.startswith("exhaustive: every interleaving up to equivalence")


def test_collect_all_findings() -> None:
    res = explore(drain_hang(), stop_first=False)
    assert {f.key for f in res.findings} == {("hang", "teardown-terminates")}
    assert res.exhaustive


def test_exception_in_model_is_a_finding() -> None:
    from pfnlab.explore import Instance, Program

    def build() -> Instance:
        def boom() -> None:
            raise KeyError("missing")

        return Instance(threads={"t": boom})

    res = explore(Program("boom", build))
    (f,) = res.findings
    assert f.kind == "exception"
    assert "KeyError" in f.message and "traceback" in f.details

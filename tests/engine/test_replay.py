"""Schedules replay step for step; a schedule that no longer fits the model says where."""

from __future__ import annotations

from pfnlab.explore.schedule import Schedule, Step
from pfnlab.explore.search import explore, replay
from tests.engine.programs import lost_update, use_after_free


def test_replay_reproduces_the_finding() -> None:
    f = explore(lost_update()).findings[0]
    data = f.schedule.dumps()
    rr = replay(lost_update(), Schedule.from_json(__import__("json").loads(data)))
    assert not rr.diverged
    assert rr.finding is not None and rr.finding.message == f.message
    assert [t.label for t in rr.trace] == [s.label for s in f.schedule]


def test_replay_reports_label_divergence() -> None:
    sched = Schedule([Step("t0", "inc: read counter.v"), Step("t1", "inc: write counter.v")])
    rr = replay(lost_update(), sched)
    assert rr.diverged_at == 1
    assert rr.message == (
        "step 1: the schedule says t1 'inc: write counter.v', the model offers "
        "'inc: read counter.v'"
    )


def test_replay_reports_unknown_thread_and_blocked_thread() -> None:
    rr = replay(lost_update(), Schedule([Step("t9", "")]))
    assert rr.message == "step 0: the model has no thread 't9' (threads: t0, t1)"
    sched = Schedule([Step("freer", ""), Step("freer", ""), Step("freer", "")])
    rr = replay(use_after_free(), sched)
    assert rr.diverged_at == 2
    assert rr.message == "step 2: freer cannot run here: it has finished"


def test_lenient_replay_follows_thread_names() -> None:
    sched = Schedule([Step("t0", "old label"), Step("t1", ""), Step("t1", ""), Step("t0", "")])
    rr = replay(lost_update(), sched, strict=False)
    assert not rr.diverged
    assert rr.finding is not None and rr.finding.prop == "lost-update"
    assert "the schedule says t0 'old label'" in rr.message

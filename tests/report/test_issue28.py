"""Issue 28, on model files of the shapes the issue describes: goals reached in the step
that fails, user invariants that end their execution, custom checks that never read the
state, and the "unreached" section of a report."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from pfnlab import api

GOAL = textwrap.dedent('''\
    from pfnlab import Host, define_property, fail, goal_reached, instance, reached
    from pfnlab import scenario, vm_on
    from pfnlab.explore import Field, Shared

    define_property("armed-once", "the device is armed at most once")


    class Device(Shared):
        armed = Field(0)


    @scenario("arm-and-fail", sizes={}, properties=["armed-once"], goals=["armed"])
    def build(variant, sz):
        """a thread arms the device, records its milestone and fails in the same step"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        dev = Device("dev")

        def arm():
            dev.armed = dev.armed + 1
            reached(s.progress, "armed")
            fail("armed-once", "BUG_ON(dev.armed)")

        return instance(s, {"arm": arm}, ["armed-once"], [goal_reached(s, "armed")])
''')


def test_a_goal_reached_in_the_failing_step_counts(model_file: Callable[..., Path]) -> None:
    from pfnlab.cli.main import app

    path = model_file(GOAL, "goal.py")
    res = api.check("v5.4", "arm-and-fail")
    assert res.violated == ["armed-once"]
    assert res.search.goals_reached == ["armed"] and res.goals_missed == []
    assert "goals never reached" not in res.summary()
    text = _cli(app, ["check", str(path), "v5.4", "arm-and-fail", "--jobs", "1"])
    assert "goals reached: armed" in text.splitlines()
    assert "goals never reached" not in text


def _cli(app: Callable[..., object], args: list[str]) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        app(args=args, prog_name="pfnlab")
    return buf.getvalue()

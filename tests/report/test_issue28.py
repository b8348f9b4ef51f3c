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


# Two designs in one file, each with a helper of its own, and two scenarios: a check of one
# design in one scenario reviews only the code it can run. "put-twice" dies inside its
# override (the second put holds no reference).
TWO = textwrap.dedent('''\
    from pfnlab import Host, instance, scenario, variant, vm_exit, vm_on, with_vcpus
    from pfnlab.kvm import is_error_noslot_pfn, kvm_is_reserved_pfn
    from pfnlab.mm import get_page, pfn_to_page, put_page


    def _put(pfn):
        put_page(pfn_to_page(pfn))


    def _leak(pfn):
        get_page(pfn_to_page(pfn))


    def release_put_twice(pfn):
        if not is_error_noslot_pfn(pfn) and not kvm_is_reserved_pfn(pfn):
            _put(pfn)
            _put(pfn)


    def release_take(pfn):
        if not is_error_noslot_pfn(pfn) and not kvm_is_reserved_pfn(pfn):
            _leak(pfn)


    variant("put-twice", parent="v5.4", overrides={"kvm_release_pfn_clean": release_put_twice})
    variant("take", parent="v5.4", overrides={"kvm_release_pfn_clean": release_take})


    def _one_vm(host):
        return vm_on(host, [host.add_anon(1)], 1)


    @scenario("anon-exit", sizes={"vcpus": 1, "pages": 1, "faults": 1},
              properties=["refs-balanced", "no-put-unreferenced"])
    def build(variant, sz):
        """a vCPU faults on anonymous memory, then the VM exits"""
        s = _one_vm(Host())
        threads = with_vcpus(s, sz, {"exit": lambda: vm_exit(s.kvm)}, exit_vcpu=True)
        return instance(s, threads, ["refs-balanced", "no-put-unreferenced"])


    @scenario("other", sizes={"vcpus": 1, "pages": 1, "faults": 1},
              properties=["refs-balanced"])
    def build_other(variant, sz):
        """another scenario of the file: not under review in a check of anon-exit"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        get_page(pfn_to_page(s.regions[0].pfn))
        return instance(s, with_vcpus(s, sz, {}), ["refs-balanced"])
''')


def test_unreached_lists_only_what_the_checked_design_can_run(
        model_file: Callable[..., Path]) -> None:
    from pfnlab.pipeline import check

    path = model_file(TWO, "two_designs.py")
    done = check("put-twice", "anon-exit", reach=True)
    assert [f.prop for f in done.result.findings] == ["no-put-unreferenced"]
    u = done.unreached
    assert u is not None
    # the override the run died inside ran; _leak is "take"'s helper, build_other the
    # other scenario's builder: neither is reviewed here
    assert u.never_called == []
    assert u.sites == [] and u.lines() == []
    # the kernel-function calls reviewed: kvm_is_reserved_pfn in the override, put_page
    # and pfn_to_page in _put (before: 7, and "kvm_release_pfn_clean (...): never called",
    # "get_page() in _leak", "get_page() in build_other" and their pfn_to_page)
    assert u.reviewed == 3
    done = check("take", "anon-exit", reach=True)
    u = done.unreached
    assert u is not None and u.sites == [] and u.never_called == [] and u.reviewed == 3
    # the text of `check` has no "unreached:" section
    from pfnlab.cli.main import app

    text = _cli(app, ["check", str(path), "put-twice", "anon-exit", "--jobs", "1"])
    assert "no-put-unreferenced violated" in text and "unreached" not in text

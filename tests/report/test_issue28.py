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


# A user invariant (not declared stable) false from the start, in a design that also leaks:
# the invariant ends every execution, so the leak is never seen; the report says so.
INVARIANT = textwrap.dedent('''\
    from pfnlab import Check, Host, define_property, instance, scenario, variant, vm_on
    from pfnlab import with_vcpus
    from pfnlab.explore import Field, Shared

    define_property("counter-small", "the counter stays below 1")


    class Counter(Shared):
        n = Field(1)


    def no_put(pfn):
        pass


    variant("forgets-put", parent="v5.4", overrides={"kvm_release_pfn_clean": no_put})


    @scenario("counter-and-leak", sizes={"vcpus": 1, "pages": 1, "faults": 1},
              properties=["counter-small", "refs-balanced"])
    def build(variant, sz):
        """a counter over its bound from the start while a vCPU faults"""
        host = Host()
        s = vm_on(host, [host.add_anon(sz["pages"])], sz["vcpus"])
        c = Counter("counter")
        inv = Check("counter below 1", lambda: f"counter is {c.n}" if c.n >= 1 else None,
                    "counter-small")
        return instance(s, with_vcpus(s, sz, {}), ["refs-balanced"], invariants=[inv])
''')


def test_a_user_invariant_that_ends_its_execution_says_what_it_left_unchecked(
        model_file: Callable[..., Path]) -> None:
    import json

    from pfnlab.cli.main import app

    path = model_file(INVARIANT, "invariant.py")
    res = api.check("forgets-put", "counter-and-leak")
    assert res.violated == ["counter-small"]
    assert res.not_established == {"refs-balanced": "masked by counter-small in 1 execution"}
    text = " ".join(res.report().split())
    assert ("counter is 1 (this invariant is not declared stable: its first violation ends "
            "its execution, and the rest of it is unchecked (refs-balanced, violated in no "
            "execution, is not established); declare it Check(..., stable=True) if, once "
            "false, it stays false, and executions go on past it)") in text
    doc = json.loads(_cli(app, ["check", str(path), "forgets-put", "counter-and-leak",
                                "--jobs", "1", "--format", "json"]))
    (f,) = doc["findings"]
    assert f["ends_execution"] is True and f["unchecked_after"] == ["refs-balanced"]
    assert doc["not_established"] == {"refs-balanced": "masked by counter-small in 1 "
                                                       "execution"}


def test_a_stable_user_invariant_does_not_mask_the_leak(
        model_file: Callable[..., Path]) -> None:
    model_file(INVARIANT.replace('"counter-small")', '"counter-small", stable=True)'),
               "stable_invariant.py")
    res = api.check("forgets-put", "counter-and-leak")
    assert res.violated == ["counter-small", "refs-balanced"]
    assert res.not_established == {}
    assert "not declared stable" not in res.report()


# A custom check that looks its cache up under a wrong key: every lookup gives None, and it
# returns None without reading any shared field.
VACUOUS = textwrap.dedent('''\
    from pfnlab import Check, Host, PfnCache, define_property, instance, scenario, vm_on
    from pfnlab import with_vcpus

    define_property("cache-fresh", "the pfn cache maps what the host maps")


    @scenario("wrong-key", sizes={"vcpus": 1, "pages": 1, "faults": 1},
              properties=["cache-fresh", "refs-balanced"])
    def build(variant, sz):
        """a check that looks its cache up under a wrong key"""
        host = Host()
        ram = host.add_anon(1)
        s = vm_on(host, [ram], 1)
        caches = {"apic": PfnCache(s.kvm, "apic", 0)}

        def fresh():
            c = caches.get("apic-page")          # wrong key: always None
            if c is not None and c.valid and c.pfn != ram.pfn:
                return f"{c.name} maps {c.pfn:#x}"
            return None

        def fresh_at_end():
            c = caches["apic"]
            return "stale" if c.valid and c.pfn != ram.pfn else None

        return instance(s, with_vcpus(s, sz, {}), ["refs-balanced"],
                        invariants=[Check("apic cache fresh", fresh, "cache-fresh")],
                        final_checks=[Check("fresh at the end", fresh_at_end, "cache-fresh")])
''')


def test_a_custom_check_that_never_read_the_state_is_reported(
        model_file: Callable[..., Path]) -> None:
    import json

    from pfnlab.cli.main import app

    path = model_file(VACUOUS, "vacuous.py")
    res = api.check("v5.4", "wrong-key")
    assert res.ok and res.vacuous_checks == ["apic cache fresh"]
    assert "vacuous checks: apic cache fresh" in res.summary()
    warning = ("check 'apic cache fresh' never read any shared state: it holds vacuously "
               "(a wrong key or name, so that every lookup gave None?)")
    assert " ".join(res.report().split()) == warning
    text = _cli(app, ["check", str(path), "v5.4", "wrong-key", "--jobs", "1"])
    assert warning in " ".join(text.split())
    for jobs in ("1", "2"):  # the workers of a parallel search record it too
        doc = json.loads(_cli(app, ["check", str(path), "v5.4", "wrong-key", "--jobs", jobs,
                                    "--format", "json"]))
        assert doc["vacuous_checks"] == ["apic cache fresh"]
    # a built-in scenario's checks all read the model
    assert api.check("v5.4", "devdax-unbind").vacuous_checks == []


def test_a_built_in_invariant_that_ends_its_execution_gives_no_advice_to_the_user() -> None:
    """secondary-coherent (I12) is the library's, unstable because a refresh makes it true
    again: the report says its violation ended the execution, and does not tell the user
    to declare the library's check stable."""
    from pfnlab.api import registries_restored
    from pfnlab.cli.main import app

    with registries_restored():
        text = _cli(app, ["check", "examples/gpc_refresh.py", "gpc-v5.17", "gpc-refresh-vs-zap",
                          "--jobs", "1"])
    para = next(p for p in text.split("\n\n") if "secondary-coherent violated" in p)
    assert " ".join(para.split()).endswith(
        "(this built-in invariant can become true again, so it is not stable: its first "
        "violation ends its execution, and the rest of it is unchecked)")
    assert "Check(..., stable=True)" not in text


# The same wrong key, in a check that reads the PTE first: it reads shared state, so only
# where it returned tells that it never reached its condition
READ_THEN_VACUOUS = textwrap.dedent('''\
    from pfnlab import Check, Host, PfnCache, define_property, instance, scenario, vm_on
    from pfnlab import with_vcpus

    define_property("cache-fresh", "the pfn cache maps what the host maps")


    @scenario("wrong-key-after-read", sizes={"vcpus": 1, "pages": 1, "faults": 1},
              properties=["cache-fresh", "refs-balanced"])
    def build(variant, sz):
        """a check that reads the PTE, then looks its cache up under a wrong key"""
        host = Host()
        ram = host.add_anon(1)
        s = vm_on(host, [ram], 1)
        caches = {"apic": PfnCache(s.kvm, "apic", 0)}
        pte = host.mm.pte(ram.start)

        def fresh():
            val = pte.val                       # reads shared state
            c = caches.get("apic-page")          # wrong key: always None
            if c is None or not c.valid:
                return None
            return None if val is not None and val.pfn == c.pfn else f"{c.name} stale"

        return instance(s, with_vcpus(s, sz, {}), ["refs-balanced"],
                        invariants=[Check("apic cache fresh", fresh, "cache-fresh")])
''')


def test_a_check_that_returns_before_its_condition_every_time_is_reported(
        model_file: Callable[..., Path]) -> None:
    import json

    from pfnlab.cli.main import app

    path = model_file(READ_THEN_VACUOUS, "read_then_vacuous.py")
    res = api.check("v5.4", "wrong-key-after-read")
    assert res.ok and res.vacuous_checks == ["apic cache fresh"]
    warning = ("check 'apic cache fresh' returned at line 21 of fresh (read_then_vacuous.py) "
               "in every evaluation, never reaching its condition at line 22: it holds "
               "vacuously (a wrong key or name, so that every lookup gave None, or an object "
               "never in the state its condition is about?)")
    assert " ".join(res.report().split()) == warning
    text = _cli(app, ["check", str(path), "v5.4", "wrong-key-after-read", "--jobs", "1"])
    assert warning in " ".join(text.split())
    doc = json.loads(_cli(app, ["check", str(path), "v5.4", "wrong-key-after-read",
                                "--jobs", "2", "--format", "json"]))
    assert doc["vacuous_checks"] == ["apic cache fresh"]
    assert doc["vacuous_why"] == {"apic cache fresh": warning}
    # with the right key the cache is looked at, but never valid: the condition is still
    # never reached (a check of a cache the scenario never fills)
    right = READ_THEN_VACUOUS.replace('"apic-page"', '"apic"').replace(
        "wrong-key-after-read", "right-key")
    model_file(right, "right_key.py")
    assert api.check("v5.4", "right-key").vacuous_checks == ["apic cache fresh"]

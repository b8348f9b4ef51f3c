"""Verdicts that must agree with kernel history, each from running the checker."""

import pytest

from pfnlab.explore.search import explore
from pfnlab.scenarios import SCENARIOS
from pfnlab.variants import get_variant

LATER = ["v5.4", "sean-v1", "paolo-online-helper", "v5.6", "v6.0", "v6.13"]
POST_THREAD = ["sean-v1", "hildenbrand", "dan-early-put", "paolo-online-helper"]


def run(variant, scenario, minimal=False, **sizes):
    prog = SCENARIOS[scenario].program(get_variant(variant), **sizes)
    return explore(prog, stop_first=False, minimal=minimal)


def props(res):
    return {f.prop for f in res.findings}


def where(step):
    return set(step.where) | {step.label.split(":")[0]}


def test_v53_devdax_unbind_hangs_and_leaks():
    res = run("v5.3", "devdax-unbind", minimal=True)
    assert res.exhaustive
    assert {"teardown-terminates", "refs-balanced"} <= props(res)
    hang = res.finding("teardown-terminates")
    assert hang is not None and hang.kind == "hang"
    assert "dev_pagemap_cleanup" in hang.message
    trace = hang.trace
    vcpu = [s for s in trace if s.thread == "vcpu0"]
    admin = [s for s in trace if s.thread == "admin"]
    i_gup = next(i for i, s in enumerate(trace)
                 if s.thread == "vcpu0" and {"hva_to_pfn_fast", "hva_to_pfn_slow"} & where(s)
                 and s.field == "refcount")
    i_rel = next(i for i, s in enumerate(trace)
                 if s.thread == "vcpu0" and "kvm_release_pfn_clean" in where(s))
    assert i_gup < i_rel
    # the release only classified the pfn (kvm_is_reserved_pfn) and never put it
    assert not any(s.field == "refcount" and s.action == "rmw"
                   for s in vcpu if "kvm_release_pfn_clean" in where(s))
    assert any("memunmap_pages" in where(s) for s in admin)
    assert admin[-1].action == "wait" and admin[-1].failed_attempt
    assert "dev_pagemap_cleanup" in where(admin[-1])
    leak = res.finding("refs-balanced")
    assert leak is not None and "vcpu0:fault" in leak.message


@pytest.mark.parametrize("variant", LATER)
def test_fixed_variants_do_not_hang_devdax_unbind(variant):
    res = run(variant, "devdax-unbind")
    assert res.exhaustive and not res.goals_missed
    assert "teardown-terminates" not in props(res)
    assert "refs-balanced" not in props(res)


def test_hildenbrand_alone_still_leaks():
    leaks = {}
    for v in POST_THREAD:
        res = run(v, "devdax-unbind")
        assert res.exhaustive
        leaks[v] = bool({"refs-balanced", "teardown-terminates"} & props(res))
    assert leaks == {v: v == "hildenbrand" for v in POST_THREAD}


def test_dan_early_put_breaks_the_pin_and_the_fault_flow():
    res = run("dan-early-put", "vcpu-map-vs-unbind")
    f = res.finding("pin-held")
    assert f is not None and "vcpu0:map" in f.message
    steps = [s for s in f.trace if s.thread == "vcpu0"]
    assert any("kvm_vcpu_map" in where(s) for s in steps)
    # the fault flow: the early put lets the memmap go while the fault still uses the pfn
    res = run("dan-early-put", "devdax-unbind", minimal=True)
    uaf = res.finding("no-metadata-after-teardown")
    assert uaf is not None and uaf.kind == "use-after-free"
    assert any("tdp_page_fault" in where(s) for s in uaf.trace if s.thread == "vcpu0")
    assert any("arch_remove_memory" in where(s) for s in uaf.trace if s.thread == "admin")


def test_remapped_race_answers_paolo():
    """hva_to_pfn_remapped reads struct page unpinned: a race in v5.4, none with David's
    pfn_to_online_page classifier nor in v6.13 (no reference, no struct page access)."""
    res = run("v5.4", "remapped-vs-unbind", minimal=True)
    f = res.finding("no-metadata-after-teardown")
    assert f is not None
    vcpu = [s for s in f.trace if s.thread == "vcpu0"]
    assert any("follow_pfn" in where(s) for s in vcpu)
    assert any("kvm_get_pfn" in where(s) for s in vcpu)
    for v in ("hildenbrand", "v6.13"):
        ok = run(v, "remapped-vs-unbind")
        assert ok.exhaustive and not ok.findings and not ok.goals_missed


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_v613_holds_every_property(scenario):
    """On the default mm (5.4: memunmap_pages waits for page references) v6.13 is clean."""
    res = run("v6.13", scenario)
    assert res.exhaustive and not res.goals_missed
    assert not res.findings, [(f.prop, f.message) for f in res.findings]


def test_v613_on_mm_518_devdax_unbind_puts_into_a_removed_memmap():
    """mm >= 5.18 (27674ef6c73f): memunmap_pages no longer waits for page references, so
    the in-flight fault's gup reference outlives it, and the put reads a removed memmap."""
    prog = SCENARIOS["devdax-unbind"].program(get_variant("v6.13"), mm="5.18")
    res = explore(prog, stop_first=False, minimal=True)
    assert res.exhaustive and not res.goals_missed
    assert props(res) == {"no-metadata-after-teardown"}
    f = res.finding("no-metadata-after-teardown")
    assert f is not None and f.kind == "use-after-free"
    assert "page@0x104.refcount" in f.message and "arch_remove_memory" in f.message
    trace = f.trace
    i_gup = next(i for i, s in enumerate(trace)
                 if s.thread == "vcpu0" and "page_ref_add_unless_zero" in where(s))
    i_unmap = next(i for i, s in enumerate(trace)
                   if s.thread == "admin" and "memunmap_pages" in where(s))
    i_free = next(i for i, s in enumerate(trace)
                  if s.thread == "admin" and "arch_remove_memory" in where(s)
                  and s.action == "free")
    # the retry check's reads of the Guarded seq/count ride along with the lock step
    i_retry = next(i for i, s in enumerate(trace)
                   if s.thread == "vcpu0" and ("mmu_notifier_retry" in where(s) or any(
                       p[5] == "mmu_notifier_retry" for p in s.plain)))
    # the trace ends with the access that is the finding: the put into the freed memmap
    assert (trace[-1].thread, trace[-1].action, trace[-1].obj) == ("vcpu0", "rmw", "page@0x104")
    # gup took the reference, the unbind removed the memmap without waiting for it, and
    # only then did the fault take mmu_lock (and find it must retry, putting the page)
    assert i_gup < i_unmap < i_free < i_retry
    assert not any("dev_pagemap_cleanup" in where(s) for s in trace)
    # on the default mm the same design is clean: the unbind waits for the reference
    assert not run("v6.13", "devdax-unbind").findings


def test_mm_values():
    sc = SCENARIOS["devdax-unbind"]
    v = get_variant("v6.13")
    for mm in (None, "5.4", "5.18", "variant"):
        sc.program(v, mm=mm)
    with pytest.raises(ValueError) as e:
        sc.program(v, mm="5.10")
    assert all(x in str(e.value) for x in ("None", "'5.4'", "'5.18'", "'variant'"))

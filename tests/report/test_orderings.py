"""The ordering a causal core suggests is the kernel's for the field the deciding pair
races on (issue 28): a lookup racing a PTE change is refreshed from the invalidation (the
MMU notifier), a read of a struct page racing the memmap's freeing needs a reference held
across it, and a primitive declared ``lockless`` is not offered for a pair already
serialised by a lock."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.report.test_json_facts import _json


def test_a_lookup_racing_a_pte_change_is_refreshed_from_the_invalidation() -> None:
    from pfnlab.api import registries_restored

    with registries_restored():  # the check loads the model file's designs and scenarios
        f = _json(["check", "examples/refresh_race.py", "gpc-buggy",
                   "gpc-vs-zap"])["findings"][0]
    first, second = f["causal"]["deciding_pair"]
    assert (first["thread"], first["function"], first["field"]) == ("vcpu0", "gup_pte_range", "val")
    assert (second["thread"], second["function"], second["field"]) == (
        "zap", "unmap_page_range", "val")
    order = f["causal"]["suggested_ordering"]
    assert order["kernel_primitive"]["primitive"] == (
        "the MMU notifier (invalidate_range_start/end, then mmu_notifier_retry())")
    assert "refreshed from the invalidation" in order["options"][0]
    assert "a lock around" not in f["causal"]["text"]


def test_a_struct_page_read_racing_the_memmaps_free_needs_a_reference() -> None:
    f = _json(["check", "dan-early-put", "devdax-unbind"])["findings"][0]
    first, second = f["causal"]["deciding_pair"]
    assert (first["thread"], first["action"]) == ("admin", "free")
    assert (second["thread"], second["field"]) == ("vcpu0", "reserved")
    prim = f["causal"]["suggested_ordering"]["kernel_primitive"]
    assert prim["primitive"].startswith("a reference held across the access")
    assert "pfn_to_online_page() pins nothing" in prim["how"]


RACE = textwrap.dedent('''\
    from pfnlab import Host, define_property, fail, instance, orders, scenario, vm_on
    from pfnlab.explore import Field, Lock, Shared

    define_property("seen-unset", "the reader never sees the flag set")
    LOCKED = {locked}


    class Flag(Shared):
        n = Field(0)


    orders(Flag, "n", lockless=True, primitive="flag_seq_retry()",
           how="the reader re-reads the sequence", where="lib/flag.c")


    @scenario("flag-race-{locked}", sizes={{}}, properties=["seen-unset"])
    def build(variant, sz):
        """a writer sets a flag the reader must not see set"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        flag, lock = Flag("flag"), Lock("lock")

        def writer():
            if LOCKED:
                lock.acquire()
            flag.n = 1
            if LOCKED:
                lock.release()

        def reader():
            if LOCKED:
                lock.acquire()
            seen = flag.n == 1
            if LOCKED:
                lock.release()
            if seen:
                fail("seen-unset", "the reader saw the flag set")

        return instance(s, {{"writer": writer, "reader": reader}}, ["seen-unset"])
''')


def test_a_lockless_primitive_is_not_offered_to_a_serialised_pair(
        model_file: Callable[..., Path]) -> None:
    for locked in (True, False):
        path = model_file(RACE.format(locked=locked), f"race_{locked}.py")
        f = _json(["check", str(path), "v5.4", f"flag-race-{locked}"])["findings"][0]
        order = f["causal"]["suggested_ordering"]
        if locked:
            assert order["common_locks"] == ["lock"] and order["kernel_primitive"] is None
        else:
            assert order["common_locks"] == []
            assert order["kernel_primitive"]["primitive"] == "flag_seq_retry()"


def test_a_cache_without_a_reference_is_an_atomicity_violation_with_two_fixes() -> None:
    """examples/pfncache.py: the cache keeps a pfn it holds no reference on. The finding
    needs the lookup before the unbind's PTE change and the memmap's free before the use;
    the fixes order either pair: refresh from the invalidation, or hold a reference."""
    from pfnlab.api import registries_restored

    with registries_restored():
        f = _json(["check", "examples/pfncache.py", "v5.4",
                   "pfncache-vs-unbind"])["findings"][0]
    c = f["causal"]
    lookup, change = c["window_pair"]
    assert (lookup["thread"], lookup["function"], lookup["action"]) == (
        "vcpu0", "gup_pte_range", "read")
    assert (change["thread"], change["function"], change["field"]) == (
        "admin", "unmap_page_range", "val")
    free, use = c["deciding_pair"]
    assert (free["action"], use["function"]) == ("free", "touch_mapping")
    order = c["suggested_ordering"]
    assert order["window"]["kernel_primitive"]["primitive"].startswith("the MMU notifier")
    assert order["kernel_primitive"]["primitive"] == "a reference held across the access"
    assert order["options"][0].startswith("the MMU notifier")
    assert order["options"][1].startswith("a reference held across the access")
    assert (f"ran inside vcpu0's window from step {lookup['step']} to step {use['step']}"
            in " ".join(c["text"].split()))


def test_an_ordering_applies_only_to_the_objects_it_names() -> None:
    """The pgmap's ordering of a page reference against the teardown is a device page's:
    a refcount race on an ordinary page is not told to take a pgmap reference."""
    from pfnlab.kernel.ordering import ordering_of
    from pfnlab.mm.mm_types import ZONE_DEVICE, Page

    ordinary, device = Page(0x103), Page(0x104)
    device.zone = ZONE_DEVICE
    found = ordering_of(Page, "refcount")
    assert found is not None and found.primitive.startswith("get_dev_pagemap()")
    assert found.orders_object(device) and not found.orders_object(ordinary)


def test_section_usage_freed_under_a_walker_is_ordered_by_rcu() -> None:
    """examples/section_usage.py: v5.4's kfree of ms->usage against a pfn_valid() walker;
    the kernel's fix (5ec8e8ea8b77) is RCU, not a lock or a wait."""
    from pfnlab.api import registries_restored

    with registries_restored():
        f = _json(["check", "examples/section_usage.py", "usage-kfree",
                   "pfn-walker-vs-hot-remove"])["findings"][0]
    free, use = f["causal"]["deciding_pair"]
    assert (free["thread"], free["action"], use["function"]) == ("admin", "free",
                                                                 "pfn_section_valid")
    order = f["causal"]["suggested_ordering"]
    assert order["kernel_primitive"]["primitive"].startswith("RCU (kfree_rcu() of ms->usage")
    assert "5ec8e8ea8b77" in order["kernel_primitive"]["where"]
    assert "waiting for" not in f["causal"]["text"]

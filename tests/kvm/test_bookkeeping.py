"""Issue 11: references, puts and A/D updates are recorded by the primitives that make them
(get_page, put_page, gup, SetPageDirty, mark_page_accessed), so an override written with
kernel calls only is seen by every property, and a put is named after the kernel function
that made it, whatever helper it went through."""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from pfnlab import api, ghost

# Overrides that call only kernel functions: no ledger call anywhere.
MODEL = textwrap.dedent('''\
    from pfnlab import variant
    from pfnlab.kvm import is_error_noslot_pfn, kvm_is_reserved_pfn
    from pfnlab.mm import SetPageDirty, get_page, pfn_to_page, pfn_valid, put_page


    def _put(pfn):
        put_page(pfn_to_page(pfn))


    def kvm_release_pfn_clean_twice(pfn):
        """A release that puts twice (the second put holds no reference)."""
        if not is_error_noslot_pfn(pfn) and not kvm_is_reserved_pfn(pfn):
            _put(pfn)
            _put(pfn)


    def kvm_release_pfn_clean_extra_get(pfn):
        """A release that takes a reference instead of putting one (a leak)."""
        if not is_error_noslot_pfn(pfn) and not kvm_is_reserved_pfn(pfn):
            get_page(pfn_to_page(pfn))


    def kvm_set_pfn_dirty_unfiltered(pfn):
        """SetPageDirty on any pfn with a struct page (ZONE_DEVICE included)."""
        if pfn_valid(pfn):
            SetPageDirty(pfn_to_page(pfn))


    variant("double-put", parent="v5.4", summary="puts twice",
            overrides={"kvm_release_pfn_clean": kvm_release_pfn_clean_twice})
    variant("extra-get", parent="v5.4", summary="gets instead of putting",
            overrides={"kvm_release_pfn_clean": kvm_release_pfn_clean_extra_get})
    variant("dirty-any", parent="v5.4", summary="dirties ZONE_DEVICE pages",
            overrides={"kvm_set_pfn_dirty": kvm_set_pfn_dirty_unfiltered})
''')


@pytest.fixture
def model(model_file: Callable[..., Path]) -> None:
    model_file(MODEL, "bookkeeping.py")


def test_a_put_without_a_reference_is_named_after_the_kernel_function(model: None) -> None:
    res = api.check("double-put", "devdax-unbind")
    assert res.violated == ["no-put-unreferenced"] and res.exhaustive
    (f,) = [f for f in res.search.findings if f.prop == "no-put-unreferenced"]
    # the helper _put is not a kernel function: the put is the override's, under the name
    # it overrides, not its Python name
    assert f.message == ("kvm_release_pfn_clean: vcpu0:fault puts page pfn 0x104 but holds "
                         "no reference on it (KVM references on it: nobody in KVM)")


def test_a_reference_taken_by_get_page_alone_is_a_leak(model: None) -> None:
    res = api.check("extra-get", "devdax-unbind")
    # the reference KVM never puts also keeps the device teardown waiting
    assert res.violated == ["teardown-terminates", "refs-balanced"] and res.exhaustive
    text = " ".join(res.report().split())
    assert "vcpu0:fault returned still holding 2 reference(s) on pfn 0x104 (leaked)" in text


def test_set_page_dirty_on_zone_device_is_seen_without_a_ledger_call(model: None) -> None:
    res = api.check("dirty-any", "devdax-unbind")
    assert res.violated == ["ad-only-tracked"] and res.exhaustive
    assert api.check("v5.4", "devdax-unbind").violated == []


def test_the_hosts_own_references_are_not_kvms(setup) -> None:  # type: ignore[no-untyped-def]
    """A get and put under a host owner (the mapping's, or one a model declares) leave KVM's
    ledger alone; any other owner is KVM's."""
    from pfnlab import mm

    s = setup("v5.4", "anon")
    page = s.page()
    mine = s.host.host_owner("mydriver")
    for owner in (mm.MAPPING, mine):
        mm.get_page(page, owner)
        assert s.kvm.ledger.refs == ()
        mm.put_page(page, owner)
    mm.get_page(page, "vcpu0:fault")
    assert s.kvm.ledger.refs == (((page.pfn, "vcpu0:fault"), 1),)


def test_the_old_ledger_calls_do_nothing_and_say_so(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        ghost.ref_taken(s.page(), "vcpu0:fault")
    assert s.kvm.ledger.refs == ()
    assert "does nothing now" in str(got[0].message)

"""kvm_main.c pfn helpers against kernel-semantics.md §1.1-1.2 (outside executions)."""

import pytest

from pfnlab import mm
from pfnlab.explore import ModelViolation
from pfnlab.kvm import (
    ghost,
    kvm_get_pfn,
    kvm_is_reserved_pfn,
    kvm_is_zone_device_pfn,
    kvm_release_pfn_clean,
    kvm_set_pfn_dirty,
)


def test_devdax_is_not_reserved_in_v54_but_is_in_v53(setup):
    s = setup("v5.4", "devdax")
    pfn = s.region.pfn
    assert kvm_is_zone_device_pfn(pfn)
    assert not kvm_is_reserved_pfn(pfn)
    setup("v5.3", "devdax")
    assert kvm_is_reserved_pfn(pfn)


def test_release_clean_puts_devdax_in_v54(setup):
    s = setup("v5.4", "devdax")
    page, pfn = s.page(), s.region.pfn
    before = page.refcount
    kvm_get_pfn(pfn, "t")
    assert page.refcount == before + 1
    kvm_release_pfn_clean(pfn, "t")
    assert page.refcount == before
    assert ghost.check_refs_balanced(s.kvm) is None


def test_release_clean_skips_devdax_in_v53(setup):
    s = setup("v5.3", "devdax")
    page, pfn = s.page(), s.region.pfn
    before = page.refcount
    mm.get_page(page, "t")  # as gup does
    kvm_release_pfn_clean(pfn, "t")
    assert page.refcount == before + 1  # leaked
    assert "KVM still holds" in ghost.check_refs_balanced(s.kvm)


def test_put_without_kvm_reference_fails(setup):
    s = setup("v5.4", "anon")
    with pytest.raises(ModelViolation) as e:
        kvm_release_pfn_clean(s.region.pfn, "vcpu0:fault")
    assert e.value.prop == ghost.NO_PUT_UNREFERENCED


def test_set_pfn_dirty_skips_zone_device_and_zero_page(setup):
    s = setup("v5.4", "devdax")
    kvm_set_pfn_dirty(s.region.pfn)
    assert not s.page().dirty
    kvm_set_pfn_dirty(s.host.zero_pfn)
    assert not s.host.zero_page.dirty
    assert not s.kvm.ledger.events


def test_set_pfn_dirty_marks_anon(setup):
    s = setup("v5.4", "anon")
    kvm_set_pfn_dirty(s.region.pfn)
    assert s.page().dirty


def test_zone_device_warn_on_zero_count(setup):
    s = setup("v5.4", "devdax")
    s.page().refcount = 0
    assert not kvm_is_zone_device_pfn(s.region.pfn)
    assert ghost.check_no_warn(s.kvm).startswith("WARN:kvm_is_zone_device_pfn")
    s2 = setup("sean-v1", "devdax")
    s2.page().refcount = 0
    assert kvm_is_zone_device_pfn(s2.region.pfn)  # v1: no refcount check, no WARN
    assert ghost.check_no_warn(s2.kvm) is None


def test_hildenbrand_offline_pfns_reserved(setup):
    s = setup("hildenbrand", "devdax")
    assert kvm_is_reserved_pfn(s.region.pfn)
    s = setup("hildenbrand", "anon")
    assert not kvm_is_reserved_pfn(s.region.pfn)

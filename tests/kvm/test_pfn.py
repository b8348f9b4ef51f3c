"""kvm_main.c pfn helpers against kernel-semantics.md §1.1-1.2 (outside executions)."""

import contextlib
from collections.abc import Iterator

import pytest

from pfnlab import mm
from pfnlab.explore import ModelViolation
from pfnlab.kernel.operation import enter_owner, leave_owner
from pfnlab.kvm import (
    ghost,
    kvm_get_pfn,
    kvm_is_reserved_pfn,
    kvm_is_zone_device_pfn,
    kvm_release_pfn_clean,
    kvm_set_pfn_dirty,
)


@contextlib.contextmanager
def as_owner(owner: str) -> Iterator[None]:
    """Run as ``owner``'s operation without the ledger's bracket (no I1 check at its end)."""
    enter_owner(owner)
    try:
        yield
    finally:
        leave_owner(owner)


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
    with as_owner("t"):
        kvm_get_pfn(pfn)
        assert page.refcount == before + 1
        kvm_release_pfn_clean(pfn)
    assert page.refcount == before
    assert ghost.check_refs_balanced(s.kvm) is None


def test_release_clean_skips_devdax_in_v53(setup):
    s = setup("v5.3", "devdax")
    page, pfn = s.page(), s.region.pfn
    before = page.refcount
    with as_owner("t"):
        mm.get_page(page)  # as gup does
        kvm_release_pfn_clean(pfn)
    assert page.refcount == before + 1  # leaked
    assert "KVM still holds" in ghost.check_refs_balanced(s.kvm)


def test_put_without_kvm_reference_fails(setup):
    s = setup("v5.4", "anon")
    with pytest.raises(ModelViolation) as e, as_owner("vcpu0:fault"):
        kvm_release_pfn_clean(s.region.pfn)
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

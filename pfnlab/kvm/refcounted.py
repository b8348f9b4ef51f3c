"""virt/kvm/kvm_main.c v5.13-v6.12: refcounted pages, the helpers of KVM's get/put since v6.0.

``kvm_pfn_to_refcounted_page`` (b14b2690c50e, v6.0) replaced ``kvm_is_reserved_pfn``: the
page of a valid non-PG_reserved pfn, the ZERO_PAGE, or a ZONE_DEVICE page
(``kvm_is_zone_device_page`` takes a page since 284dc4930773 and keeps the WARN on a zero
count). A/D bits only on ``!PageReserved`` pages (``kvm_is_ad_tracked_pfn``, a1040b0d42ac);
``kvm_release_page_clean`` marks the page accessed before the put; ``kvm_try_get_pfn``
(f8be156be163, v5.13) is ``get_page_unless_zero`` on the refcounted page. The v6.0 design
(``pfnlab/variants/v6_0.py``) runs them in place of the v5.4 functions of
:mod:`pfnlab.kvm.pfn`; a model of a later kernel imports them from here.
"""

from __future__ import annotations

from typing import Any

from pfnlab import mm
from pfnlab.kernel.deprecation import owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.roles import releases_reference
from pfnlab.kvm import ghost
from pfnlab.kvm.pfn import kvm_owner


@kfunc
def kvm_is_zone_device_page(page: Any) -> bool:
    """virt/kvm/kvm_main.c v6.0: is_zone_device_page, WARN_ON_ONCE(!page_count(page))."""
    if mm.page_count(page) == 0:
        ghost.warn("kvm_is_zone_device_page", int(mm.page_to_pfn(page)), "page_count is 0")
        return False
    return bool(mm.is_zone_device_page(page))


@kfunc
def kvm_pfn_to_refcounted_page(pfn: int) -> Any:
    """virt/kvm/kvm_main.c v6.0: the page if !PG_reserved, the ZERO_PAGE, or ZONE_DEVICE."""
    if not mm.pfn_valid(pfn):
        return None
    page = mm.pfn_to_page(pfn)
    if not mm.PageReserved(page):
        return page
    if mm.is_zero_pfn(pfn):  # the ZERO_PAGE(s) is marked PG_reserved, but is refcounted
        return page
    if kvm_is_zone_device_page(page):
        return page
    return None


@kfunc
def kvm_is_ad_tracked_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c v6.0: pfn_valid && !PageReserved (page-flags.h: owner only)."""
    if not mm.pfn_valid(pfn):
        return False
    return not mm.PageReserved(mm.pfn_to_page(pfn))


@releases_reference
@kfunc
@owner_parameter_removed
def kvm_release_page_clean(page: Any) -> None:
    """virt/kvm/kvm_main.c v6.0: mark accessed (if !PageReserved), put_page."""
    if not mm.PageReserved(page):
        mm.mark_page_accessed(page)
    mm.put_page(page, owner=kvm_owner())


@releases_reference
@kfunc
@owner_parameter_removed
def kvm_release_page_dirty(page: Any) -> None:
    """virt/kvm/kvm_main.c v6.0: SetPageDirty (if !PageReserved), then the clean release."""
    if not mm.PageReserved(page):
        mm.SetPageDirty(page)
    kvm_release_page_clean(page)


@kfunc
@owner_parameter_removed
def kvm_try_get_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c v5.13+: get_page_unless_zero on the refcounted page (1 if none)."""
    page = kvm_pfn_to_refcounted_page(pfn)
    if page is None:
        return True
    return bool(mm.get_page_unless_zero(page, owner=kvm_owner()))

"""virt/kvm/kvm_main.c v5.4.33: classifying pfns, and KVM's get/put and A/D helpers.

Error pfns are negative ints here (``KVM_PFN_ERR_*``, ``KVM_PFN_NOSLOT``); the kernel's
``is_error_pfn``/``is_noslot_pfn``/``is_error_noslot_pfn`` are pure bit tests and stay plain
functions. The references KVM takes and drops are the running thread's operation's
(``vcpu0:fault``: :func:`pfnlab.kvm.ghost.operation`), ``kvm`` outside every operation
(:func:`kvm_owner`); no function passes an owner, as in the kernel.
"""

from __future__ import annotations

from pfnlab import mm
from pfnlab.kernel.deprecation import owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.operation import current_owner
from pfnlab.kernel.roles import refcount_api, releases_reference
from pfnlab.kvm import ghost

KVM_PFN_ERR_FAULT = -1
KVM_PFN_ERR_HWPOISON = -2
KVM_PFN_ERR_RO_FAULT = -3
KVM_PFN_NOSLOT = -16


def is_error_pfn(pfn: int) -> bool:
    """include/linux/kvm_host.h: ``pfn & KVM_PFN_ERR_MASK``."""
    return KVM_PFN_NOSLOT < pfn < 0


def is_noslot_pfn(pfn: int) -> bool:
    """include/linux/kvm_host.h: ``pfn == KVM_PFN_NOSLOT``."""
    return pfn == KVM_PFN_NOSLOT


def is_error_noslot_pfn(pfn: int) -> bool:
    """include/linux/kvm_host.h: an error pfn or the no-slot pfn."""
    return pfn < 0


def kvm_owner() -> str:
    """The ledger owner of a reference KVM takes or drops now: the running thread's
    operation (``vcpu0:fault``), or ``kvm`` outside every one (a reference taken there is
    an I1 leak at once: no operation will return it)."""
    return current_owner() or "kvm"


@kfunc
def kvm_is_zone_device_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c v5.4 (a78986aae9b2): ZONE_DEVICE test; WARN_ON_ONCE if refcount 0."""
    if not mm.pfn_valid(pfn):
        return False
    page = mm.pfn_to_page(pfn)
    # The metadata is valid iff the device is pinned, e.g. by gup: WARN on a zero refcount.
    if mm.page_count(page) == 0:
        ghost.warn("kvm_is_zone_device_pfn", pfn, "page_count is 0: the pfn is not pinned")
        return False
    return bool(mm.is_zone_device_page(page))


@kfunc
def kvm_is_reserved_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c v5.4: PageReserved and not ZONE_DEVICE; no memmap counts as reserved."""
    if mm.pfn_valid(pfn):
        return bool(mm.PageReserved(mm.pfn_to_page(pfn))) and not kvm_is_zone_device_pfn(pfn)
    return True


@releases_reference
@kfunc
@owner_parameter_removed
def kvm_release_pfn_clean(pfn: int) -> None:
    """virt/kvm/kvm_main.c v5.4: put the gup reference unless the pfn is an error or reserved."""
    if not is_error_noslot_pfn(pfn) and not kvm_is_reserved_pfn(pfn):
        mm.put_page(mm.pfn_to_page(pfn), owner=kvm_owner())


@releases_reference
@kfunc
@owner_parameter_removed
def kvm_release_pfn_dirty(pfn: int) -> None:
    """virt/kvm/kvm_main.c v5.4: kvm_set_pfn_dirty, then kvm_release_pfn_clean."""
    kvm_set_pfn_dirty(pfn)
    kvm_release_pfn_clean(pfn)


@releases_reference
@kfunc
@owner_parameter_removed
def kvm_release_pfn(pfn: int, dirty: bool) -> None:
    """virt/kvm/kvm_main.c v5.4.33 (backport): dirty or clean release (no gfn_to_pfn_cache)."""
    if dirty:
        kvm_release_pfn_dirty(pfn)
    else:
        kvm_release_pfn_clean(pfn)


@kfunc
def kvm_set_pfn_dirty(pfn: int) -> None:
    """virt/kvm/kvm_main.c v5.4: SetPageDirty unless reserved or ZONE_DEVICE."""
    if not kvm_is_reserved_pfn(pfn) and not kvm_is_zone_device_pfn(pfn):
        mm.SetPageDirty(mm.pfn_to_page(pfn))


@kfunc
def kvm_set_pfn_accessed(pfn: int) -> None:
    """virt/kvm/kvm_main.c v5.4: mark_page_accessed unless reserved or ZONE_DEVICE."""
    if not kvm_is_reserved_pfn(pfn) and not kvm_is_zone_device_pfn(pfn):
        mm.mark_page_accessed(mm.pfn_to_page(pfn))


@refcount_api("get_page")
@kfunc
@owner_parameter_removed
def kvm_get_pfn(pfn: int) -> None:
    """virt/kvm/kvm_main.c v5.4: get_page unless reserved (no check that the count is > 0)."""
    if not kvm_is_reserved_pfn(pfn):
        mm.get_page(mm.pfn_to_page(pfn), owner=kvm_owner())

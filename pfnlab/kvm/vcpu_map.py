"""virt/kvm/kvm_main.c v5.4.33: ``kvm_vcpu_map``/``kvm_vcpu_unmap`` (long-lived mappings).

The reference ``gfn_to_pfn_memslot`` takes is held from map to unmap (I9); unlike SPTEs,
these mappings are not revalidated by MMU notifiers. No ``gfn_to_pfn_cache`` (the
kvm_map_gfn steal-time cache) is modelled. The 5.4.y ``kvm_release_pfn`` skips pfn 0; the
model has no such special case (pfn 0 is an ordinary pfn in the host model).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pfnlab import mm
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.roles import releases_reference
from pfnlab.kvm.hva import __gfn_to_pfn_memslot, gfn_to_memslot
from pfnlab.kvm.kvm import Vcpu
from pfnlab.kvm.pfn import is_error_noslot_pfn, kvm_owner, kvm_release_pfn


class HostMap(NamedTuple):
    """``struct kvm_host_map``: page is None when the pfn was memremap()ed (no memmap);
    ``hva`` is the kernel mapping (``kmap`` or ``memremap``: :mod:`pfnlab.mm.kmap`)."""

    gfn: int
    pfn: int
    page: Any
    owner: str                # the ledger: the operation that mapped (vcpu0:map)
    pinned_page: Any = None   # v6.13: the page kvm_follow_pfn pinned (refcounted_page)
    hva: mm.KernelMap | None = None


def map_owner(vcpu: Vcpu) -> str:
    """The operation a vCPU's ``kvm_vcpu_map`` to ``kvm_vcpu_unmap`` runs in (the ledger
    owner of its reference): ``vcpu0:map``."""
    return f"{vcpu.name}:map"


def map_pfn(pfn: int, gfn: int) -> mm.KernelMap:
    """``kvm_vcpu_map``'s mapping of ``pfn``: ``kmap(pfn_to_page(pfn))`` where the pfn has
    a memmap, else ``memremap`` (virt/kvm/kvm_main.c v5.4.33, also v6.13); held by the
    running operation (:func:`~pfnlab.kvm.pfn.kvm_owner`)."""
    if mm.pfn_valid(pfn):
        return mm.kmap(mm.pfn_to_page(pfn), kvm_owner(), gfn)
    return mm.memremap(pfn, kvm_owner(), gfn)


def unmap_pfn(hmap: HostMap) -> None:
    """``kvm_vcpu_unmap``'s teardown of the mapping: ``kunmap`` or ``memunmap``."""
    if hmap.hva is None:
        return
    if hmap.hva.page is not None:
        mm.kunmap(hmap.hva)
    else:
        mm.memunmap(hmap.hva)


@kfunc
def kvm_vcpu_map(vcpu: Vcpu, gfn: int) -> HostMap | None:
    """virt/kvm/kvm_main.c v5.4.33: gfn_to_pfn_memslot (one reference), then kmap/memremap.

    Returns the mapping (its ``page`` is None for a pfn without a memmap: memremap), or
    None (the kernel's -EINVAL/-EFAULT) when the gfn has no usable pfn."""
    slot = gfn_to_memslot(vcpu.kvm.memslots, gfn)
    pfn, _ = __gfn_to_pfn_memslot(slot, gfn, False, True, False)
    if is_error_noslot_pfn(pfn):
        return None
    hva = map_pfn(pfn, gfn)
    return HostMap(gfn, pfn, hva.page, hva.owner, hva=hva)


@releases_reference
@kfunc
def kvm_vcpu_unmap(vcpu: Vcpu, hmap: HostMap, dirty: bool) -> None:
    """virt/kvm/kvm_main.c v5.4.33: kunmap/memunmap, then kvm_release_pfn(pfn, dirty)."""
    unmap_pfn(hmap)
    kvm_release_pfn(hmap.pfn, dirty)


def touch_mapping(hmap: HostMap) -> None:
    """The vCPU reads the mapped memory (one access to the page's memory, through
    ``hmap.hva``: :func:`pfnlab.mm.kmap.mapped_access`).

    A read of the page's memory (``Page.data``, a scheduling point): after the memmap (and
    with it the device's linear map) is gone this is a use-after-free finding.
    """
    if hmap.hva is not None:
        mm.mapped_access(hmap.hva)

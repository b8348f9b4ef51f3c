"""sean-v1: the v1 patch posted in the thread (not merged as is).

"[PATCH 1/2] KVM: MMU: Do not treat ZONE_DEVICE pages as being reserved",
<20191106170727.14457-2-sean.j.christopherson@intel.com> (the diff quoted in the seed
thread). Differences from the merged v2 (a78986aae9b2):

- ``kvm_is_reserved_pfn`` is ``PageReserved && !is_zone_device_page`` directly;
- ``kvm_is_zone_device_pfn`` has **no** WARN on a zero refcount (added in v2 per Dan);
- ``kvm_get_pfn`` refuses ZONE_DEVICE with a WARN: ``!kvm_is_reserved_pfn(pfn) &&
  !WARN_ON(kvm_is_zone_device_pfn(pfn))`` (dropped in v2 per Paolo, who asked whether
  remap_pfn_range can map ZONE_DEVICE, <8ba98630-9ca0-85c2-3c94-45d54a448fca@redhat.com>).
"""

from __future__ import annotations

from pfnlab import Variant, kvm_owner, mm, register_variant
from pfnlab.kvm import ghost
from pfnlab.kvm.pfn import kvm_is_reserved_pfn as _reserved
from pfnlab.kvm.pfn import kvm_is_zone_device_pfn as _zone_device


def kvm_is_zone_device_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c sean-v1: is_zone_device_page if pfn_valid; no refcount check."""
    if not mm.pfn_valid(pfn):
        return False
    return bool(mm.is_zone_device_page(mm.pfn_to_page(pfn)))


def kvm_is_reserved_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c sean-v1: PageReserved && !is_zone_device_page."""
    if mm.pfn_valid(pfn):
        page = mm.pfn_to_page(pfn)
        return bool(mm.PageReserved(page)) and not mm.is_zone_device_page(page)
    return True


def kvm_get_pfn(pfn: int) -> None:
    """virt/kvm/kvm_main.c sean-v1: get_page unless reserved or (WARN) ZONE_DEVICE."""
    if not _reserved(pfn):
        if _zone_device(pfn):
            ghost.warn("kvm_get_pfn", pfn, "kvm_get_pfn on a ZONE_DEVICE pfn")
            return
        page = mm.pfn_to_page(pfn)
        mm.get_page(page, owner=kvm_owner())


VARIANT = register_variant(
    Variant(
        name="sean-v1",
        parent="v5.4",
        summary="the v1 fix: ZONE_DEVICE not reserved; no WARN in kvm_is_zone_device_pfn; "
        "kvm_get_pfn WARNs and refuses ZONE_DEVICE",
        cite="<20191106170727.14457-2-sean.j.christopherson@intel.com>",
        overrides={
            "kvm_is_zone_device_pfn": kvm_is_zone_device_pfn,
            "kvm_is_reserved_pfn": kvm_is_reserved_pfn,
            "kvm_get_pfn": kvm_get_pfn,
        },
    )
)

"""v5.3: before a78986aae9b2. ZONE_DEVICE pages are PG_reserved, so KVM calls them reserved.

``kvm_is_reserved_pfn`` is plain ``PageReserved``; ``kvm_is_zone_device_pfn`` did not exist,
so its callers (the A/D helpers, the THP adjust, zap_collapsible) behave as in 5.3: the
override answers False without reading the memmap. Consequence: gup references on devdax
and fsdax pages are never put (kvm_release_pfn_clean skips reserved pfns), the hang in
dev_pagemap_cleanup reported by Adam Borowski (<20190919115547.GA17963@angband.pl>) and
analysed by David Hildenbrand (<ed89cd61-7c45-8c9c-ffeb-f27b1872bd7a@redhat.com>).
"""

from __future__ import annotations

from pfnlab import Variant, mm, register_variant


def kvm_is_reserved_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c v5.3: PageReserved(pfn_to_page(pfn)); no memmap counts as reserved."""
    if mm.pfn_valid(pfn):
        return bool(mm.PageReserved(mm.pfn_to_page(pfn)))
    return True


def kvm_is_zone_device_pfn(pfn: int) -> bool:
    """(absent in v5.3): callers behave as without the check."""
    return False


VARIANT = register_variant(
    Variant(
        name="v5.3",
        parent="v5.4",
        summary="before the fix: ZONE_DEVICE is PG_reserved, so KVM never puts its gup "
        "references on device pages",
        cite="parent of a78986aae9b2; <20190919115547.GA17963@angband.pl>",
        overrides={
            "kvm_is_reserved_pfn": kvm_is_reserved_pfn,
            "kvm_is_zone_device_pfn": kvm_is_zone_device_pfn,
        },
        mm_version="5.4",
    )
)

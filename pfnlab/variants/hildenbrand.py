"""hildenbrand: ``kvm_is_reserved_pfn`` via ``pfn_to_online_page`` (not merged).

David Hildenbrand, "[PATCH v1 03/10] KVM: Prepare kvm_is_reserved_pfn() for PG_reserved
changes", <20191024120938.11237-4-david@redhat.com>: a pfn whose section is not online
(every ZONE_DEVICE pfn, /dev/mem pfns without memmap) counts as reserved. On top of v5.3
(the patch predates the fix): ZONE_DEVICE stays "reserved", so gup references on it are
still never put; David said so himself (<ed89cd61-7c45-8c9c-ffeb-f27b1872bd7a@redhat.com>).
"""

from __future__ import annotations

from pfnlab import Variant, mm, register_variant


def kvm_is_reserved_pfn(pfn: int) -> bool:
    """virt/kvm/kvm_main.c hildenbrand: online page → PageReserved; offline → reserved."""
    page = mm.pfn_to_online_page(pfn)
    if page is not None:
        return bool(mm.PageReserved(page))
    return True


VARIANT = register_variant(
    Variant(
        name="hildenbrand",
        parent="v5.3",
        summary="kvm_is_reserved_pfn via pfn_to_online_page: offline (ZONE_DEVICE) pfns "
        "are reserved; no memmap read for them",
        cite="<20191024120938.11237-4-david@redhat.com>",
        overrides={"kvm_is_reserved_pfn": kvm_is_reserved_pfn},
    )
)

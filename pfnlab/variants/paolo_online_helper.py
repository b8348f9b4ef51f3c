"""paolo-online-helper: the fix, with the THP filters done by ``pfn_to_online_page``.

Paolo Bonzini, Nov 6 2019 21:09 (<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>): if
``is_zone_device_page`` is racy, "introduce a helper similar to kvm_is_hugepage_allowed()
from his patch 2, but using pfn_to_online_page() to filter out ZONE_DEVICE pages. This would
cover both transparent_hugepage_adjust and kvm_mmu_zap_collapsible_spte." Never posted as a
patch; this is that helper on top of v5.4 (so refcounting is as in a78986aae9b2, and the
A/D helpers still use kvm_is_zone_device_pfn).
"""

from __future__ import annotations

from pfnlab import Variant, mm, register_variant
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm import ghost
from pfnlab.kvm.fault import mmu_gfn_lpage_is_disallowed, record_thp_shift
from pfnlab.kvm.kvm import PT_DIRECTORY_LEVEL, PT_PAGE_TABLE_LEVEL, Kvm, Memslot, Spte, Vcpu
from pfnlab.kvm.pfn import is_error_noslot_pfn, kvm_get_pfn, kvm_release_pfn_clean
from pfnlab.kvm.spte import drop_spte


@kfunc
def kvm_is_hugepage_allowed(pfn: int) -> bool:
    """arch/x86/kvm/mmu.c paolo-online-helper: online (never ZONE_DEVICE), !reserved, THP-mapped."""
    page = mm.pfn_to_online_page(pfn)
    if page is None:
        return False
    return not mm.PageReserved(page) and bool(mm.PageTransCompoundMap(page))


def transparent_hugepage_adjust(
    vcpu: Vcpu, slot: Memslot, gfn: int, pfn: int, level: int
) -> tuple[int, int]:
    """arch/x86/kvm/mmu.c paolo-online-helper: v5.4 THP adjust behind kvm_is_hugepage_allowed."""
    if (
        not is_error_noslot_pfn(pfn)
        and level == PT_PAGE_TABLE_LEVEL
        and kvm_is_hugepage_allowed(pfn)
        and not mmu_gfn_lpage_is_disallowed(vcpu, slot, gfn, PT_DIRECTORY_LEVEL)
    ):
        level = PT_DIRECTORY_LEVEL
        mask = vcpu.kvm.pages_per_hpage(level) - 1
        if (gfn & mask) != (pfn & mask):
            ghost.vm_bug_on("transparent_hugepage_adjust", pfn, "gfn/pfn misaligned")
        if pfn & mask:
            kvm_release_pfn_clean(pfn)
            pfn &= ~mask
            record_thp_shift(pfn)
            kvm_get_pfn(pfn)
    return (pfn, level)


def kvm_mmu_zap_collapsible_spte(kvm: Kvm, slot: Memslot, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu.c paolo-online-helper: zap if kvm_is_hugepage_allowed(pfn)."""
    val = sptep.spte
    if val is None:
        return False
    if kvm_is_hugepage_allowed(val.pfn):
        drop_spte(kvm, sptep)
        return True
    return False


VARIANT = register_variant(
    Variant(
        name="paolo-online-helper",
        parent="v5.4",
        summary="v5.4 refcounting; THP adjust and zap_collapsible filter ZONE_DEVICE with "
        "pfn_to_online_page (no unpinned is_zone_device_page there)",
        cite="<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>",
        overrides={
            "transparent_hugepage_adjust": transparent_hugepage_adjust,
            "kvm_mmu_zap_collapsible_spte": kvm_mmu_zap_collapsible_spte,
        },
    )
)

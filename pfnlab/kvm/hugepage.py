"""arch/x86/kvm/mmu/mmu.c v5.6-v6.12: the huge level from the host page tables.

Sean Christopherson's "KVM: x86/mmu: Walk host page tables to find THP mappings"
(v5.6): ``max_mapping_level`` caps the level by the memslot, ``host_pfn_mapping_level``
reads it from the host page tables (compound or ZONE_DEVICE pages only), and
``kvm_mmu_hugepage_adjust`` returns ``(level, pfn & ~mask)``, a local copy: the caller's
pfn (and its reference) is unchanged. ``kvm_mmu_max_mapping_level`` (v6.0) is the level
without the page check. The designs ``v5.6`` and ``v6.0`` (``pfnlab/variants/``) run them;
a model of a later kernel imports them from here.
"""

from __future__ import annotations

from pfnlab import mm
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.kvm import PT_DIRECTORY_LEVEL, PT_PAGE_TABLE_LEVEL, Kvm, Memslot, Vcpu
from pfnlab.kvm.pfn import is_error_noslot_pfn, kvm_is_reserved_pfn, kvm_is_zone_device_pfn


@kfunc
def max_mapping_level(vcpu: Vcpu, slot: Memslot | None, gfn: int) -> int:
    """arch/x86/kvm/mmu/mmu.c v5.6: the largest level the memslot allows at ``gfn``.

    Returns PT_PAGE_TABLE_LEVEL (4K) if there is no slot, dirty logging is on or a large
    page is disallowed there, else PT_DIRECTORY_LEVEL."""
    if slot is None or slot.dirty_logging:
        return PT_PAGE_TABLE_LEVEL
    if slot.lpage_disallowed(gfn, vcpu.kvm.hpage_pages):
        return PT_PAGE_TABLE_LEVEL
    return PT_DIRECTORY_LEVEL


@kfunc
def host_pfn_mapping_level(vcpu: Vcpu, slot: Memslot, gfn: int, pfn: int) -> int:
    """arch/x86/kvm/mmu/mmu.c v5.6: the level the host maps ``gfn``'s hva at.

    Returns PT_PAGE_TABLE_LEVEL unless the pfn's page is compound or ZONE_DEVICE, else the
    level of the host page-table entry (``lookup_address_in_mm``)."""
    if not mm.PageCompound(mm.pfn_to_page(pfn)) and not kvm_is_zone_device_pfn(pfn):
        return PT_PAGE_TABLE_LEVEL
    return int(mm.lookup_address_in_mm(vcpu.kvm.mm, slot.gfn_to_hva(gfn)))


@kfunc
def kvm_mmu_hugepage_adjust(
    vcpu: Vcpu, slot: Memslot, gfn: int, max_level: int, pfn: int
) -> tuple[int, int]:
    """arch/x86/kvm/mmu/mmu.c v5.6: the level to map at and the pfn aligned to it.

    Returns ``(level, pfn & ~mask)``, a local copy: the caller's pfn (and its reference)
    is unchanged."""
    if max_level == PT_PAGE_TABLE_LEVEL:
        return (PT_PAGE_TABLE_LEVEL, pfn)
    if is_error_noslot_pfn(pfn) or kvm_is_reserved_pfn(pfn):
        return (PT_PAGE_TABLE_LEVEL, pfn)
    level = host_pfn_mapping_level(vcpu, slot, gfn, pfn)
    if level == PT_PAGE_TABLE_LEVEL:
        return (level, pfn)
    level = min(level, max_level)
    mask = vcpu.kvm.pages_per_hpage(level) - 1
    return (level, pfn & ~mask)


@kfunc
def kvm_mmu_max_mapping_level(kvm: Kvm, slot: Memslot, gfn: int, max_level: int) -> int:
    """arch/x86/kvm/mmu/mmu.c v6.0: lpage_info, then the host page-table level (no page).

    Returns the smaller of ``max_level`` and the host's level, PT_PAGE_TABLE_LEVEL if a
    large page is disallowed at ``gfn``."""
    if max_level == PT_PAGE_TABLE_LEVEL or slot.lpage_disallowed(gfn, kvm.hpage_pages):
        return PT_PAGE_TABLE_LEVEL
    return min(max_level, int(mm.lookup_address_in_mm(kvm.mm, slot.gfn_to_hva(gfn))))

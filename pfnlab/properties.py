"""The property registry: every finding the kernel models report is under one of these ids.

Ids follow the invariants I1-I10 of kernel-semantics.md section 5 (I11-I13 were added
with later kernels' mechanisms). Model code imports the id constants from here
(``pfnlab.kvm.ghost``, ``pfnlab.mm.props`` re-export them), so a finding's ``prop`` is
always a key of :data:`PROPERTIES`. Engine findings outside the registry (kind
``"exception"``, an ``AssertionError`` in model code, ``"lock-balance"``, a lock deadlock
reported as ``"hang"``, ``"no-progress"``) are model errors, not verdicts.

Where a finding could be argued into two properties the meaning says which one it is in:

- a ``get_page`` that takes a page from refcount 0 to 1 (``kvm_get_pfn`` on an unpinned
  pfn) is I2, as is a ``percpu_ref`` put of a ``dev_pagemap`` below zero;
- a ``WARN`` in ``kvm_is_zone_device_pfn``/``kvm_is_zone_device_page`` (page_count 0: KVM
  read ``struct page`` of a pfn it had not pinned) or in ``kvm_get_pfn`` (sean-v1: KVM
  classified an unpinned ZONE_DEVICE pfn) is I3: the metadata read was not protected;
- the ``WARN`` in ``mmu_spte_clear_track_bits`` (zapping an SPTE whose page has count 0) is
  I5: the SPTE outlived its page;
- ``VM_BUG_ON`` in ``transparent_hugepage_adjust`` (gfn/pfn misaligned) is I7.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Property:
    """A checked property: its id, the invariant it stands for, and one line of meaning."""

    id: str
    invariant: str
    meaning: str


REFS_BALANCED = "refs-balanced"
NO_PUT_UNREFERENCED = "no-put-unreferenced"
NO_METADATA_AFTER_TEARDOWN = "no-metadata-after-teardown"
NO_STALE_SPTE = "no-stale-spte"
NO_SPTE_TO_FREED = "no-spte-to-freed"
AD_ONLY_TRACKED = "ad-only-tracked"
HUGE_ONLY_THP = "huge-only-thp"
TEARDOWN_TERMINATES = "teardown-terminates"
PIN_HELD = "pin-held"
NOTIFIER_BALANCED = "notifier-balanced"
READONLY_RESPECTED = "readonly-respected"
SECONDARY_COHERENT = "secondary-coherent"
NO_ROOT_AFTER_FREE = "no-root-after-free"

PROPERTIES: dict[str, Property] = {
    p.id: p
    for p in (
        Property(
            REFS_BALANCED,
            "I1",
            "every page reference KVM takes (gup, kvm_get_pfn) is put exactly once: none is "
            "held once its fault/map has returned or the VM is gone",
        ),
        Property(
            NO_PUT_UNREFERENCED,
            "I2",
            "no put of a reference not held (page refcount 0, a KVM owner without one, a "
            "pgmap percpu_ref below 0) and no get that takes a page from refcount 0 to 1",
        ),
        Property(
            NO_METADATA_AFTER_TEARDOWN,
            "I3",
            "no struct page read after its memmap was removed, and no read KVM could not "
            "trust (WARN: page_count 0 in kvm_is_zone_device_pfn/_page, kvm_get_pfn)",
        ),
        Property(
            NO_STALE_SPTE,
            "I4",
            "no SPTE maps a pfn whose host PTE was invalidated after the fault looked it up "
            "(unless that invalidation is still zapping)",
        ),
        Property(
            NO_SPTE_TO_FREED,
            "I5",
            "no SPTE or kvm_vcpu_map mapping refers to a page that was freed or returned "
            "(memmap gone, refcount 0; WARN in mmu_spte_clear_track_bits)",
        ),
        Property(
            AD_ONLY_TRACKED,
            "I6",
            "SetPageDirty/mark_page_accessed only on core-mm pages (not ZONE_DEVICE, the "
            "zero page, PG_reserved or non-refcounted pages)",
        ),
        Property(
            HUGE_ONLY_THP,
            "I7",
            "the THP reference shift only onto a real THP head, and huge SPTEs only where the "
            "host maps the hva huge (VM_BUG_ON in transparent_hugepage_adjust)",
        ),
        Property(
            TEARDOWN_TERMINATES,
            "I8",
            "device teardown and fsdax layout breaking finish (memunmap_pages, "
            "dev_pagemap_cleanup, synchronize_srcu, the truncate wait)",
        ),
        Property(
            PIN_HELD,
            "I9",
            "a kvm_vcpu_map mapping of a struct page holds its reference from map to unmap",
        ),
        Property(
            NOTIFIER_BALANCED,
            "I10",
            "invalidate_range_start/end balanced, mmu_notifier_count back to 0 (never < 0) "
            "and seq bumped at every end",
        ),
        Property(
            READONLY_RESPECTED,
            "I11",
            "no writable SPTE maps an hva the host maps read-only (bd2fae8da794, v5.12: "
            "hva_to_pfn_remapped takes pte_write from follow_pte, RO_FAULT on a write)",
        ),
        Property(
            SECONDARY_COHERENT,
            "I12",
            "a mapping KVM keeps without a page reference (a PfnCache: gfn_to_pfn_cache, the "
            "VMCS APIC-access address) is zapped or refreshed by every invalidation of its "
            "hva: once that is over, a valid one maps what the host maps, and no use "
            "through one reads a pfn the host no longer maps there",
        ),
        Property(
            NO_ROOT_AFTER_FREE,
            "I13",
            "no TDP MMU walk touches a root after its last reference was put and it was "
            "freed: a walk that yields mmu_lock holds a root reference (kvm_tdp_mmu_get_root, "
            "7533377215b6, v5.16); reported as the use-after-free of the root",
        ),
    )
}

#: the ids above: the properties of the kernel models
BUILTIN = frozenset(PROPERTIES)


def define_property(id: str, meaning: str, invariant: str = "user") -> str:
    """Register a property of your own and return its id (for ``Check(..., prop=id)``).

    A finding whose ``prop`` is a registered id is a verdict (``check``, ``matrix``,
    ``diff`` report it under that id); any other finding is a model error. Defining the
    same id again with the same meaning is a no-op; with another meaning, ValueError.
    """
    if not id or not isinstance(id, str) or any(c.isspace() for c in id):
        raise ValueError(f"property id {id!r} must be a non-empty word, e.g. 'cache-valid'")
    old = PROPERTIES.get(id)
    if old is not None:
        if old.meaning == meaning and old.invariant == invariant:
            return id
        raise ValueError(f"property {id!r} is defined twice (with another meaning)")
    PROPERTIES[id] = Property(id, invariant, meaning)
    return id


__all__ = [
    "AD_ONLY_TRACKED",
    "BUILTIN",
    "HUGE_ONLY_THP",
    "NOTIFIER_BALANCED",
    "NO_METADATA_AFTER_TEARDOWN",
    "NO_PUT_UNREFERENCED",
    "NO_ROOT_AFTER_FREE",
    "NO_SPTE_TO_FREED",
    "NO_STALE_SPTE",
    "PIN_HELD",
    "PROPERTIES",
    "READONLY_RESPECTED",
    "REFS_BALANCED",
    "SECONDARY_COHERENT",
    "TEARDOWN_TERMINATES",
    "Property",
    "define_property",
]

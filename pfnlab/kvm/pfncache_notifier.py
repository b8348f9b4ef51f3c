"""virt/kvm/kvm_main.c v5.17-v6.0: the MMU notifier callbacks that invalidate the
``gfn_to_pfn_cache``\\ s, as overrides of the v5.4 base's.

From v5.13 (52ac8b358b0c "KVM: Block memslot updates across range_start() and
range_end()") ``invalidate_range_start`` raises ``kvm->mn_active_invalidate_count`` first
and ``invalidate_range_end`` lowers it last, after ``mmu_notifier_seq`` moved on; from
v5.17 ``invalidate_range_start`` calls ``gfn_to_pfn_cache_invalidate_start`` between the
two, *before* ``mmu_notifier_count`` is raised (why v6.0's ``mmu_notifier_retry_cache``
reads the active count). A model of a v5.17+ cache passes :data:`PFNCACHE_NOTIFIER` to
``variant(..., overrides=...)``; the base model (v5.4) has no caches to invalidate.
"""

from __future__ import annotations

from collections.abc import Callable

from pfnlab.explore import atomic
from pfnlab.kvm.kvm import Kvm
from pfnlab.kvm.notifier import (
    kvm_mmu_notifier_invalidate_range_end,
    kvm_mmu_notifier_invalidate_range_start,
)
from pfnlab.kvm.pfncache import gfn_to_pfn_cache_invalidate_start


def invalidate_range_start_v5_17(kvm: Kvm, start: int, end: int) -> None:
    """virt/kvm/kvm_main.c v5.17 kvm_mmu_notifier_invalidate_range_start:
    ``mn_active_invalidate_count++``, invalidate the pfn caches, then v5.4's count++ and
    zap (the base)."""
    atomic(kvm, "mn_active_invalidate_count", lambda c: (c + 1, None))
    gfn_to_pfn_cache_invalidate_start(kvm, start, end)
    kvm_mmu_notifier_invalidate_range_start.base(  # type: ignore[attr-defined]
        kvm, start, end)


def invalidate_range_end_v5_17(kvm: Kvm, start: int, end: int) -> None:
    """virt/kvm/kvm_main.c v5.17 kvm_mmu_notifier_invalidate_range_end: v5.4's seq++ and
    count-- (the base), then ``mn_active_invalidate_count--``."""
    kvm_mmu_notifier_invalidate_range_end.base(  # type: ignore[attr-defined]
        kvm, start, end)
    atomic(kvm, "mn_active_invalidate_count", lambda c: (c - 1, None))


#: the overrides of a v5.17+ notifier, by kernel name: ``variant(name, parent,
#: {**PFNCACHE_NOTIFIER, ...})``
PFNCACHE_NOTIFIER: dict[str, Callable[[Kvm, int, int], None]] = {
    "kvm_mmu_notifier_invalidate_range_start": invalidate_range_start_v5_17,
    "kvm_mmu_notifier_invalidate_range_end": invalidate_range_end_v5_17,
}

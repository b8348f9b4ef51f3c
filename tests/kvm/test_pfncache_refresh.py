"""Issue 29: the kernel's gfn_to_pfn_cache (v5.17 and v6.0 refreshes, check, unmap,
deactivate, the v5.17+ notifier), run step by step outside the search."""

from __future__ import annotations

from pfnlab import PfnCache
from pfnlab.kvm import (
    PFNCACHE_NOTIFIER,
    check_secondary_coherent,
    gfn_to_pfn_cache,
    gfn_to_pfn_cache_invalidate_start,
    kvm_gfn_to_pfn_cache_check,
    kvm_gfn_to_pfn_cache_refresh,
    kvm_gfn_to_pfn_cache_unmap,
    kvm_gpc_activate,
    kvm_gpc_check,
    kvm_gpc_deactivate,
    kvm_gpc_refresh,
    mmu_notifier_retry_cache,
    touch_gpc,
)
from pfnlab.kvm.hva import EFAULT
from pfnlab.kvm.pfncache_refresh import EINVAL
from pfnlab.mm import zap_page_range


def test_v6_0_refresh_publishes_the_pfn_and_keeps_no_reference(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = gfn_to_pfn_cache(s.kvm, "gpc", 0)
    assert gpc_refs(s) == 1                     # the host PTE's
    assert kvm_gpc_refresh(gpc, 0) == -EINVAL   # not active yet
    assert kvm_gpc_activate(gpc, 0) == 0
    assert (gpc.active, gpc.valid, gpc.gpa, gpc.uhva) == (True, True, 0, s.region.start)
    assert gpc.pfn == gpc.khva == s.region.pfn
    assert gpc_refs(s) == 1                     # the lookup's reference was put
    assert kvm_gpc_check(gpc, 0) and not kvm_gpc_check(gpc, 1)
    # invalidated: the check fails until a refresh looks the page up again
    gfn_to_pfn_cache_invalidate_start(s.kvm, s.region.start, s.region.start + 1)
    assert not gpc.valid and not kvm_gpc_check(gpc, 0)
    assert kvm_gpc_refresh(gpc, 0) == 0 and kvm_gpc_check(gpc, 0) and gpc_refs(s) == 1
    kvm_gpc_deactivate(gpc)
    assert (gpc.active, gpc.valid, gpc.pfn, gpc.khva) == (False, False, None, None)
    assert gpc.uhva == s.region.start and not kvm_gpc_check(gpc, 0)
    assert kvm_gpc_refresh(gpc, 0) == -EINVAL


def test_v6_0_refresh_of_a_zapped_page_or_a_gpa_in_no_memslot_fails(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = PfnCache(s.kvm, "gpc", 0)
    zap_page_range(s.region.vma, s.region.start, s.region.end)
    assert kvm_gpc_activate(gpc, 0) == -EFAULT
    assert (gpc.valid, gpc.pfn) == (False, None)
    assert kvm_gpc_refresh(gpc, 7) == -EFAULT and gpc.uhva is None


def test_mmu_notifier_retry_cache_counts_active_invalidations_and_the_sequence(setup) -> None:  # type: ignore[no-untyped-def]
    kvm = setup("v5.4", "anon").kvm
    assert not mmu_notifier_retry_cache(kvm, 0)
    kvm.mn_active_invalidate_count = 1          # before mmu_notifier_count is raised
    assert kvm.mmu_notifier_count == 0 and mmu_notifier_retry_cache(kvm, 0)
    kvm.mn_active_invalidate_count = 0
    kvm.mmu_notifier_seq = 1                    # one ended since the snapshot
    assert mmu_notifier_retry_cache(kvm, 0) and not mmu_notifier_retry_cache(kvm, 1)


def test_the_v5_17_notifier_invalidates_caches_inside_the_active_count(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = PfnCache(s.kvm, "gpc", 0)
    gpc.active = True
    assert kvm_gpc_refresh(gpc, 0) == 0
    hva = s.region.start
    PFNCACHE_NOTIFIER["kvm_mmu_notifier_invalidate_range_start"](s.kvm, hva, hva + 1)
    assert not gpc.valid
    assert (s.kvm.mn_active_invalidate_count, s.kvm.mmu_notifier_count) == (1, 1)
    PFNCACHE_NOTIFIER["kvm_mmu_notifier_invalidate_range_end"](s.kvm, hva, hva + 1)
    assert (s.kvm.mn_active_invalidate_count, s.kvm.mmu_notifier_count,
            s.kvm.mmu_notifier_seq) == (0, 0, 1)


def test_v5_17_invalidation_skips_the_refresh_placeholder(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = PfnCache(s.kvm, "gpc", 0)
    gpc.gpa, gpc.uhva = 0, s.region.start
    gpc.valid, gpc.pfn = True, None             # "hva is valid but not yet mapped"
    gfn_to_pfn_cache_invalidate_start(s.kvm, s.region.start, s.region.end)
    assert gpc.valid and kvm_gfn_to_pfn_cache_check(s.kvm, gpc, 0)
    assert check_secondary_coherent(s.kvm) is None  # a placeholder maps nothing


def test_v5_17_keeps_a_reference_and_leaks_one_on_a_refresh_to_the_same_pfn(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = PfnCache(s.kvm, "gpc", 0)
    assert kvm_gfn_to_pfn_cache_refresh(s.kvm, gpc, 0) == 0
    assert gpc.valid and gpc.pfn == s.region.pfn and gpc_refs(s) == 2  # the cache's
    assert kvm_gfn_to_pfn_cache_refresh(s.kvm, gpc, 0) == 0 and gpc_refs(s) == 2  # valid
    # an invalidation that does not move the page, then a refresh: the same pfn again
    gfn_to_pfn_cache_invalidate_start(s.kvm, s.region.start, s.region.end)
    assert kvm_gfn_to_pfn_cache_refresh(s.kvm, gpc, 0) == 0 and gpc.pfn == s.region.pfn
    assert gpc_refs(s) == 3                     # two held for one cached pfn
    kvm_gfn_to_pfn_cache_unmap(s.kvm, gpc)
    assert (gpc.valid, gpc.pfn) == (False, None) and gpc_refs(s) == 2  # one leaked


def test_a_use_after_invalidation_is_an_i12_violation(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = PfnCache(s.kvm, "gpc", 0)
    gpc.active = True
    assert kvm_gpc_refresh(gpc, 0) == 0
    touch_gpc(gpc)
    assert gpc.stale_use is None and check_secondary_coherent(s.kvm) is None
    zap_page_range(s.region.vma, s.region.start, s.region.end)  # nobody invalidates it
    touch_gpc(gpc)
    assert check_secondary_coherent(s.kvm) == (
        f"gpc was used with pfn {s.region.pfn:#x} after its invalidation: the host maps "
        f"nothing at hva {s.region.start:#x}")


def gpc_refs(s) -> int:  # type: ignore[no-untyped-def]
    """The refcount of the region's page."""
    return int(s.page().refcount)

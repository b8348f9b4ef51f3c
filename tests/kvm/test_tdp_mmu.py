"""The TDP MMU (pfnlab.kvm.mmu_page, tdp_iter, tdp_zap, tdp_mmu), outside executions, and
the freed-root use after free inside one."""

from __future__ import annotations

import pytest

from pfnlab import variant
from pfnlab.api import registries_restored
from pfnlab.explore import Check, Ghost, Instance, Program, Shared, is_freed, set_context
from pfnlab.explore.search import explore
from pfnlab.kvm import (
    RET_PF_FIXED,
    KvmGfnRange,
    Memslot,
    SpteVal,
    TdpIter,
    create_vm,
    for_each_tdp_mmu_root,
    for_each_tdp_mmu_root_yield_safe,
    ghost,
    kvm_mmu_init_tdp_mmu,
    kvm_mmu_load,
    kvm_mmu_unload,
    kvm_tdp_mmu_get_root,
    kvm_tdp_mmu_get_vcpu_root_hpa,
    kvm_tdp_mmu_map,
    kvm_tdp_mmu_put_root,
    kvm_tdp_mmu_unmap_gfn_range,
    kvm_tdp_mmu_zap_all,
    tdp_iter_next,
    tdp_iter_start,
    tdp_mmu_iter_cond_resched,
    tdp_mmu_next_root,
    vcpu_fault,
    zap_gfn_range,
)
from pfnlab.mm import Host
from pfnlab.properties import NO_ROOT_AFTER_FREE
from pfnlab.variants import get_variant


def tdp(setup, n=2, roots=1):
    s = setup("v5.4", "anon", n)
    kvm_mmu_init_tdp_mmu(s.kvm, s.vcpus, roots=roots)
    return s


def walk(root, start=0):
    it = TdpIter(root)
    tdp_iter_start(it, root, 1, start)
    seen = []
    while it.valid:
        seen.append((it.level, it.gfn))
        tdp_iter_next(it)
    return seen


def test_the_walk_is_pre_order_block_by_block(setup):
    s = tdp(setup, n=4)
    root = kvm_tdp_mmu_get_vcpu_root_hpa(s.vcpus[0])
    assert s.kvm.hpage_pages == 2 and root.root_level == 2
    assert walk(root) == [(2, 0), (1, 0), (1, 1), (2, 2), (1, 2), (1, 3)]
    assert walk(root, 3) == [(2, 2), (1, 3)]


def test_a_yield_restarts_the_walk_from_the_root_where_it_was(setup):
    s = tdp(setup, n=4)
    kvm = s.kvm
    root = kvm_tdp_mmu_get_vcpu_root_hpa(s.vcpus[0])
    it = TdpIter(root)
    tdp_iter_start(it, root, 1, 0)
    assert not tdp_mmu_iter_cond_resched(kvm, it, False)  # no progress yet
    while (it.level, it.gfn) != (1, 3):
        tdp_iter_next(it)
    assert tdp_mmu_iter_cond_resched(kvm, it, False) and it.yielded
    tdp_iter_next(it)  # 3a0f64de479c: restart, do not advance
    assert (it.level, it.gfn, it.yielded, it.yielded_gfn) == (2, 2, False, 3)
    tdp_iter_next(it)
    assert (it.level, it.gfn) == (1, 3)
    assert not tdp_mmu_iter_cond_resched(kvm, it, False)  # no progress since the restart


def test_roots_are_shared_counted_and_freed_by_the_last_put(setup):
    s = tdp(setup)
    kvm, vcpu = s.kvm, s.vcpus[0]
    root = kvm_tdp_mmu_get_vcpu_root_hpa(vcpu)
    assert kvm_tdp_mmu_get_vcpu_root_hpa(vcpu) is root  # an existing root is reused
    assert root.tdp_mmu_root_count == 2 and kvm.tdp_mmu.tdp_mmu_roots is root
    root.table[root.index[(1, 1)]].spte = SpteVal(s.region.pfn + 1, True, True, True)
    kvm_tdp_mmu_put_root(kvm, root)
    assert not is_freed(root) and root.tdp_mmu_root_count == 1
    kvm_tdp_mmu_put_root(kvm, root)
    assert is_freed(root) and kvm.tdp_mmu.tdp_mmu_roots is None
    assert all(sp.spte is None for sp in root.table)  # zapped before the free
    assert root.__dict__["_freed"][0] == NO_ROOT_AFTER_FREE
    assert not kvm_tdp_mmu_get_root(kvm, root)  # count 0: no new reference


def test_the_yield_safe_iterator_holds_each_root_while_its_body_runs(setup):
    s = tdp(setup, roots=2)
    kvm = s.kvm
    a = kvm_tdp_mmu_get_vcpu_root_hpa(s.vcpus[0])
    # a second root (another role in the kernel): allocate by hand from the pool
    b = kvm.tdp_mmu.cache[1]
    b.spt, b.tdp_mmu_root_count, b.link = b.table, 1, a
    kvm.tdp_mmu.tdp_mmu_roots = b
    counts = [(r.name, r.tdp_mmu_root_count) for r in for_each_tdp_mmu_root_yield_safe(kvm)]
    assert counts == [(b.name, 2), (a.name, 2)]
    assert (a.tdp_mmu_root_count, b.tdp_mmu_root_count) == (1, 1)
    assert tdp_mmu_next_root(kvm, None) is b and b.tdp_mmu_root_count == 2
    kvm_tdp_mmu_put_root(kvm, a)  # the vCPU's put: the iterator keeps b; a is freed
    assert is_freed(a) and tdp_mmu_next_root(kvm, b) is None and b.tdp_mmu_root_count == 1


def test_the_pool_of_root_pages_says_how_to_get_more(setup):
    s = tdp(setup, roots=1)
    kvm_tdp_mmu_put_root(s.kvm, kvm_tdp_mmu_get_vcpu_root_hpa(s.vcpus[0]))
    with pytest.raises(RuntimeError, match=r"roots=2"):
        kvm_tdp_mmu_get_vcpu_root_hpa(s.vcpus[0])
    with pytest.raises(ValueError, match="already called"):
        kvm_mmu_init_tdp_mmu(s.kvm, s.vcpus)


def test_a_fault_maps_through_the_vcpus_root_and_the_checks_read_it(setup):
    s = tdp(setup)
    kvm, vcpu = s.kvm, s.vcpus[0]
    assert kvm_mmu_load(vcpu) == 0
    root = kvm.tdp_mmu.vcpu_mmu[vcpu.name].root_hpa
    with registries_restored():
        v = variant("tdp-map-test", "v5.4", {"__direct_map": kvm_tdp_mmu_map})
        set_context(v.world(host=s.host, kvm=kvm))
        assert vcpu_fault(vcpu, 1, True) == RET_PF_FIXED
    set_context(s.variant.world(host=s.host, kvm=kvm))
    leaf = root.table[root.index[(1, 1)]]
    assert leaf.spte is not None and leaf.spte.pfn == s.region.pfn + 1
    assert leaf in kvm.all_sptes() and all(sp.spte is None for sp in kvm.sptes.values())
    assert ghost.check_no_stale_spte(kvm) is None
    assert ghost.check_refs_balanced(kvm) is None


def test_mapping_4k_under_a_huge_spte_zaps_it_first(setup):
    s = tdp(setup)
    kvm, vcpu = s.kvm, s.vcpus[0]
    kvm_mmu_load(vcpu)
    root = kvm.tdp_mmu.vcpu_mmu[vcpu.name].root_hpa
    huge = root.table[root.index[(2, 0)]]
    huge.spte = SpteVal(s.region.pfn, False, False, False)
    slot = kvm.memslots[0]
    assert kvm_tdp_mmu_map(vcpu, slot, 1, False, False, 1, s.region.pfn + 1) == RET_PF_FIXED
    assert huge.spte is None
    assert root.table[root.index[(1, 1)]].spte == SpteVal(s.region.pfn + 1, False, True, False)


def test_zap_gfn_range_zaps_the_range_and_propagates_dirty(setup):
    s = tdp(setup, n=4)
    kvm = s.kvm
    root = kvm_tdp_mmu_get_vcpu_root_hpa(s.vcpus[0])
    for g in range(4):
        root.table[root.index[(1, g)]].spte = SpteVal(s.region.pfn + g, True, True, True)
    s.page(1).dirty = False
    assert zap_gfn_range(kvm, root, 1, 3, False, False)
    assert [root.table[root.index[(1, g)]].spte is None for g in range(4)] == [
        False, True, True, False]
    assert s.page(1).dirty  # the zapped SPTE's dirty bit went to the page
    flush = kvm_tdp_mmu_unmap_gfn_range(kvm, KvmGfnRange(kvm.memslots[0], 0, 4, True), False)
    # it yielded before gfn 3 (progress made) and zapped it after: a flush is pending
    assert not any(sp.spte for sp in root.table) and flush
    for g in (0, 3):
        root.table[root.index[(1, g)]].spte = SpteVal(s.region.pfn + g, False, True, False)
    kvm.mmu_lock.acquire()  # kvm_mmu_zap_all holds it
    kvm_tdp_mmu_zap_all(kvm)
    kvm.mmu_lock.release()
    assert not any(sp.spte for sp in root.table)
    assert root.tdp_mmu_root_count == 1  # the iterator put back what it took


def test_unloading_the_last_vcpu_frees_its_root(setup):
    s = tdp(setup)
    vcpu = s.vcpus[0]
    kvm_mmu_load(vcpu)
    root = s.kvm.tdp_mmu.vcpu_mmu[vcpu.name].root_hpa
    kvm_mmu_unload(vcpu)
    assert is_freed(root) and s.kvm.tdp_mmu.vcpu_mmu[vcpu.name].root_hpa is None
    kvm_mmu_unload(vcpu)  # nothing loaded: nothing to put
    with pytest.raises(RuntimeError, match=r"call kvm_mmu_load\(vcpu\)"):
        kvm_tdp_mmu_map(vcpu, s.kvm.memslots[0], 0, False, False, 1, s.region.pfn)


@pytest.mark.parametrize("safe", [False, True], ids=["no-reference", "yield-safe"])
def test_a_walk_resuming_on_a_freed_root_is_a_use_after_free(setup, safe):
    """The engine, not a verdict in the model: a walk with no root reference yields, the
    root's last reference is put meanwhile, and the restart touches the freed root; the
    walk that holds a reference across the yield puts the last one itself."""

    class Seen(Shared):
        walked = Ghost(False)  # vcpu0's put left the root to a walker holding it

    def build():
        host = Host()
        ram = host.add_anon(2, name="ram")
        kvm, vcpus = create_vm(host.mm, [Memslot(0, 0, 2, ram.start)],
                               hpage_pages=host.pmd_pages, host=host)
        set_context(get_variant("v5.4").world(host=host, kvm=kvm))
        kvm_mmu_init_tdp_mmu(kvm, vcpus)
        seen = Seen("seen")

        def walker():
            kvm.mmu_lock.acquire()
            roots = for_each_tdp_mmu_root_yield_safe if safe else for_each_tdp_mmu_root
            for root in roots(kvm):
                zap_gfn_range(kvm, root, 0, 2, True, False)
            kvm.mmu_lock.release()

        def vcpu0():
            kvm_mmu_load(vcpus[0])
            root = kvm.tdp_mmu.vcpu_mmu["vcpu0"].root_hpa
            kvm_mmu_unload(vcpus[0])
            if not is_freed(root):
                seen.walked = True

        return Instance(threads={"walker": walker, "vcpu0": vcpu0},
                        goals=[Check("put-during-walk", lambda: seen.walked, stable=True)])

    res = explore(Program(f"tdp-freed-root-{safe}", build), stop_first=not safe,
                  minimal=False)
    if safe:
        assert not res.findings, res.findings[0].message
        assert res.goals_reached == ["put-during-walk"]
        return
    f = res.findings[0]
    assert (f.kind, f.prop) == ("use-after-free", NO_ROOT_AFTER_FREE), f.message
    assert "walker read kvm.root0.spt after it was freed" in f.message

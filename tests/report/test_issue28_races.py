"""Issue 28, the causal core of a notifier race, on a model of the shape the issue
describes: a TDP fault that resolves its pfn and installs the SPTE with no
mmu_notifier_retry(), against MADV_DONTNEED. The lookup ran before the PTE changed, and a
refcount pair (gup's get against the zap's last put) decides the finding too; the pair a
fix orders is the lookup against the PTE change, refreshed from the invalidation. A stale
SPTE installed while the invalidation runs is decided by two critical sections under
kvm->mmu_lock: the invalidation's raised mmu_notifier_count, which the fault never reads,
is how the kernel orders them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from pfnlab import api
from tests.report.test_json_facts import _json

NO_RETRY = textwrap.dedent('''\
    """A TDP fault that resolves the pfn and installs the spte without mmu_notifier_retry."""
    from pfnlab import Host, goal_overlap, instance, scenario, variant, vcpu_faults, vm_on
    from pfnlab.kvm import (
        RET_PF_EMULATE, RET_PF_ERROR, __direct_map, gfn_to_memslot, is_error_pfn,
        kvm_release_pfn_clean, mapping_level, transparent_hugepage_adjust, try_async_pf,
    )
    from pfnlab.mm import zap_page_range


    @scenario("fault-vs-dontneed", sizes={"faults": 1},
              properties=["refs-balanced", "no-stale-spte", "no-spte-to-freed"],
              goals=["fault-overlaps-invalidation"])
    def build(variant, sz):
        """a vCPU faults on anonymous memory while the host zaps it (MADV_DONTNEED)"""
        host = Host()
        ram = host.add_anon(1, name="ram")
        s = vm_on(host, [ram], 1)

        def zap():
            zap_page_range(ram.vma, ram.start, ram.end)

        threads = {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])}
        return instance(s, threads, ["refs-balanced", "no-stale-spte", "no-spte-to-freed"],
                        [goal_overlap(s)])


    def tdp_page_fault_noretry(vcpu, gfn, write):
        """tdp_page_fault without the mmu_notifier_seq snapshot and retry check."""
        kvm = vcpu.kvm
        slot = gfn_to_memslot(kvm.memslots, gfn)
        level, force_pt_level = mapping_level(vcpu, slot, gfn)
        if not force_pt_level:
            gfn &= ~(kvm.pages_per_hpage(level) - 1)
        pfn, map_writable = try_async_pf(vcpu, slot, gfn, write)
        if is_error_pfn(pfn):
            return RET_PF_ERROR
        if slot is None:
            return RET_PF_EMULATE
        kvm.mmu_lock.acquire()
        if not force_pt_level:
            pfn, level = transparent_hugepage_adjust(vcpu, slot, gfn, pfn, level)
        r = __direct_map(vcpu, slot, gfn, write, map_writable, level, pfn)
        kvm.mmu_lock.release()
        kvm_release_pfn_clean(pfn)
        return r


    variant("no-retry", parent="v5.4", overrides={"tdp_page_fault": tdp_page_fault_noretry},
            summary="the fault installs without mmu_notifier_retry")
''')


STALE_CORE = """\
causal core: the finding needs zap's kvm_mmu_notifier_invalidate_range_start:
  unlock(kvm.mmu_lock) (step 5) before vcpu0's tdp_page_fault:
  unlock(kvm.mmu_lock) (step 16); run the other way round, the execution ends
  without a finding, and nothing orders them. zap holds kvm.mmu_lock at step 5,
  vcpu0 holds kvm.mmu_lock at step 16: both hold kvm.mmu_lock, and zap's
  critical section changed kvm.mmu_notifier_count 0 -> 1 (step 3), which vcpu0's
  never reads: the kernel orders these with mmu_notifier_retry(): the fault
  reads kvm->mmu_notifier_seq before it resolves the pfn and, under
  kvm->mmu_lock, calls mmu_notifier_retry() before it installs the spte; an
  invalidation that ran in between (mmu_notifier_count raised, or the sequence
  moved on) makes it drop the pfn and retry the fault, so the spte is refreshed
  from the invalidation rather than serialised with it by a lock
  (arch/x86/kvm/mmu.c (tdp_page_fault) and include/linux/kvm_host.h
  (mmu_notifier_retry), v5.4; mmu_invalidate_retry() in later kernels).
"""

FREED_CORE = """\
causal core: the finding needs vcpu0's __get_user_pages_fast(mm, 0x10, True) in
  hva_to_pfn_fast (step 11) before zap's unmap_page_range: pte:mm@0x10.val pfn
  0x103 -> None (step 22); run the other way round, the execution ends without a
  finding, and nothing orders them. vcpu0 holds no lock at step 11, zap holds
  mm.ptl at step 22: the kernel orders these with the MMU notifier
  (invalidate_range_start/end, then mmu_notifier_retry()): a lookup outside the
  page-table lock is not serialised with the PTE change; the secondary MMU reads
  the notifier sequence before its lookup and re-checks it under its own lock
  before it publishes, retrying if an invalidation ran: the mapping is refreshed
  from the invalidation (include/linux/mmu_notifier.h, virt/kvm/kvm_main.c,
  v5.4; mmu_notifier_retry_cache() in virt/kvm/pfncache.c from v6.0).
"""


def _paragraphs(text: str) -> list[str]:
    return [p + "\n" for p in text.split("\n\n")]


def test_a_lookup_before_the_pte_change_is_the_pair_a_fix_orders(
        model_file: Callable[..., Path]) -> None:
    """The use after free is decided by gup's reference against the zap's last put too
    (the nearest pair, which the kernel orders by no primitive of its own for an ordinary
    page): the core names the lookup against the PTE change instead, and the MMU
    notifier, not a lock or a wait."""
    model_file(NO_RETRY, "noretry.py")
    res = api.check("no-retry", "fault-vs-dontneed")
    assert res.violated == ["no-stale-spte", "no-spte-to-freed"]
    paras = _paragraphs(res.report())
    assert STALE_CORE in paras and FREED_CORE in paras
    text = " ".join(res.report().split())
    assert "a lock around" not in text and "waiting for" not in text
    # the lookup is a deciding row: shown though it only reads
    assert (" 11                                          __get_user_pages_fast(mm, 0x10,"
            in res.report().splitlines())


def test_the_json_names_the_pair_and_the_field_the_fix_reads(
        model_file: Callable[..., Path]) -> None:
    path = model_file(NO_RETRY, "noretry.py")
    stale, freed = _json(["check", str(path), "no-retry", "fault-vs-dontneed"])["findings"]
    first, second = stale["causal"]["deciding_pair"]
    assert (first["thread"], first["action"], first["object"]) == ("zap", "unlock",
                                                                   "kvm.mmu_lock")
    assert (second["thread"], second["step"]) == ("vcpu0", 16)
    order = stale["causal"]["suggested_ordering"]
    assert order["common_locks"] == ["kvm.mmu_lock"]
    assert order["kernel_primitive"]["primitive"] == "mmu_notifier_retry()"
    assert order["via"] == {"step": 3, "thread": "zap", "object": "kvm",
                            "field": "mmu_notifier_count"}
    first, second = freed["causal"]["deciding_pair"]
    assert (first["thread"], first["function"], first["object"], first["action"]) == (
        "vcpu0", "gup_pte_range", "pte:mm@0x10", "read")
    assert (second["thread"], second["function"], second["action"]) == (
        "zap", "unmap_page_range", "write")
    order = freed["causal"]["suggested_ordering"]
    assert order["kernel_primitive"]["primitive"].startswith("the MMU notifier")
    assert order["via"] is None and order["options"] == [
        f"{order['kernel_primitive']['primitive']}: {order['kernel_primitive']['how']}"]
    assert freed["culprit"]["kind"] == "race" and freed["culprit"]["step"] == 22

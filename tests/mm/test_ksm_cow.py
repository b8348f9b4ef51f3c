"""Issue 11: KSM merging (a PTE changed to another page under the notifiers, refused while
the page is pinned) and copy-on-write (do_wp_page: the zero page and KSM pages are copied,
a private anonymous page is reused), alone and racing a vCPU fault."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pfnlab
from pfnlab.api import registries_restored
from pfnlab.mm import (
    ALLOC,
    KSM,
    MAPPING,
    Host,
    get_page,
    handle_mm_fault,
    ksm_merge_thread,
    mmu_notifier_register,
    pfn_to_page,
    put_page,
    zap_page_range,
)
from pfnlab.mm.vma import PteVal
from tests.mm.test_notifier import Recorder


def test_a_merge_maps_the_ksm_page_read_only_and_frees_the_page(host: Host) -> None:
    ram = host.add_anon(1, refault=1)
    (kpage,) = host.add_ksm(1).pages
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    old = pfn_to_page(ram.pfn)
    assert ksm_merge_thread(host.mm, ram.start, kpage) == 0
    # two brackets: write_protect_page, then replace_page
    assert [c[0] for c in rec.calls] == ["start", "end", "start", "end"]
    assert host.mm.ptes[ram.start].val == PteVal(kpage.pfn, write=False)
    assert (old.refcount, old.owners) == (0, ())
    assert (kpage.refcount, dict(kpage.owners)) == (2, {KSM: 1, MAPPING: 1})
    # a write copies the KSM page into a page of the VMA's pool
    kpage.data = 5
    assert handle_mm_fault(ram.vma, ram.start, True)
    new = ram.pool.pages[0] if ram.pool else None
    assert new is not None and host.mm.ptes[ram.start].val == PteVal(new.pfn, write=True)
    assert (new.data, new.refcount, new.owners) == (5, 1, ((MAPPING, 1),))
    assert (kpage.refcount, kpage.owners) == (1, ((KSM, 1),))


def test_a_pinned_page_is_not_merged(host: Host) -> None:
    ram = host.add_anon(1)
    (kpage,) = host.add_ksm(1).pages
    old = pfn_to_page(ram.pfn)
    get_page(old, "vcpu0:fault")  # gup's reference until KVM's release
    assert ksm_merge_thread(host.mm, ram.start, kpage) == -14  # -EFAULT: skipped
    assert host.mm.ptes[ram.start].val == PteVal(old.pfn, write=True)  # as it was
    assert dict(old.owners) == {MAPPING: 1, "vcpu0:fault": 1}
    put_page(old, "vcpu0:fault")
    old.data = 1
    assert ksm_merge_thread(host.mm, ram.start, kpage) == -14  # not identical
    assert host.mm.ptes[ram.start].val == PteVal(old.pfn, write=False)  # write-protected
    # write_protect_page checks the count only when it write-protects: a PTE already
    # read-only is merged whoever holds the page (mm/ksm.c v5.4)
    old.data = 0
    get_page(old, "vcpu0:fault")
    assert ksm_merge_thread(host.mm, ram.start, kpage) == 0
    assert host.mm.ptes[ram.start].val == PteVal(kpage.pfn, write=False)
    assert (old.refcount, old.owners) == (1, (("vcpu0:fault", 1),))


def test_a_write_on_the_zero_page_copies_it_and_a_private_page_is_reused(host: Host) -> None:
    ram = host.add_anon(1, refault=1)
    zap_page_range(ram.vma, ram.start, ram.end)  # MADV_DONTNEED
    assert handle_mm_fault(ram.vma, ram.start, False)  # a read maps the zero page
    assert host.mm.ptes[ram.start].val == PteVal(host.zero_pfn, write=False, special=True)
    assert handle_mm_fault(ram.vma, ram.start, True)  # the write copies it
    new = ram.pool.pages[0] if ram.pool else None
    assert new is not None and host.mm.ptes[ram.start].val == PteVal(new.pfn, write=True)
    assert (new.data, new.owners) == (0, ((MAPPING, 1),)) and ALLOC not in dict(new.owners)
    # write-protected but mapped only here: v5.4 reuses it (wp_page_reuse)
    host.mm.ptes[ram.start].val = PteVal(new.pfn, write=False)
    assert handle_mm_fault(ram.vma, ram.start, True)
    assert host.mm.ptes[ram.start].val == PteVal(new.pfn, write=True)


MODEL = textwrap.dedent('''\
    from pfnlab import Check, Ghost, Host, Shared, instance, scenario, variant, vcpu_faults
    from pfnlab import vm_on
    from pfnlab.mm import KSM, MAPPING, PteVal, ksm_merge_thread


    class Outcome(Shared):
        rc = Ghost(None)


    @scenario("fault-vs-ksm", sizes={"faults": 1},
              properties=["refs-balanced", "no-put-unreferenced", "no-stale-spte",
                          "no-spte-to-freed", "notifier-balanced"],
              goals=["merged", "merge-refused"])
    def build(variant, sz):
        """a vCPU write-faults on anonymous memory while ksmd merges its page"""
        host = Host()
        ram = host.add_anon(1, name="ram", refault=1)
        (kpage,) = host.add_ksm(1).pages
        s = vm_on(host, [ram], 1)
        out = Outcome("ksmd")

        def ksmd():
            out.rc = ksm_merge_thread(host.mm, ram.start, kpage)

        goals = [Check("merged", lambda: out.rc == 0, stable=True),
                 Check("merge-refused", lambda: out.rc is not None and out.rc < 0,
                       stable=True)]
        return instance(s, {"ksmd": ksmd, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])},
                        ["refs-balanced", "no-put-unreferenced", "no-stale-spte",
                         "no-spte-to-freed", "notifier-balanced"], goals)


    @scenario("write-after-merge", properties=["no-stale-spte", "refs-balanced"],
              goals=["copied"])
    def build_cow(variant, sz):
        """a vCPU write-faults on a page ksmd merged before: its gup copies it"""
        host = Host()
        ram = host.add_anon(1, name="ram", refault=1)
        (kpage,) = host.add_ksm(1).pages
        s = vm_on(host, [ram], 1)
        # set-up: what a merge leaves (pfnlab.mm.ksm), the old page back in the allocator
        old = ram.pages[0]
        host.mm.pte(ram.start).val = PteVal(kpage.pfn, write=False)
        old.refcount, old.owners = 0, ()
        kpage.refcount, kpage.owners = 2, ((KSM, 1), (MAPPING, 1))
        new = ram.pool.pages[0]
        return instance(s, {"vcpu0": vcpu_faults(s, 0, [0])},
                        ["no-stale-spte", "refs-balanced"],
                        [Check("copied", lambda: new.refcount > 0, stable=True)])


    def mmu_notifier_retry_never(kvm, mmu_seq):
        return False


    variant("ksm-no-retry", "v5.4", {"mmu_notifier_retry": mmu_notifier_retry_never})
''')


def test_a_fault_racing_a_merge(tmp_path: Path) -> None:
    """v5.4 holds with both outcomes (a fault between gup and release pins the page, and
    ksmd skips it); without mmu_notifier_retry the SPTE keeps the merged-away page."""
    path = tmp_path / "ksm.py"
    path.write_text(MODEL)
    with registries_restored():
        pfnlab.load_model(path)
        good = pfnlab.check("v5.4", "fault-vs-ksm")
        assert good.ok and good.exhaustive, good.summary()
        assert good.search.goals_reached == ["merged", "merge-refused"]
        bad = pfnlab.check("ksm-no-retry", "fault-vs-ksm")
        assert bad.violated == ["no-stale-spte"] and bad.exhaustive, bad.summary()
        # the stale pfn is the merged-away page, invalidated by ksmd after the lookup
        (f,) = [f for f in bad.search.findings if f.prop == "no-stale-spte"]
        assert f.message.startswith("kvm.spte[0x0] maps pfn 0x103 (installed by vcpu0:fault)")


def test_a_faults_own_copy_on_write_does_not_make_its_pfn_stale(tmp_path: Path) -> None:
    """The write fault's gup copies the KSM page under the notifiers, inside its own lookup
    and before the page-table read that gives its pfn: even without mmu_notifier_retry the
    SPTE maps the page the host maps (the first version of I4 counted that invalidation)."""
    path = tmp_path / "ksm.py"
    path.write_text(MODEL)
    with registries_restored():
        pfnlab.load_model(path)
        for design in ("v5.4", "ksm-no-retry"):
            res = pfnlab.check(design, "write-after-merge")
            assert res.ok and res.exhaustive and not res.goals_missed, res.summary()


class ChangeRecorder(Recorder):
    """A subscriber with ->change_pte: what set_pte_at_notify passes, and the PTE then."""

    def change_pte(self, mm: object, hva: int, val: PteVal) -> None:
        self.calls.append(("change", hva, val, self._ptes(hva, hva + 1)))


def test_remaps_call_change_pte_inside_the_bracket_before_the_pte_is_set(host: Host) -> None:
    ram = host.add_anon(1, refault=1)
    (kpage,) = host.add_ksm(1).pages
    rec = ChangeRecorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    old = PteVal(ram.pfn, write=True)
    assert ksm_merge_thread(host.mm, ram.start, kpage) == 0
    ro = PteVal(kpage.pfn, write=False)
    assert [c[0] for c in rec.calls] == ["start", "change", "end", "start", "change", "end"]
    # write_protect_page: same page, read-only, set over the cleared PTE; replace_page: kpage
    assert rec.calls[1][1:] == (ram.start, old._replace(write=False), (None,))
    assert rec.calls[4][1:] == (ram.start, ro, (None,))
    rec.calls.clear()
    assert handle_mm_fault(ram.vma, ram.start, True)  # wp_page_copy of the KSM page
    new = ram.pool.pages[0] if ram.pool else None
    assert new is not None
    assert [c[0] for c in rec.calls] == ["start", "change", "end"]
    assert rec.calls[1][1:] == (ram.start, PteVal(new.pfn, write=True), (None,))
    assert rec.calls[2][3] == (PteVal(new.pfn, write=True),)


def test_a_write_to_a_zero_page_region_copies_into_its_pool(host: Host) -> None:
    z = host.add_zero(1, refault=1)
    assert z.pool is not None and z.vma.anon_pool is z.pool
    new = z.pool.pages[0]
    assert handle_mm_fault(z.vma, z.start, True)
    assert host.mm.ptes[z.start].val == PteVal(new.pfn, write=True)
    assert (new.data, new.refcount, new.owners) == (0, 1, ((MAPPING, 1),))
    assert host.zero_page.refcount == 1  # the zero page is not the mapping's: untouched
    assert host.add_zero(1).pool is None

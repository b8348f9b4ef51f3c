"""Page migration (pfnlab/mm/migrate.py): a PTE moved to another page under the notifiers;
a pinned page stays; a fault on the migration entry waits and finds the new page; and the
example model shows a KVM design that skips mmu_notifier_retry mapping a freed page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import pfnlab
from pfnlab.api import ModelFile, registries_restored
from pfnlab.mm import (
    ALLOC,
    MAPPING,
    MIGRATE,
    Host,
    alloc_page,
    get_page,
    migrate_page_thread,
    mmu_notifier_register,
    pfn_to_page,
    put_page,
)
from pfnlab.mm.vma import MIGRATION, PteVal
from tests.mm.test_notifier import Recorder

EX = Path(__file__).resolve().parents[2] / "examples"


def test_a_migration_moves_the_contents_and_the_mapping(host: Host) -> None:
    ram = host.add_anon(1)
    pool = host.add_free(1)
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    old, new = pfn_to_page(ram.pfn), pool.pages[0]
    old.data, old.dirty = 7, True
    assert migrate_page_thread(host.mm, ram.start, pool) == 0
    # the notifiers bracket the PTE's change to a migration entry
    (s, e) = rec.calls
    assert s[0] == "start" and isinstance(s[3][0], PteVal)
    assert e[0] == "end" and e[3] == (MIGRATION,)
    assert host.mm.ptes[ram.start].val == PteVal(new.pfn, write=True)
    assert (new.data, new.dirty) == (7, True)
    assert (old.refcount, old.owners) == (0, ())            # back in the allocator
    assert (new.refcount, new.owners) == (1, ((MAPPING, 1),))


def test_a_pinned_page_is_not_migrated(host: Host) -> None:
    ram = host.add_anon(1)
    pool = host.add_free(1)
    old, new = pfn_to_page(ram.pfn), pool.pages[0]
    get_page(old, "vcpu0:fault")  # what gup leaves until KVM's release
    assert migrate_page_thread(host.mm, ram.start, pool) == -11  # -EAGAIN
    assert host.mm.ptes[ram.start].val == PteVal(old.pfn, write=True)
    assert dict(old.owners) == {MAPPING: 1, "vcpu0:fault": 1} and old.refcount == 2
    assert (new.refcount, new.owners) == (0, ())
    put_page(old, "vcpu0:fault")


def test_alloc_page_takes_free_pages_only(host: Host) -> None:
    pool = host.add_free(2)
    a, b = alloc_page(pool), alloc_page(pool)
    assert (a, b) == pool.pages and alloc_page(pool) is None
    assert a is not None and a.owners == ((ALLOC, 1),)
    assert migrate_page_thread(host.mm, 0, pool) == -14  # no mapping there: -EFAULT
    zero = host.add_zero(1)
    assert migrate_page_thread(host.mm, zero.start, pool) == -22  # special: -EINVAL
    assert MIGRATE == "migrate"


@pytest.fixture
def model() -> Iterator[ModelFile]:
    with registries_restored():
        yield pfnlab.load_model(EX / "migration.py")


def test_v54_holds_and_both_outcomes_happen(model: ModelFile) -> None:
    """A fault that meets the migration entry waits for it (migration_entry_wait), then maps
    the new page; a fault holding its gup reference makes the migration fail."""
    res = pfnlab.check("v5.4", "fault-vs-migrate")
    assert res.ok and res.exhaustive, res.summary()
    assert res.search.goals_reached == ["migrated", "migration-refused"]


def test_skipping_mmu_notifier_retry_maps_a_migrated_away_page(model: ModelFile
                                                               ) -> None:
    res = pfnlab.check("no-retry-check", "fault-vs-migrate")
    assert sorted(res.violated) == ["no-spte-to-freed", "no-stale-spte"], res.summary()
    text = res.report()
    trace = text[text.index("kvm.spte[0x0] maps pfn 0x103 but its page was freed"):]
    trace = trace[trace.index("trace ("):]
    steps = ["kvm_mmu_notifier_invalidate_range_", "hva_to_pfn_fast()", "mmu_set_spte()",
             "kvm_release_pfn_clean()", "migration", "kvm.mmu_notifier_seq 0 -> 1",
             "remove_migration_pte()", "page 0x103 ref 1 -> 0"]
    pos = [trace.find(s) for s in steps]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), (steps, pos, trace)

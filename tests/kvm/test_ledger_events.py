"""The ledger's events carry the property they violate: set where the event is recorded
(a WARN names what it guards), never looked up by function name afterwards."""

from types import SimpleNamespace

import pytest

from pfnlab.kvm import ghost
from pfnlab.kvm.ghost.events import record
from pfnlab.properties import NO_METADATA_AFTER_TEARDOWN, NO_SPTE_TO_FREED, REFS_BALANCED


def _vm() -> SimpleNamespace:
    return SimpleNamespace(ledger=ghost.KvmLedger("kvm.ledger"))


def test_a_warn_is_reported_under_the_property_its_call_site_names():
    kvm = _vm()
    record(kvm.ledger, ghost.EV_WARN + "mmu_spte_clear_track_bits", 0x104,
           "zapping an SPTE of a page with count 0", violates=NO_SPTE_TO_FREED)
    (ev,) = kvm.ledger.events
    assert ev == ghost.LedgerEvent("WARN:mmu_spte_clear_track_bits", 0x104,
                                   "zapping an SPTE of a page with count 0", "",
                                   NO_SPTE_TO_FREED)
    assert ghost.check_events(kvm, NO_METADATA_AFTER_TEARDOWN) is None
    assert ghost.check_events(kvm, NO_SPTE_TO_FREED) == (
        "WARN:mmu_spte_clear_track_bits on pfn 0x104: zapping an SPTE of a page with count 0")


def test_a_property_of_your_own_gets_its_events():
    kvm = _vm()
    record(kvm.ledger, ghost.EV_WARN + "my_gpc_refresh", 0x2, "stale khva",
           violates="gpc-coherent")
    assert ghost.check_events(kvm, "gpc-coherent") == "WARN:my_gpc_refresh on pfn 0x2: stale khva"
    assert ghost.check_no_warn(kvm) == "WARN:my_gpc_refresh on pfn 0x2: stale khva"


def test_a_leak_names_its_owner():
    kvm = _vm()
    record(kvm.ledger, ghost.EV_LEAK, 0x104, "vcpu0:fault returned still holding 1 "
           "reference(s) on pfn 0x104 (leaked)", "vcpu0:fault")
    found = ghost.check_events(kvm, REFS_BALANCED)
    assert str(found).startswith("vcpu0:fault returned still holding")
    assert found.details == {"leaked_by": "vcpu0:fault"}


def test_an_event_kind_of_your_own_must_name_its_property():
    with pytest.raises(ValueError, match="names no property: pass violates="):
        record(_vm().ledger, "my-kind", 0x1, "")

"""bd2fae8da794 (v5.12): a read-only VM_PFNMAP mapping gets no writable SPTE from v6.0 on;
before it, hva_to_pfn_remapped said every PFNMAP pfn was writable (issue 10, history)."""

from __future__ import annotations

import pytest

from pfnlab import api
from pfnlab.model.reach import recording, review
from pfnlab.scenarios import SCENARIOS
from pfnlab.variants import VARIANTS

BEFORE = ("v5.3", "sean-v1", "v5.4", "hildenbrand", "dan-early-put", "paolo-online-helper",
          "v5.6")


@pytest.mark.parametrize("design", BEFORE)
def test_before_v512_a_read_fault_maps_read_only_memory_writable(design: str) -> None:
    res = api.check(design, "ro-pfnmap")
    assert res.exhaustive and res.violated == ["readonly-respected"]
    f = res.findings[0]
    assert f.message == ("kvm.spte[0x0] maps pfn 0x103 writable, but the host maps hva 0x10 "
                         "read-only")
    # the first (read) fault installs it (a write under mmu_lock, joined to its step)
    installs = [p for st in f.trace for p in st.plain if p[2] == "spte" and p[4] is not None]
    assert len(installs) == 1 and installs[0][4].writable
    # the finding is not a leak: the trace stops before the release, and says nothing of it
    assert "leak:" not in res.report()


@pytest.mark.parametrize("design", ["v6.0", "v6.13"])
def test_from_v512_pte_write_decides_and_a_write_fault_is_refused(design: str) -> None:
    with recording() as rec:
        res = api.check(design, "ro-pfnmap")
    assert res.exhaustive and res.violated == [] and res.not_established == {}
    # the PTE was present for both faults: only the fixup branch never ran
    u = review(rec, VARIANTS[design], SCENARIOS["ro-pfnmap"])
    assert {s.callee for s in u.sites if s.function.startswith("hva_to_pfn_remapped")} == {
        "fixup_user_fault", "follow_pte"}
    # after the read fault and the refused write fault, the SPTE is read-only
    assert _final_spte(design) == (0x103, False)


def _final_spte(design: str) -> tuple[int, bool] | None:
    from pfnlab.explore.runtime import Execution
    from pfnlab.explore.search.replay import snapshot

    ex = Execution(SCENARIOS["ro-pfnmap"].program(VARIANTS[design]))
    seen = None
    while not ex.finished and ex.finding is None:
        vcpu_done = ex.threads[ex.tid_of("vcpu0")].op is None
        ex.step(ex.tid_of("admin") if vcpu_done else ex.tid_of("vcpu0"))
        val = snapshot(ex)["kvm.spte[0x0]"]["spte"]
        if val is not None:
            seen = (val.pfn, val.writable)
    ex.close()
    return seen

"""Issue 11: an SPTE's origin (what I4 judges it by) is recorded by the primitives, not by
the kernel function that installs it: a vCPU's page-table reads (``Pte.val``) record what
it saw, and every write of ``Spte.spte`` takes its origin from them. So an override of
``mmu_set_spte`` written with kernel code only is checked like the base one, and a design
that skips ``mmu_notifier_retry`` is found stale whichever function installs the SPTE."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import pfnlab
from pfnlab.api import load_model, registries_restored

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retry_leak.py"

# the variants only: the scenario is the example's fault-vs-zap (a fault against
# MADV_DONTNEED)
MODEL = textwrap.dedent('''\
    from pfnlab import variant
    from pfnlab.kvm import SpteVal, drop_spte


    def mmu_set_spte_plain(kvm, sptep, write_fault, pfn, speculative, host_writable):
        """mmu_set_spte as the kernel writes it: no ledger call anywhere."""
        if sptep.spte is not None and sptep.spte.pfn != pfn:
            drop_spte(kvm, sptep)
        sptep.spte = SpteVal(pfn=pfn, writable=host_writable, accessed=not speculative,
                             dirty=host_writable)
        return 0


    def mmu_notifier_retry_never(kvm, mmu_seq):
        """The bug: the fault installs its SPTE whatever ran since it read the seq."""
        return False


    variant("plain-set-spte", parent="v5.4", summary="mmu_set_spte without ledger calls",
            overrides={"mmu_set_spte": mmu_set_spte_plain})
    variant("plain-set-spte-no-retry", parent="plain-set-spte", summary="and no retry check",
            overrides={"mmu_notifier_retry": mmu_notifier_retry_never})
''')


@pytest.fixture
def model(tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "spte_origin.py"
    path.write_text(MODEL)
    with registries_restored():
        load_model(EXAMPLE)
        load_model(path)
        yield


def test_an_override_of_mmu_set_spte_with_kernel_code_only_is_checked(model: None) -> None:
    res = pfnlab.check("plain-set-spte", "fault-vs-zap")
    assert res.ok and res.exhaustive, res.summary()
    bad = pfnlab.check("plain-set-spte-no-retry", "fault-vs-zap")
    assert bad.violated == ["no-stale-spte"], bad.summary()
    text = bad.report()
    assert ("kvm.spte[0x0] maps pfn 0x103 (installed by vcpu0:fault) but hva 0x10 was "
            "invalidated after the pfn was looked up") in " ".join(text.split())

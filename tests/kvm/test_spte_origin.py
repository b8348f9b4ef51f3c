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

MODEL = textwrap.dedent('''\
    from pfnlab import Host, instance, scenario, variant, vcpu_faults, vm_on
    from pfnlab.kvm import SpteVal, drop_spte
    from pfnlab.mm import zap_page_range


    @scenario("fault-vs-dontneed", sizes={"faults": 1},
              properties=["no-stale-spte", "no-spte-to-freed", "refs-balanced"])
    def build(variant, sz):
        """a vCPU faults on anonymous memory while the host zaps it"""
        host = Host()
        ram = host.add_anon(1, name="ram")
        s = vm_on(host, [ram], 1)

        def zap():
            zap_page_range(ram.vma, ram.start, ram.end)

        threads = {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])}
        return instance(s, threads, ["no-stale-spte", "no-spte-to-freed", "refs-balanced"])


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
        load_model(path)
        yield


def test_an_override_of_mmu_set_spte_with_kernel_code_only_is_checked(model: None) -> None:
    res = pfnlab.check("plain-set-spte", "fault-vs-dontneed")
    assert res.ok and res.exhaustive, res.summary()
    bad = pfnlab.check("plain-set-spte-no-retry", "fault-vs-dontneed")
    assert sorted(bad.violated) == ["no-spte-to-freed", "no-stale-spte"], bad.summary()
    text = bad.report()
    assert ("kvm.spte[0x0] maps pfn 0x103 (installed by vcpu0:fault) but hva 0x10 was "
            "invalidated after the pfn was looked up") in " ".join(text.split())

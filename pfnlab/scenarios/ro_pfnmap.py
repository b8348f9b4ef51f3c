"""ro-pfnmap: a guest over driver memory the VMM mapped read-only (VM_PFNMAP, no VM_WRITE).

bd2fae8da794 (v5.12, "KVM: do not assume PTE is writable after follow_pfn"): before it,
``hva_to_pfn_remapped`` set ``*writable = true`` for any VM_IO|VM_PFNMAP pfn, so a read
fault installed a writable SPTE (the guest could write memory the host maps read-only) and
a write fault was mapped writable too. From v5.12 it reads ``pte_write`` from
``follow_pte`` and fails a write fault with ``KVM_PFN_ERR_RO_FAULT``. The vCPU makes a read
fault, then a write fault, on the one gfn, then exits; the admin closes the VM.
"""

from __future__ import annotations

from pfnlab import (
    Host,
    Instance,
    Scenario,
    Setup,
    ThreadBody,
    Variant,
    Vcpu,
    goal_reached,
    instance,
    reached,
    vcpu_exit,
    vcpu_fault,
    vm_exit,
    vm_on,
)
from pfnlab.kvm.fault import RET_PF_FIXED
from pfnlab.properties import (
    AD_ONLY_TRACKED,
    NO_METADATA_AFTER_TEARDOWN,
    NO_PUT_UNREFERENCED,
    READONLY_RESPECTED,
    REFS_BALANCED,
)

PROPERTIES = (READONLY_RESPECTED, REFS_BALANCED, NO_PUT_UNREFERENCED,
              NO_METADATA_AFTER_TEARDOWN, AD_ONLY_TRACKED)
#: the read fault was handled (RET_PF_FIXED): a pass is not vacuous
GOAL_READ_MAPPED = "read-fault-mapped"


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """One read-only remap_pfn_range page; a read then a write fault; VM exit."""
    host = Host()
    ro = host.add_pfnmap_pages(1, writable=False, name="ro0")
    s = vm_on(host, [ro], sz["vcpus"])
    threads: dict[str, ThreadBody] = {"admin": [lambda: vm_exit(s.kvm)]}
    for v in s.vcpus:
        threads[v.name] = _vcpu(s, v)
    return instance(s, threads, PROPERTIES, [goal_reached(s, GOAL_READ_MAPPED)])


def _vcpu(s: Setup, v: Vcpu) -> ThreadBody:
    """A read fault, a write fault, then the vCPU's exit (three operations)."""

    def read() -> None:
        if vcpu_fault(v, 0, False) == RET_PF_FIXED:
            reached(s.progress, GOAL_READ_MAPPED)

    return [read, lambda: vcpu_fault(v, 0, True), lambda: vcpu_exit(v)]


SCENARIO = Scenario(
    name="ro-pfnmap",
    summary="read and write faults on driver memory the VMM mapped read-only (VM_PFNMAP): "
    "bd2fae8da794's pte_write",
    params={"vcpus": 1},
    properties=PROPERTIES,
    goals=(GOAL_READ_MAPPED,),
    build=build,
)

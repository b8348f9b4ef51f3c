"""virt/kvm/kvm_main.c v5.4: ``kvm_create_vm`` and ``KVM_CREATE_VCPU`` (set-up only).

The VM registers its mmu notifier (``kvm_init_mmu_notifier``) and, with no kernel
counterpart, its ledger follows the VM and the host (:mod:`pfnlab.kvm.ghost`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pfnlab.kvm import ghost
from pfnlab.kvm.kvm import Kvm, Memslot, Vcpu
from pfnlab.kvm.notifier import kvm_init_mmu_notifier


def create_vm(
    mm: Any,
    memslots: Iterable[Memslot],
    *,
    vcpus: int = 1,
    hpage_pages: int = 2,
    vcpus_hold_vm: bool = True,
    name: str = "kvm",
    host: Any = None,
) -> tuple[Kvm, list[Vcpu]]:
    """``kvm_create_vm`` + ``KVM_CREATE_VCPU`` (set-up only): the VM registers its notifier.

    With ``vcpus_hold_vm`` each vCPU holds a VM reference (as vCPU files do), so the
    ``kvm_destroy_vm`` of :func:`~pfnlab.kvm.threads.vm_exit` runs only after every vCPU
    thread called :func:`~pfnlab.kvm.threads.vcpu_exit`.

    With ``host`` (ledger only, no kernel counterpart): the pages at refcount 0 now are
    recorded as non-refcounted, and the VM registers a host free hook that reports I5 when
    a page is freed under one of its SPTEs or maps (:func:`~pfnlab.kvm.ghost.origins.page_freed`).
    """
    users = 1 + (vcpus if vcpus_hold_vm else 0)
    kvm = Kvm(name, mm=mm, memslots=memslots, hpage_pages=hpage_pages, users=users)
    kvm_init_mmu_notifier(kvm)
    names = [f"vcpu{i}" for i in range(vcpus)]
    kvm.ledger.add_parts(names)
    ghost.watch_vm(kvm)  # SPTE writes and invalidation returns: the ledger
    if host is not None:
        kvm.norefs = ghost.refcount_zero_heads(host)
        ghost.subscribe(kvm, host)  # gets, puts, A/D and frees of pages: the ledger
    return kvm, [Vcpu(kvm, n) for n in names]

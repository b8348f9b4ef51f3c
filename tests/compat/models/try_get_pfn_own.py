"""A model file written before pfnlab had ``kvm_try_get_pfn``: it defines its own, under
that kernel name (pfnlab's v6.0 design defines one too now)."""

from pfnlab import Host, instance, kfunc, scenario, variant, vcpu_faults, vm_exit, vm_on
from pfnlab.kvm import EFAULT, KVM_PFN_ERR_FAULT, kvm_is_reserved_pfn
from pfnlab.mm import fixup_user_fault, follow_pfn, get_page_unless_zero, pfn_to_page

PROPERTIES = ["no-put-unreferenced", "refs-balanced"]


@scenario("compat-pfnmap-refcount0", sizes={"vcpus": 1}, properties=PROPERTIES)
def build(variant, sz):
    """a vCPU faults on VM_PFNMAP driver pages whose refcount is 0; then VM exit"""
    host = Host()
    drv = host.add_pfnmap_pages(1, refcounted=False, name="drv")
    s = vm_on(host, [drv], sz["vcpus"])
    threads = {"admin": [lambda: vm_exit(s.kvm)]}
    for i in range(sz["vcpus"]):
        threads[s.vcpus[i].name] = vcpu_faults(s, i, [0], exit_vcpu=True)
    return instance(s, threads, PROPERTIES, [])


@kfunc
def kvm_try_get_pfn(pfn, owner):
    """virt/kvm/kvm_main.c v5.13: a reference unless the page's count is 0 (True if taken
    or none is needed)."""
    if kvm_is_reserved_pfn(pfn):
        return True
    return get_page_unless_zero(pfn_to_page(pfn), owner=owner)


def hva_to_pfn_remapped_try_get(vma, addr, write_fault, writable, owner):
    """v5.13 (f8be156be163): kvm_try_get_pfn, -EFAULT at refcount 0."""
    pfn = follow_pfn(vma, addr)
    if pfn is None:
        fixup_user_fault(vma.mm, addr, write_fault)
        pfn = follow_pfn(vma, addr)
        if pfn is None:
            return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    if not kvm_try_get_pfn(pfn, owner):
        return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    return (0, pfn, True)


variant("compat-refcount-zero-buggy", "v5.4", summary="v5.4's hva_to_pfn_remapped")
variant("compat-refcount-zero-fixed", "v5.4",
        {"hva_to_pfn_remapped": hva_to_pfn_remapped_try_get},
        summary="its own kvm_try_get_pfn")

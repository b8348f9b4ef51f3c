"""refcount-zero: KVM takes a reference on a page whose refcount is 0.

A driver maps pages into userspace with ``remap_pfn_range`` (VM_IO | VM_PFNMAP). The pages
have a ``struct page`` but are not refcounted: tails of a non-compound higher-order
allocation, refcount 0. A vCPU faults on them: ``hva_to_pfn_remapped`` finds the pfn with
``follow_pfn`` and -- the bug, KVM before f8be156be163 (v5.13) -- takes a reference with
``kvm_get_pfn`` (``get_page``), lifting the count from 0 to 1; the fault's
``kvm_release_pfn_clean`` then puts it back to 0, which the page allocator would take as a
free. The fix (``refcount-zero-fixed``) takes the reference with ``get_page_unless_zero``
and refuses the pfn (``-EFAULT``) when it cannot, as ``kvm_try_get_pfn`` does.
"""

from pfnlab import Host, instance, scenario, variant, vcpu_faults, vm_exit, vm_on
from pfnlab.kvm import EFAULT, KVM_PFN_ERR_FAULT, kvm_is_reserved_pfn
from pfnlab.mm import fixup_user_fault, follow_pfn, get_page_unless_zero, pfn_to_page

PROPERTIES = ["no-put-unreferenced", "refs-balanced", "no-metadata-after-teardown"]


@scenario("pfnmap-refcount0", sizes={"vcpus": 1}, properties=PROPERTIES)
def build(variant, sz):
    """a vCPU faults on VM_PFNMAP driver pages whose refcount is 0; then VM exit"""
    host = Host()
    drv = host.add_pfnmap_pages(1, refcounted=False, name="drv")
    s = vm_on(host, [drv], sz["vcpus"])
    threads = {"admin": [lambda: vm_exit(s.kvm)]}
    for i in range(sz["vcpus"]):
        threads[s.vcpus[i].name] = vcpu_faults(s, i, [0], exit_vcpu=True)
    return instance(s, threads, PROPERTIES, [])


def hva_to_pfn_remapped_try_get(vma, addr, write_fault, writable):
    """virt/kvm/kvm_main.c v5.13 (f8be156be163): kvm_try_get_pfn, -EFAULT at refcount 0."""
    pfn = follow_pfn(vma, addr)
    if pfn is None:
        fixup_user_fault(vma.mm, addr, write_fault)
        pfn = follow_pfn(vma, addr)
        if pfn is None:
            return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    # kvm_try_get_pfn(): a reserved (or invalid) pfn needs no reference
    if not kvm_is_reserved_pfn(pfn):
        page = pfn_to_page(pfn)
        if not get_page_unless_zero(page):  # KVM's ledger sees the reference
            return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    return (0, pfn, True)


variant("refcount-zero-buggy", "v5.4",
        summary="v5.4's hva_to_pfn_remapped: kvm_get_pfn on any pfn with a struct page")
variant("refcount-zero-fixed", "v5.4",
        {"hva_to_pfn_remapped": hva_to_pfn_remapped_try_get},
        summary="hva_to_pfn_remapped takes get_page_unless_zero and refuses refcount-0 pages")

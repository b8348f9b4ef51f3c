"""A model file as pfnlab 0.1 users wrote it: an override that extends the base model's
version by calling it through ``KERNEL_FUNCTIONS[name]``, which ran the base model's
version then (since 0.2 it runs the checked variant's: the override itself)."""

from pfnlab import (
    KERNEL_FUNCTIONS,
    Host,
    goal_overlap,
    instance,
    scenario,
    variant,
    vcpu_faults,
    vm_on,
)
from pfnlab.mm import zap_page_range

PROPERTIES = ["refs-balanced", "no-put-unreferenced"]


@scenario("compat01-table-fault-vs-zap", sizes={"faults": 1}, properties=PROPERTIES,
          goals=["fault-overlaps-invalidation"])
def build(variant, sz):
    """a vCPU faults on anonymous memory while the host zaps it"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)

    threads = {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])}
    return instance(s, threads, PROPERTIES, [goal_overlap(s)])


def release_twice(pfn):
    """kvm_release_pfn_clean, run twice: the base model's put, then a second one."""
    KERNEL_FUNCTIONS["kvm_release_pfn_clean"](pfn)
    KERNEL_FUNCTIONS["kvm_release_pfn_clean"](pfn)


def release_once(pfn):
    """kvm_release_pfn_clean: the base model's put, once."""
    return KERNEL_FUNCTIONS["kvm_release_pfn_clean"](pfn)


variant("compat01-double-release", parent="v5.4",
        overrides={"kvm_release_pfn_clean": release_twice},
        summary="0.1-style model: each release puts the page twice")
variant("compat01-single-release", parent="v5.4",
        overrides={"kvm_release_pfn_clean": release_once},
        summary="0.1-style model: the base model's release, through the table")

"""pfncache: KVM caches a guest page's pfn for later use but drops the page reference.

A gfn_to_pfn_cache-style path: ``gpc_refresh`` looks the gfn up (``kvm_vcpu_map``, which
takes a reference), remembers the pfn, and -- the bug -- unmaps at once, so the cache
holds a pfn without a reference. ``gpc_use`` later reads the page through the cached pfn.
Meanwhile the admin unbinds the /dev/dax device: nothing waits for the cached pfn, the
memmap goes away, and the use touches freed metadata. The fix (``pfncache-fixed``) keeps
the mapping (and its reference) until the cache is released.
"""

from pfnlab import (
    Check,
    Field,
    Host,
    Shared,
    define_property,
    dev_dax_unbind,
    instance,
    kfunc,
    kvm_vcpu_map,
    kvm_vcpu_unmap,
    map_owner,
    operation,
    scenario,
    touch_mapping,
    variant,
    vm_on,
)

GPC_RELEASED = define_property(
    "gpc-released", "the pfn cache is released (holds no pfn) when the vCPU is done")


class Gpc(Shared):
    """The cache: the pfn it hands out, and the mapping that pins it (if any)."""

    pfn = Field(None)
    hmap = Field(None)


@kfunc
def gpc_refresh(gpc, vcpu, gfn):
    """Buggy: cache the pfn, then drop the mapping (and its reference) at once."""
    hmap = kvm_vcpu_map(vcpu, gfn)
    if hmap is None:                       # the device is gone already: nothing cached
        return
    gpc.pfn = hmap.pfn
    kvm_vcpu_unmap(vcpu, hmap, False)      # the reference is gone, the pfn is still cached
    gpc.hmap = hmap


@kfunc
def gpc_release(gpc, vcpu):
    """Buggy: forget the pfn (nothing left to put)."""
    gpc.pfn = None
    gpc.hmap = None


def gpc_use(gpc):
    """The vCPU reads the cached page (its struct page, through the cached pfn)."""
    hmap = gpc.hmap
    if hmap is not None:
        touch_mapping(hmap)


@scenario("pfncache-vs-unbind", sizes={"vcpus": 1},
          properties=["no-metadata-after-teardown", "refs-balanced", "teardown-terminates",
                      GPC_RELEASED])
def build(variant, sz):
    """a pfn cache on a devdax page while the device is unbound"""
    host = Host()
    dax = host.add_devdax(1, name="dax0")
    s = vm_on(host, [dax], sz["vcpus"])
    gpc = Gpc("gpc")

    def vcpu0():
        # the ledger: references taken inside are the vCPU's, and all must be put by the end
        with operation(map_owner(s.vcpus[0])):
            gpc_refresh(gpc, s.vcpus[0], 0)
            gpc_use(gpc)
            gpc_release(gpc, s.vcpus[0])

    def admin():
        dev_dax_unbind(dax.dax)

    done = Check("cache released", lambda: None if gpc.pfn is None else f"pfn {gpc.pfn:#x} "
                 "still cached", GPC_RELEASED)
    return instance(s, {"admin": admin, "vcpu0": vcpu0},
                    ["no-metadata-after-teardown", "refs-balanced"], final_checks=[done])


def gpc_refresh_fixed(gpc, vcpu, gfn):
    """Fixed: keep the mapping, and with it the reference, while the pfn is cached."""
    hmap = kvm_vcpu_map(vcpu, gfn)
    if hmap is None:
        return
    gpc.pfn = hmap.pfn
    gpc.hmap = hmap


def gpc_release_fixed(gpc, vcpu):
    """Fixed: unmap (put the reference) when the cache is released."""
    if gpc.hmap is not None:
        kvm_vcpu_unmap(vcpu, gpc.hmap, False)
    gpc.pfn = None
    gpc.hmap = None


variant("pfncache-fixed", parent="v5.4",
        overrides={"gpc_refresh": gpc_refresh_fixed, "gpc_release": gpc_release_fixed},
        summary="the pfn cache holds its page reference until it is released")

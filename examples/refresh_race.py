"""refresh-race: a pfn cache refresh races an MMU-notifier invalidation.

A gfn_to_pfn_cache-style cache (virt/kvm/pfncache.c, v6.0 on) keeps a guest page's pfn
without holding a reference: it relies on the MMU notifier, whose
``invalidate_range_start`` marks it invalid. ``gpc_refresh`` looks the pfn up (gup, then
drops the reference), takes the cache lock and publishes the pfn as valid. The bug: it
does not check whether an invalidation ran between the lookup and the publish. The host
zaps the page (MADV_DONTNEED) in that window: the invalidation finds the cache not valid
yet and does nothing, the PTE goes, and the refresh then publishes the zapped pfn as
valid -- a stale secondary mapping. The fix (``gpc-fixed``) snapshots
``mmu_notifier_seq`` before the lookup and publishes only if no invalidation started or
ran since, retrying otherwise, as ``hva_to_pfn_retry`` does with
``mmu_notifier_retry_cache`` (virt/kvm/pfncache.c, v6.0 on). The kernel counts
``mn_active_invalidate_count`` there, because its cache invalidation runs before
``mmu_invalidate_in_progress`` is raised; in this model the override raises the count (the
base ``invalidate_range_start``) first, so the count itself tells.
"""

from pfnlab import (
    Check,
    Field,
    Ghost,
    Host,
    Lock,
    Shared,
    define_property,
    instance,
    kfunc,
    operation,
    scenario,
    variant,
    vm_on,
    wait_until,
    world,
)
from pfnlab.kvm import (
    __gfn_to_pfn_memslot,
    gfn_to_memslot,
    is_error_pfn,
    kvm_mmu_notifier_invalidate_range_start,
    kvm_release_pfn_clean,
)
from pfnlab.mm import zap_page_range

GPC_COHERENT = define_property(
    "gpc-coherent", "a valid pfn cache maps the page the host maps at its hva")


class Gpc(Shared):
    """The cache: valid or not, and the pfn it hands out (no reference held)."""

    valid = Field(False)
    pfn = Field(None)
    # bookkeeping for the goal: a refresh is between its lookup and its publish, and an
    # invalidation started then (the race the fix exists for happened)
    refreshing = Ghost(False)
    overlapped = Ghost(False)

    def __init__(self, name, kvm, gfn, hva):
        super().__init__(name)
        self.lock = Lock(f"{name}.lock")
        self.kvm, self.gfn, self.hva = kvm, gfn, hva


def gpc_lookup(gpc):
    """gfn -> pfn through gup; the reference is dropped at once (the cache holds none)."""
    slot = gfn_to_memslot(gpc.kvm.memslots, gpc.gfn)
    pfn, _writable = __gfn_to_pfn_memslot(slot, gpc.gfn, False, False, True)
    if is_error_pfn(pfn):
        return None
    kvm_release_pfn_clean(pfn)
    return pfn


@kfunc
def gpc_refresh(gpc):
    """Buggy: look up, then publish, with nothing checking for an invalidation between."""
    gpc.refreshing = True
    pfn = gpc_lookup(gpc)
    gpc.lock.acquire()
    gpc.pfn = pfn
    gpc.valid = pfn is not None
    gpc.lock.release()
    gpc.refreshing = False


def gpc_refresh_fixed(gpc):
    """Fixed: publish only if no invalidation started or ran since the lookup began."""
    kvm = gpc.kvm
    while True:
        gpc.refreshing = True
        mmu_seq = kvm.mmu_notifier_seq
        pfn = gpc_lookup(gpc)
        gpc.lock.acquire()
        if kvm.mmu_notifier_count == 0 and kvm.mmu_notifier_seq == mmu_seq:
            gpc.pfn = pfn
            gpc.valid = pfn is not None
            gpc.lock.release()
            gpc.refreshing = False
            return
        gpc.lock.release()
        gpc.refreshing = False
        # retry once the invalidation is over (a retry before would fail the same way)
        wait_until(lambda: kvm.mmu_notifier_count == 0, what="gpc refresh retry")


def invalidate_range_start_gpc(kvm, start, end):
    """kvm_mmu_notifier_invalidate_range_start, and invalidate the pfn cache in the range."""
    kvm_mmu_notifier_invalidate_range_start.base(kvm, start, end)
    gpc = world().extra["gpc"]          # the cache the scenario's builder made
    if gpc.refreshing:
        gpc.overlapped = True
    if start <= gpc.hva < end:
        gpc.lock.acquire()
        gpc.valid = False
        gpc.lock.release()


@scenario("gpc-vs-zap", properties=[GPC_COHERENT, "refs-balanced"],
          goals=["refresh-overlaps-invalidation"])
def build(variant, sz):
    """a vCPU refreshes a pfn cache on anonymous memory while the host zaps it"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)
    gpc = Gpc("gpc", s.kvm, 0, ram.start)
    world().extra["gpc"] = gpc           # set-up: where the notifier hook finds it
    pte = host.mm.pte(ram.start)

    def vcpu0():
        with operation("vcpu0:gpc"):  # its references are vcpu0:gpc's, all put at the end
            gpc_refresh(gpc)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)

    def coherent():
        if not gpc.valid:
            return None
        val = pte.val
        if val is None or val.pfn != gpc.pfn:
            return f"the cache is valid with pfn {gpc.pfn:#x}, the host maps {val}"
        return None

    overlap = Check("refresh-overlaps-invalidation", lambda: gpc.overlapped, stable=True)
    return instance(s, {"zap": zap, "vcpu0": vcpu0}, ["refs-balanced"], [overlap],
                    invariants=[Check("gpc coherent", coherent, GPC_COHERENT)])


variant("gpc-buggy", "v5.4",
        {"kvm_mmu_notifier_invalidate_range_start": invalidate_range_start_gpc},
        summary="the notifier invalidates the cache; the refresh does not check for it")
variant("gpc-fixed", "gpc-buggy", {"gpc_refresh": gpc_refresh_fixed},
        summary="the refresh publishes only if no invalidation ran since its lookup")

"""gpc-refresh-vs-zap: a gfn_to_pfn_cache refresh races an invalidation of its page.

A vCPU uses a guest page through a ``gfn_to_pfn_cache`` (``pfnlab.kvm``'s
:class:`~pfnlab.PfnCache`) the way KVM's users do: under ``gpc->lock``, ``kvm_gpc_check``
the cache; if it is not valid, drop the lock, refresh it, and check again; then read the
page through ``gpc->khva``. Meanwhile the host zaps the page (MADV_DONTNEED). The notifier
of v5.17 on invalidates the caches from ``invalidate_range_start`` (``PFNCACHE_NOTIFIER``).

``gpc-v5.17`` refreshes as v5.17 did (``kvm_gfn_to_pfn_cache_refresh``): the retry check
runs outside ``gpc->lock`` and reads ``mmu_notifier_count``, which the notifier raises only
after it invalidated the caches, and the invalidation skips the refresh's placeholder. A
zap between the check and the publish goes unseen: the cache is published valid with the
zapped pfn, and the vCPU uses it. ``gpc-v6.0`` is the library's ``kvm_gpc_refresh``:
the check is ``mmu_notifier_retry_cache`` under ``gpc->lock``, counting invalidations from
``mn_active_invalidate_count``. Both properties are built in: ``secondary-coherent`` (I12:
a valid cache maps what the host maps once the invalidations are over; no use of a pfn
the host no longer maps) and ``refs-balanced`` (I1: v5.17's cache reference is put by
``kvm_gfn_to_pfn_cache_unmap``).

gpc-refresh-vs-migrate: the vCPU uses the cache twice while the host migrates its page.
v5.17's cache reference makes the migration fail (``-EAGAIN``) after its invalidation
marked the cache invalid; the next use refreshes to the same pfn, takes a second
reference, and the cache puts only one. v6.0 holds none: the page migrates and the
refresh finds the new one.
"""

from pfnlab import (
    Check,
    Ghost,
    Host,
    PfnCache,
    Shared,
    instance,
    kfunc,
    operation,
    scenario,
    variant,
    vm_on,
)
from pfnlab.kvm import (
    PFNCACHE_NOTIFIER,
    kvm_gfn_to_pfn_cache_refresh,
    kvm_gfn_to_pfn_cache_unmap,
    kvm_gpc_check,
    kvm_gpc_deactivate,
    kvm_gpc_refresh,
    touch_gpc,
)
from pfnlab.mm import migrate_page_thread, zap_page_range

GPA = 0  # the guest page of the cache: gfn 0 of the only memslot


class Outcome(Shared):
    """Ghost bookkeeping for the goals: how often the vCPU used the page, whether the zap
    ran, what the migration returned."""

    uses = Ghost(0)
    zapped = Ghost(False)
    rc = Ghost(None)


@kfunc
def gpc_use(gpc, out):
    """A KVM user of the cache (as kvm_setup_guest_pvclock): check under the lock, refresh
    while invalid, then read the page through the cache, still under the lock."""
    gpc.lock.acquire()
    while not kvm_gpc_check(gpc, GPA):
        gpc.lock.release()
        if kvm_gpc_refresh(gpc, GPA):
            return
        gpc.lock.acquire()
    touch_gpc(gpc)
    out.uses = out.uses + 1
    gpc.lock.release()


@scenario("gpc-refresh-vs-zap", properties=["secondary-coherent", "refs-balanced"],
          goals=["used", "zapped"])
def build(variant, sz):
    """a vCPU refreshes and uses a pfn cache while the host zaps its page"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)
    gpc = PfnCache(s.kvm, "gpc", GPA)
    gpc.active = True  # set-up: kvm_gpc_activate without its first refresh
    out = Outcome("outcome")

    def vcpu0():
        with operation("vcpu0:gpc"):  # the cache's references are put by the deactivation
            gpc_use(gpc, out)
            kvm_gpc_deactivate(gpc)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)
        out.zapped = True

    return instance(s, {"vcpu0": vcpu0, "zap": zap}, ["secondary-coherent", "refs-balanced"],
                    [Check("used", lambda: out.uses == 1, stable=True),
                     Check("zapped", lambda: out.zapped, stable=True)])


@scenario("gpc-refresh-vs-migrate", properties=["secondary-coherent", "refs-balanced"],
          goals=["used-twice", "migrated"])
def build_migrate(variant, sz):
    """a vCPU uses a pfn cache twice while the host migrates its page"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    pool = host.add_free(1)
    s = vm_on(host, [ram], 1)
    gpc = PfnCache(s.kvm, "gpc", GPA)
    gpc.active = True
    out = Outcome("outcome")

    def vcpu0():
        with operation("vcpu0:gpc"):
            gpc_use(gpc, out)
            gpc_use(gpc, out)
            kvm_gpc_deactivate(gpc)

    def migrate():
        out.rc = migrate_page_thread(host.mm, ram.start, pool)

    return instance(s, {"vcpu0": vcpu0, "migrate": migrate},
                    ["secondary-coherent", "refs-balanced"],
                    [Check("used-twice", lambda: out.uses == 2, stable=True),
                     Check("migrated", lambda: out.rc == 0, stable=True)])


def refresh_v5_17(gpc, gpa):
    """The v5.17 refresh in the user's place (it took ``kvm`` and ``len`` too)."""
    return kvm_gfn_to_pfn_cache_refresh(gpc.kvm, gpc, gpa)


def unmap_v5_17(kvm, gpc):
    """v5.17's unmap puts the cache's reference."""
    kvm_gfn_to_pfn_cache_unmap(kvm, gpc)


variant("gpc-v5.17", "v5.4",
        {**PFNCACHE_NOTIFIER, "kvm_gpc_refresh": refresh_v5_17, "kvm_gpc_unmap": unmap_v5_17},
        summary="982ed0de4753: the retry check outside gpc->lock, on mmu_notifier_count")
variant("gpc-v6.0", "v5.4", dict(PFNCACHE_NOTIFIER),
        summary="hva_to_pfn_retry: mmu_notifier_retry_cache under gpc->lock, no reference")

"""fault-vs-migrate: the host migrates a guest page while a vCPU faults on it.

Compaction or NUMA balancing moves the anonymous page behind gfn 0 to a new page
(``migrate_page_thread``: notifier start, migration entry, contents copied, PTE to the new
page). The migration succeeds only when nobody pins the old page; a vCPU fault that holds
its gup reference at that moment makes it fail with -EAGAIN, and the page stays. Either
way KVM's MMU notifier zaps the SPTE, and a fault that raced with the invalidation must
retry (``mmu_notifier_retry``). ``no-retry-check`` forgets that check: its SPTE can map
the page the host just unmapped.
"""

from pfnlab import Check, Ghost, Host, Shared, instance, scenario, variant, vcpu_faults, vm_on
from pfnlab.mm import migrate_page_thread


class Outcome(Shared):
    """What the migration returned (ghost: for the goals only)."""

    rc = Ghost(None)


@scenario("fault-vs-migrate", sizes={"faults": 1},
          properties=["refs-balanced", "no-put-unreferenced", "no-stale-spte",
                      "no-spte-to-freed", "notifier-balanced"],
          goals=["migrated", "migration-refused"])
def build(variant, sz):
    """a vCPU faults on anonymous memory while the host migrates its page"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    pool = host.add_free(1)
    s = vm_on(host, [ram], 1)
    out = Outcome("migration")

    def migrate():
        out.rc = migrate_page_thread(host.mm, ram.start, pool)

    goals = [Check("migrated", lambda: out.rc == 0, stable=True),
             Check("migration-refused", lambda: out.rc is not None and out.rc < 0,
                   stable=True)]
    threads = {"migrate": migrate, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])}
    return instance(s, threads, ["refs-balanced", "no-put-unreferenced", "no-stale-spte",
                                 "no-spte-to-freed", "notifier-balanced"], goals)


def mmu_notifier_retry_never(kvm, mmu_seq):
    """mmu_notifier_retry that never sees an invalidation (the bug)."""
    return False


variant("no-retry-check", parent="v5.4",
        overrides={"mmu_notifier_retry": mmu_notifier_retry_never},
        summary="the fault installs its SPTE even if an invalidation ran since its gup")

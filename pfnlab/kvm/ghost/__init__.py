"""The ledger: what KVM holds and did, kept for property checks (ghost state, no steps).

Everything a property check needs about KVM is in one :class:`KvmLedger` object per VM,
``kvm.ledger``. It is updated at the exact step where the kernel takes or drops the thing it
describes, by the primitive that does it: the host's refcount, A/D, page-table and free
primitives call the VM's hooks (:func:`subscribe`), a write of an SPTE calls
:func:`spte_written`, so kernel functions, base or override, never update the ledger by
hand. Each violation is recorded as an event where it *arises*, so that every property is
checked by a stable invariant (the ledger's ``events`` only grow) and the search needs no
visibility ordering for it.

One idea per file:

- :mod:`~pfnlab.kvm.ghost.ledger`: the state (:class:`KvmLedger`, its per-vCPU parts, the
  meaning of every field, the kinds of events);
- :mod:`~pfnlab.kvm.ghost.events`: recording events, each with the property it violates
  (:func:`warn`, :func:`vm_bug_on`, :func:`event`);
- :mod:`~pfnlab.kvm.ghost.truth`: what a page *is* (compound head, tracked or not, freed),
  read with no steps;
- :mod:`~pfnlab.kvm.ghost.hooks`: references, A/D bits, kernel mappings and operations (I1,
  I2, I6, I9);
- :mod:`~pfnlab.kvm.ghost.origins`: which host reads an SPTE's pfn came from (I4, I5, I11);
- :mod:`~pfnlab.kvm.ghost.checks`: the checks scenarios run (:func:`check_events`, final
  checks, invariants).

A hook decides from state it reads without scheduling points (ghost fields,
``Field.unobserved``), which leaves no trace in the step's footprint. Where the decision
depends on a field that another thread writes in a step not otherwise ordered with this
one, the hook rewrites that field unchanged (:func:`depends_on`): a ghost write conflicts
with every other write of it, so the reduced search explores both orders of the two steps.
"""

from pfnlab.kvm.ghost.checks import (
    check_events,
    check_idle_owners_hold_nothing,
    check_no_events,
    check_no_spte_to_freed,
    check_no_stale_spte,
    check_no_warn,
    check_notifier_balanced,
    check_refs_balanced,
    check_vcpu_map_refs,
)
from pfnlab.kvm.ghost.events import (
    EV_AD_UNTRACKED,
    EV_HUGE_SPTE_HOST_SMALL,
    EV_LEAK,
    EV_MAP_UNPINNED,
    EV_SPTE_TO_FREED,
    EV_STALE_SPTE,
    EV_THP_SHIFT_NON_THP,
    EV_VM_BUG_ON,
    EV_WARN,
    EV_WRITABLE_RO,
    KIND_VIOLATES,
    LedgerEvent,
    event,
    vm_bug_on,
    warn,
)
from pfnlab.kvm.ghost.hooks import (
    check_maps_pinned,
    check_owner_leaks,
    fault_retried,
    kernel_mapped,
    operation,
    owner_begin,
    owner_end,
    subscribe,
)
from pfnlab.kvm.ghost.ledger import (
    KvmLedger,
    OwnerLedger,
    current_host,
    current_ledger,
    depends_on,
    observe,
    tadd,
    tget,
)
from pfnlab.kvm.ghost.obsolete import ad_update, get_on_dead_page, ref_dropping, ref_taken
from pfnlab.kvm.ghost.origins import (
    invalidation_returned,
    page_freed,
    pte_seen,
    spte_installed,
    spte_written,
    watch_vm,
)
from pfnlab.kvm.ghost.truth import (
    freed_reason,
    head_pfn,
    host_level_truth,
    page_is_thp_head,
    refcount_zero_heads,
    teardown_owns,
    untracked_reason,
)
from pfnlab.properties import (
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
    NO_METADATA_AFTER_TEARDOWN,
    NO_PUT_UNREFERENCED,
    NO_SPTE_TO_FREED,
    NO_STALE_SPTE,
    NOTIFIER_BALANCED,
    PIN_HELD,
    READONLY_RESPECTED,
    REFS_BALANCED,
)

#: the property ids the ledger's checks report (I1-I7, I9-I11; I8 is the teardown's hang)
LEDGER_PROPERTIES = (
    REFS_BALANCED,
    NO_PUT_UNREFERENCED,
    NO_METADATA_AFTER_TEARDOWN,
    NO_STALE_SPTE,
    NO_SPTE_TO_FREED,
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
    PIN_HELD,
    NOTIFIER_BALANCED,
    READONLY_RESPECTED,
)

__all__ = [
    "AD_ONLY_TRACKED",
    "EV_AD_UNTRACKED",
    "EV_HUGE_SPTE_HOST_SMALL",
    "EV_LEAK",
    "EV_MAP_UNPINNED",
    "EV_SPTE_TO_FREED",
    "EV_STALE_SPTE",
    "EV_THP_SHIFT_NON_THP",
    "EV_VM_BUG_ON",
    "EV_WARN",
    "EV_WRITABLE_RO",
    "HUGE_ONLY_THP",
    "KIND_VIOLATES",
    "LEDGER_PROPERTIES",
    "NOTIFIER_BALANCED",
    "NO_METADATA_AFTER_TEARDOWN",
    "NO_PUT_UNREFERENCED",
    "NO_SPTE_TO_FREED",
    "NO_STALE_SPTE",
    "PIN_HELD",
    "READONLY_RESPECTED",
    "REFS_BALANCED",
    "KvmLedger",
    "LedgerEvent",
    "OwnerLedger",
    "ad_update",
    "check_events",
    "check_idle_owners_hold_nothing",
    "check_maps_pinned",
    "check_no_events",
    "check_no_spte_to_freed",
    "check_no_stale_spte",
    "check_no_warn",
    "check_notifier_balanced",
    "check_owner_leaks",
    "check_refs_balanced",
    "check_vcpu_map_refs",
    "current_host",
    "current_ledger",
    "depends_on",
    "event",
    "fault_retried",
    "freed_reason",
    "get_on_dead_page",
    "head_pfn",
    "host_level_truth",
    "invalidation_returned",
    "kernel_mapped",
    "observe",
    "operation",
    "owner_begin",
    "owner_end",
    "page_freed",
    "page_is_thp_head",
    "pte_seen",
    "ref_dropping",
    "ref_taken",
    "refcount_zero_heads",
    "spte_installed",
    "spte_written",
    "subscribe",
    "tadd",
    "teardown_owns",
    "tget",
    "untracked_reason",
    "vm_bug_on",
    "warn",
    "watch_vm",
]

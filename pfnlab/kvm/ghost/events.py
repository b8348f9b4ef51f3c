"""Events: what happened in KVM that a property forbids, each naming the property it violates.

An event is recorded by the code where the thing happens: a ``WARN`` by the kernel function
it fires in (:func:`warn`, which names the property the WARN guards), a ``VM_BUG_ON`` by
:func:`vm_bug_on`, and the violations of I1, I4-I6, I9 and I11 by the ledger's hooks at the
step where they arise. The ledger's ``events`` only grow, so every property is checked by a
stable invariant, :func:`~pfnlab.kvm.ghost.checks.check_events`.
"""

from __future__ import annotations

from pfnlab.kvm.ghost.ledger import (
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
    KvmLedger,
    LedgerEvent,
    current_ledger,
)
from pfnlab.properties import (
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
    NO_METADATA_AFTER_TEARDOWN,
    NO_SPTE_TO_FREED,
    NO_STALE_SPTE,
    PIN_HELD,
    READONLY_RESPECTED,
    REFS_BALANCED,
)

#: the property each kind of event the ledger records violates
KIND_VIOLATES = {
    EV_AD_UNTRACKED: AD_ONLY_TRACKED,
    EV_THP_SHIFT_NON_THP: HUGE_ONLY_THP,
    EV_HUGE_SPTE_HOST_SMALL: HUGE_ONLY_THP,
    EV_LEAK: REFS_BALANCED,
    EV_STALE_SPTE: NO_STALE_SPTE,
    EV_SPTE_TO_FREED: NO_SPTE_TO_FREED,
    EV_MAP_UNPINNED: PIN_HELD,
    EV_WRITABLE_RO: READONLY_RESPECTED,
}


def record(led: KvmLedger, kind: str, pfn: int, detail: str, who: str = "",
           violates: str | None = None) -> None:
    """Add an event to ``led`` (a ghost write: no step). ``violates`` defaults to the
    property of ``kind`` (:data:`KIND_VIOLATES`)."""
    prop = violates or KIND_VIOLATES.get(kind)
    if prop is None:
        raise ValueError(f"event kind {kind!r} names no property: pass violates=<property "
                         "id> (pfnlab.properties, or one of define_property)")
    led.events = led.events | {LedgerEvent(kind, pfn, detail, who, prop)}


def event(kind: str, pfn: int, detail: str = "", violates: str | None = None) -> None:
    """Record an event of ``kind`` on ``pfn`` in the running VM's ledger (no step).

    ``violates``: the property id it violates; a built-in kind knows its own, a
    ``"WARN:..."`` kind defaults to no-metadata-after-teardown and a ``"VM_BUG_ON:..."``
    kind to huge-only-thp, as :func:`warn` and :func:`vm_bug_on` do.
    """
    led = current_ledger()
    if led is None:
        return
    if violates is None and kind.startswith(EV_WARN):
        violates = NO_METADATA_AFTER_TEARDOWN
    elif violates is None and kind.startswith(EV_VM_BUG_ON):
        violates = HUGE_ONLY_THP
    record(led, kind, pfn, detail, violates=violates)


def warn(function: str, pfn: int, detail: str = "",
         violates: str = NO_METADATA_AFTER_TEARDOWN) -> None:
    """A ``WARN``/``WARN_ON_ONCE`` in ``function`` fired; ``violates`` names what it guards
    (by default I3: KVM read a ZONE_DEVICE page's metadata it could not trust)."""
    event(EV_WARN + function, pfn, detail, violates)


def vm_bug_on(function: str, pfn: int, detail: str = "", violates: str = HUGE_ONLY_THP) -> None:
    """A ``VM_BUG_ON`` in ``function`` fired (by default I7, the one in
    ``transparent_hugepage_adjust``)."""
    event(EV_VM_BUG_ON + function, pfn, detail, violates)

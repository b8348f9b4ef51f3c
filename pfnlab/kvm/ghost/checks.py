"""Checks of the ledger for scenarios: each returns None when its property holds, else the
one-line message of the finding, so that a scenario wraps it in :class:`pfnlab.explore.Check`.

Checks read state with plain attribute reads (:func:`~pfnlab.kvm.ghost.ledger.observe`):
inside a check the engine records every Field and Ghost read, and re-evaluates the check
when a step (or a ghost update) changes it. The built-in scenarios check most properties
through the ledger's events (:func:`~pfnlab.kvm.ghost.events.check_events`, stable); these
are the final checks and the invariants a model of your own may add.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pfnlab.explore import Violation, is_freed
from pfnlab.kvm.ghost.events import EV_WARN
from pfnlab.kvm.ghost.hooks import leak_sentence
from pfnlab.kvm.ghost.ledger import observe, tget
from pfnlab.kvm.ghost.truth import head_pfn, memmap, teardown_owns

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm


def check_refs_balanced(kvm: Kvm) -> str | None:
    """I1 (final check): KVM holds no page reference once every thread finished."""
    refs = observe(kvm.ledger, "refs")
    if not refs:
        return None
    held = ", ".join(f"pfn {p:#x} by {o} x{n}" for (p, o), n in refs)
    return f"KVM still holds page references: {held}"


def check_no_stale_spte(kvm: Kvm) -> str | None:
    """I4 (invariant): no present SPTE maps a pfn the primary MMU invalidated since."""
    led = kvm.ledger
    epoch = observe(led, "epoch")
    active = observe(led, "inval_active")
    for sp in kvm.all_sptes():
        val = observe(sp, "spte")
        origin = observe(sp, "origin")
        if val is None or origin is None:
            continue
        for hva, ep in origin[1]:
            if tget(epoch, hva) != ep and tget(active, hva) == 0:
                return (
                    f"{sp.name} maps pfn {val.pfn:#x} (installed by {origin[0]}) but hva "
                    f"{hva:#x} was invalidated after the pfn was looked up"
                )
    return None


def check_idle_owners_hold_nothing(kvm: Kvm) -> str | Violation | None:
    """I1 (invariant): a fault or map that returned holds no page reference.

    A leak on a page under teardown is left to the teardown (see :func:`teardown_owns`), so
    that one leak is reported once, by its first consequence.
    """
    led = kvm.ledger
    active = observe(led, "active")
    for (pfn, owner), n in observe(led, "refs"):
        if owner in active or n <= 0 or teardown_owns(pfn):
            continue
        return Violation(leak_sentence(owner, n, pfn), leaked_by=owner)
    return None


def check_no_spte_to_freed(kvm: Kvm, norefs: frozenset[int] = frozenset()) -> str | None:
    """I5 (invariant): no present SPTE / kvm_vcpu_map mapping refers to a freed page.

    Freed: the memmap was removed, or the (head) page is at refcount 0, i.e. back in the
    allocator or returned to its pgmap. ``norefs``: head pfns that are legitimately at
    refcount 0 (non-refcounted VM_PFNMAP pages), exempt from the refcount test.
    """
    pages = memmap()

    def gone(pfn: int) -> str:
        page = pages.get(pfn)
        if page is None:
            return ""
        hp = head_pfn(page)
        head = pages.get(hp, page)
        count = observe(head, "refcount")  # recorded: re-checked when it changes or is freed
        if is_freed(page) or is_freed(head):
            return "its memmap was removed"
        if count == 0 and hp not in norefs:
            return "its page was freed (refcount 0)"
        return ""

    for sp in kvm.all_sptes():
        val = observe(sp, "spte")
        if val is None:
            continue
        why = gone(val.pfn)
        if why:
            return f"{sp.name} maps pfn {val.pfn:#x} but {why}"
    for owner, gfn, pfn in sorted(observe(kvm.ledger, "maps")):
        why = gone(pfn)
        if why:
            return f"{owner} kvm_vcpu_map of gfn {gfn:#x} refers to pfn {pfn:#x} but {why}"
    return None


def check_vcpu_map_refs(kvm: Kvm) -> str | None:
    """I9 (invariant): every live kvm_vcpu_map mapping of a memmap page holds a reference."""
    led = kvm.ledger
    pages = memmap()
    refs = observe(led, "refs")
    for owner, gfn, pfn in sorted(observe(led, "maps")):
        page = pages.get(pfn)
        if page is None:
            continue
        if tget(refs, (head_pfn(page), owner)) <= 0:
            return f"{owner} maps gfn {gfn:#x} (pfn {pfn:#x}) without holding a reference"
    return None


def check_notifier_balanced(kvm: Kvm) -> str | None:
    """I10 (final check): brackets balanced, count back to 0, seq bumped at every end.

    Not checked on a destroyed VM: once mmu_notifier_unregister removed it, an
    invalidation whose start it saw does not deliver the end, and nothing reads the count.
    """
    if is_freed(kvm):
        return None
    led = kvm.ledger
    starts, ends = observe(led, "notifier_starts"), observe(led, "notifier_ends")
    count = observe(kvm, "mmu_notifier_count")
    if starts != ends or count != 0:
        return (
            f"{starts} invalidate_range_start vs {ends} _end; mmu_notifier_count is {count}"
        )
    seq = observe(kvm, "mmu_notifier_seq")
    if seq < ends:
        return f"mmu_notifier_seq {seq} < {ends} invalidate_range_end calls"
    return None


def check_events(kvm: Kvm, prop: str) -> str | Violation | None:
    """No recorded event violates property ``prop`` (a stable invariant: events only grow)."""
    for ev in sorted(observe(kvm.ledger, "events")):
        if ev.violates == prop:
            return ev.message()
    return None


def check_no_events(kvm: Kvm, kinds: Iterable[str], prefix: bool = False) -> str | None:
    """No event of these kinds (``prefix=True``: kinds are prefixes, e.g. ``EV_WARN``)."""
    ks = tuple(kinds)
    for ev in sorted(observe(kvm.ledger, "events")):
        if (ev.kind.startswith(ks) if prefix else ev.kind in ks):
            return ev.title()
    return None


def check_no_warn(kvm: Kvm) -> str | None:
    """No WARN in KVM code fired."""
    return check_no_events(kvm, (EV_WARN,), prefix=True)

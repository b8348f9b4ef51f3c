"""The instance a scenario returns: its threads with the built-in checks of the properties
it checks (the KVM ledger's events, final checks), and the goals that make a pass not
vacuous."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pfnlab.explore import Check, Instance, ThreadBody
from pfnlab.kvm import Kvm, ghost
from pfnlab.kvm.pfncache import check_secondary_coherent
from pfnlab.model.setup import Setup
from pfnlab.model.vacuous import watched
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
    SECONDARY_COHERENT,
    TEARDOWN_TERMINATES,
)

#: goal names shared by scenarios
GOAL_TEARDOWN = "teardown-completes"
GOAL_OVERLAP = "fault-overlaps-invalidation"


def checks(
    s: Setup, props: Iterable[str]
) -> tuple[list[Check], list[Check]]:
    """Invariants and final checks of the ledger properties in ``props``.

    Every invariant is a stable check of the ledger's events (they only grow): the model
    records each violation at the step where it arises (see :mod:`pfnlab.kvm.ghost`), so
    the search orders no steps for the sake of an invariant.
    ``teardown-terminates`` needs no check here: a teardown that never finishes is a hang
    reported under it by the waits of the mm model. ``no-put-unreferenced`` and
    ``no-metadata-after-teardown`` are also reported at the step (``fail()``, and
    use-after-free of a removed memmap); the checks below add the ledger's events.
    """
    kvm = s.kvm
    inv: list[Check] = []
    fin: list[Check] = []
    for p in props:
        if p == REFS_BALANCED:
            inv.append(Check("fault/map returned holding a reference", _events(kvm, p), p,
                             stable=True))
            fin.append(Check("KVM holds no reference at the end",
                             lambda: ghost.check_refs_balanced(kvm), p))
        elif p == NO_STALE_SPTE:
            inv.append(Check("no stale SPTE", _events(kvm, p), p, stable=True))
        elif p == NO_SPTE_TO_FREED:
            # SPTEs and maps to freed pages, and the WARN on zapping one
            inv.append(Check("no SPTE or map to a freed page", _events(kvm, p), p,
                             stable=True))
        elif p == PIN_HELD:
            inv.append(Check("kvm_vcpu_map holds its reference", _events(kvm, p), p,
                             stable=True))
        elif p == SECONDARY_COHERENT:
            # an invariant over the caches, the host PTEs and the ledger's brackets, which
            # can become true again (a refresh): unstable, the search orders what it reads
            if not kvm.pfn_caches:
                raise ValueError(f"property {p!r} checks the VM's PfnCache mappings, and "
                                 "this scenario creates none: create one with "
                                 "PfnCache(kvm, name, gfn) in the scenario's set-up")
            inv.append(Check("reference-less mappings coherent",
                             lambda: check_secondary_coherent(kvm), p))
        elif p == NOTIFIER_BALANCED:
            fin.append(Check("notifier brackets balanced",
                             lambda: ghost.check_notifier_balanced(kvm), p))
        elif p in (NO_PUT_UNREFERENCED, NO_METADATA_AFTER_TEARDOWN, AD_ONLY_TRACKED,
                   HUGE_ONLY_THP, READONLY_RESPECTED):
            # the ledger's events only grow: these invariants are stable
            inv.append(Check(f"no {p} event", _events(kvm, p), p, stable=True))
        elif p == TEARDOWN_TERMINATES or p not in _LEDGER_PROPS:
            # a hang, or a property of your own: its checks are passed to instance()
            pass
        else:  # pragma: no cover - every built-in property is handled above
            raise ValueError(f"no check for property {p!r}")
    return inv, fin


def _events(kvm: Kvm, prop: str) -> Callable[[], str | None]:
    return lambda: ghost.check_events(kvm, prop)


def goal_reached(s: Setup, milestone: str) -> Check:
    """Goal: the milestone was recorded in some execution."""
    prog = s.progress
    # stable: the milestone set only grows, so no step ordering is needed to see it
    return Check(milestone, lambda: milestone in ghost.observe(prog, "done"), stable=True)


def goal_overlap(s: Setup) -> Check:
    """Goal: a fault's mmu_notifier_retry saw an invalidation (the fault returned RETRY)."""
    led = s.kvm.ledger
    return Check(GOAL_OVERLAP, lambda: ghost.observe(led, "retries") > 0, stable=True)


def instance(
    s: Setup,
    threads: Mapping[str, ThreadBody],
    props: Iterable[str],
    goals: Iterable[Check] = (),
    *,
    invariants: Iterable[Check] = (),
    final_checks: Iterable[Check] = (),
) -> Instance:
    """The Instance: threads, the checks of ``props``, ``goals``, and checks of your own.

    ``threads`` maps thread names to plain functions (no arguments; a read or write of a
    shared field is a scheduling point). The built-in properties in ``props`` get the
    model's ledger checks; ``invariants`` (checked after every step) and ``final_checks``
    (checked when every thread has finished) are :class:`~pfnlab.explore.Check` s of your
    own: ``Check(name, fn, prop)`` where ``fn()`` returns ``None`` when it holds, else a
    one-line message, and ``prop`` is the property id the finding is reported under.
    A check of your own that never reads shared state in any evaluation is reported as
    holding vacuously (:mod:`pfnlab.model.vacuous`).
    """
    inv, fin = checks(s, props)
    return Instance(threads=threads, invariants=[*inv, *map(watched, invariants)],
                    final_checks=[*fin, *map(watched, final_checks)], goals=list(goals))


_LEDGER_PROPS = frozenset({
    REFS_BALANCED, NO_STALE_SPTE, NO_SPTE_TO_FREED, PIN_HELD, NOTIFIER_BALANCED,
    READONLY_RESPECTED, SECONDARY_COHERENT,
    NO_PUT_UNREFERENCED, NO_METADATA_AFTER_TEARDOWN, AD_ONLY_TRACKED, HUGE_ONLY_THP,
    TEARDOWN_TERMINATES,
})


ALL_KVM = (
    REFS_BALANCED,
    NO_PUT_UNREFERENCED,
    NO_METADATA_AFTER_TEARDOWN,
    NO_STALE_SPTE,
    NO_SPTE_TO_FREED,
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
)


def goal_map_during_invalidation(s: Setup) -> Check:
    """Goal: a kvm_vcpu_map mapping is live while an invalidation has been announced."""
    led = s.kvm.ledger
    return Check(
        GOAL_MAP_OVERLAP,
        lambda: bool(ghost.observe(led, "maps")) and ghost.observe(led, "notifier_starts") > 0,
    )


GOAL_MAP_OVERLAP = "map-live-during-invalidation"


def teardown_goals(s: Any) -> list[Check]:
    """The goals of a scenario with a teardown and faults: both happen, and overlap."""
    return [goal_reached(s, GOAL_TEARDOWN), goal_overlap(s)]

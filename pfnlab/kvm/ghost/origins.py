"""SPTE origins: which primary-MMU reads an SPTE's pfn came from, and I4, I5 and I11 at install.

``OwnerLedger.looked`` (per vCPU) and ``Spte.origin`` (on each SPTE object, also ghost) say
what a vCPU's operation saw in the host's page tables: ``((hva, pfn, epoch), ...)``, the
epoch of the hva when the thread last read a PTE (or huge PMD) mapping it to that pfn, not
counting the invalidations still ``changing`` it. Recorded by the page-table entry itself
(:class:`~pfnlab.mm.ptefield.PteField`, :func:`pte_seen`: every read a vCPU thread makes
inside an operation, whoever's code makes it) and forgotten when the operation ends. When a
vCPU writes a present SPTE (:func:`spte_written`, the hook of ``Spte.spte``, whoever's
code writes it) the SPTE's origin becomes ``(owner, ((hva, epoch), ...))`` for the hvas it
maps that the thread saw mapped to the pfns it maps: the pfn was derived from those reads
(kernel-semantics.md I4).

Recorded where each violation arises (:mod:`pfnlab.kvm.ghost.events`):

- I4 (no-stale-spte): when a vCPU installs an SPTE with an origin older than the current
  epoch of an hva no invalidation is active on, and when the last active
  ``invalidate_range_start`` of an hva returns while such an SPTE is present
  (:func:`invalidation_returned`);
- I5 (no-spte-to-freed): when an SPTE is installed on a freed page, and when a page is
  freed (refcount 0, memmap removed) while an SPTE or map refers to it (:func:`page_freed`,
  the host's free hook);
- I11 (readonly-respected): when a writable SPTE is installed where the host maps the hva
  read-only.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import context, current_thread
from pfnlab.kvm.ghost.events import EV_SPTE_TO_FREED, EV_STALE_SPTE, EV_WRITABLE_RO, record
from pfnlab.kvm.ghost.ledger import depends_on, tget
from pfnlab.kvm.ghost.truth import freed_reason
from pfnlab.kvm.kvm import Kvm, Spte, SpteVal
from pfnlab.mm.vma import VM_WRITE, Mm, PteVal


def stale_reason(kvm: Kvm, sp: Spte, epoch: Any, active: Any) -> str:
    """Why ``sp``'s present value is stale (I4), or "": an hva of its origin was invalidated
    since, and no invalidation of it is still inside ``invalidate_range_start``."""
    val = Spte.spte.unobserved(sp)
    origin = Spte.origin.unobserved(sp)
    if val is None or origin is None:
        return ""
    for hva, ep in origin[1]:
        if tget(epoch, hva) != ep and tget(active, hva) == 0:
            return (
                f"{sp.name} maps pfn {val.pfn:#x} (installed by {origin[0]}) but hva "
                f"{hva:#x} was invalidated after the pfn was looked up"
            )
    return ""


def watch_vm(kvm: Kvm) -> None:
    """Set-up: follow ``kvm``'s SPTE writes (:func:`spte_written`) and the returns of its
    ``invalidate_range_start`` (:func:`invalidation_returned`)."""
    kvm.ledger_hooks.spte_written = spte_written
    kvm.ledger_hooks.invalidation_returned = invalidation_returned


def pte_seen(kvm: Kvm, pte: Any, val: Any) -> None:
    """The host's hook: the running thread read ``val`` from page-table entry ``pte``. A
    vCPU inside an operation records, for every hva the entry maps, the pfn it saw there
    and the hva's epoch before the invalidations that may still change it, between their
    start and the call of their end (``changing``) (``OwnerLedger.looked``)."""
    if not isinstance(val, PteVal):
        return
    led = kvm.ledger
    part = led.parts.get(current_thread() or "")
    if part is None or not part.active:
        return
    epoch, changing = led.epoch, led.changing
    seen = {(h, p): e for h, p, e in part.looked}
    for i in range(pte.npages if val.huge else 1):
        h = pte.hva + i
        # an invalidation between its start and the call of its end may still change the
        # entry without telling KVM again: the pfn is derived from before it. Which side
        # of that call this read is on decides the epoch: the read depends on it
        n = tget(changing, h)
        if n:
            depends_on(led, "changing")
        seen[(h, val.pfn + i)] = tget(epoch, h) - n
    looked = tuple(sorted((h, p, e) for (h, p), e in seen.items()))
    if looked != part.looked:
        part.looked = looked


def spte_written(sp: Spte, old: SpteVal | None, new: SpteVal | None) -> None:
    """The hook of ``Spte.spte`` (sptefield.py): a model thread wrote ``new`` over ``old``.

    A zap forgets the origin. A present value gets its origin from what the writing
    thread's operation saw (``OwnerLedger.looked``) for the hvas the SPTE maps, and is
    checked as installed (:func:`spte_installed`); a write that keeps the pfn by a thread
    that saw none of it (write protection, A/D harvesting) keeps the origin it had."""
    ctx = context()
    kvm = getattr(ctx, "kvm", None) if ctx is not None else None
    if kvm is None:
        return
    if new is None:
        if Spte.origin.unobserved(sp) is not None:
            sp.origin = None
        return
    led = kvm.ledger
    who = current_thread() or ""
    part = led.parts.get(who)
    looked = part.looked if part is not None else ()
    slot = next((s for s in Kvm.memslots.unobserved(kvm) if s.id == sp.slot_id), None)
    n = kvm.pages_per_hpage(sp.level)
    base = sp.gfn & ~(n - 1)
    seen = {(h, p): e for h, p, e in looked}
    entries = []
    if slot is not None:
        for i in range(n):
            if not slot.contains(base + i):
                continue
            h = slot.gfn_to_hva(base + i)
            e = seen.get((h, new.pfn + i))
            if e is not None:
                entries.append((h, e))
    if not entries and old is not None and old.pfn == new.pfn:
        return  # the same translation, not derived again: its origin stands
    owners = sorted(part.active) if part is not None else []
    sp.origin = (owners[0] if len(owners) == 1 else who, tuple(entries))
    spte_installed(kvm, sp)


def spte_installed(kvm: Kvm, sp: Spte) -> None:
    """An SPTE was just installed in ``sp`` (:func:`spte_written`): I4 if its origin is
    stale, I5 if its page is freed, I11 if writable on a read-only mapping.

    Runs in the step that wrote the SPTE (under mmu_lock). An ``invalidate_range_start``
    bumps ``epoch`` and ``inval_active`` together outside mmu_lock, in a step not ordered
    with this one; its return (where I4 is checked too) is ordered by mmu_lock. If every
    hva's epoch is still the origin's, the decision is "not stale" whichever way such a
    start is ordered against this step (before: the hva is active; after: nothing changed
    yet), so the step depends on the epochs only when some hva was invalidated since the
    lookup, where the order decides.
    """
    led = kvm.ledger
    origin = Spte.origin.unobserved(sp)
    epoch = led.epoch
    if origin is not None and any(tget(epoch, h) != ep for h, ep in origin[1]):
        depends_on(led, "epoch")
        depends_on(led, "inval_active")
    val = Spte.spte.unobserved(sp)
    why = stale_reason(kvm, sp, epoch, led.inval_active)
    if why and val is not None:
        record(led, EV_STALE_SPTE, val.pfn, why)
    if val is not None:
        gone = freed_reason(val.pfn, kvm.norefs)
        if gone:
            record(led, EV_SPTE_TO_FREED, val.pfn, f"{sp.name} maps pfn {val.pfn:#x} but {gone}")
        ro = readonly_hva(kvm, origin) if val.writable else None
        if ro is not None:
            # I11: the VMA's VM_WRITE is set up once (no mprotect in the model), so the
            # decision reads nothing another thread writes
            record(led, EV_WRITABLE_RO, val.pfn,
                    f"{sp.name} maps pfn {val.pfn:#x} writable, but the host maps hva "
                    f"{ro:#x} read-only")


def readonly_hva(kvm: Kvm, origin: Any) -> int | None:
    """An hva of the SPTE's origin whose VMA lacks VM_WRITE (None if every one is writable)."""
    if origin is None:
        return None
    vmas = Mm.vmas.unobserved(kvm.mm)
    for hva, _ep in origin[1]:
        for vma in vmas:
            if vma.start <= hva < vma.end and not vma.flags & VM_WRITE:
                return int(hva)
    return None


def invalidation_returned(kvm: Kvm) -> None:
    """An ``invalidate_range_start`` returned (``inval_active`` just dropped): I4 for every
    present SPTE whose origin is older than the epoch of an hva no longer invalidated.

    SPTEs change under mmu_lock, which the callback released in this very step; the
    rewrite of their origins keeps the order explicit anyway.
    """
    led = kvm.ledger
    epoch, active = led.epoch, led.inval_active
    for sp in kvm.all_sptes():
        depends_on(sp, "origin")
        why = stale_reason(kvm, sp, epoch, active)
        val = Spte.spte.unobserved(sp)
        if why and val is not None:
            record(led, EV_STALE_SPTE, val.pfn, why)


def page_freed(kvm: Kvm, page: Any) -> None:
    """Host free hook: ``page`` just reached refcount 0, left it, or lost its memmap.

    I5 for every present SPTE and live map whose page is now freed. The decision reads every
    SPTE and map, so this step depends on all of them (installs and zaps rewrite the
    origins, maps and unmaps the ledger's ``maps``).
    """
    led = kvm.ledger
    for part in led.all_parts():
        depends_on(part, "maps")
    for sp in kvm.all_sptes():
        depends_on(sp, "origin")
        val = Spte.spte.unobserved(sp)
        if val is None:
            continue
        why = freed_reason(val.pfn, kvm.norefs)
        if why:
            record(led, EV_SPTE_TO_FREED, val.pfn, f"{sp.name} maps pfn {val.pfn:#x} but {why}")
    for owner, gfn, pfn in sorted(led.maps):
        why = freed_reason(pfn, kvm.norefs)
        if why:
            record(led, EV_SPTE_TO_FREED, pfn,
                    f"{owner} kvm_vcpu_map of gfn {gfn:#x} refers to pfn {pfn:#x} but {why}")

"""The ledger's hooks on the host: references, A/D bits, kernel mappings, operations.

The host's refcount and A/D primitives call these (:func:`subscribe`), so kernel functions,
base or override, never update the ledger by hand and none can forget to. Each records a
violation at the step where it arises (:mod:`pfnlab.kvm.ghost.events`):

- I1 (refs-balanced): when an owner's operation returns (:func:`owner_end`) holding a
  reference, or a reference is taken by an owner outside every operation;
- I2 (no-put-unreferenced): at once, when KVM puts a reference its owner does not hold;
- I6 (ad-only-tracked): when A/D bits are set on a page the kernel does not track;
- I9 (pin-held): when KVM drops a reference of an owner that has a live map of the page,
  and when the owner touches or unmaps a map it holds no reference for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pfnlab.explore import fail, model_caller
from pfnlab.kernel.operation import enter_owner, leave_owner
from pfnlab.kvm.ghost import origins
from pfnlab.kvm.ghost.events import (
    EV_AD_UNTRACKED,
    EV_LEAK,
    EV_MAP_UNPINNED,
    EV_SPTE_TO_FREED,
    record,
)
from pfnlab.kvm.ghost.ledger import KvmLedger, current_ledger, depends_on, tadd, tget
from pfnlab.kvm.ghost.truth import (
    device_pgmap,
    freed_reason,
    head_pfn,
    memmap,
    teardown_owns,
    untracked_reason,
)
from pfnlab.mm.kmap import ACCESS, MAP  # the events of kernel mappings (kernel_mapped)
from pfnlab.properties import NO_PUT_UNREFERENCED

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm

#: files whose functions are the refcount primitives (and this ledger), not their callers
_PRIMITIVE_FILES = frozenset(
    __file__.rsplit("/", 3)[0] + f for f in ("/mm/page.py", "/mm/memmap.py", "/kvm/ghost/hooks.py"))


def subscribe(kvm: Kvm, host: Any) -> None:
    """Set-up: follow the host's refcount and A/D primitives for ``kvm``'s ledger.

    Every get and put a primitive makes for an owner that is not the host's own
    (``Host.host_owners``: ``mapping``, ``memmap_init``, ...) is KVM's: a reference of
    ``kvm`` or of a vCPU context (``vcpu0:fault``, ``vcpu0:map``, your own
    ``vcpu0:gpc``). So no kernel function, base or override, records references by hand,
    and none can forget to; the put is attributed to the kernel function that called the
    primitive (an override under the name it replaces).
    """
    host.ref_hooks.append(lambda page, owner, delta: ref_changed(kvm, host, page, owner, delta))
    host.ad_hooks.append(lambda page, what: ad_set(kvm, page, what))
    host.pte_hooks.append(lambda pte, val: origins.pte_seen(kvm, pte, val))
    host.free_hooks.append(lambda page: origins.page_freed(kvm, page))
    host.map_hooks.append(lambda event, km: kernel_mapped(kvm, host, event, km))


def ref_changed(kvm: Kvm, host: Any, page: Any, owner: str, delta: int) -> None:
    """The host's hook: ``owner`` took (``delta`` +1) or is about to drop (-1) a reference
    on ``page`` (a compound head). Nothing for the host's own owners. (A get on refcount 0
    needs nothing here: ``get_page`` itself fails with no-put-unreferenced.)"""
    if owner in host.host_owners:
        return
    if delta > 0:
        taken(kvm.ledger, page, owner)
    else:
        dropping(kvm.ledger, page, owner)


def ad_set(kvm: Kvm, page: Any, what: str) -> None:
    """The host's hook: ``what`` (SetPageDirty, mark_page_accessed) is about to set a bit on
    ``page``: record I6 if the page is one the kernel does not track."""
    why = untracked_reason(page)
    if why:
        record(kvm.ledger, EV_AD_UNTRACKED, head_pfn(page), f"{what} on {why} page")


def taken(led: KvmLedger, page: Any, owner: str) -> None:
    """KVM now holds one more reference on ``page``.

    I1: an owner outside every operation (see :func:`owner_begin`) that takes a reference
    leaks it from this step on.
    """
    part = led.part(owner)
    part.refs = tadd(part.refs, (head_pfn(page), owner), 1)
    if owner not in part.active:
        check_owner_leaks(led, owner)


def dropping(led: KvmLedger, page: Any, owner: str) -> None:
    """KVM is about to put one reference on ``page``; fail if ``owner`` holds none, naming
    the kernel function that puts (walking the stack only then)."""
    key = (head_pfn(page), owner)
    part = led.part(owner)
    if tget(part.refs, key) <= 0:
        why = model_caller(_PRIMITIVE_FILES) or "put_page"
        holders = [f"{o} x{n}" for (p, o), n in led.refs if p == key[0]]
        held = ", ".join(holders) if holders else "nobody in KVM"
        fail(
            NO_PUT_UNREFERENCED,
            f"{why}: {owner} puts page pfn {key[0]:#x} but holds no reference on it "
            f"(KVM references on it: {held})",
        )
    part.refs = tadd(part.refs, key, -1)
    check_maps_pinned(led, owner)


@contextlib.contextmanager
def operation(owner: str) -> Iterator[None]:
    """``with operation("vcpu0:gpc"):`` the running thread's references taken inside belong
    to ``owner`` (the refcount primitives read it: no kernel function passes it), and when
    the block returns ``owner`` must hold none (I1). A block left by an exception (a
    finding, which ends the execution) checks nothing more."""
    owner_begin(owner)
    try:
        yield
    except BaseException:
        leave_owner(owner, unwinding=True)
        raise
    owner_end(owner)


def owner_begin(owner: str) -> None:
    """``owner`` enters an operation that may take references (a fault, a map); the
    running thread's references belong to it until :func:`owner_end` (prefer
    ``with operation(owner):``)."""
    enter_owner(owner)
    led = current_ledger()
    if led is not None:
        part = led.part(owner)
        part.active = part.active | {owner}
        if part.looked:
            part.looked = ()


def owner_end(owner: str) -> None:
    """``owner``'s operation returned: from now on it must hold no reference (I1)."""
    leave_owner(owner)
    led = current_ledger()
    if led is not None:
        part = led.part(owner)
        part.active = part.active - {owner}
        if part.looked:
            part.looked = ()  # what the operation saw: dead now, must not split states
        check_owner_leaks(led, owner)


def check_owner_leaks(led: KvmLedger, owner: str) -> None:
    """I1 at the step an owner becomes idle: record a leak for every reference it holds.

    An idle owner's references cannot change (only its own thread takes and drops them), so
    a leak that is not reported here stays until the end and the final check reports it.
    The deferral of :func:`teardown_owns` is kept: whether a teardown that waits for the
    page's references has begun is decided at this step (the teardown flag only goes from
    False to True, and this step depends on its write), so a leak is reported once, by its
    first consequence: here when the owner returns before the teardown begins, as the
    teardown's hang (or the final check) when it returns after.
    """
    for (pfn, o), n in led.part(owner).refs:
        if o != owner or n <= 0:
            continue
        pgmap = device_pgmap(pfn)
        if pgmap is not None:
            depends_on(pgmap, "teardown")
        if teardown_owns(pfn):
            continue
        record(led, EV_LEAK, pfn, leak_sentence(owner, n, pfn), owner)


def leak_sentence(owner: str, n: int, pfn: int) -> str:
    """I1's sentence: an operation that returned holding references (its owner is the
    finding's ``details["leaked_by"]``)."""
    return f"{owner} returned still holding {n} reference(s) on pfn {pfn:#x} (leaked)"


def fault_retried() -> None:
    """A fault returned RET_PF_RETRY: it overlapped an invalidation."""
    led = current_ledger()
    if led is not None:
        led.retries = led.retries + 1


def kernel_mapped(kvm: Kvm, host: Any, event: str, km: Any) -> None:
    """The host's hook: a kernel mapping (:mod:`pfnlab.mm.kmap`) of ``km.owner`` was made
    (``map``), used (``access``) or is being torn down (``unmap``). Nothing for the host's
    own owners. KVM's mappings (``kvm_vcpu_map``) hold no reference of their own: I9
    checks, at every access and unmap, that the owner holds one on the page."""
    owner = km.owner
    if owner in host.host_owners:
        return
    led = kvm.ledger
    entry = (owner, -1 if km.gfn is None else km.gfn, km.pfn)
    if event == MAP:
        part = led.part(owner)
        part.maps = part.maps | {entry}
        why = freed_reason(km.pfn, kvm.norefs)
        if why:
            record(led, EV_SPTE_TO_FREED, km.pfn,
                    f"{owner} kvm_vcpu_map of {map_what(entry)} refers to pfn {km.pfn:#x} "
                    f"but {why}")
    elif event == ACCESS:
        check_maps_pinned(led, owner)
    else:
        check_maps_pinned(led, owner)
        part = led.part(owner)
        part.maps = part.maps - {entry}


def map_what(entry: tuple[str, int, int]) -> str:
    """``gfn 0x1`` for a mapping of a guest page, else ``pfn 0x104``."""
    return f"gfn {entry[1]:#x}" if entry[1] >= 0 else f"pfn {entry[2]:#x}"


def check_maps_pinned(led: KvmLedger, owner: str) -> None:
    """I9 at the step it can arise: every live map of ``owner`` on a memmap page holds a
    reference of ``owner`` on the (head) page. Only ``owner``'s thread changes its maps and
    references, so program order fixes what this sees."""
    pages = memmap()
    part = led.part(owner)
    for o, gfn, pfn in sorted(part.maps):
        if o != owner:
            continue
        page = pages.get(pfn)
        if page is None:
            continue
        if tget(part.refs, (head_pfn(page), o)) <= 0:
            what = f"gfn {gfn:#x} (pfn {pfn:#x})" if gfn >= 0 else f"pfn {pfn:#x}"
            record(led, EV_MAP_UNPINNED, pfn, f"{o} maps {what} without holding a reference")

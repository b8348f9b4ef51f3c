"""What a scenario is, and the pieces every scenario builds from.

A :class:`Scenario` is a named, sized recipe: ``build(variant, sizes)`` runs inside the
engine's ``Execution`` (it is the body of ``Program.build``) and returns an
:class:`~pfnlab.explore.Instance` with threads made of the model's thread bodies
(:mod:`pfnlab.kvm.threads`, :mod:`pfnlab.mm.dax`, ...), the invariants and final checks of
the properties it checks (ids from :mod:`pfnlab.properties`) and its goals.
:meth:`Scenario.program` validates the sizes, installs the variant's
:class:`~pfnlab.kernel.world.World` (overrides and mm version) before ``build`` runs, and
returns the :class:`~pfnlab.explore.Program` the search explores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, overload

from pfnlab.explore import (
    Check,
    Ghost,
    Instance,
    Program,
    Shared,
    ThreadBody,
    context,
    set_context,
)
from pfnlab.kernel.variant import Variant
from pfnlab.kernel.world import World
from pfnlab.kvm import Kvm, Memslot, Vcpu, create_vm, ghost, vcpu_exit, vcpu_fault
from pfnlab.kvm.kvm import check_gfn
from pfnlab.kvm.pfncache import check_secondary_coherent
from pfnlab.mm import Host, Region
from pfnlab.properties import (
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
    NO_METADATA_AFTER_TEARDOWN,
    NO_PUT_UNREFERENCED,
    NO_SPTE_TO_FREED,
    NO_STALE_SPTE,
    NOTIFIER_BALANCED,
    PIN_HELD,
    PROPERTIES,
    READONLY_RESPECTED,
    REFS_BALANCED,
    SECONDARY_COHERENT,
    TEARDOWN_TERMINATES,
)

#: goal names shared by scenarios
GOAL_TEARDOWN = "teardown-completes"
GOAL_OVERLAP = "fault-overlaps-invalidation"


#: the most vCPUs a scenario may have (3 vCPUs by 3 pages already takes minutes)
MAX_VCPUS = 16
#: the largest any other size may be (pages, faults, huge pages, ...)
MAX_SIZE = 64


def size_cap(name: str) -> int:
    """The largest value size ``name`` may take (checked by :meth:`Scenario.sizes`)."""
    return MAX_VCPUS if name == "vcpus" else MAX_SIZE


@dataclass(frozen=True)
class Scenario:
    """A scenario: default sizes, the properties it checks, its goals and its builder."""

    name: str
    summary: str
    params: dict[str, int]
    properties: tuple[str, ...]
    goals: tuple[str, ...]
    build: Callable[[Variant, dict[str, int]], Instance]

    def __post_init__(self) -> None:
        unknown = [p for p in self.properties if p not in PROPERTIES]
        if unknown:
            raise ValueError(f"scenario {self.name!r}: unknown property ids {unknown}")
        for k, v in self.params.items():  # defaults obey the rules --size does
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= size_cap(k):
                raise ValueError(
                    f"scenario {self.name!r}: default size {k}={v!r} must be a whole number "
                    f"from 1 to {size_cap(k)} (the same rule as --size)")

    def sizes(self, **sizes: int) -> dict[str, int]:
        """The default sizes updated with ``sizes``; ValueError naming the valid ones."""
        valid = ", ".join(f"{k} (default {v})" for k, v in self.params.items())
        out = dict(self.params)
        for k, v in sizes.items():
            if k not in self.params:
                raise ValueError(
                    f"scenario {self.name!r} has no size {k!r}; valid sizes: {valid}"
                )
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(
                    f"scenario {self.name!r}: size {k}={v!r} must be an integer >= 1; "
                    f"valid sizes: {valid}"
                )
            cap = size_cap(k)
            if v > cap:
                raise ValueError(
                    f"scenario {self.name!r}: size {k}={v} is above the cap of {cap} "
                    f"({MAX_VCPUS} vCPUs, {MAX_SIZE} for other sizes: a state space grows "
                    "exponentially with each size)"
                )
            out[k] = v
        return out

    @overload
    def program(self, variant: Variant, **sizes: int) -> Program: ...

    @overload
    def program(self, variant: Variant, mm: str | None = None, **sizes: int) -> Program: ...

    def program(self, variant: Variant, mm: object = None, **sizes: int) -> Program:
        """The program ``<variant>/<scenario>`` at these sizes (defaults for the rest).

        ``mm`` selects the host mm the KVM design runs on (:func:`mm_version`): ``None``
        (default) or ``"5.4"``, the mm of the 2019 thread; ``"5.18"``; ``"variant"``, the
        variant's own ``mm_version``. Comparing designs on the same mm is the default.
        (The first overload only lets callers pass a ``dict[str, int]`` of sizes.)
        """
        merged = self.sizes(**sizes)
        mm_ver = mm_version(variant, mm)
        build = self.build

        def run() -> Instance:
            set_context(variant.world(mm_version=mm_ver))
            return build(variant, merged)

        return Program(f"{variant.name}/{self.name}", run)


#: Every registered scenario, by name, in the order the checker reports them.
SCENARIOS: dict[str, Scenario] = {}


def register_scenario(sc: Scenario) -> Scenario:
    """Add ``sc`` to :data:`SCENARIOS` (ValueError if the name is taken)."""
    if sc.name in SCENARIOS:
        raise ValueError(f"scenario {sc.name!r} is defined twice")
    SCENARIOS[sc.name] = sc
    return sc


def scenario(
    name: str,
    *,
    summary: str = "",
    sizes: dict[str, int] | None = None,
    properties: Iterable[str] = (),
    goals: Iterable[str] = (),
) -> Callable[[Callable[[Variant, dict[str, int]], Instance]], Scenario]:
    """Decorator: declare and register a scenario whose builder is the decorated function.

    The builder ``build(variant, sizes)`` runs at the start of every execution: it makes
    the host (:class:`~pfnlab.mm.Host`), the VM (:func:`vm_on`), the threads, and returns
    :func:`instance` (or an :class:`~pfnlab.explore.Instance`). ``sizes`` are the default
    sizes (``--size NAME=N`` changes them), ``properties`` the ids checked (built-in ones
    from :data:`~pfnlab.properties.PROPERTIES`, or your own from
    :func:`~pfnlab.properties.define_property`), ``goals`` the names of the "sometimes"
    goals the builder returns (a pass with a goal never reached is reported not covered).
    The summary defaults to the builder's docstring's first line.
    """

    def deco(build: Callable[[Variant, dict[str, int]], Instance]) -> Scenario:
        doc = (build.__doc__ or "").strip().splitlines()
        return register_scenario(Scenario(
            name=name,
            summary=summary or (doc[0] if doc else name),
            params=dict(sizes or {}),
            properties=tuple(properties),
            goals=tuple(goals),
            build=build,
        ))

    return deco


#: host mm versions a scenario can run on (see :func:`mm_version`)
MM_VERSIONS = ("5.4", "5.18")
#: the default: the mm of the 2019 thread (memunmap_pages waits for page references)
DEFAULT_MM = "5.4"


def mm_version(variant: Variant, mm: object) -> str:
    """The mm version for ``mm``: ``None`` → 5.4, "5.4"/"5.18", "variant" → the variant's.

    "5.4": ``memunmap_pages`` drops the idle page references and waits for the rest (the
    2019 hang). "5.18" (27674ef6c73f): it waits only for the pgmap's percpu_ref and removes
    the memmap whatever the page refcounts are. ValueError naming the valid values.
    """
    if mm is None:
        return DEFAULT_MM
    if mm == "variant":
        return variant.mm_version
    if isinstance(mm, str) and mm in MM_VERSIONS:
        return mm
    valid = ", ".join(repr(v) for v in (None, *MM_VERSIONS, "variant"))
    raise ValueError(f"unknown mm {mm!r}; valid: {valid}")


# --------------------------------------------------------------------------- progress
class Progress(Shared):
    """Ghost milestones reached by the threads (for goals): ``done`` is a set of names."""

    done: Ghost[frozenset[str]] = Ghost(frozenset())


def reached(progress: Progress, milestone: str) -> None:
    """Record that ``milestone`` happened (ghost: no scheduling point)."""
    progress.done = progress.done | {milestone}


# --------------------------------------------------------------------------- set-up
@dataclass
class Setup:
    """What a scenario's set-up made: the host, the VM, its vCPUs, the regions."""

    host: Host
    kvm: Kvm
    vcpus: list[Vcpu]
    regions: list[Region]
    progress: Progress

    @property
    def world(self) -> World:
        """The running execution's World."""
        w: World = context()
        return w


def vm_on(
    host: Host,
    regions: Iterable[Region],
    vcpus: int,
    *,
    dirty_logging: bool = False,
    vcpus_hold_vm: bool = True,
    gfns: Iterable[int] | None = None,
) -> Setup:
    """A VM with one memslot per region and ``vcpus`` vCPUs.

    Memslot placement: the first region's slot starts at gfn 0 and each next one at the
    first huge-aligned gfn after the previous slot (a 2M boundary: ``host.pmd_pages``), as
    a VMM lays out guest memory so that huge pages can map it; so a second one-page region
    starts at gfn 2, not 1. ``gfns=[...]`` gives each slot's base gfn instead (slots must
    not overlap). A fault on a gfn in no slot is refused at set-up (``vcpu_faults``) or
    when it runs (``vcpu_fault``), naming the slots.

    Installs host and VM into the World that :meth:`Scenario.program` set.
    """
    regs = list(regions)
    bases = list(gfns) if gfns is not None else None
    if bases is not None and len(bases) != len(regs):
        raise ValueError(f"vm_on: {len(bases)} gfns for {len(regs)} regions")
    slots: list[Memslot] = []
    gfn = 0
    for i, r in enumerate(regs):
        if bases is not None:
            gfn = bases[i]
            for sl in slots:
                if gfn < sl.base_gfn + sl.npages and sl.base_gfn < gfn + r.npages:
                    raise ValueError(f"vm_on: the slot at gfn {gfn:#x} overlaps slot {sl.id} "
                                     f"(gfns {sl.base_gfn:#x}-{sl.base_gfn + sl.npages - 1:#x})")
        slots.append(Memslot(i, gfn, r.npages, r.start, dirty_logging=dirty_logging))
        gfn += r.npages
        gfn = -(-gfn // host.pmd_pages) * host.pmd_pages  # keep slots huge-aligned
    kvm, vs = create_vm(
        host.mm, slots, vcpus=vcpus, hpage_pages=host.pmd_pages, vcpus_hold_vm=vcpus_hold_vm,
        host=host,
    )
    w: Any = context()
    w.host = host
    w.kvm = kvm
    return Setup(host, kvm, vs, regs, Progress("progress"))


def vm_on_devdax(
    pages: int, vcpus: int, *, remapped: bool = False, dirty_logging: bool = False
) -> tuple[Setup, Any]:
    """A host with one device-dax region ``dax0`` of ``pages`` and a VM over it.

    Returns the :class:`Setup` and the dax device (what ``dev_dax_unbind`` tears down);
    ``remapped`` maps the device with remap_pfn_range (VM_PFNMAP), ``dirty_logging`` turns
    dirty logging on in the memslot.
    """
    host = Host()
    dax = host.add_devdax(pages, name="dax0", remapped=remapped)
    s = vm_on(host, [dax], vcpus, dirty_logging=dirty_logging)
    assert dax.dax is not None
    return s, dax.dax


def norefs(host: Host) -> frozenset[int]:
    """Head pfns at refcount 0 at set-up (non-refcounted pages; exempt from I5's test)."""
    return ghost.refcount_zero_heads(host)


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
    """
    inv, fin = checks(s, props)
    return Instance(threads=threads, invariants=[*inv, *invariants],
                    final_checks=[*fin, *final_checks], goals=list(goals))


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


def vcpu_faults(s: Setup, i: int, gfns: list[int], *, write: bool = True,
                exit_vcpu: bool = False) -> list[Callable[[], object]]:
    """Thread: vCPU ``i`` faults on each gfn in turn (then closes its file).

    A list of operations, one per fault (and the exit): between two faults the vCPU is
    back in the guest and holds nothing of the last one, so the engine identifies its
    state by the faults left (see :mod:`pfnlab.explore.threadstate`)."""
    vcpu = s.vcpus[i]
    for gfn in gfns:
        check_gfn(s.kvm, gfn)

    def fault(gfn: int) -> Callable[[], object]:
        return lambda: vcpu_fault(vcpu, gfn, write)

    ops = [fault(gfn) for gfn in gfns]
    if exit_vcpu:
        ops.append(lambda: vcpu_exit(vcpu))
    return ops


def own_gfns(i: int, vcpus: int, pages: int, faults: int) -> list[int]:
    """vCPU ``i``'s gfns: ``i, i + vcpus, ...`` modulo ``pages``, ``faults`` of them."""
    return [(i + k * vcpus) % pages for k in range(faults)]


def goal_map_during_invalidation(s: Setup) -> Check:
    """Goal: a kvm_vcpu_map mapping is live while an invalidation has been announced."""
    led = s.kvm.ledger
    return Check(
        GOAL_MAP_OVERLAP,
        lambda: bool(ghost.observe(led, "maps")) and ghost.observe(led, "notifier_starts") > 0,
    )


GOAL_MAP_OVERLAP = "map-live-during-invalidation"


def with_vcpus(
    s: Any,
    sz: dict[str, int],
    first: Mapping[str, ThreadBody],
    gfns_of: Callable[[int], list[int]] | None = None,
    exit_vcpu: bool = False,
) -> dict[str, ThreadBody]:
    """The ``first`` threads (teardowns: listed first, so the search's first execution runs
    them to the end), then one fault thread per vCPU, on its own gfns unless ``gfns_of(i)``
    says otherwise."""
    threads: dict[str, ThreadBody] = dict(first)
    n = sz["vcpus"]
    for i in range(n):
        gfns = gfns_of(i) if gfns_of else own_gfns(i, n, sz["pages"], sz["faults"])
        threads[s.vcpus[i].name] = vcpu_faults(s, i, gfns, exit_vcpu=exit_vcpu)
    return threads


def teardown_goals(s: Any) -> list[Check]:
    """The goals of a scenario with a teardown and faults: both happen, and overlap."""
    return [goal_reached(s, GOAL_TEARDOWN), goal_overlap(s)]

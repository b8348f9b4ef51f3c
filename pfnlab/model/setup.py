"""The set-up every scenario builds from: a VM over host regions, vCPU fault threads,
milestones for goals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pfnlab.explore import Ghost, Shared, ThreadBody, context
from pfnlab.kernel.world import World
from pfnlab.kvm import Kvm, Memslot, Vcpu, create_vm, ghost, vcpu_exit, vcpu_fault
from pfnlab.kvm.kvm import check_gfn
from pfnlab.mm import Host, Region


class Progress(Shared):
    """Ghost milestones reached by the threads (for goals): ``done`` is a set of names."""

    done: Ghost[frozenset[str]] = Ghost(frozenset())


def reached(progress: Progress, milestone: str) -> None:
    """Record that ``milestone`` happened (ghost: no scheduling point)."""
    progress.done = progress.done | {milestone}


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

"""Kernel mappings of a pfn's memory: ``kmap``/``kunmap``, ``memremap``/``memunmap``, and
an access through them.

``kvm_vcpu_map`` reaches a guest page's memory this way: ``kmap(page)`` for a pfn with a
memmap, ``memremap(pfn_to_hpa(pfn), PAGE_SIZE, MEMREMAP_WB)`` for one without (device
memory KVM found through a PFNMAP). The mapping holds no reference: whoever maps keeps the
page alive by other means (KVM: the reference ``gfn_to_pfn`` took, from map to unmap), and
that is what the VM's ledger checks (I9). These primitives show every mapping made, used
and torn down to the host's ``map_hooks`` (no steps), so no caller, base or override,
records mappings by hand and none can forget to.

The ``owner`` and ``gfn`` arguments are the model's attribution, not kernel arguments: who
holds the mapping (by default the running thread's operation, ``vcpu0:map``) and, for a
guest page, which gfn it maps (for reports).

``pfnlab.mm.memremap`` is the function (kernel/iomem.c), as the kernel names it; the model
of mm/memremap.c is imported with ``from pfnlab.mm.memremap import ...``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pfnlab.explore import context
from pfnlab.explore.runtime import hide_from_traces
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.operation import current_owner
from pfnlab.mm.page import Page


class KernelMap(NamedTuple):
    """The kernel virtual address a ``kmap``/``memremap`` returned: of ``pfn``'s memory,
    through its ``page`` (None: ``memremap`` of a pfn without a memmap)."""

    pfn: int
    page: Page | None
    owner: str
    gfn: int | None = None


#: the hook events: a mapping made, memory accessed through it, a mapping torn down
MAP, ACCESS, UNMAP = "map", "access", "unmap"


def run_map_hooks(event: str, km: KernelMap) -> None:
    """Ledger (no steps): run the host's ``map_hooks`` for ``event`` on ``km``."""
    ctx = context()
    h = getattr(ctx, "host", None) if ctx is not None else None
    for hook in getattr(h, "map_hooks", ()):
        hook(event, km)


@kfunc
def kmap(page: Page, owner: str | None = None, gfn: int | None = None) -> KernelMap:
    """include/linux/highmem.h v5.4: the page's kernel address (page_address on x86-64)."""
    km = KernelMap(page.pfn, page, current_owner() if owner is None else owner, gfn)
    run_map_hooks(MAP, km)
    return km


@kfunc
def kunmap(km: KernelMap) -> None:
    """include/linux/highmem.h v5.4: end a kmap (nothing to undo on x86-64)."""
    run_map_hooks(UNMAP, km)


@kfunc
def memremap(pfn: int, owner: str | None = None, gfn: int | None = None) -> KernelMap:
    """kernel/iomem.c v5.4 memremap(pfn_to_hpa(pfn), PAGE_SIZE, MEMREMAP_WB): a mapping of
    memory that has no memmap."""
    km = KernelMap(pfn, None, current_owner() if owner is None else owner, gfn)
    run_map_hooks(MAP, km)
    return km


@kfunc
def memunmap(km: KernelMap) -> None:
    """kernel/iomem.c v5.4: end a memremap."""
    run_map_hooks(UNMAP, km)


def mapped_access(km: KernelMap) -> None:
    """A load through ``km``: one access to the page's memory.

    It reads ``Page.data`` (a scheduling point), so after the memmap is gone it is a
    use-after-free finding; memory without a memmap has no ``struct page`` to model. The
    host's ``map_hooks`` see it (``ACCESS``) after the access. (Traces name the caller:
    this file is hidden from them, like a descriptor's.)"""
    page: Any = km.page
    if page is not None:
        _ = page.data
    run_map_hooks(ACCESS, km)


hide_from_traces(__file__)

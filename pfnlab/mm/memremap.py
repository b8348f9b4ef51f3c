"""``struct dev_pagemap``: the percpu_ref that pins a ZONE_DEVICE range, and its teardown.

The percpu_ref is one field ``ref = (count, dead)``: ``count`` includes the initial
reference that ``percpu_ref_kill`` drops, and ``dead`` is ``__PERCPU_REF_DEAD``. Keeping
both in one field makes ``percpu_ref_tryget_live`` one atomic step, as the kernel's RCU-sched
protocol makes it linearise either before or after the kill. The release callback
(``dev_pagemap_percpu_release``) runs synchronously when the count reaches zero and
completes ``done``.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import Field, Ghost, Shared, atomic, context, fail, wait_until
from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.memmap import ONLINE, arch_add_memory, arch_remove_memory, host, pfn_to_page
from pfnlab.mm.owners import BASELINE
from pfnlab.mm.page import ZONE_DEVICE, put_page
from pfnlab.mm.props import PGMAP_REF_BALANCE, TEARDOWN_TERMINATES

MEMORY_DEVICE_DEVDAX = "devdax"
MEMORY_DEVICE_FS_DAX = "fsdax"



class DevPagemap(Shared):
    """A ``struct dev_pagemap`` over ``[start_pfn, start_pfn + nr_pages)``."""

    ref: Field[tuple[int, bool]] = Field(
        (1, False)
    )  # (percpu_ref count incl. the initial ref, __PERCPU_REF_DEAD)
    done: Field[bool] = Field(False)  # struct completion done
    #: ledger: a teardown that waits for this pgmap's page references has begun
    #: (memunmap_pages, fsdax layout breaking); checks leave leaks on it to the teardown
    teardown: Ghost[bool] = Ghost(False)

    def __init__(self, name: str, type: str, start_pfn: int, nr_pages: int) -> None:
        super().__init__(f"pgmap:{name}")
        self.type = type
        self.start_pfn = start_pfn
        self.nr_pages = nr_pages
        # FS_DAX (and DEVICE_PRIVATE) pages are devmap-managed: free at refcount 1
        self.devmap_managed = type == MEMORY_DEVICE_FS_DAX

    def covers(self, pfn: int) -> bool:
        """Whether ``pfn`` is in this pgmap's range (immutable; no scheduling point)."""
        return self.start_pfn <= pfn < self.start_pfn + self.nr_pages

    # for checks and tests: no scheduling points
    def peek_count(self) -> int:
        """The percpu_ref count, without a scheduling point."""
        return int(self.peek("ref")[0])

    def peek_live(self) -> bool:
        """Whether the ref has not been killed, without a scheduling point."""
        return not self.peek("ref")[1]


# --------------------------------------------------------------------------- percpu_ref
@kfunc
def percpu_ref_tryget_live(pgmap: DevPagemap) -> bool:
    """include/linux/percpu-refcount.h v5.4: get unless the ref is dead (killed)."""
    ok: bool = atomic(pgmap, "ref", lambda r: ((r[0] + 1, r[1]), True) if not r[1] else (r, False))
    return ok


@kfunc
def percpu_ref_get_many(pgmap: DevPagemap, nr: int) -> None:
    """include/linux/percpu-refcount.h v5.4: add ``nr`` references."""
    atomic(pgmap, "ref", lambda r: ((r[0] + nr, r[1]), None))


@kfunc
def percpu_ref_put_many(pgmap: DevPagemap, nr: int) -> None:
    """include/linux/percpu-refcount.h v5.4: drop ``nr``; the release runs at zero."""
    new: int = atomic(pgmap, "ref", lambda r: ((r[0] - nr, r[1]), r[0] - nr))
    if new < 0:
        fail(PGMAP_REF_BALANCE, f"percpu_ref_put on {pgmap.name} below zero ({new})")
    if new == 0:
        dev_pagemap_percpu_release(pgmap)


@kfunc
def percpu_ref_kill(pgmap: DevPagemap) -> None:
    """include/linux/percpu-refcount.h v5.4: mark dead, drop the initial reference."""
    new: int = atomic(pgmap, "ref", lambda r: ((r[0] - 1, True), r[0] - 1))
    if new == 0:
        dev_pagemap_percpu_release(pgmap)


@kfunc
def dev_pagemap_percpu_release(pgmap: DevPagemap) -> None:
    """mm/memremap.c v5.4: complete(&pgmap->done)."""
    pgmap.done = True


# --------------------------------------------------------------------------- lookup
@kfunc
def get_dev_pagemap(pfn: int, pgmap: DevPagemap | None = None) -> DevPagemap | None:
    """mm/memremap.c v5.4: reuse ``pgmap`` if it covers pfn, else xa_load + tryget_live.

    Returns the pgmap with one more reference on it (the caller puts it), or NULL: no
    device memory there, or its teardown has begun (the ref is dead)."""
    if pgmap is not None:
        if pgmap.covers(pfn):
            return pgmap
        put_dev_pagemap(pgmap)
    found: DevPagemap | None = host().pgmaps.get(pfn)
    if found is not None and not percpu_ref_tryget_live(found):
        found = None
    return found


@kfunc
def put_dev_pagemap(pgmap: DevPagemap | None) -> None:
    """include/linux/memremap.h v5.4: percpu_ref_put(pgmap->ref) if pgmap."""
    if pgmap is not None:
        percpu_ref_put_many(pgmap, 1)


# --------------------------------------------------------------------------- set-up
def memremap_pages(h: Any, pgmap: DevPagemap) -> None:
    """mm/memremap.c v5.4 (set-up only): memmap for the range, pages at 1, one ref each."""
    if pgmap.devmap_managed:
        h.devmap_managed_key = True  # devmap_managed_enable_get
    for pfn in range(pgmap.start_pfn, pgmap.start_pfn + pgmap.nr_pages):
        if pfn in h.pgmaps:
            raise ValueError("Conflicting mapping in same section")
        h.pgmaps[pfn] = pgmap  # xa_store_range(&pgmap_array, ...)
    sec = arch_add_memory(h, pgmap.start_pfn, pgmap.nr_pages, device=True)
    assert sec.state != ONLINE  # ZONE_DEVICE memory is never onlined
    memmap_init_zone_device(h, pgmap)
    percpu_ref_get_many(pgmap, pgmap.nr_pages)


def memmap_init_zone_device(h: Any, pgmap: DevPagemap) -> None:
    """mm/page_alloc.c v5.4 (set-up only): refcount 1, PG_reserved, ZONE_DEVICE, pgmap."""
    for pfn in range(pgmap.start_pfn, pgmap.start_pfn + pgmap.nr_pages):
        page = h.memmap[pfn]
        page.refcount = 1
        page.reserved = True
        page.zone = ZONE_DEVICE
        page.pgmap = pgmap
        page.owners = ((BASELINE, 1),)


# --------------------------------------------------------------------------- teardown
@kfunc
def dev_pagemap_kill(pgmap: DevPagemap) -> None:
    """mm/memremap.c v5.4: ops->kill or percpu_ref_kill (pmem's queue freeze = same model)."""
    percpu_ref_kill(pgmap)


@kfunc
def dev_pagemap_cleanup(pgmap: DevPagemap) -> None:
    """mm/memremap.c v5.4: wait_for_completion(&pgmap->done) (the 2019 hang), ref exit."""
    wait_until(
        lambda: pgmap.done,
        what=f"{pgmap.name} done (dev_pagemap_cleanup)",
        prop=TEARDOWN_TERMINATES,
    )


@kfunc
def memunmap_pages(pgmap: DevPagemap) -> None:
    """mm/memremap.c v5.4: kill the pgmap, put every page, wait for references, remove memmap.

    With ``mm_version == "5.18"`` (27674ef6c73f): kill, drop the per-page pgmap references in
    bulk, wait for ``done`` and remove the memmap whatever the page refcounts are.
    """
    start, nr = pgmap.start_pfn, pgmap.nr_pages
    pgmap.teardown = True
    if context().mm_version == "5.4":
        dev_pagemap_kill(pgmap)
        for pfn in range(start, start + nr):
            put_page(pfn_to_page(pfn), BASELINE)
        dev_pagemap_cleanup(pgmap)
    else:
        percpu_ref_kill(pgmap)
        percpu_ref_put_many(pgmap, nr)
        wait_until(
            lambda: pgmap.done,
            what=f"{pgmap.name} done (memunmap_pages)",
            prop=TEARDOWN_TERMINATES,
        )
    arch_remove_memory(start, nr)

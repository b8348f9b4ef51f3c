"""mm/memremap.c v5.4: ``memremap_pages`` and the teardown of a ZONE_DEVICE range.

``struct dev_pagemap`` and its percpu_ref (``get_dev_pagemap``, ``put_dev_pagemap``) are in
:mod:`pfnlab.mm.pagemap`, below the page's get/put family that puts them; they are
re-exported here (``from pfnlab.mm.memremap import DevPagemap`` as before).
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import context, wait_until
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.roles import refcount_api
from pfnlab.mm.memmap import ONLINE, arch_add_memory, arch_remove_memory, pfn_to_page
from pfnlab.mm.owners import BASELINE
from pfnlab.mm.page import ZONE_DEVICE, put_page
from pfnlab.mm.pagemap import (  # re-exported: pfnlab.mm.memremap.DevPagemap as before
    MEMORY_DEVICE_DEVDAX,
    MEMORY_DEVICE_FS_DAX,
    DevPagemap,
    dev_pagemap_percpu_release,
    get_dev_pagemap,
    percpu_ref_get_many,
    percpu_ref_kill,
    percpu_ref_put_many,
    percpu_ref_tryget_live,
    put_dev_pagemap,
)
from pfnlab.mm.props import TEARDOWN_TERMINATES

__all__ = [
    "MEMORY_DEVICE_DEVDAX", "MEMORY_DEVICE_FS_DAX", "TEARDOWN_TERMINATES", "DevPagemap",
    "dev_pagemap_percpu_release", "get_dev_pagemap", "percpu_ref_get_many", "percpu_ref_kill",
    "percpu_ref_put_many", "percpu_ref_tryget_live", "put_dev_pagemap",
]

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
@refcount_api()
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

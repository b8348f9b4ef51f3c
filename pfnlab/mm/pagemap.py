"""include/linux/memremap.h v5.4: ``struct dev_pagemap``, the percpu_ref that pins a
ZONE_DEVICE range, and ``get_dev_pagemap``/``put_dev_pagemap``.

The percpu_ref is one field ``ref = (count, dead)``: ``count`` includes the initial
reference that ``percpu_ref_kill`` drops, and ``dead`` is ``__PERCPU_REF_DEAD``. Keeping
both in one field makes ``percpu_ref_tryget_live`` one atomic step, as the kernel's RCU-sched
protocol makes it linearise either before or after the kill. The release callback
(``dev_pagemap_percpu_release``) runs synchronously when the count reaches zero and
completes ``done``. Setting a range up and tearing it down is :mod:`pfnlab.mm.memremap`.
"""

from __future__ import annotations

from pfnlab.explore import Field, Ghost, Shared, atomic, fail
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.ordering import orders
from pfnlab.kernel.roles import refcount_api
from pfnlab.mm.hooks import host
from pfnlab.mm.props import PGMAP_REF_BALANCE

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


orders(DevPagemap, "ref", lockless=True,
       primitive="percpu_ref_tryget_live() in get_dev_pagemap(), and memunmap_pages()'s wait",
       how="a lookup takes the pgmap reference only while the ref is live; "
           "memunmap_pages() kills it (percpu_ref_kill) and waits in dev_pagemap_cleanup() "
           "for the references taken before, so a lookup either fails or keeps the device "
           "until it puts its reference",
       where="mm/memremap.c (get_dev_pagemap, memunmap_pages), v5.4")

# --------------------------------------------------------------------------- percpu_ref
@refcount_api()
@kfunc
def percpu_ref_tryget_live(pgmap: DevPagemap) -> bool:
    """include/linux/percpu-refcount.h v5.4: get unless the ref is dead (killed)."""
    ok: bool = atomic(pgmap, "ref", lambda r: ((r[0] + 1, r[1]), True) if not r[1] else (r, False))
    return ok


@refcount_api()
@kfunc
def percpu_ref_get_many(pgmap: DevPagemap, nr: int) -> None:
    """include/linux/percpu-refcount.h v5.4: add ``nr`` references."""
    atomic(pgmap, "ref", lambda r: ((r[0] + nr, r[1]), None))


@refcount_api()
@kfunc
def percpu_ref_put_many(pgmap: DevPagemap, nr: int) -> None:
    """include/linux/percpu-refcount.h v5.4: drop ``nr``; the release runs at zero."""
    new: int = atomic(pgmap, "ref", lambda r: ((r[0] - nr, r[1]), r[0] - nr))
    if new < 0:
        fail(PGMAP_REF_BALANCE, f"percpu_ref_put on {pgmap.name} below zero ({new})")
    if new == 0:
        dev_pagemap_percpu_release(pgmap)


@refcount_api()
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
@refcount_api()
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


@refcount_api()
@kfunc
def put_dev_pagemap(pgmap: DevPagemap | None) -> None:
    """include/linux/memremap.h v5.4: percpu_ref_put(pgmap->ref) if pgmap."""
    if pgmap is not None:
        percpu_ref_put_many(pgmap, 1)

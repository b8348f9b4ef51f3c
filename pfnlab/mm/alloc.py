"""The page allocator, on pools of free pages (``Host.add_free``, ``add_anon(refault=N)``).

A free page is a page of RAM at refcount 0 (the model's free state: ``__put_page`` leaves
a page there). Allocation takes the first free page of the pool with one atomic step, as
the buddy allocator hands out a page at refcount 1 (``set_page_refcounted``).
"""

from __future__ import annotations

from pfnlab.explore import atomic
from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.host import PagePool
from pfnlab.mm.owners import ALLOC
from pfnlab.mm.page import Page, _ledger


@kfunc
def alloc_page(pool: PagePool, owner: str = ALLOC) -> Page | None:
    """mm/page_alloc.c v5.4 (on a pool from ``Host.add_free``): a free page of ``pool``,
    now at refcount 1 (``set_page_refcounted``); NULL if none is free."""
    for page in pool.pages:
        got: bool = atomic(page, "refcount", lambda c: (1, True) if c == 0 else (c, False))
        if got:
            _ledger(page, 1, owner)
            return page
    return None

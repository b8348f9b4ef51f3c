"""pgmap-rcu: a device's pgmap looked up under RCU while the driver frees it.

``get_dev_pagemap()`` finds the ``struct dev_pagemap`` of a device pfn with no reference
held: ``xa_load(&pgmap_array, pfn)`` inside ``rcu_read_lock()``, then
``percpu_ref_tryget_live(pgmap->ref)``, which fails once the teardown has killed the ref.
The teardown, ``memunmap_pages()``, kills the ref, waits for the references taken, removes
the memmap and ends with ``pgmap_array_delete()``: the entry is cleared and
``synchronize_rcu()`` waits for every lookup that may have loaded the pointer before the
driver frees the pgmap (``dev_dax_release`` -> ``kfree(dev_dax)``, the pgmap inside it).
Without the grace period (``pgmap-free-no-gp``), or with a lookup outside a read-side
section (``pgmap-lookup-no-rcu``), a lookup that loaded the pointer reads the freed pgmap.
v5.4's order (``pgmap-synchronize-rcu``) holds, and so does freeing the pgmap with
``kfree_rcu`` instead of waiting (``pgmap-kfree-rcu``).
"""

from pfnlab import (
    Check,
    Field,
    Ghost,
    Shared,
    instance,
    kfunc,
    orders,
    scenario,
    variant,
    vm_on,
    world,
)
from pfnlab.mm import (
    Host,
    get_dev_pagemap,
    kfree,
    kfree_rcu,
    memunmap_pages,
    percpu_ref_tryget_live,
    put_dev_pagemap,
    rcu_callback_thread,
    rcu_read_lock,
    rcu_read_unlock,
    synchronize_rcu,
)

PROPERTIES = ["no-metadata-after-teardown", "teardown-terminates"]
FREED = ("no-metadata-after-teardown", "pgmap freed with its dev_dax (dev_dax_release)")


class PgmapArray(Shared):
    """``pgmap_array`` (mm/memremap.c): the xarray from pfn to pgmap, one entry here."""

    entry = Field(None)


orders(PgmapArray, "entry", lockless=True,
       primitive="rcu_read_lock() around the load and the use, synchronize_rcu() (or "
                 "kfree_rcu) between clearing the entry and the free",
       how="get_dev_pagemap() loads the entry and takes the pgmap's ref inside one RCU "
           "read-side section; pgmap_array_delete() clears the entry and waits for a grace "
           "period, so every lookup that may have loaded the pointer has left its section "
           "before the driver frees the pgmap",
       where="mm/memremap.c (get_dev_pagemap, pgmap_array_delete), v5.4")


class Lookup(Shared):
    """Bookkeeping for the goal (ghost fields: no steps)."""

    loaded = Ghost(False)      # a lookup holds a pgmap pointer it loaded from the array


@scenario("pgmap-lookup-vs-unbind", properties=PROPERTIES,
          goals=["entry-cleared-under-a-lookup"])
def build(variant, sz):
    """a pfn walker looks up a device pfn's pgmap while the driver unbinds the device"""
    host = Host()
    dax = host.add_devdax(1, name="dax0")
    s = vm_on(host, [dax], 1)
    host.removed_by("unbind")
    arr = world().extra["pgmap_array"] = PgmapArray("pgmap_array")
    arr.entry = dax.pgmap  # memremap_pages: xa_store_range(&pgmap_array, ...)
    look = world().extra["lookup"] = Lookup("lookup")

    def walker():
        pgmap = get_dev_pagemap(dax.pfn)
        if pgmap is not None:
            put_dev_pagemap(pgmap)

    def unbind():
        memunmap_pages(dax.pgmap)        # kill, put the pages, wait, remove the memmap
        pgmap_array_delete(arr)          # ... and the array entry, last
        dev_dax_release(dax.pgmap)       # the driver's release frees the pgmap

    cleared = Check("entry-cleared-under-a-lookup",
                    lambda: "the array entry cleared while a lookup holds the pointer it "
                    "loaded" if look.loaded and arr.entry is None else None)
    return instance(s, {"walker": walker, "unbind": unbind, "rcu": rcu_callback_thread},
                    PROPERTIES, [cleared])


def get_dev_pagemap_rcu(pfn, pgmap=None):
    """mm/memremap.c v5.4: the slow path: xa_load under rcu_read_lock, tryget_live."""
    rcu_read_lock()
    found = xa_load(world().extra["pgmap_array"], pfn)
    if found is not None and not percpu_ref_tryget_live(found):
        found = None
    world().extra["lookup"].loaded = False
    rcu_read_unlock()
    return found


def get_dev_pagemap_no_rcu(pfn, pgmap=None):
    """get_dev_pagemap without the read-side section: no grace period waits for it."""
    found = xa_load(world().extra["pgmap_array"], pfn)
    if found is not None and not percpu_ref_tryget_live(found):
        found = None
    world().extra["lookup"].loaded = False
    return found


@kfunc
def xa_load(xa, index):
    """lib/xarray.c v5.4: the entry at ``index`` (the array has one entry here)."""
    entry = xa.entry
    world().extra["lookup"].loaded = entry is not None
    return entry


@kfunc
def pgmap_array_delete(arr):
    """mm/memremap.c v5.4: xa_store_range(&pgmap_array, ..., NULL), then synchronize_rcu()."""
    arr.entry = None
    synchronize_rcu()


def pgmap_array_delete_no_gp(arr):
    """pgmap_array_delete without the grace period."""
    arr.entry = None


@kfunc
def dev_dax_release(pgmap):
    """drivers/dax/bus.c v5.4: kfree(dev_dax), and the pgmap embedded in it."""
    kfree(pgmap, FREED)


def dev_dax_release_rcu(pgmap):
    """dev_dax_release freeing after a grace period (kfree_rcu)."""
    kfree_rcu(pgmap, FREED)


LOOKUP = {"get_dev_pagemap": get_dev_pagemap_rcu}

variant("pgmap-free-no-gp", "v5.4",
        overrides={**LOOKUP, "pgmap_array_delete": pgmap_array_delete_no_gp},
        summary="the array entry cleared with no grace period before the driver's kfree")
variant("pgmap-lookup-no-rcu", "v5.4",
        overrides={"get_dev_pagemap": get_dev_pagemap_no_rcu},
        summary="synchronize_rcu after the entry is cleared, but a lookup outside RCU")
variant("pgmap-synchronize-rcu", "v5.4", overrides=LOOKUP,
        summary="v5.4: rcu_read_lock around the lookup, synchronize_rcu before the kfree")
variant("pgmap-kfree-rcu", "v5.4",
        overrides={**LOOKUP, "pgmap_array_delete": pgmap_array_delete_no_gp,
                   "dev_dax_release": dev_dax_release_rcu},
        summary="no synchronize_rcu: the driver frees the pgmap with kfree_rcu")

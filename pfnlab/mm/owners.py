"""Ledger owners of the references the host itself holds (``Page.owners``).

Every get and put of a page names an owner (the refcount primitives keep ``Page.owners``).
The host's own references carry one of these names; every other owner is a client's -- a
KVM context such as ``vcpu0:fault`` or ``kvm`` -- and the clients' ledgers subscribe to
the refcount primitives (``Host.ref_hooks``) to follow them. A model whose host-side code
takes references under a name of its own declares it with ``Host.host_owner(name)``, so
that no client counts it as its own.
"""

from __future__ import annotations

#: the reference a PTE/PMD mapping holds on its page
MAPPING = "mapping"
#: the page cache's reference (hugetlbfs)
PAGECACHE = "pagecache"
#: a driver's reference on the pages it maps (remap_pfn_range, vm_insert_page)
DRIVER = "driver"
#: the idle reference memmap_init_zone_device gives every device page
BASELINE = "memmap_init"
#: the isolation reference (isolate_lru_page) a migration holds
MIGRATE = "migrate"
#: a newly allocated page's first reference
ALLOC = "alloc"
#: the reference a copy-on-write fault holds on the page it copies (do_wp_page)
COW = "cow"
#: the reference ksmd holds on a page it merges (follow_page)
KSM = "ksm"

#: the host's owners (``Host.host_owners`` starts with these)
HOST_OWNERS = frozenset({MAPPING, PAGECACHE, DRIVER, BASELINE, MIGRATE, ALLOC, COW, KSM})

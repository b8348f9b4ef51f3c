"""Property ids reported by the host mm model (see kernel-semantics.md section 5).

- ``no-put-unreferenced`` (I2): a put on a page with refcount 0, or a get that takes a
  reference on a page whose refcount is 0 (0 -> 1: the page was not live).
- ``no-metadata-after-teardown`` (I3): a ``struct page`` read after ``arch_remove_memory``
  freed the memmap (reported by the engine as a use-after-free under this property id), or
  ``pfn_to_page`` on a pfn that never had a memmap.
- ``pgmap-ref-balance``: a ``percpu_ref`` put below zero (dev_pagemap reference underflow).
"""

NO_PUT_UNREFERENCED = "no-put-unreferenced"
NO_METADATA_AFTER_TEARDOWN = "no-metadata-after-teardown"
PGMAP_REF_BALANCE = "pgmap-ref-balance"

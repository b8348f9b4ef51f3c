"""Property ids reported by the host mm model (the registry is :mod:`pfnlab.properties`).

- ``no-put-unreferenced`` (I2): a put on a page with refcount 0, a get that takes a
  reference on a page whose refcount is 0 (0 -> 1: the page was not live), or a
  ``percpu_ref`` put of a dev_pagemap below zero (``PGMAP_REF_BALANCE``: a pgmap reference
  put that nobody held).
- ``no-metadata-after-teardown`` (I3): a ``struct page`` read after ``arch_remove_memory``
  freed the memmap (reported by the engine as a use-after-free under this property id), or
  ``pfn_to_page`` on a pfn that never had a memmap.
- ``teardown-terminates`` (I8): a teardown wait that never ends (hang).
"""

from pfnlab.properties import NO_METADATA_AFTER_TEARDOWN, NO_PUT_UNREFERENCED, TEARDOWN_TERMINATES

#: a dev_pagemap percpu_ref put below zero is a put of an unheld reference (I2)
PGMAP_REF_BALANCE = NO_PUT_UNREFERENCED

__all__ = [
    "NO_METADATA_AFTER_TEARDOWN",
    "NO_PUT_UNREFERENCED",
    "PGMAP_REF_BALANCE",
    "TEARDOWN_TERMINATES",
]

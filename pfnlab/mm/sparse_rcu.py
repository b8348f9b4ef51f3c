"""Sparse sections under RCU: ``pfn_valid`` against ``section_deactivate`` since v6.8.

5ec8e8ea8b77 ("mm/sparsemem: fix race in accessing memory_section->usage", v6.8,
CVE-2023-52489) clears ``SECTION_HAS_MEM_MAP`` before it frees ``ms->usage``, frees it with
``kfree_rcu`` and reads it in ``pfn_valid`` inside an RCU read-side section
(``rcu_read_lock_sched`` by the time v6.8 was released: "mm, kmsan: fix infinite
recursion due to RCU critical section"). v6.10 ("mm: prevent derefencing NULL ptr in
pfn_section_valid()", CVE-2024-41055) checks the ``READ_ONCE(ms->usage)`` for NULL. The
functions keep their kernel names: a variant runs them in place of the v5.4 ones of
:mod:`pfnlab.mm.sparse` (``overrides=V6_8`` or ``overrides=V6_10``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pfnlab.mm import sparse
from pfnlab.mm.hooks import host
from pfnlab.mm.memmap import ABSENT, SECTION_HAS_MEM_MAP, Section
from pfnlab.mm.props import NO_METADATA_AFTER_TEARDOWN
from pfnlab.mm.rcu import kfree_rcu, rcu_read_lock_sched, rcu_read_unlock_sched


def pfn_valid(pfn: int) -> bool:
    """include/linux/mmzone.h v6.8: valid_section, then pfn_section_valid, under RCU."""
    ms = sparse.__pfn_to_section(pfn)
    if ms is None:
        return False
    rcu_read_lock_sched()
    if not sparse.valid_section(ms):
        rcu_read_unlock_sched()
        return False
    ret = bool(sparse.early_section(ms) or sparse.pfn_section_valid(ms, pfn))
    rcu_read_unlock_sched()
    return ret


def pfn_section_valid(ms: Section, pfn: int) -> bool:
    """include/linux/mmzone.h v6.8: ``test_bit(idx, READ_ONCE(ms->usage)->subsection_map)``."""
    usage = sparse.usage_deref(ms, ms.usage, "pfn_section_valid", pfn)
    return bool(usage.subsection_map >> sparse.subsection_map_index(ms, pfn) & 1)


def pfn_section_valid_null_checked(ms: Section, pfn: int) -> bool:
    """include/linux/mmzone.h v6.10: ``usage ? test_bit(idx, usage->subsection_map) : 0``."""
    usage = ms.usage
    if usage is None:
        return False
    return bool(usage.subsection_map >> sparse.subsection_map_index(ms, pfn) & 1)


def section_deactivate(pfn: int, nr_pages: int) -> None:
    """mm/sparse.c v6.8: an empty section loses SECTION_HAS_MEM_MAP, then kfree_rcu(usage)."""
    ms = host().sections[pfn]
    early = sparse.early_section(ms)
    usage = ms.usage
    mask = ((1 << nr_pages) - 1) << sparse.subsection_map_index(ms, pfn)
    if usage is None or usage.subsection_map & mask != mask:
        return  # WARN: section already deactivated
    usage.subsection_map = usage.subsection_map ^ mask
    empty = usage.subsection_map == 0
    if empty:
        ms.section_mem_map = ms.section_mem_map & ~SECTION_HAS_MEM_MAP
        if not early:
            kfree_rcu(usage, (NO_METADATA_AFTER_TEARDOWN, f"{ms.name}.usage freed by "
                              "section_deactivate (kfree_rcu)"))
            ms.usage = None
        ms.state = ABSENT
    sparse.depopulate_section_memmap(pfn, nr_pages)
    if empty:
        ms.section_mem_map = 0


#: the v6.8 functions, by the names they override
V6_8: dict[str, Callable[..., Any]] = {
    "pfn_valid": pfn_valid,
    "pfn_section_valid": pfn_section_valid,
    "section_deactivate": section_deactivate,
}

#: v6.10: v6.8 with the NULL check in pfn_section_valid
V6_10: dict[str, Callable[..., Any]] = {**V6_8, "pfn_section_valid": pfn_section_valid_null_checked}

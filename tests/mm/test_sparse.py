"""Sparse-section metadata (pfnlab.mm.sparse, pfnlab.mm.sparse_rcu): the flags and
``ms->usage`` of a section, ``section_deactivate``, and ``pfn_valid`` racing it in each
kernel version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pfnlab.explore import Instance, Program, is_freed, set_context
from pfnlab.explore.search import explore
from pfnlab.kernel.world import World
from pfnlab.mm import (
    NO_METADATA_AFTER_TEARDOWN,
    SECTION_HAS_MEM_MAP,
    SECTION_IS_EARLY,
    SECTION_IS_ONLINE,
    SECTION_MARKED_PRESENT,
    Host,
    __pfn_to_section,
    early_section,
    online_section,
    pfn_to_page,
    rcu_callback_thread,
    section_deactivate,
    sparse,
    sparse_rcu,
    sparse_remove_section,
    valid_section,
)
from pfnlab.mm import pfn_valid as coarse_pfn_valid


def test_flags_and_usage_at_set_up(host: Host) -> None:
    ram, dax = host.add_anon(1), host.add_devdax(2)
    ms = __pfn_to_section(ram.pfn)
    assert ms is not None and valid_section(ms) and early_section(ms) and online_section(ms)
    assert ms.section_mem_map == (SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
                                  | SECTION_IS_ONLINE | SECTION_IS_EARLY)
    dev = __pfn_to_section(dax.pfn)
    assert dev is not None and valid_section(dev)
    assert not early_section(dev) and not online_section(dev)
    assert dev.usage is not None and dev.usage.subsection_map == 0b11
    assert sparse.pfn_valid(dax.pfn) and sparse.pfn_valid(dax.pfn + 1)
    assert __pfn_to_section(host.add_pfnmap_io(1).pfn) is None


def test_section_deactivate_frees_usage_once_the_section_is_empty(host: Host) -> None:
    dax = host.add_devdax(2)
    ms = __pfn_to_section(dax.pfn)
    assert ms is not None
    usage, pages = ms.usage, [pfn_to_page(dax.pfn), pfn_to_page(dax.pfn + 1)]
    assert usage is not None
    section_deactivate(dax.pfn + 1, 1)          # one sub-section: the section stays
    assert valid_section(ms) and not is_freed(usage) and usage.subsection_map == 0b01
    assert sparse.pfn_valid(dax.pfn) and not sparse.pfn_valid(dax.pfn + 1)
    assert is_freed(pages[1]) and not is_freed(pages[0])
    sparse_remove_section(dax.pfn, 1)
    assert is_freed(usage) and ms.usage is None and not valid_section(ms)
    assert usage.__dict__["_freed"][0] == NO_METADATA_AFTER_TEARDOWN
    assert not coarse_pfn_valid(dax.pfn) and not sparse.pfn_valid(dax.pfn)
    section_deactivate(dax.pfn, 1)              # already deactivated: a WARN, no change
    assert ms.section_mem_map == 0


def test_an_early_section_keeps_its_usage(host: Host) -> None:
    ram = host.add_anon(1)
    ms = __pfn_to_section(ram.pfn)
    assert ms is not None
    usage = ms.usage
    section_deactivate(ram.pfn, 1)
    assert usage is not None and not is_freed(usage) and ms.usage is usage
    assert not valid_section(ms)


def _walker_vs_remove(overrides: dict[str, Callable[..., Any]]) -> Program:
    """A walker asks pfn_valid (the sparse one of ``overrides``, else v5.4's) about a
    device pfn while the section is removed; RCU callbacks run in their own thread."""

    def build() -> Instance:
        host = Host()
        set_context(World(host=host, overrides=overrides))
        dax = host.add_devdax(1)
        walker_pfn_valid = overrides.get("pfn_valid", sparse.pfn_valid)
        return Instance(threads={"walker": lambda: walker_pfn_valid(dax.pfn),
                                 "admin": lambda: sparse_remove_section(dax.pfn, 1),
                                 "rcu": rcu_callback_thread})

    return Program("walker-vs-remove", build)


def test_v5_4_pfn_valid_reads_freed_usage_or_null() -> None:
    res = explore(_walker_vs_remove({}), stop_first=False)
    kinds = {f.kind: f for f in res.findings}
    assert set(kinds) == {"use-after-free", "assertion"}, [f.message for f in res.findings]
    assert all(f.prop == NO_METADATA_AFTER_TEARDOWN for f in res.findings)
    assert kinds["use-after-free"].message == (
        "walker read usage@0x104.subsection_map after it was freed (section@0x104.usage "
        "freed by section_deactivate)")
    assert "dereferences section@0x104.usage, which is NULL" in kinds["assertion"].message


def test_v6_8_reads_no_freed_usage_but_can_find_it_null() -> None:
    """kfree_rcu and the read-side section end the use after free; the NULL load that
    CVE-2024-41055 fixed in v6.10 is still there."""
    res = explore(_walker_vs_remove(sparse_rcu.V6_8), stop_first=False)
    (f,) = res.findings
    assert f.kind == "assertion" and f.prop == NO_METADATA_AFTER_TEARDOWN
    assert "which is NULL" in f.message


def test_v6_10_holds() -> None:
    res = explore(_walker_vs_remove(sparse_rcu.V6_10), stop_first=False)
    assert res.ok and res.exhaustive, [f.message for f in res.findings]


def test_v6_10_without_the_read_side_section_reads_freed_usage() -> None:
    """The control: the grace period protects only a reader inside a section."""

    def unlocked(pfn: int) -> bool:
        ms = sparse.__pfn_to_section(pfn)
        if not valid_section(ms):
            return False
        assert ms is not None
        return bool(early_section(ms) or sparse_rcu.pfn_section_valid_null_checked(ms, pfn))

    res = explore(_walker_vs_remove({**sparse_rcu.V6_10, "pfn_valid": unlocked}))
    (f,) = res.findings
    assert f.kind == "use-after-free", f.message

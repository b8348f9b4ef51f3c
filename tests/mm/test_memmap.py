"""pfn space: pfn_valid, pfn_to_page, pfn_to_online_page, is_zero_pfn, memmap removal."""

from __future__ import annotations

import pytest

from pfnlab.explore import ModelViolation, is_freed
from pfnlab.mm import (
    NO_METADATA_AFTER_TEARDOWN,
    Host,
    arch_remove_memory,
    is_zero_pfn,
    pfn_to_online_page,
    pfn_to_page,
    pfn_valid,
)


def test_ram_pfns_are_valid_and_online(host: Host) -> None:
    r = host.add_anon(2)
    for pfn in range(r.pfn, r.pfn + 2):
        assert pfn_valid(pfn)
        assert pfn_to_page(pfn).pfn == pfn
        assert pfn_to_online_page(pfn) is pfn_to_page(pfn)


def test_zone_device_pfns_are_valid_but_never_online(host: Host) -> None:
    r = host.add_devdax(2)
    assert pfn_valid(r.pfn)
    assert pfn_to_page(r.pfn).zone == "DEVICE"
    assert pfn_to_online_page(r.pfn) is None


def test_pfns_without_memmap(host: Host) -> None:
    r = host.add_pfnmap_io(1)
    assert not pfn_valid(r.pfn)
    assert pfn_to_online_page(r.pfn) is None
    with pytest.raises(ModelViolation) as e:
        pfn_to_page(r.pfn)
    assert e.value.prop == NO_METADATA_AFTER_TEARDOWN


def test_zero_pfn(host: Host) -> None:
    r = host.add_zero(1)
    assert is_zero_pfn(host.zero_pfn)
    assert r.pfn == host.zero_pfn
    assert not is_zero_pfn(host.add_anon(1).pfn)
    zp = pfn_to_page(host.zero_pfn)
    assert zp.reserved and zp.refcount == 1 and zp.zone == "NORMAL"


def test_arch_remove_memory_frees_memmap(host: Host) -> None:
    r = host.add_devdax(2)
    pages = [pfn_to_page(p) for p in range(r.pfn, r.pfn + 2)]
    arch_remove_memory(r.pfn, 2)
    assert not pfn_valid(r.pfn) and not pfn_valid(r.pfn + 1)
    assert all(is_freed(p) for p in pages)
    assert pages[0].__dict__["_freed"][0] == NO_METADATA_AFTER_TEARDOWN
    # other ranges are untouched
    other = host.add_anon(1)
    assert pfn_valid(other.pfn)

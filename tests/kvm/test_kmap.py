"""Issue 11: kernel mappings (``kvm_vcpu_map``'s kmap/memremap) are recorded by the
primitives that make, use and tear them down (pfnlab.mm.kmap), so an override of
``kvm_vcpu_map`` written with kernel calls only is checked by I9 (pin-held) and I5
(no-spte-to-freed) like the built-in one."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pfnlab import api

# Overrides with kernel calls only: no ledger call anywhere.
MODEL = textwrap.dedent('''\
    from pfnlab import variant
    from pfnlab.kvm import (HostMap, __gfn_to_pfn_memslot, gfn_to_memslot,
                            is_error_noslot_pfn, kvm_release_pfn)
    from pfnlab.mm import kmap, kunmap, memremap, pfn_to_page, pfn_valid, put_page


    def kvm_vcpu_map_early_put(vcpu, gfn):
        """Maps the page, then puts the reference gup took (the map holds none)."""
        slot = gfn_to_memslot(vcpu.kvm.memslots, gfn)
        pfn, _ = __gfn_to_pfn_memslot(slot, gfn, False, True, False)
        if is_error_noslot_pfn(pfn):
            return None
        if pfn_valid(pfn):
            page = pfn_to_page(pfn)
            hva = kmap(page, gfn=gfn)
            put_page(page)
        else:
            hva = memremap(pfn, gfn=gfn)
        return HostMap(gfn, pfn, hva.page, hva.owner, hva=hva)


    def kvm_vcpu_unmap_no_put(vcpu, hmap, dirty):
        """Unmaps; the reference was put at map time."""
        kunmap(hmap.hva)


    variant("map-early-put", parent="v5.4", summary="kvm_vcpu_map keeps no reference",
            overrides={"kvm_vcpu_map": kvm_vcpu_map_early_put,
                       "kvm_vcpu_unmap": kvm_vcpu_unmap_no_put})
''')


@pytest.fixture
def model(model_file: Callable[..., Path]) -> None:
    model_file(MODEL, "kmap_model.py")


def test_a_mapping_made_by_kmap_alone_is_checked_for_its_pin(model: None) -> None:
    res = api.check("map-early-put", "vcpu-map-vs-unbind")
    # with no reference held, the page is also freed under the mapping at unbind: the map
    # and the access after it are reported too
    assert res.violated == ["pin-held", "no-spte-to-freed", "no-metadata-after-teardown"]
    assert res.exhaustive
    (f,) = [f for f in res.search.findings if f.prop == "pin-held"]
    assert f.message == "vcpu0:map maps gfn 0x0 (pfn 0x104) without holding a reference"
    # the deciding step is the access through the mapping, named after its caller
    assert "touch_mapping()" in res.report()


def test_the_built_in_kvm_vcpu_map_holds_its_pin() -> None:
    res = api.check("v5.4", "vcpu-map-vs-unbind")
    assert res.violated == [] and res.exhaustive


def test_kernel_map_hooks_see_map_access_unmap_with_owner_and_gfn() -> None:
    """The primitives show every event to the host's map_hooks, in order, outside an
    execution too (set-up code, unit tests)."""
    from pfnlab import Host
    from pfnlab.explore import context, set_context
    from pfnlab.mm import kmap, kunmap, mapped_access, memremap, memunmap

    h = Host()
    seen: list[tuple[str, int, str, int | None]] = []
    h.map_hooks.append(lambda ev, km: seen.append((ev, km.pfn, km.owner, km.gfn)))

    class World:
        host = h
        overrides: dict[str, object] = {}

    before = context()
    set_context(World())
    try:
        page = h.memmap[h.zero_pfn]
        km = kmap(page, "vcpu0:map", 3)
        mapped_access(km)
        kunmap(km)
        io = memremap(0x9999, "vcpu1:map")
        mapped_access(io)
        memunmap(io)
    finally:
        set_context(before)
    assert seen == [
        ("map", h.zero_pfn, "vcpu0:map", 3), ("access", h.zero_pfn, "vcpu0:map", 3),
        ("unmap", h.zero_pfn, "vcpu0:map", 3),
        ("map", 0x9999, "vcpu1:map", None), ("access", 0x9999, "vcpu1:map", None),
        ("unmap", 0x9999, "vcpu1:map", None),
    ]

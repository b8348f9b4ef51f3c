"""Variant registry and override resolution through the parent chain."""

import pytest

from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS
from pfnlab.kernel.variant import register
from pfnlab.variants import VARIANTS, Variant, get_variant, v5_6, v6_0, v6_13

EXPECTED = {"v5.3", "sean-v1", "v5.4", "hildenbrand", "dan-early-put",
            "paolo-online-helper", "v5.6", "v6.0", "v6.13"}


def test_all_variants_registered_with_docs_and_citations():
    assert set(VARIANTS) >= EXPECTED
    for v in VARIANTS.values():
        assert v.summary and v.cite
        assert v.mm_version == ("5.18" if v.name.startswith("v6") else "5.4")


def test_base_overrides_nothing():
    assert get_variant("v5.4").resolved() == {}


def test_child_wins_and_parent_overrides_are_inherited():
    r = get_variant("v6.13").resolved()
    assert r["tdp_page_fault"] is v6_13.tdp_page_fault
    assert r["kvm_release_pfn_clean"] is v6_0.kvm_release_pfn_clean   # from v6.0
    assert get_variant("v6.0").resolved()["tdp_page_fault"] is v6_0.tdp_page_fault
    assert get_variant("v5.6").resolved()["tdp_page_fault"] is v5_6.tdp_page_fault
    assert set(get_variant("hildenbrand").resolved()) == {
        "kvm_is_reserved_pfn", "kvm_is_zone_device_pfn"}
    assert get_variant("dan-early-put").chain() == ["dan-early-put", "v5.3", "v5.4"]


def test_every_override_names_a_kernel_function():
    for v in VARIANTS.values():
        for name in v.resolved():
            assert name in KERNEL_FUNCTIONS, (v.name, name)


def test_world_carries_overrides_and_mm_version():
    w = get_variant("v6.13").world()
    assert w.variant == "v6.13" and w.mm_version == "5.18"
    assert "kvm_follow_pfn" not in w.overrides and "tdp_page_fault" in w.overrides


def test_unknown_variant_and_bad_override():
    with pytest.raises(KeyError):
        get_variant("v9.9")
    with pytest.raises(ValueError):
        register(Variant("bogus", "v5.4", "s", "c", overrides={"not_a_kfunc": print}))

"""A report names who took or dropped a reference from what each function declares itself
to be (pfnlab.kernel.roles), not from a table of function names."""

import pfnlab  # noqa: F401  (loads the model: its APIs declare themselves)
from pfnlab.explain.ledger import site_of
from pfnlab.kernel.roles import REFCOUNT_APIS, RELEASES, refcount_api, refcount_site


def test_the_caller_of_the_outermost_refcount_api_took_the_reference():
    where = ("vcpu_fault", "tdp_page_fault", "hva_to_pfn_fast", "__get_user_pages_fast",
             "try_get_compound_head", "page_ref_add_unless_zero")
    assert refcount_site(where) == ("hva_to_pfn_fast", "gup")
    assert site_of(("memunmap_pages", "put_page", "page_ref_dec_return")) == (
        "memunmap_pages", "put_page")
    assert site_of(("vm_exit", "kvm_put_kvm", "put_dev_pagemap", "percpu_ref_put_many")) == (
        "kvm_put_kvm", "put_dev_pagemap")


def test_no_refcount_api_on_the_stack_is_the_innermost_function():
    assert refcount_site(("vcpu_fault", "mmu_set_spte")) is None
    assert site_of(("vcpu_fault", "mmu_set_spte")) == ("mmu_set_spte", "")


def test_a_wrapper_of_your_own_declares_itself():
    @refcount_api("get_page")
    def gpc_grab_page(page):  # a model's own helper around get_page
        pass

    try:
        assert refcount_site(("gpc_refresh", "gpc_grab_page", "get_page", "page_ref_inc")) == (
            "gpc_refresh", "get_page")
    finally:
        del REFCOUNT_APIS["gpc_grab_page"]


def test_the_model_declares_its_refcount_apis():
    assert {n: f for n, f in REFCOUNT_APIS.items() if f} == {
        "__get_user_pages": "gup", "__get_user_pages_fast": "gup",
        "get_user_pages_unlocked": "gup", "get_page": "get_page", "try_get_page": "get_page",
        "get_page_unless_zero": "get_page", "kvm_get_pfn": "get_page", "put_page": "put_page"}
    assert {"page_ref_inc", "page_ref_dec_return", "page_ref_add_unless_zero",
            "set_page_count", "percpu_ref_put_many", "get_dev_pagemap",
            "put_dev_pagemap"} <= set(REFCOUNT_APIS)


def test_the_model_declares_its_releases():
    """A leak's explanation says which release skipped the put only of functions declared
    releases (not of any name with "put" or "unmap" in it: memunmap_pages, kvm_put_kvm)."""
    assert {"kvm_release_pfn_clean", "kvm_release_pfn_dirty", "kvm_release_pfn",
            "kvm_vcpu_unmap", "kvm_release_page_clean", "kvm_release_page_dirty",
            "kvm_release_faultin_page", "put_page", "unpin_user_page"} <= RELEASES
    assert not {"memunmap_pages", "kvm_put_kvm", "put_dev_pagemap", "zap_page_range",
                "try_to_unmap"} & RELEASES

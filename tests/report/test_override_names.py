"""Issue 11: an override is reported under the kernel name it overrides, whatever its
Python name (the leak explanation used to depend on it)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from pfnlab import api
from pfnlab.api import load_model, registries_restored

MODEL = textwrap.dedent('''\
    from pfnlab import variant
    from pfnlab.mm.memmap import pfn_to_page, pfn_valid
    from pfnlab.mm.page import PageReserved, is_zone_device_page


    def kvm_is_reserved_pfn_v53_style(pfn):
        """v5.3: ZONE_DEVICE pages count as reserved."""
        if pfn_valid(pfn):
            page = pfn_to_page(pfn)
            return PageReserved(page) or is_zone_device_page(page)
        return True


    variant("renamed", parent="v5.4", summary="v5.3's classifier under another Python name",
            overrides={"kvm_is_reserved_pfn": kvm_is_reserved_pfn_v53_style})
''')


def test_the_leak_is_explained_under_the_kernel_name(tmp_path: Path) -> None:
    path = tmp_path / "renamed.py"
    path.write_text(MODEL)
    with registries_restored():
        load_model(path)
        res = api.check("renamed", "devdax-unbind")
        text = " ".join(res.report().split())
    assert "refs-balanced" in res.violated
    assert ("kvm_release_pfn_clean skipped the put at step 13 because "
            "kvm_is_reserved_pfn(0x104) returned true") in text
    assert "kvm_is_reserved_pfn_v53_style" not in text


# Issue 28: one Python function overriding a different kernel function in each of two
# variants; the name of a frame belongs to its code object, so the second variant runs a
# copy of the function named after its own kernel function.
SHARED = textwrap.dedent('''\
    from pfnlab import variant
    from pfnlab.kvm import is_error_noslot_pfn, kvm_is_reserved_pfn
    from pfnlab.mm import pfn_to_page, put_page


    def release_twice(pfn):
        """A release that puts twice (the second put holds no reference)."""
        if not is_error_noslot_pfn(pfn) and not kvm_is_reserved_pfn(pfn):
            put_page(pfn_to_page(pfn))
            put_page(pfn_to_page(pfn))


    variant("twice-clean", parent="v5.4", overrides={"kvm_release_pfn_clean": release_twice})
    variant("twice-dirty", parent="v5.4", overrides={"kvm_release_pfn_dirty": release_twice})
''')


def test_one_function_overriding_two_kernel_functions_is_shown_under_each(
        model_file: Callable[..., Path]) -> None:
    model_file(SHARED, "shared_override.py")
    # the release function's first row: kvm_release_pfn_clean's is what its
    # kvm_is_reserved_pfn() returned (a branch it decides, shown since issue 28)
    for v, name, row in (("twice-clean", "kvm_release_pfn_clean", 19),
                         ("twice-dirty", "kvm_release_pfn_dirty", 11)):
        res = api.check(v, "vcpu-map-vs-unbind")
        assert res.violated == ["no-put-unreferenced"]
        (f,) = res.search.findings
        assert f.message.startswith(f"{name}: vcpu0:map puts page pfn 0x104 but holds no "
                                    "reference on it")
        text = res.report()
        assert f"{row:>3}  {name}()" in text.splitlines()
        other = ({"kvm_release_pfn_clean", "kvm_release_pfn_dirty"} - {name}).pop()
        assert other not in text and "release_twice" not in text
    # the variant that came second runs a copy: same source, its own code object
    from pfnlab import VARIANTS

    first = VARIANTS["twice-clean"].overrides["kvm_release_pfn_clean"]
    second = VARIANTS["twice-dirty"].overrides["kvm_release_pfn_dirty"]
    assert first is not second and first.__code__ is not second.__code__
    assert second.__qualname__ == "release_twice"
    assert second.__code__.co_firstlineno == first.__code__.co_firstlineno

"""Issue 11: an override is reported under the kernel name it overrides, whatever its
Python name (the leak explanation used to depend on it)."""

from __future__ import annotations

import textwrap
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

"""v5.4: the base model, v5.4.33 with a78986aae9b2 merged ("KVM: MMU: Do not treat
ZONE_DEVICE pages as being reserved", Sean Christopherson, v2 patch 1/3,
<20191111221229.24732-1-sean.j.christopherson@intel.com>). Overrides nothing."""

from __future__ import annotations

from pfnlab import Variant, register_variant

VARIANT = register_variant(
    Variant(
        name="v5.4",
        parent=None,
        summary="v5.4.33: ZONE_DEVICE refcounted like normal pages, but no A/D and no THP "
        "adjust on it; kvm_is_zone_device_pfn WARNs on a zero refcount",
        cite="a78986aae9b2; <20191111221229.24732-1-sean.j.christopherson@intel.com>",
        overrides={},
        mm_version="5.4",
    )
)

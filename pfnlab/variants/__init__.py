"""Design variants of KVM's pfn handling, one module each (the machinery: pfnlab/kernel/variant.py).

========================  ==============  ===============================================
name                      parent          what it changes
========================  ==============  ===============================================
v5.4                      (base)          nothing: v5.4.33 with a78986aae9b2
v5.3                      v5.4            ZONE_DEVICE reserved (before the fix)
sean-v1                   v5.4            the v1 patch: WARN in kvm_get_pfn instead
hildenbrand               v5.3            kvm_is_reserved_pfn via pfn_to_online_page
dan-early-put             v5.3            put device pages right after gup
paolo-online-helper       v5.4            THP filters via pfn_to_online_page
v5.6                      v5.4            host page-table walk, no reference shift
v6.0                      v5.6            kvm_pfn_to_refcounted_page, kvm_try_get_pfn
v6.13                     v6.0            refcounted_page; SPTE zaps skip struct page
========================  ==============  ===============================================
"""

from pfnlab.kernel.variant import VARIANTS, Variant, get_variant
from pfnlab.variants import (  # noqa: F401  (each module registers its variant)
    dan_early_put,
    hildenbrand,
    paolo_online_helper,
    sean_v1,
    v5_3,
    v5_4,
    v5_6,
    v6_0,
    v6_13,
)

__all__ = ["VARIANTS", "Variant", "get_variant"]

#: The order of the thread and of kernel history, used by tables and lists.
ORDER = (
    "v5.3",
    "sean-v1",
    "v5.4",
    "hildenbrand",
    "dan-early-put",
    "paolo-online-helper",
    "v5.6",
    "v6.0",
    "v6.13",
)
_registered = dict(VARIANTS)
VARIANTS.clear()
VARIANTS.update({n: _registered[n] for n in ORDER})
VARIANTS.update({n: v for n, v in _registered.items() if n not in VARIANTS})

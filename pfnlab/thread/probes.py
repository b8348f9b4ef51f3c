"""Counterfactual designs the thread argued about but nobody posted as a patch.

They are not registered variants (``pfnlab list`` does not show them, the matrix does not
run them); the thread report checks them as designs of their own (pfnlab.pipeline takes a
:class:`~pfnlab.kernel.variant.Variant` as well as a name) only for the claim that needs
them, and says that they are probes.

- ``v5.4-ad-unfiltered``: the merged fix, but ``kvm_set_pfn_accessed``/``kvm_set_pfn_dirty``
  keep their v5.3 body (skip only reserved pfns). ZONE_DEVICE is no longer reserved, so
  this is "Sean's patch without its A/D half": what Paolo said would need fixing first.
"""

from __future__ import annotations

from pfnlab import mm
from pfnlab.kernel.variant import Variant
from pfnlab.kvm.pfn import kvm_is_reserved_pfn

AD_UNFILTERED = "v5.4-ad-unfiltered"


def kvm_set_pfn_dirty(pfn: int) -> None:
    """virt/kvm/kvm_main.c v5.3 body: SetPageDirty unless reserved (no ZONE_DEVICE test)."""
    if not kvm_is_reserved_pfn(pfn):
        mm.SetPageDirty(mm.pfn_to_page(pfn))


def kvm_set_pfn_accessed(pfn: int) -> None:
    """virt/kvm/kvm_main.c v5.3 body: mark_page_accessed unless reserved."""
    if not kvm_is_reserved_pfn(pfn):
        mm.mark_page_accessed(mm.pfn_to_page(pfn))


PROBES: dict[str, Variant] = {
    AD_UNFILTERED: Variant(
        name=AD_UNFILTERED,
        parent="v5.4",
        summary="probe: v5.4 with the v5.3 kvm_set_pfn_accessed/dirty (no ZONE_DEVICE "
        "filter)",
        cite="counterfactual for Paolo's <1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>",
        overrides={
            "kvm_set_pfn_dirty": kvm_set_pfn_dirty,
            "kvm_set_pfn_accessed": kvm_set_pfn_accessed,
        },
    ),
}

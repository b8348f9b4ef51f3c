"""dan-early-put: keep ZONE_DEVICE "reserved", put the gup reference right after gup.

Dan Williams, Nov 6 2019 23:20
(<CAPcyv4hMOxPDKAZtTvWKEMPBwE_kPrKPB_JxE2YfV5EKkKj_dQ@mail.gmail.com>):
fold ZONE_DEVICE into the VM_IO/VM_PFNMAP treatment, ``put_page()`` immediately after gup
in ``hva_to_pfn_fast``/``_slow``. Rejected: it "will break the page fault flow" (Sean,
Nov 6 23:39) since nothing pins the page between gup and the SPTE install, and it breaks
``kvm_vcpu_map``, which needs the page pinned from map to unmap (a78986aae9b2 message).
On top of v5.3 (ZONE_DEVICE stays PG_reserved, so the later release skips it).
"""

from __future__ import annotations

from typing import Any

from pfnlab import Variant, kvm_owner, mm, register_variant
from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

# the base (v5.4 = v5.3 here) implementations: this variant adds the put after them
base_fast = KERNEL_FUNCTIONS["hva_to_pfn_fast"].base  # type: ignore[attr-defined]
base_slow = KERNEL_FUNCTIONS["hva_to_pfn_slow"].base  # type: ignore[attr-defined]


def _early_put(page: Any) -> None:
    if mm.is_zone_device_page(page):
        mm.put_page(page, owner=kvm_owner())


def hva_to_pfn_fast(addr: int, write_fault: bool, writable: bool) -> int | None:
    """virt/kvm/kvm_main.c dan-early-put: fast gup, then put a ZONE_DEVICE page at once."""
    pfn = base_fast(addr, write_fault, writable)
    if pfn is not None:
        _early_put(mm.pfn_to_page(pfn))
    return pfn


def hva_to_pfn_slow(
    addr: int, write_fault: bool, writable: bool
) -> tuple[int, int, bool]:
    """virt/kvm/kvm_main.c dan-early-put: slow gup, then put a ZONE_DEVICE page at once."""
    npages, pfn, w = base_slow(addr, write_fault, writable)
    if npages:
        _early_put(mm.pfn_to_page(pfn))
    return (npages, pfn, w)


VARIANT = register_variant(
    Variant(
        name="dan-early-put",
        parent="v5.3",
        summary="ZONE_DEVICE stays reserved; hva_to_pfn_fast/slow put the device page right "
        "after gup (no reference held while installing or while kvm_vcpu_map'd)",
        cite="<CAPcyv4hMOxPDKAZtTvWKEMPBwE_kPrKPB_JxE2YfV5EKkKj_dQ@mail.gmail.com>",
        overrides={"hva_to_pfn_fast": hva_to_pfn_fast, "hva_to_pfn_slow": hva_to_pfn_slow},
    )
)

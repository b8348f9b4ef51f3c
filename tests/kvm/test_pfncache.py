"""Issue 11: a reference-less secondary mapping (PfnCache) and its built-in property I12,
secondary-coherent: once the invalidations of its hva are over, a valid cache maps what
the host maps."""

from __future__ import annotations

import pytest

from pfnlab import PfnCache
from pfnlab.kvm import check_secondary_coherent, gfn_to_pfn_cache_invalidate_start
from pfnlab.mm import PteVal, zap_page_range


def test_a_cache_is_coherent_until_the_host_changes_the_page_under_it(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = PfnCache(s.kvm, "gpc", 0)
    assert gpc.hva == s.region.start and s.kvm.pfn_caches == [gpc]
    gpc.pfn, gpc.valid = s.region.pfn, True
    assert check_secondary_coherent(s.kvm) is None
    # the host zaps the page without anyone invalidating the cache: stale once it is over
    zap_page_range(s.region.vma, s.region.start, s.region.end)
    assert check_secondary_coherent(s.kvm) == (
        f"gpc is valid with pfn {s.region.pfn:#x} after the invalidations of hva "
        f"{s.region.start:#x} are over, but the host maps nothing there")
    # an invalid cache maps nothing
    gpc.valid = False
    assert check_secondary_coherent(s.kvm) is None


def test_inside_an_invalidation_the_cache_may_lag(setup) -> None:  # type: ignore[no-untyped-def]
    s = setup("v5.4", "anon")
    gpc = PfnCache(s.kvm, "gpc", 0)
    gpc.pfn, gpc.valid = s.region.pfn, True
    hva = s.region.start
    s.kvm.invalidate_range_start(s.host.mm, hva, hva + 1)
    assert s.kvm.ledger.bracket == ((hva, 1),)
    s.host.mm.pte(hva).val = PteVal(s.region.pfn + 7)  # the host remaps it meanwhile
    assert check_secondary_coherent(s.kvm) is None
    s.kvm.invalidate_range_end(s.host.mm, hva, hva + 1)
    assert s.kvm.ledger.bracket == ()
    assert "but the host maps pfn" in (check_secondary_coherent(s.kvm) or "")
    # what the notifier hook of a pfn cache does: mark it invalid
    gfn_to_pfn_cache_invalidate_start(s.kvm, hva, hva + 1)
    assert not gpc.valid and check_secondary_coherent(s.kvm) is None


def test_set_up_mistakes_say_what_to_do(setup) -> None:  # type: ignore[no-untyped-def]
    from pfnlab.model.scenario import checks

    s = setup("v5.4", "anon")
    with pytest.raises(ValueError, match="gfn 0x9 is in no memslot of kvm"):
        PfnCache(s.kvm, "gpc", 9)

    class NoCaches:
        kvm = s.kvm

    with pytest.raises(ValueError, match="create one with PfnCache"):
        checks(NoCaches(), ["secondary-coherent"])  # type: ignore[arg-type]

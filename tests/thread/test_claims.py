"""The claim table: every claim of the thread is there, and every test can run."""

from __future__ import annotations

from pfnlab.scenarios import SCENARIOS
from pfnlab.thread.claims import CLAIMS, HOLDS, VIOLATED
from pfnlab.thread.probes import PROBES
from pfnlab.variants import VARIANTS

#: the claims and proposals of issue 6, by id
REQUIRED = {
    "hang",            # the hang in dev_pagemap_cleanup() with a /dev/dax guest
    "sean-patch",      # ZONE_DEVICE not reserved, case by case in THP adjust/zap_collapsible
    "dan-racy",        # "racy unless ... pinned by get_user_pages()"
    "paolo-race",      # "what is the race exactly?", gup or mmu-notifier context
    "fix-ad",          # the need to fix kvm_set_pfn_accessed/dirty
    "david-patch",     # David's patch
    "online-helper",   # the pfn_to_online_page() helper
    "dan-tuple",       # Dan's {page, pfn} tuple
    "page-lost",       # Paolo: the struct page is lost once the SPTE holds only the pfn
    "dan-early-put",   # put_page right after gup (rejected in a78986aae9b2)
}


def test_every_claim_of_the_issue_is_in_the_table() -> None:
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    assert set(ids) >= REQUIRED


def test_claims_are_in_thread_order() -> None:
    dates = [c.date for c in CLAIMS]
    assert dates == sorted(dates)


def test_claims_say_who_and_where() -> None:
    for c in CLAIMS:
        assert c.who and c.quote and c.question.endswith("?"), c.id
        assert c.msgid.startswith("<") and c.msgid.endswith(">"), c.id


def test_tests_name_real_runs_of_checked_properties() -> None:
    for c in CLAIMS:
        assert bool(c.tests) != bool(c.untestable), c.id
        for t in c.tests:
            assert t.variant in VARIANTS or t.variant in PROBES, (c.id, t.variant)
            sc = SCENARIOS[t.scenario]
            assert set(t.props) <= set(sc.properties), (c.id, t.scenario, t.props)
            assert t.expect in (HOLDS, VIOLATED)
        for s in c.traces:
            assert s.variant in VARIANTS or s.variant in PROBES
            assert s.prop in SCENARIOS[s.scenario].properties


def test_probes_are_not_registered_variants() -> None:
    for name in PROBES:
        assert name not in VARIANTS

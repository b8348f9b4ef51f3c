"""The claims of the November 2019 thread, as data: who said what, and how the model tests it.

A :class:`Claim` quotes one claim or proposal (short, with who said it, when, and the
Message-ID), states the question it poses, and lists the :class:`Test` runs of the checker
that answer it. A test is an *expectation rule*, never a verdict: "if the claim is right,
this (variant, scenario) should show these properties violated" (or holding). The verdict
is computed by :mod:`pfnlab.thread.run` from the checker's results at run time.

A claim with no tests is one the model cannot test yet; ``untestable`` says why.
Sources: the seed thread (Paolo Bonzini, 6 Nov 2019 21:09 UTC, quoting Dan Williams and
Sean Christopherson's patch) and kernel-semantics.md section 3 (timeline, Message-IDs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pfnlab.properties import (
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
    NO_METADATA_AFTER_TEARDOWN,
    NO_PUT_UNREFERENCED,
    NO_SPTE_TO_FREED,
    PIN_HELD,
    REFS_BALANCED,
    TEARDOWN_TERMINATES,
)
from pfnlab.thread.probes import AD_UNFILTERED

VIOLATED = "violated"
HOLDS = "holds"

#: the properties of a reference leak and of a use of torn-down metadata
LEAK = (REFS_BALANCED, TEARDOWN_TERMINATES)
RACE = (NO_PUT_UNREFERENCED, NO_METADATA_AFTER_TEARDOWN)
SAFE = (REFS_BALANCED, NO_PUT_UNREFERENCED, NO_METADATA_AFTER_TEARDOWN, NO_SPTE_TO_FREED,
        AD_ONLY_TRACKED, TEARDOWN_TERMINATES)


@dataclass(frozen=True)
class Test:
    """One run that tests a claim, with the outcome that would support it.

    ``expect`` is :data:`VIOLATED` (the claim is supported if *any* of ``props`` is
    violated) or :data:`HOLDS` (supported if *all* of them hold, exhaustively).
    ``essential``: if this expectation is not met, the claim is refuted whatever the rest
    says. ``shows`` says in a few words what the run stands for.
    """

    __test__ = False  # not a pytest test class

    variant: str
    scenario: str
    props: tuple[str, ...]
    expect: str
    shows: str
    essential: bool = False


@dataclass(frozen=True)
class TraceSpec:
    """Which finding's minimal trace to quote, and the kernel functions whose steps matter."""

    variant: str
    scenario: str
    prop: str
    key: tuple[str, ...]
    title: str = ""


@dataclass(frozen=True)
class Claim:
    """A claim or proposal from the thread, and how the checker tests it."""

    id: str
    who: str
    date: str
    msgid: str
    quote: str
    question: str
    tests: tuple[Test, ...] = ()
    traces: tuple[TraceSpec, ...] = ()
    untestable: str = ""
    note: str = field(default="")


GUP = ("try_get_compound_head", "get_user_pages", "__get_user_pages")
TEARDOWN = ("memunmap_pages", "dev_pagemap_cleanup", "arch_remove_memory")

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="hang",
        who="Adam Borowski (report), David Hildenbrand (analysis), Sean Christopherson",
        date="2019-11-05/06",
        msgid="<20191106170727.14457-2-sean.j.christopherson@intel.com>",
        quote="This fixes a hang ... in dev_pagemap_cleanup() when running a KVM guest "
        "backed with /dev/dax memory, as KVM straight up doesn't put any references to "
        "ZONE_DEVICE pages acquired by gup().",
        question="Does treating ZONE_DEVICE as reserved leak gup references and hang "
        "device teardown?",
        tests=(
            Test("v5.3", "devdax-unbind", (TEARDOWN_TERMINATES,), VIOLATED,
                 "devdax unbind hangs before the fix", essential=True),
            Test("v5.3", "devdax-unbind", (REFS_BALANCED,), VIOLATED,
                 "the fault returns holding its gup reference"),
            Test("v5.3", "fsdax-truncate", (TEARDOWN_TERMINATES,), VIOLATED,
                 "fsdax truncate hangs the same way"),
            Test("v5.4", "devdax-unbind", LEAK, HOLDS,
                 "putting the references (the merged fix) removes the hang"),
        ),
        traces=(TraceSpec("v5.3", "devdax-unbind", TEARDOWN_TERMINATES,
                          (*GUP, "kvm_release_pfn_clean", *TEARDOWN)),),
    ),
    Claim(
        id="sean-patch",
        who="Sean Christopherson",
        date="2019-11-06 17:07",
        msgid="<20191106170727.14457-2-sean.j.christopherson@intel.com>",
        quote="Explicitly exempt ZONE_DEVICE pages from kvm_is_reserved_pfn() and instead "
        "manually handle ZONE_DEVICE on a case-by-case basis [transparent_hugepage_adjust, "
        "kvm_mmu_zap_collapsible_spte, accessed/dirty].",
        question="Does the patch fix the leak without breaking the THP, collapse and A/D "
        "paths?",
        tests=(
            Test("sean-v1", "devdax-unbind", SAFE, HOLDS,
                 "v1: fault, VM exit and unbind are clean", essential=True),
            Test("sean-v1", "dirty-log-collapse", (*SAFE, HUGE_ONLY_THP), HOLDS,
                 "v1: zap_collapsible_spte on ZONE_DEVICE"),
            Test("sean-v1", "thp-split", (HUGE_ONLY_THP, REFS_BALANCED), HOLDS,
                 "v1: transparent_hugepage_adjust on real THP"),
            Test("sean-v1", "fsdax-truncate", LEAK, HOLDS, "v1: fsdax truncate"),
            Test("v5.4", "devdax-unbind", SAFE, HOLDS,
                 "merged v2 (a78986aae9b2): the same", essential=True),
        ),
    ),
    Claim(
        id="remap-zone-device",
        who="Paolo Bonzini",
        date="2019-11-06 17:14",
        msgid="<8ba98630-9ca0-85c2-3c94-45d54a448fca@redhat.com>",
        quote="Can remap_pfn_range() map ZONE_DEVICE memory? Then the new WARN in "
        "kvm_get_pfn() would fire from hva_to_pfn_remapped().",
        question="Does any driver map ZONE_DEVICE memory with remap_pfn_range()?",
        untestable="the model has no drivers: the remapped-vs-unbind scenario assumes "
        "one does (the thread left the question unanswered)",
    ),
    Claim(
        id="dan-racy",
        who="Dan Williams",
        date="2019-11-06 18:04",
        msgid="<CAPcyv4gJk2cXLdT2dZwCH2AssMVNxUfdx-bYYwJwy1LwFxOs0w@mail.gmail.com>",
        quote="This is racy unless you can be certain that the pfn and resulting page has "
        "already been pinned by get_user_pages().",
        question="Is is_zone_device_page() on a pfn racy exactly when no gup pin is "
        "held?",
        tests=(
            Test("v5.4", "remapped-vs-unbind", RACE, VIOLATED,
                 "no pin (hva_to_pfn_remapped): racy", essential=True),
            Test("v5.4", "devdax-unbind", SAFE, HOLDS, "gup pin held: not racy"),
            Test("v5.4", "vcpu-map-vs-unbind", (*SAFE, PIN_HELD), HOLDS,
                 "pin held from map to unmap: not racy"),
            Test("v5.4", "dirty-log-collapse", RACE, VIOLATED,
                 "no pin, under mmu_lock with the SPTE live (zap_collapsible)"),
        ),
        traces=(TraceSpec("v5.4", "remapped-vs-unbind", NO_METADATA_AFTER_TEARDOWN,
                          ("follow_pfn", "follow_pte", "kvm_get_pfn", "kvm_is_zone_device_pfn",
                           *TEARDOWN)),),
    ),
    Claim(
        id="dan-tuple",
        who="Dan Williams",
        date="2019-11-06 18:04",
        msgid="<CAPcyv4gJk2cXLdT2dZwCH2AssMVNxUfdx-bYYwJwy1LwFxOs0w@mail.gmail.com>",
        quote="Ideally KVM would pass around a struct { struct page *page, unsigned long "
        "pfn } tuple so it would not have to do this \"recall context\" dance on every "
        "pfn operation.",
        question="Does carrying the page with the pfn (v6.13's refcounted_page) remove "
        "the race?",
        tests=(
            Test("v5.4", "remapped-vs-unbind", RACE, VIOLATED,
                 "v5.4 recalls context from the pfn: racy"),
            Test("v6.13", "remapped-vs-unbind", RACE, HOLDS,
                 "v6.13 kvm_follow_pfn reports refcounted_page: no race", essential=True),
            Test("v6.13", "vcpu-map-vs-unbind", (PIN_HELD, REFS_BALANCED), HOLDS,
                 "v6.13 kvm_vcpu_map pins the page it reports"),
        ),
    ),
    Claim(
        id="paolo-race",
        who="Paolo Bonzini",
        date="2019-11-06 21:09",
        msgid="<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>",
        quote="What is the race exactly? In general KVM does not use pfn's until after "
        "having gotten them from get_user_pages (or follow_pfn ...). Anything else happens "
        "_after_ the reference has been released, but still from an mmu notifier.",
        question="Are all of KVM's pfn uses protected by gup or by the mmu notifier?",
        tests=(
            Test("v5.4", "devdax-unbind", SAFE, HOLDS,
                 "fault after gup, zap from the notifier", essential=True),
            Test("v5.4", "dirty-log-collapse", (*SAFE, HUGE_ONLY_THP), HOLDS,
                 "zap_collapsible under mmu_lock, SPTE live"),
            Test("v5.4", "vcpu-map-vs-unbind", (*SAFE, PIN_HELD), HOLDS,
                 "kvm_vcpu_map holds its gup pin"),
            Test("v5.4", "remapped-vs-unbind", RACE, HOLDS,
                 "follow_pfn path (hva_to_pfn_remapped -> kvm_get_pfn)"),
        ),
        traces=(TraceSpec("v5.4", "remapped-vs-unbind", NO_PUT_UNREFERENCED,
                          ("follow_pfn", "follow_pte", "kvm_get_pfn", *TEARDOWN),
                          "the race: kvm_get_pfn on an unpinned device pfn"),),
    ),
    Claim(
        id="fix-ad",
        who="Paolo Bonzini",
        date="2019-11-06 21:09",
        msgid="<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>",
        quote="If it is racy, we need to fix kvm_set_pfn_accessed and kvm_set_pfn_dirty "
        "first.",
        question="Must kvm_set_pfn_accessed/dirty filter ZONE_DEVICE once it is not "
        "reserved, and is their filter safe?",
        tests=(
            Test(AD_UNFILTERED, "devdax-unbind", (AD_ONLY_TRACKED,), VIOLATED,
                 "v5.4 with unfixed A/D helpers (probe)", essential=True),
            Test("v5.4", "devdax-unbind", (AD_ONLY_TRACKED, NO_METADATA_AFTER_TEARDOWN),
                 HOLDS, "fixed helpers, called from notifier zaps"),
            Test("v5.4", "dirty-log-collapse",
                 (AD_ONLY_TRACKED, NO_METADATA_AFTER_TEARDOWN), HOLDS,
                 "fixed helpers, called from zap_collapsible"),
        ),
        traces=(TraceSpec(AD_UNFILTERED, "devdax-unbind", AD_ONLY_TRACKED,
                          ("kvm_set_pfn_accessed", "kvm_set_pfn_dirty",
                           "mmu_spte_clear_track_bits")),),
    ),
    Claim(
        id="david-patch",
        who="Paolo Bonzini, on David Hildenbrand's patch",
        date="2019-11-06 21:09",
        msgid="<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>",
        quote="If accessed/dirty state need not be tracked properly for ZONE_DEVICE, then "
        "I suppose David's patch is okay.",
        question="Is kvm_is_reserved_pfn() via pfn_to_online_page() a fix?",
        tests=(
            Test("hildenbrand", "devdax-unbind", LEAK, HOLDS,
                 "devdax unbind after a fault", essential=True),
            Test("hildenbrand", "devdax-unbind", (AD_ONLY_TRACKED,), HOLDS,
                 "no A/D on ZONE_DEVICE"),
            Test("hildenbrand", "remapped-vs-unbind", RACE, HOLDS,
                 "no memmap read for offline pfns"),
        ),
        traces=(TraceSpec("hildenbrand", "devdax-unbind", TEARDOWN_TERMINATES,
                          (*GUP, "kvm_release_pfn_clean", *TEARDOWN)),),
    ),
    Claim(
        id="online-helper",
        who="Paolo Bonzini",
        date="2019-11-06 21:09",
        msgid="<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>",
        quote="We could first introduce a helper ... using pfn_to_online_page() to filter "
        "out ZONE_DEVICE pages. This would cover both transparent_hugepage_adjust and "
        "kvm_mmu_zap_collapsible_spte.",
        question="Does the pfn_to_online_page() filter keep the THP and collapse paths "
        "safe?",
        tests=(
            Test("paolo-online-helper", "dirty-log-collapse", (*SAFE, HUGE_ONLY_THP),
                 HOLDS, "zap_collapsible with the helper", essential=True),
            Test("paolo-online-helper", "thp-split", (HUGE_ONLY_THP, REFS_BALANCED),
                 HOLDS, "THP adjust with the helper", essential=True),
            Test("paolo-online-helper", "devdax-unbind", SAFE, HOLDS,
                 "fault and unbind with the helper"),
        ),
    ),
    Claim(
        id="page-lost",
        who="Paolo Bonzini",
        date="2019-11-06 21:09",
        msgid="<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>",
        quote="Unfortunately once KVM has created its own page tables, the struct page* "
        "reference is lost, as the PFN is the only thing that is stored in there.",
        question="Does the tuple fail because SPTEs keep only the pfn?",
        tests=(
            Test("v6.13", "devdax-unbind", (AD_ONLY_TRACKED, NO_SPTE_TO_FREED), VIOLATED,
                 "v6.13: SPTE zaps never touch struct page"),
            Test("v6.13", "dirty-log-collapse", (AD_ONLY_TRACKED, NO_SPTE_TO_FREED),
                 VIOLATED, "v6.13: collapse without struct page"),
            Test("v6.13", "remapped-vs-unbind", SAFE, VIOLATED,
                 "v6.13: the unpinned path"),
        ),
        note="The SPTE does hold only the pfn, in every version. v6.13 keeps the page "
        "(refcounted_page) only until the SPTE is installed and never needs it after.",
    ),
    Claim(
        id="dan-early-put",
        who="Dan Williams",
        date="2019-11-06 23:20",
        msgid="<CAPcyv4hMOxPDKAZtTvWKEMPBwE_kPrKPB_JxE2YfV5EKkKj_dQ@mail.gmail.com>",
        quote="Keep ZONE_DEVICE \"reserved\" and put_page() right after gup in "
        "hva_to_pfn_fast/_slow, like VM_IO/VM_PFNMAP.",
        question="Does an early put fix the leak safely?",
        tests=(
            Test("dan-early-put", "devdax-unbind", LEAK, HOLDS,
                 "the leak and the hang are gone"),
            Test("dan-early-put", "vcpu-map-vs-unbind", (PIN_HELD,), HOLDS,
                 "kvm_vcpu_map keeps its pin (a78986aae9b2's reason)", essential=True),
            Test("dan-early-put", "devdax-unbind", (NO_METADATA_AFTER_TEARDOWN,), HOLDS,
                 "the fault installs with no reference held (Sean)"),
        ),
        traces=(TraceSpec("dan-early-put", "vcpu-map-vs-unbind", PIN_HELD,
                          (*GUP, "put_page", "touch_mapping", *TEARDOWN)),),
    ),
)

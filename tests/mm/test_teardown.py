"""Device teardown under the checker: the 2019 hang (5.4) and its 5.18 counterpart (UAF)."""

from __future__ import annotations

from pfnlab.explore import Execution, Instance, Program, set_context
from pfnlab.explore.findings import HANG, USE_AFTER_FREE
from pfnlab.explore.search import explore
from pfnlab.kernel.world import World
from pfnlab.mm import (
    NO_METADATA_AFTER_TEARDOWN,
    TEARDOWN_TERMINATES,
    Host,
    SetPageDirty,
    __get_user_pages_fast,
    dev_dax_unbind,
    fsdax_break_layouts,
    get_page,
    is_zone_device_page,
    memunmap_pages,
    pfn_to_page,
    pfn_valid,
    put_page,
)


def devdax_program(
    *, leak: bool, mm_version: str = "5.4", use_after: bool = False, npages: int = 1
) -> Program:
    """A vCPU gups a devdax page (and maybe never puts it) while the device is unbound."""

    def build() -> Instance:
        host = Host()
        r = host.add_devdax(npages, name="dax0")
        set_context(World(mm_version=mm_version, host=host))
        assert r.dax is not None

        def vcpu() -> None:
            page = __get_user_pages_fast(host.mm, r.start, True, "kvm")
            if page is None:
                return
            if not leak:
                put_page(page, "kvm")
            elif use_after:
                SetPageDirty(page)  # KVM touching the page it still "holds"

        def unbind() -> None:
            dev_dax_unbind(r.dax)

        return Instance(threads={"vcpu": vcpu, "unbind": unbind})

    return Program(f"devdax leak={leak} mm={mm_version} use_after={use_after}", build)


def run_in_order(program: Program, order: list[str]) -> Execution:
    """Run each named thread to completion (or until blocked) in turn, then any other."""
    ex = Execution(program)
    names = ex.thread_names()
    for name in order + names:
        tid = names.index(name)
        while ex.finding is None and not ex.finished and tid in ex.enabled():
            ex.step(tid)
    return ex


def test_5_4_leaked_gup_reference_hangs_memunmap_pages() -> None:
    ex = run_in_order(devdax_program(leak=True), ["vcpu", "unbind"])
    assert ex.finding is not None and ex.finding.kind == HANG
    assert ex.finding.prop == TEARDOWN_TERMINATES
    assert "dev_pagemap_cleanup" in ex.finding.message


def test_5_4_put_reference_lets_memunmap_pages_complete() -> None:
    ex = run_in_order(devdax_program(leak=False), ["vcpu", "unbind"])
    assert ex.finding is None and ex.finished
    host = ex.context.host
    r = host.regions[0]
    assert r.pgmap.peek("done") and host.sections[r.pfn].peek("state") == "absent"


def test_5_4_search_finds_hang_only_with_leak() -> None:
    res = explore(devdax_program(leak=True, npages=2))
    assert [f.key for f in res.findings] == [(HANG, TEARDOWN_TERMINATES)]
    ok = explore(devdax_program(leak=False, npages=2))
    assert ok.findings == [] and ok.exhaustive


def test_5_4_gup_after_kill_fails_cleanly() -> None:
    # unbind first: the vCPU's gup sees no PTE (zapped) and takes nothing
    ex = run_in_order(devdax_program(leak=True), ["unbind", "vcpu"])
    assert ex.finding is None and ex.finished


def test_5_18_leak_completes_then_use_is_use_after_free() -> None:
    ex = run_in_order(devdax_program(leak=True, mm_version="5.18"), ["vcpu", "unbind"])
    assert ex.finding is None and ex.finished, "5.18 does not wait for page references"
    ex = run_in_order(
        devdax_program(leak=True, mm_version="5.18", use_after=True), ["vcpu", "unbind"]
    )
    assert ex.finding is None, "the use happens before teardown in this order"
    prog = devdax_program(leak=True, mm_version="5.18", use_after=True)
    ex = Execution(prog)
    names = ex.thread_names()
    vcpu, unbind = names.index("vcpu"), names.index("unbind")
    # the vCPU takes its reference (gup fast: pgmap get, page get, re-check, pgmap put)...
    while ex.threads[vcpu].op.field != "dirty":
        ex.step(vcpu)
    while ex.finding is None and unbind in ex.enabled():
        ex.step(unbind)
    assert ex.finding is None
    ex.step(vcpu)  # ...and only touches the page after the memmap is gone
    assert ex.finding is not None
    assert ex.finding.kind == USE_AFTER_FREE and ex.finding.prop == NO_METADATA_AFTER_TEARDOWN


def test_5_18_search_finds_use_after_free() -> None:
    res = explore(devdax_program(leak=True, mm_version="5.18", use_after=True))
    assert [f.key for f in res.findings] == [(USE_AFTER_FREE, NO_METADATA_AFTER_TEARDOWN)]
    # 5.18 does not wait for page references at all: even a reference that *is* put, if
    # it is still held when memunmap_pages runs, ends in a put on the freed memmap
    clean = explore(devdax_program(leak=False, mm_version="5.18"))
    assert [f.key for f in clean.findings] == [(USE_AFTER_FREE, NO_METADATA_AFTER_TEARDOWN)]
    assert "refcount" in clean.findings[0].message


def fsdax_program(*, leak: bool) -> Program:
    """KVM pins an fsdax page while the filesystem breaks layouts for a truncate."""

    def build() -> Instance:
        host = Host()
        r = host.add_fsdax(1, name="pmem0")
        set_context(World(host=host))
        page = pfn_to_page(r.pfn)
        assert r.mapping is not None

        def vcpu() -> None:
            got = __get_user_pages_fast(host.mm, r.start, True, "kvm")
            if got is not None and not leak:
                put_page(got, "kvm")

        def truncate() -> None:
            fsdax_break_layouts(r.mapping)

        def check() -> str | None:
            n = page.peek("refcount")
            return None if n >= 1 else f"fsdax page refcount {n} below the free-at-1 baseline"

        from pfnlab.explore import Check

        return Instance(
            threads={"vcpu": vcpu, "truncate": truncate},
            invariants=[Check("fsdax-baseline", check)],
        )

    return Program(f"fsdax leak={leak}", build)


def test_fsdax_truncate_waits_for_pins() -> None:
    res = explore(fsdax_program(leak=True))
    assert [f.key for f in res.findings] == [(HANG, TEARDOWN_TERMINATES)]
    assert explore(fsdax_program(leak=False)).findings == []


def test_memunmap_pages_fsdax_5_4_order() -> None:
    """memunmap_pages on an idle fsdax pgmap: put baseline -> 0 -> put_dev_pagemap -> done."""

    def build() -> Instance:
        host = Host()
        r = host.add_fsdax(2)
        set_context(World(host=host))
        assert r.pgmap is not None
        pgmap = r.pgmap

        def teardown() -> None:
            memunmap_pages(pgmap)

        return Instance(threads={"teardown": teardown})

    ex = run_in_order(Program("fsdax memunmap", build), ["teardown"])
    assert ex.finding is None and ex.finished


def test_reading_zone_of_freed_memmap_is_a_finding() -> None:
    """Dan's race: is_zone_device_page on an unpinned pfn while the memmap goes away."""

    def build() -> Instance:
        host = Host()
        r = host.add_devdax(1)
        set_context(World(host=host))
        assert r.dax is not None
        dax = r.dax

        def walker() -> None:
            if pfn_valid(r.pfn):
                is_zone_device_page(pfn_to_page(r.pfn))

        def unbind() -> None:
            dev_dax_unbind(dax)

        return Instance(threads={"walker": walker, "unbind": unbind})

    res = explore(Program("unpinned walker", build))
    assert [f.key for f in res.findings] == [(USE_AFTER_FREE, NO_METADATA_AFTER_TEARDOWN)]


def test_get_page_on_unpinned_device_page_after_teardown_put() -> None:
    """kvm_get_pfn-style get_page with no pin: can hit refcount 0 (or freed memmap)."""

    def build() -> Instance:
        host = Host()
        r = host.add_devdax(1)
        set_context(World(host=host))
        assert r.dax is not None
        dax = r.dax

        def getter() -> None:
            if pfn_valid(r.pfn):
                page = pfn_to_page(r.pfn)
                get_page(page, "kvm")
                put_page(page, "kvm")

        def unbind() -> None:
            dev_dax_unbind(dax)

        return Instance(threads={"getter": getter, "unbind": unbind})

    res = explore(Program("unpinned get", build), stop_first=False)
    props = {f.prop for f in res.findings}
    # both races: get_page taking refcount 0 -> 1, and get_page on a removed memmap
    assert props == {"no-put-unreferenced", NO_METADATA_AFTER_TEARDOWN}


def test_gup_fast_rechecks_the_pte_after_taking_the_reference() -> None:
    """gup reads the PTE, a zap clears it (page put later), gup's re-check must fail."""
    out: dict[str, object] = {}

    def build() -> Instance:
        host = Host()
        r = host.add_anon(1)
        set_context(World(host=host))
        out["page"] = pfn_to_page(r.pfn)

        def vcpu() -> None:
            out["got"] = __get_user_pages_fast(host.mm, r.start, True, "kvm")

        def zap() -> None:
            from pfnlab.mm import zap_page_range

            zap_page_range(r.vma, r.start, r.end)

        return Instance(threads={"vcpu": vcpu, "zap": zap})

    ex = Execution(Program("gup vs zap", build))
    vcpu, zap = ex.tid_of("vcpu"), ex.tid_of("zap")
    ex.step(vcpu)  # READ_ONCE(*ptep): present
    while ex.threads[zap].op.field != "refcount":  # zap up to tlb_finish_mmu's put
        ex.step(zap)
    while vcpu in ex.enabled():
        ex.step(vcpu)
    assert out["got"] is None, "the PTE changed: gup must drop its reference and fail"
    while zap in ex.enabled():
        ex.step(zap)
    assert ex.finding is None and ex.finished
    page = out["page"]
    assert page.peek("refcount") == 0  # type: ignore[attr-defined]

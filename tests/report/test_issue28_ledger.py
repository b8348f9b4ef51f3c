"""The reference ledger tells a reference handed to a cache from a put a classifier
skipped (issue 28), on models of the shapes the issue describes: a pfn cache that
refreshes to the same pfn and keeps both references (v5.17's gfn_to_pfn_cache shape), a
cache whose release forgets its put, and a user's own check failing after the host faulted
a new page in (the host's reference is not a leak)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from pfnlab import api
from pfnlab.cli.main import app
from tests.report.test_issue28 import _cli as _run


def _cli(args: list[str]) -> str:
    return _run(app, args)

CACHE = textwrap.dedent('''\
    from pfnlab import Host, instance, kfunc, map_owner, operation, scenario, variant, vm_on
    from pfnlab.explore import Field, Shared
    from pfnlab.kvm import __gfn_to_pfn_memslot, gfn_to_memslot, kvm_release_pfn_clean


    class Gpc(Shared):
        pfn = Field(None)


    def _lookup(kvm, gfn):
        pfn, _ = __gfn_to_pfn_memslot(gfn_to_memslot(kvm.memslots, gfn), gfn, False, True,
                                      True)
        return pfn


    @kfunc
    def gpc_refresh(kvm, gpc, gfn):
        """look the gfn up again (a gup reference); release the old pfn only if it changed"""
        new_pfn = _lookup(kvm, gfn)
        old = gpc.pfn
        gpc.pfn = new_pfn
        if old is not None and old != new_pfn:
            kvm_release_pfn_clean(old)


    @kfunc
    def gpc_release(gpc):
        """put the cached pfn's reference"""
        if gpc.pfn is not None:
            kvm_release_pfn_clean(gpc.pfn)
        gpc.pfn = None


    @scenario("gpc-refresh-twice", sizes={}, properties=["refs-balanced"])
    def build(variant, sz):
        """a vCPU refreshes its pfn cache twice, then releases it"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        gpc = Gpc("gpc")

        def vcpu0():
            with operation(map_owner(s.vcpus[0])):
                gpc_refresh(s.kvm, gpc, 0)
                gpc_refresh(s.kvm, gpc, 0)
                gpc_release(gpc)

        return instance(s, {"vcpu0": vcpu0}, ["refs-balanced"])


    def gpc_refresh_fixed(kvm, gpc, gfn):
        """release the old pfn's reference whatever the new pfn is"""
        new_pfn = _lookup(kvm, gfn)
        old = gpc.pfn
        gpc.pfn = new_pfn
        if old is not None:
            kvm_release_pfn_clean(old)


    def gpc_release_forgets(gpc):
        """forget the cached pfn without putting its reference"""
        gpc.pfn = None


    variant("gpc-fixed", parent="v5.4", overrides={"gpc_refresh": gpc_refresh_fixed},
            summary="refresh puts the old reference even when the pfn did not change")
    variant("gpc-forgets", parent="gpc-fixed", overrides={"gpc_release": gpc_release_forgets},
            summary="release forgets the cached pfn without a put")
''')


def test_a_refresh_to_the_same_pfn_blames_the_new_reference(
        model_file: Callable[..., Path]) -> None:
    path = model_file(CACHE, "gpc.py")
    text = _cli(["check", str(path), "v5.4", "gpc-refresh-twice", "--jobs", "1"])
    lines = text.splitlines()
    first = lines[lines.index("") + 1:lines.index("") + 5]
    assert first == [
        "leak: page 0x103: reference taken by vcpu0 (vcpu0:map) in hva_to_pfn_fast (step",
        "  7) was never put: gpc_refresh handed it to gpc.pfn at step 10, which already",
        "  held pfn 0x103 with the reference taken at step 1; two references for one",
        "  cached pfn, and one put (step 15)",
    ]
    # the release ran and put a reference: it is not named as having skipped one
    assert "skipped" not in text and "returned false" not in text.split("trace")[0]
    # the store that decides is shown, though it changes nothing
    assert " 10  gpc_refresh()" in lines and "       gpc.pfn 0x103 -> 0x103" in lines
    # the one put released the reference the field held before the refresh
    full = " ".join(_cli(["check", str(path), "v5.4", "gpc-refresh-twice", "--jobs", "1",
                          "--full"]).split())
    assert ("1 vcpu0: get page 0x103 1 -> 2, vcpu0:map, gup in hva_to_pfn_fast; put at "
            "step 15 7 vcpu0: get page 0x103 2 -> 3, vcpu0:map, gup in hva_to_pfn_fast; never "
            "put") in full
    leak = api.check("v5.4", "gpc-refresh-twice")
    assert leak.violated == ["refs-balanced"]
    assert api.check("gpc-fixed", "gpc-refresh-twice").violated == []


def test_the_json_carries_the_hand_off(model_file: Callable[..., Path]) -> None:
    from tests.report.test_json_facts import _json

    path = model_file(CACHE, "gpc.py")
    f = _json(["check", str(path), "v5.4", "gpc-refresh-twice"])["findings"][0]
    assert f["culprit"]["kind"] == "leak" and f["culprit"]["step"] == 7
    assert f["culprit"]["handed_to"] == "gpc.pfn" and f["culprit"]["skipped_by"] is None
    (leak,) = [lk for lk in f["ledger"]["leaks"]]
    assert (leak["handed_to"], leak["handed_at"], leak["already_held"]) == ("gpc.pfn", 10, 1)
    assert leak["get"]["step"] == 7 and leak["get"]["match"] is None


def test_a_cache_released_without_a_put(model_file: Callable[..., Path]) -> None:
    path = model_file(CACHE, "gpc.py")
    text = _cli(["check", str(path), "gpc-forgets", "gpc-refresh-twice", "--jobs", "1"])
    assert ("leak: page 0x103: reference taken by vcpu0 (vcpu0:map) in hva_to_pfn_fast (step"
            in text.splitlines())
    joined = " ".join(text.split())
    assert ("(step 7) was never put: gpc_refresh handed it to gpc.pfn at step 10, and no put "
            "of it followed") in joined
    assert "skipped" not in joined


HOST_REF = textwrap.dedent('''\
    from pfnlab import Check, Host, define_property, instance, scenario, vm_on
    from pfnlab.explore import Field, Shared
    from pfnlab.mm import do_anonymous_page, zap_page_range

    define_property("counter-is-two", "the counter ends at two")


    class Ctr(Shared):
        n = Field(0)


    @scenario("refault-then-count", sizes={}, properties=["counter-is-two"])
    def build(variant, sz):
        """the host zaps and refaults a page; a thread counts once (the check wants two)"""
        host = Host()
        ram = host.add_anon(1, refault=1)
        s = vm_on(host, [ram], 1)
        c = Ctr("c")

        def mmu():
            zap_page_range(ram.vma, ram.start, ram.end)
            do_anonymous_page(ram.vma, ram.start, True)
            c.n = c.n + 1

        done = Check("two", lambda: None if c.n == 2 else f"n = {c.n}", "counter-is-two")
        return instance(s, {"mmu": mmu}, ["counter-is-two"], final_checks=[done])
''')


def test_the_hosts_reference_on_a_new_page_is_no_leak(model_file: Callable[..., Path]) -> None:
    path = model_file(HOST_REF, "hostref.py")
    text = _cli(["check", str(path), "v5.4", "refault-then-count", "--jobs", "1"])
    assert text.splitlines()[:4] == [
        "v5.4 / refault-then-count: counter-is-two violated (final-check)",
        "  n = 1",
        "",
        "no race: mmu alone shows it, in program order (a sequential bug).",
    ]
    assert "leak" not in text


HANG = (
    CACHE.replace("from pfnlab import Host, instance,",
                  "from pfnlab import Host, dev_dax_unbind, instance,")
    .replace('@scenario("gpc-refresh-twice", sizes={}, properties=["refs-balanced"])',
             '@scenario("gpc-vs-unbind", sizes={}, properties=["teardown-terminates"])')
    .replace("    s = vm_on(host, [host.add_anon(1)], 1)\n",
             '    dax = host.add_devdax(1, name="dax0")\n    s = vm_on(host, [dax], 1)\n')
    .replace('    return instance(s, {"vcpu0": vcpu0}, ["refs-balanced"])\n',
             "    def admin():\n        dev_dax_unbind(dax.dax)\n\n"
             '    return instance(s, {"vcpu0": vcpu0, "admin": admin}, '
             '["teardown-terminates"])\n')
)


def test_a_hang_names_the_cache_that_kept_the_reference(
        model_file: Callable[..., Path]) -> None:
    """The device cannot be unbound while the cache's second reference is held: the wait
    chain ends at the reference the refresh handed to the cache."""
    assert "dev_dax_unbind(dax.dax)" in HANG and '"gpc-vs-unbind"' in HANG
    path = model_file(HANG, "gpc_hang.py")
    text = _cli(["check", str(path), "v5.4", "gpc-vs-unbind", "--jobs", "1"])
    joined = " ".join(text.split())
    assert "admin: memunmap_pages waits on pgmap dax0 done" in joined
    assert ("<- reference of vcpu0:map taken in hva_to_pfn_fast (step 10), leaked: handed to "
            "gpc.pfn at step 14, which already held its pfn with the reference taken at step "
            "2") in joined
    assert api.check("gpc-fixed", "gpc-vs-unbind").violated == []


# v5.17's gfn_to_pfn_cache shape: the refresh sets the pfn to a placeholder while it looks
# up, then stores the pfn it found; it releases the old pfn only if the new one differs
PLACEHOLDER = textwrap.dedent('''\
    from pfnlab import Host, instance, kfunc, map_owner, operation, scenario, vm_on
    from pfnlab.explore import Field, Shared
    from pfnlab.kvm import __gfn_to_pfn_memslot, gfn_to_memslot, kvm_release_pfn_clean


    class Gpc(Shared):
        pfn = Field(None)


    @kfunc
    def gpc_refresh(kvm, gpc, gfn):
        """v5.17's shape: the pfn is a placeholder while the lookup runs; the old pfn is
        released only if the new one differs"""
        old = gpc.pfn
        gpc.pfn = None
        slot = gfn_to_memslot(kvm.memslots, gfn)
        new_pfn, _ = __gfn_to_pfn_memslot(slot, gfn, False, True, True)
        gpc.pfn = new_pfn
        if old is not None and old != new_pfn:
            kvm_release_pfn_clean(old)


    @kfunc
    def gpc_release(gpc):
        if gpc.pfn is not None:
            kvm_release_pfn_clean(gpc.pfn)
        gpc.pfn = None


    @scenario("gpc-placeholder", sizes={}, properties=["refs-balanced"])
    def build(variant, sz):
        """a vCPU refreshes its pfn cache twice, then releases it"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        gpc = Gpc("gpc")

        def vcpu0():
            with operation(map_owner(s.vcpus[0])):
                gpc_refresh(s.kvm, gpc, 0)
                gpc_refresh(s.kvm, gpc, 0)
                gpc_release(gpc)

        return instance(s, {"vcpu0": vcpu0}, ["refs-balanced"])
''')


def test_a_refresh_through_a_placeholder_names_the_reference_it_dropped(
        model_file: Callable[..., Path]) -> None:
    path = model_file(PLACEHOLDER, "placeholder.py")
    text = _cli(["check", str(path), "v5.4", "gpc-placeholder", "--jobs", "1"])
    assert text.splitlines()[3:7] == [
        "leak: page 0x103: reference taken by vcpu0 (vcpu0:map) in hva_to_pfn_fast (step",
        "  11) was never put: gpc_refresh handed it to gpc.pfn at step 13, which held pfn",
        "  0x103 with the reference taken at step 4 until gpc_refresh set it to None at",
        "  step 8 without a put; two references for one cached pfn, and one put (step 18)",
    ]
    from tests.report.test_json_facts import _json

    f = _json(["check", str(path), "v5.4", "gpc-placeholder"])["findings"][0]
    (leak,) = f["ledger"]["leaks"]
    assert (leak["handed_at"], leak["already_held"], leak["cleared_at"]) == (13, 4, 8)
    assert f["culprit"]["handed_to"] == "gpc.pfn" and f["culprit"]["skipped_by"] is None
    # --full adds the ledger's references, not the leak a second time
    full = _cli(["check", str(path), "v5.4", "gpc-placeholder", "--jobs", "1", "--full"])
    first = full.split("\n\nv5.4 / gpc-placeholder")[0]
    assert first.count("leak: page 0x103") == 1
    assert "references (step thread: change, owner, function):" in first


def test_the_kernels_refresh_names_the_placeholder_and_the_retried_lookup() -> None:
    """examples/gpc_refresh.py, v5.17 against a migration: one execution leaks the
    reference of a refresh to the same pfn through the placeholder; another the reference
    of a lookup the refresh retried (the cache's put releases what the cache held)."""
    from pfnlab.api import registries_restored

    with registries_restored():
        text = _cli(["check", "examples/gpc_refresh.py", "gpc-v5.17",
                     "gpc-refresh-vs-migrate", "--jobs", "1"])
    leaks = [" ".join(p.split("\ncause:")[0].split()) for p in text.split("\n\n")
             if p.startswith("leak:")]
    assert leaks == [
        "leak: page 0x103: reference taken by vcpu0 (vcpu0:gpc) in hva_to_pfn_fast (step 66) "
        "was never put: kvm_gfn_to_pfn_cache_refresh handed it to gpc.pfn at step 71, which "
        "held pfn 0x103 with the reference taken at step 19 until "
        "kvm_gfn_to_pfn_cache_refresh set it to None at step 59 without a put; two "
        "references for one cached pfn, and one put (step 95)",
        "leak: page 0x103: reference taken by vcpu0 (vcpu0:gpc) in hva_to_pfn_fast (step 32) "
        "was never put: vcpu0 looked the page up again in hva_to_pfn_fast at step 68 "
        "without a put of it (a retry that drops the reference it holds)",
    ]
    assert "never reached a put" not in text and "skipped" not in text


def test_a_leak_seen_at_the_end_says_its_operation_returned(
        model_file: Callable[..., Path]) -> None:
    """A final check runs when every thread has finished: the owner's operation returned
    without a put, it did not "never reach" one."""
    from pfnlab.api import registries_restored

    with registries_restored():
        text = _cli(["check", "examples/retry_leak.py", "retry-leak", "fault-vs-zap",
                     "--jobs", "1"])
    final = text.split("refs-balanced violated (final-check)")[1]
    assert (" ".join(final.split("\ncause:")[0].split()).endswith(
        "leak: page 0x103: reference taken by vcpu0 (vcpu0:fault) in hva_to_pfn_fast (step "
        "2) was never put: vcpu0:fault returned without a put of it (no release on its "
        "path)"))

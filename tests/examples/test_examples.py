"""The user-style models in examples/: each buggy variant shows its bug, each fix holds."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pfnlab
from pfnlab.api import registries_restored

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"

# file, scenario, buggy variant, the property it violates, fixed variant, steps in the trace
CASES = [
    ("pfncache.py", "pfncache-vs-unbind", "v5.4", "no-metadata-after-teardown",
     "pfncache-fixed",
     ["gpc_refresh()", "kvm_release_pfn_clean()", "arch_remove_memory()", "free(page@0x104)"]),
    ("retry_leak.py", "fault-vs-zap", "retry-leak", "refs-balanced", "retry-leak-fixed",
     ["kvm_mmu_notifier_invalidate_range_", "hva_to_pfn_fast()", "tdp_page_fault()"]),
    ("thp_split_huge.py", "fault-vs-pmd-split", "thp-map-by-page", "huge-only-thp",
     "thp-map-by-mapping",
     ["__split_huge_pmd_locked()", "hva_to_pfn_fast()", "transparent_hugepage_adjust()"]),
    ("refcount_zero.py", "pfnmap-refcount0", "refcount-zero-buggy", "no-put-unreferenced",
     "refcount-zero-fixed", ["hva_to_pfn_remapped()", "page 0x103 ref 0 -> 1"]),
    ("apic_reload.py", "apic-vs-migrate", "apic-reload-v4.15", "secondary-coherent",
     "apic-reload-v5.8",
     ["gfn_to_pfn_cache_invalidate_start()", "vmcs.apic_access_addr.valid True ->",
      "hva_to_pfn_fast()", "vmcs.apic_access_addr.valid False", "pfn 0x103 ->"]),
    ("partial_compound.py", "fault-on-partly-mapped-compound", "compound-huge-by-page",
     "huge-only-thp", "compound-huge-by-host", ["hva_to_pfn_remapped()", "mmu_set_spte()",
                                                "kvm.spte2M[0x0].spte None -> pfn 0x104"]),
    ("refresh_race.py", "gpc-vs-zap", "gpc-buggy", "gpc-coherent", "gpc-fixed",
     ["kvm_mmu_notifier_invalidate_range_", "hva_to_pfn_fast()", "gpc_refresh()",
      "gpc.valid False -> True"]),
    ("section_usage.py", "pfn-walker-vs-hot-remove", "usage-kfree", "no-metadata-after-teardown",
     "usage-kfree-rcu",
     ["section_deactivate()", "usage@0x104.subsection_map 1 -> 0", "kfree()",
      "free(usage@0x104)", "pfn_valid()", "valid_section(section@0x104) = true",
      "pfn_section_valid()", "usage@0x104.subsection_map == 0"]),
    ("tdp_root_yield.py", "tdp-unmap-vs-unload", "tdp-unmap-v5.13", "no-root-after-free",
     "tdp-unmap-v5.16",
     ["kvm.root0.spte[0x0].spte None ->", "note: yields mmu_lock walking",
      "kvm_tdp_mmu_put_root()", "kvm.root0.tdp_mmu_root_count 1 -> 0", "free(kvm.root0)"]),
    ("fsdax_pmd.py", "fault-on-fsdax-pmd-and-pte", "fsdax-level-by-page", "huge-only-thp",
     "fsdax-level-by-host",
     ["kvm.spte2M[0x0].spte None -> pfn 0x104", "page 0x108 ref 1 -> 2",
      "kvm_is_zone_device_pfn(0x108) = true", "kvm.spte2M[0x2].spte None -> pfn 0x108"]),
    ("cow_remap.py", "fault-vs-cow", "cow-retry-seq-only", "no-stale-spte",
     "cow-retry-seq-and-count",
     ["do_wp_page()", "alloc_page()", "kvm.mmu_notifier_count 0 -> 1", "hva_to_pfn_slow()",
      "mmu_notifier_retry(kvm, 0x0)", "kvm.spte[0x0].spte None ->"]),
    ("pgmap_rcu.py", "pgmap-lookup-vs-unbind", "pgmap-free-no-gp", "no-metadata-after-teardown",
     "pgmap-synchronize-rcu",
     ["memunmap_pages()", "pgmap dax0 ref 2 -> 1, killed", "arch_remove_memory()",
      "pgmap_array_delete()", "pgmap_array.entry pgmap:dax0 ->", "free(pgmap:dax0)",
      "pgmap dax0 ref 0 -> None"]),
]


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with registries_restored():
        yield


@pytest.mark.parametrize(("file", "scenario", "buggy", "prop", "fixed", "steps"), CASES,
                         ids=[c[0] for c in CASES])
def test_example_bug_and_fix(file: str, scenario: str, buggy: str, prop: str, fixed: str,
                             steps: list[str]) -> None:
    mf = pfnlab.load_model(EX / file)
    assert scenario in mf.scenarios
    bad = pfnlab.check(buggy, scenario)
    assert bad.violated == [prop], bad.summary()
    text = bad.report()
    trace = text[text.index("trace ("):]
    pos = [trace.find(s) for s in steps]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), (steps, pos, text)
    good = pfnlab.check(fixed, scenario)
    assert good.ok and good.exhaustive and not good.goals_missed, good.summary()
    # the fix is a variant: diff names what it fixes
    d = pfnlab.diff(buggy, fixed, scenario)
    assert prop in d and "fixed" in d, d


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pfnlab", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_cli_with_model_file() -> None:
    m = "examples/pfncache.py"
    out = run("list", "--model", m)
    assert out.returncode == 0, out.stderr
    assert "pfncache-vs-unbind" in out.stdout and "pfncache-fixed" in out.stdout
    assert "gpc-released" in out.stdout
    out = run("check", "v5.4", "pfncache-vs-unbind", "--model", m)
    assert out.returncode == 1, out.stderr
    assert "no-metadata-after-teardown violated" in out.stdout
    out = run("check", m, "pfncache-fixed")          # the file's only scenario
    assert out.returncode == 0, out.stderr + out.stdout
    assert "pfncache-fixed / pfncache-vs-unbind: no finding" in out.stdout
    out = run("diff", "v5.4", "pfncache-fixed", "pfncache-vs-unbind", "--model", m)
    assert out.returncode == 1, out.stderr  # the designs differ
    assert "fixed" in out.stdout
    # the file may come first, as with check; its scenarios are the default
    out = run("diff", m, "v5.4", "pfncache-fixed")
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("diff v5.4 -> pfncache-fixed\npfncache-vs-unbind (exhaustive):")
    out = run("diff", m, "v5.4")
    assert out.returncode == 2 and "diff takes two variants" in out.stderr
    out = run("matrix", "--model", m, "-S", "pfncache-vs-unbind", "-V", "v5.4",
              "-V", "pfncache-fixed", "--jobs", "2", "--format", "json")
    assert out.returncode == 1, out.stderr  # a cell with a violation
    import json
    cells = {c["variant"]: c["status"] for c in json.loads(out.stdout)["cells"]}
    assert cells == {"v5.4": "violated", "pfncache-fixed": "holds"}


def test_cli_check_file_alone_is_ambiguous_with_two_variants() -> None:
    out = run("check", "examples/retry_leak.py")
    assert out.returncode == 2
    assert "retry-leak, retry-leak-fixed" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("source", "message"), [
    ("from pfnlab import scenario\n\ndef f(:\n    pass\n", "bad.py:3: invalid syntax"),
    ("import pfnlab\n\nx = 1\nraise RuntimeError('boom')\n",
     "bad.py:4: RuntimeError: boom"),
    ("from pfnlab import variant\n\nvariant('v5.4', parent='v5.3')\n",
     "bad.py:3: ValueError: variant 'v5.4' is defined twice"),
    ("from pfnlab import variant\n\nvariant('x', overrides={'kvm_is_reserved_pf': len})\n",
     "did you mean kvm_is_reserved_pfn"),
    ("from pfnlab import variant\n\nvariant('x', parent='nope')\n",
     "bad.py:3: ValueError: variant 'x': unknown parent 'nope'"),
])
def test_broken_model_file_points_at_the_line(tmp_path: Path, source: str,
                                               message: str) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    out = run("list", "--model", str(bad))
    assert out.returncode == 2
    assert message in out.stderr.replace("\n", " ") or message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    with pytest.raises(pfnlab.ModelFileError, match=r"bad\.py"):
        pfnlab.load_model(bad)
    assert "x" not in pfnlab.VARIANTS          # nothing half-registered


def test_error_in_a_called_function_points_at_the_user_line(tmp_path: Path) -> None:
    bad = tmp_path / "deep.py"
    bad.write_text("from pfnlab import scenario\n\n\ndef helper():\n    return {}['k']\n\n\n"
                   "helper()\n")
    with pytest.raises(pfnlab.ModelFileError, match=r"deep.py:5: KeyError: 'k'"):
        pfnlab.load_model(bad)


def test_a_huge_spte_finding_names_gfn_pfn_and_hva_as_such() -> None:
    """Issue 10: the event was recorded with the gfn in the pfn's place ("on pfn 0x0")."""
    pfnlab.load_model(EX / "thp_split_huge.py")
    bad = pfnlab.check("thp-map-by-page", "fault-vs-pmd-split")
    assert bad.findings[0].message == (
        "huge-spte-host-small on pfn 0x104: gfn 0x0 mapped huge, but the host maps hva 0x10 "
        "with 1 page(s)")


def test_v5_4_maps_a_pmd_mapped_fsdax_file_4k() -> None:
    """docs/cookbook.md recipe 12: the pages are not compound, so v5.4's
    PageTransCompoundMap test never maps the file huge (no finding, the goal missed)."""
    pfnlab.load_model(EX / "fsdax_pmd.py")
    r = pfnlab.check("v5.4", "fault-on-fsdax-pmd-and-pte")
    assert r.ok and r.goals_missed == ["pmd-file-mapped-huge"], r.summary()


def test_a_kernel_function_returning_an_errno_is_annotated_with_its_name() -> None:
    """Issue 10: like the boolean predicates and NULL pointers, an errno result shows in the
    trace by name (here the fix refuses the refcount-0 page)."""
    from pfnlab.explore.runtime import Execution
    from pfnlab.kernel.calls import KernelCall
    from pfnlab.scenarios import SCENARIOS
    from pfnlab.variants import get_variant

    pfnlab.load_model(EX / "refcount_zero.py")
    prog = SCENARIOS["pfnmap-refcount0"].program(get_variant("refcount-zero-fixed"))
    ex = Execution(prog, trace=True)
    vcpu = ex.tid_of("vcpu0")
    while vcpu in ex.enabled():
        ex.step(vcpu)
    notes = [n for st in ex.trace for n in st.notes]
    ex.close()
    calls = {(n.name, n.value) for n in notes if isinstance(n, KernelCall)}
    assert ("hva_to_pfn_remapped", "-EFAULT, ...") in calls, notes
    assert ("tdp_page_fault", "-EFAULT") in calls, notes
    assert any(str(n).startswith("tdp_page_fault(") and str(n).endswith(") = -EFAULT")
               for n in notes)


def test_a_leak_on_an_early_return_is_told_from_a_skipped_put() -> None:
    """Issue 10: the leak's explanation names what happened: the fault returned on a path
    with no release (retry_leak), where v5.3's release ran and skipped the put."""
    pfnlab.load_model(EX / "retry_leak.py")
    text = " ".join(pfnlab.check("retry-leak", "fault-vs-zap").report().split())
    assert ("leak: page 0x103: reference taken by vcpu0 (vcpu0:fault) in hva_to_pfn_fast "
            "(step 9) was never put: vcpu0:fault returned without a put of it (no release on "
            "its path)") in text
    text = " ".join(pfnlab.check("v5.3", "devdax-unbind").report().split())
    assert ("was never put: kvm_release_pfn_clean skipped it at step 13 because "
            "kvm_is_reserved_pfn(0x104) returned true") in text


def test_v5_4_section_removal_is_both_a_freed_and_a_null_usage_under_a_walker() -> None:
    """docs/cookbook.md recipe 9: the walker reads the freed ms->usage in one interleaving
    and loads the NULL that section_deactivate writes before it clears the flags in
    another."""
    pfnlab.load_model(EX / "section_usage.py")
    bad = pfnlab.check("usage-kfree", "pfn-walker-vs-hot-remove")
    kinds = sorted(f.kind for f in bad.findings)
    assert kinds == ["assertion", "use-after-free"], bad.summary()
    assert any("which is NULL" in f.message for f in bad.findings)


def test_the_ledger_covers_the_spte_of_a_tdp_mmu_root() -> None:
    """Issue 29: a TDP MMU root's SPTEs are the model's SPTE objects, so the built-in
    properties see them: an unmap that forgets to zap leaves a root's SPTE stale."""
    from pfnlab import variant

    mf = pfnlab.load_model(EX / "tdp_root_yield.py")
    assert "tdp-unmap-vs-unload" in mf.scenarios
    tdp = pfnlab.VARIANTS["tdp-unmap-v5.16"].overrides
    variant("tdp-unmap-none", "v5.4",
            {**tdp, "kvm_tdp_mmu_unmap_gfn_range": lambda kvm, range, flush: flush})
    bad = pfnlab.check("tdp-unmap-none", "tdp-unmap-vs-unload")
    assert "no-stale-spte" in bad.violated, bad.summary()
    assert "kvm.root0.spte[0x0] maps pfn 0x103" in bad.report()


def _finding_text(report: str, header: str) -> str:
    """The part of a report that tells the finding whose first line starts ``header``."""
    start = report.index(header)
    nxt = report.find("\ngpc-v5.17 / ", start + 1)
    return report[start:] if nxt < 0 else report[start:nxt]


def test_gpc_refresh_v5_17_finds_the_stale_pfn_and_the_retry_leak() -> None:
    """Recipe 11 (issue 29): v5.17's gfn_to_pfn_cache refresh against a zap, on the
    library's cache; v6.0's refresh holds exhaustively with both goals reached."""
    pfnlab.load_model(EX / "gpc_refresh.py")
    bad = pfnlab.check("gpc-v5.17", "gpc-refresh-vs-zap")
    assert bad.violated == ["refs-balanced", "secondary-coherent"], bad.summary()
    text = bad.report()
    stale = _finding_text(text, "gpc-v5.17 / gpc-refresh-vs-zap: secondary-coherent violated")
    assert "gpc is valid with pfn 0x103 after the invalidations of hva 0x10 are over" in stale
    trace = stale[stale.index("trace ("):]
    # the placeholder published valid, the lookup and its retry check, then the whole
    # invalidation (which skips the placeholder), then the publish of the zapped pfn
    steps = ["kvm_gfn_to_pfn_cache_refresh()", "gpc.valid False -> True", "hva_to_pfn_fast()",
             "unlock(kvm.mmu_lock)", "kvm.mn_active_invalidate_count 0 ->",
             "gfn_to_pfn_cache_invalidate_start()", "pte:mm@0x10.val pfn 0x103 -> None",
             "kvm.mmu_notifier_seq 0 -> 1", "gpc.pfn None -> 0x103"]
    pos = [trace.find(s) for s in steps]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), (steps, pos, stale)
    leak = _finding_text(text, "gpc-v5.17 / gpc-refresh-vs-zap: refs-balanced violated")
    flat = " ".join(leak.split())
    assert "reference taken by vcpu0 (vcpu0:gpc) in hva_to_pfn_fast" in flat, leak
    # the leaked reference is that of the lookup the retry check refused (the sequence
    # moved on): the retry looks again (the page is gone: -EFAULT) and never puts it
    trace = leak[leak.index("trace ("):]
    steps = ["hva_to_pfn_fast()", "page 0x103 ref 1 -> 2", "kvm.mmu_notifier_seq 0 -> 1",
             "wait gpc refresh retry", "follow_page_mask()", "gpc.valid True -> False"]
    pos = [trace.find(s) for s in steps]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), (steps, pos, leak)
    for scenario in ("gpc-refresh-vs-zap", "gpc-refresh-vs-migrate"):
        good = pfnlab.check("gpc-v6.0", scenario)
        assert good.ok and good.exhaustive and not good.goals_missed, good.summary()
        d = pfnlab.diff("gpc-v5.17", "gpc-v6.0", scenario)
        assert "refs-balanced: fixed in gpc-v6.0" in d, d
        assert "secondary-coherent: fixed in gpc-v6.0" in d, d


def test_gpc_refresh_v5_17_leaks_a_reference_on_a_refresh_to_the_same_pfn() -> None:
    """Recipe 11's second scenario: v5.17's cache reference makes the migration fail after
    its invalidation; the refresh finds the same pfn, the cache holds two references and
    puts one. The leak is told as a hand-off to the cache's field."""
    pfnlab.load_model(EX / "gpc_refresh.py")
    bad = pfnlab.check("gpc-v5.17", "gpc-refresh-vs-migrate")
    assert bad.violated == ["refs-balanced", "secondary-coherent"], bad.summary()
    text = bad.report()
    leak = _finding_text(text, "gpc-v5.17 / gpc-refresh-vs-migrate: refs-balanced violated")
    flat = " ".join(leak.split())
    assert "vcpu0:gpc returned still holding 1 reference(s) on pfn 0x103 (leaked)" in flat
    assert "kvm_gfn_to_pfn_cache_refresh handed it to gpc.pfn" in flat, leak
    trace = leak[leak.index("trace ("):]
    # published with the cache's reference, invalidated by the migration, refreshed to the
    # same pfn with a second reference, and one put by the unmap
    steps = ["page 0x103 ref 1 -> 2", "gpc.pfn None -> 0x103", "migrate_page_thread()",
             "gfn_to_pfn_cache_invalidate_start()", "gpc.valid True -> False",
             "gpc.pfn 0x103 -> None", "hva_to_pfn_fast()", "gpc.pfn None -> 0x103",
             "kvm_gfn_to_pfn_cache_unmap()", "gpc.pfn 0x103 -> None"]
    pos, at = [], 0
    for step in steps:
        at = trace.find(step, at)
        pos.append(at)
        at += 1
    assert all(p >= 0 for p in pos), (steps, pos, leak)


def test_rcu_needs_both_the_read_side_section_and_the_grace_period() -> None:
    """Recipe 14 (issue 29, RCU): a lookup outside rcu_read_lock() is not waited for by
    synchronize_rcu(); kfree_rcu instead of synchronize_rcu holds, with the goal reached;
    the causal core names the kernel's ordering the example declares."""
    pfnlab.load_model(EX / "pgmap_rcu.py")
    bad = pfnlab.check("pgmap-lookup-no-rcu", "pgmap-lookup-vs-unbind")
    assert bad.violated == ["no-metadata-after-teardown"], bad.summary()
    assert [f.kind for f in bad.findings] == ["use-after-free"]
    text = " ".join(pfnlab.check("pgmap-free-no-gp", "pgmap-lookup-vs-unbind").report().split())
    assert "the kernel orders these with rcu_read_lock() around the load and the use" in text
    good = pfnlab.check("pgmap-kfree-rcu", "pgmap-lookup-vs-unbind")
    assert good.ok and good.exhaustive and not good.goals_missed, good.summary()
    assert "no-metadata-after-teardown: fixed in pgmap-kfree-rcu" in pfnlab.diff(
        "pgmap-lookup-no-rcu", "pgmap-kfree-rcu", "pgmap-lookup-vs-unbind")

"""The API reference: built from the docstrings by pdoc; every public name is documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import pfnlab
import pfnlab.kvm
import pfnlab.mm
from tests.kvm.test_importable import PROPOSALS


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in pfnlab.__all__:
        obj = getattr(pfnlab, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
            missing.append(name)
    assert not missing


def test_pdoc_builds_the_reference(tmp_path: Path) -> None:
    pytest.importorskip("pdoc")
    out = subprocess.run([sys.executable, "-m", "pdoc", "pfnlab", "pfnlab.api", "pfnlab.mm",
                          "pfnlab.kvm", "-o", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "pfnlab.html").read_text()
    for name in ("scenario", "variant", "define_property", "vm_on", "instance", "check",
                 "load_model", "vcpu_faults", "dev_dax_unbind"):
        assert f'id="{name}"' in page, name
    assert "Declare and register a variant" in page
    assert (tmp_path / "pfnlab" / "api.html").exists()
    # the kernel functions a model calls or overrides, with their docstrings (issue 11)
    kvm = (tmp_path / "pfnlab" / "kvm.html").read_text()
    for name in ("tdp_page_fault", "kvm_release_pfn_clean", "gfn_to_memslot", "is_error_pfn",
                 "KVM_PFN_ERR_FAULT", "try_async_pf"):
        assert f'id="{name}"' in kvm, name
    # the TDP MMU (issue 29): roots, the walk, the yielding zap
    for name in ("KvmMmuPage", "kvm_tdp_mmu_get_root", "kvm_tdp_mmu_put_root", "TdpIter",
                 "tdp_iter_restart", "tdp_mmu_iter_cond_resched", "zap_gfn_range",
                 "__kvm_tdp_mmu_zap_gfn_range", "kvm_tdp_mmu_zap_all", "kvm_mmu_init_tdp_mmu"):
        assert f'id="{name}"' in kvm, name
    # the gfn_to_pfn_cache of v5.17 and v6.0 (issue 29)
    for name in ("PfnCache", "gfn_to_pfn_cache", "kvm_gpc_refresh", "kvm_gpc_check",
                 "kvm_gpc_activate", "kvm_gpc_deactivate", "kvm_gpc_unmap", "hva_to_pfn_retry",
                 "mmu_notifier_retry_cache", "kvm_gfn_to_pfn_cache_refresh",
                 "kvm_gfn_to_pfn_cache_check", "kvm_gfn_to_pfn_cache_unmap",
                 "mmu_notifier_retry_hva", "gfn_to_pfn_cache_invalidate_start",
                 "PFNCACHE_NOTIFIER", "touch_gpc"):
        assert f'id="{name}"' in kvm, name
    mm = (tmp_path / "pfnlab" / "mm.html").read_text()
    for name in ("zap_page_range", "PageTransCompoundMap", "pfn_to_online_page", "put_page"):
        assert f'id="{name}"' in mm, name
    # RCU and the sparse-section metadata (issue 29), each with its kernel file and version
    for name in ("rcu_read_lock", "rcu_read_unlock", "synchronize_rcu", "call_rcu",
                 "kfree_rcu", "rcu_callback_thread", "valid_section", "pfn_section_valid",
                 "section_deactivate", "sparse_remove_section", "SECTION_HAS_MEM_MAP",
                 "MemSectionUsage"):
        assert f'id="{name}"' in mm, name
        doc = inspect.getdoc(getattr(pfnlab.mm, name))
        if inspect.isfunction(getattr(pfnlab.mm, name)):
            assert doc and " v5.4" in doc.splitlines()[0], name
    # a PTE switched to another page under the notifiers, and KVM's ->change_pte (issue 29)
    for name in ("set_pte_at_notify", "mmu_notifier_change_pte", "wp_page_copy",
                 "replace_page"):
        assert f'id="{name}"' in mm, name
        doc = inspect.getdoc(getattr(pfnlab.mm, name))
        assert doc and " v5.4" in doc.splitlines()[0], name
    for name in ("kvm_mmu_notifier_change_pte", "kvm_set_spte_hva"):
        assert f'id="{name}"' in kvm, name
    sparse_rcu = (tmp_path / "pfnlab" / "mm" / "sparse_rcu.html").read_text()
    for name in ("pfn_valid", "section_deactivate", "V6_8", "V6_10"):
        assert f'id="{name}"' in sparse_rcu, name
    # the kernel functions and engine pieces issue 29 found missing from the reference
    for name in ("kvm_try_get_pfn", "kvm_is_ad_tracked_pfn", "kvm_mmu_hugepage_adjust"):
        assert f'id="{name}"' in kvm, name
    assert 'id="is_transparent_hugepage"' in mm
    for name in ("free", "note", "world", "World"):
        assert f'id="{name}"' in page, name
    # what a model of an earlier release meets (docs/tutorial.md, "When pfnlab changes")
    for name in ("PfnlabDeprecationWarning", "LibraryFunctionReplaced", "ReturnConventionError",
                 "KernelFunctionRecursion"):
        assert f'id="{name}"' in page, name
    # every kernel function of the library, on the page of the package it is imported from
    # (tests/kvm/test_importable.py: each is importable from one of them)
    from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

    pages = {pfnlab.kvm: kvm, pfnlab.mm: mm, pfnlab: page}
    undocumented = sorted(
        name for name, fn in KERNEL_FUNCTIONS.items()
        if getattr(getattr(fn, "base", fn), "__module__", "").startswith("pfnlab.")
        and name not in PROPOSALS
        and not any(hasattr(pkg, name) and f'id="{name}"' in html for pkg, html in pages.items()))
    assert not undocumented, f"kernel functions not in the API reference: {undocumented}"

"""Model files written against earlier releases keep loading and give the verdicts they
gave (the version policy of CHANGELOG.md): a change that breaks one needs a release of
deprecation warnings first. Each file is in tests/compat/models/; what it must say when it
loads and the verdict of each of its designs are pinned here."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pfnlab.api import check, load_model, registries_restored
from pfnlab.kernel.deprecation import PfnlabDeprecationWarning
from pfnlab.kernel.kfunc import LibraryFunctionReplaced

MODELS = Path(__file__).parent / "models"

#: file -> (the warnings loading or checking it gives, {design: violated properties})
EXPECTED: dict[str, tuple[set[type[Warning]], str, dict[str, set[str]]]] = {
    # 0.1: references recorded by hand with ghost.ref_taken/ref_dropping (no-ops now)
    "retry_leak_0_1.py": ({DeprecationWarning}, "compat-fault-vs-zap", {
        "compat-retry-leak": {"refs-balanced"},
        "compat-retry-leak-fixed": set(),
    }),
    # 0.1: an override extending the base model's version through KERNEL_FUNCTIONS[name]
    # (0.2 made the table run the checked variant's version: the override itself)
    "table_base_0_1.py": ({PfnlabDeprecationWarning}, "compat01-table-fault-vs-zap", {
        "compat01-double-release": {"no-put-unreferenced"},
        "compat01-single-release": set(),
    }),
    # a @kfunc named like a kernel function pfnlab defined later (kvm_try_get_pfn, v6.0)
    "try_get_pfn_own.py": ({LibraryFunctionReplaced}, "compat-pfnmap-refcount0", {
        "compat-refcount-zero-buggy": {"no-put-unreferenced"},
        "compat-refcount-zero-fixed": set(),
    }),
    # 0.2: an `owner` argument passed through KVM's functions and overrides that declare
    # it (0.3: the running thread's operation owns the references)
    "owner_0_2_retry_leak.py": ({PfnlabDeprecationWarning}, "compat02-fault-vs-zap", {
        "compat02-retry-leak": {"refs-balanced"},
        "compat02-retry-leak-fixed": set(),
    }),
    "owner_0_2_refresh_race.py": ({PfnlabDeprecationWarning}, "compat02-gpc-vs-zap", {
        "compat02-gpc-buggy": {"compat02-gpc-coherent"},
        "compat02-gpc-fixed": set(),
    }),
    "owner_0_2_refcount_zero.py": ({PfnlabDeprecationWarning}, "compat02-pfnmap-refcount0", {
        "compat02-refcount-zero-buggy": {"no-put-unreferenced"},
        "compat02-refcount-zero-fixed": set(),
    }),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_model_of_an_earlier_release_keeps_its_verdicts(name: str) -> None:
    expected_warnings, scenario, verdicts = EXPECTED[name]
    with registries_restored(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(MODELS / name)
        got = {}
        for design in verdicts:
            res = check(design, scenario)
            assert res.exhaustive, (design, res.coverage)
            got[design] = {f.prop for f in res.findings}
    assert got == verdicts
    kinds = {w.category for w in caught}
    for category in expected_warnings:
        assert any(issubclass(k, category) for k in kinds), (category, kinds)

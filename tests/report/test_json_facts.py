"""The JSON report carries the facts the text states, as fields (issue 28): the culprit,
the causal analysis's verdict, the deciding pair of steps and the ordering a fix must add.
Pinned on the 2019 hang (v5.3 devdax-unbind: a leak whose deciding race is vcpu0's gup
against the teardown's put) and on a sequential bug in a model file."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pfnlab.cli.main import app
from pfnlab.report.jsonout import validate
from tests.report.test_issue28 import GOAL


def _json(args: list[str]) -> dict[str, Any]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        app(args=[*args, "--format", "json", "--jobs", "1"], prog_name="pfnlab")
    doc: dict[str, Any] = json.loads(buf.getvalue())
    validate(doc)
    return doc


def test_the_2019_hang_names_its_culprit_pair_and_ordering() -> None:
    f = _json(["check", "v5.3", "devdax-unbind"])["findings"][0]
    assert f["culprit"] == {
        "kind": "leak", "step": 5, "thread": "vcpu0", "function": "hva_to_pfn_fast",
        "owner": "vcpu0:fault", "skipped_by": "kvm_release_pfn_clean", "handed_to": None,
        "sentence": "page 0x104: reference taken by vcpu0 (vcpu0:fault) in hva_to_pfn_fast "
                    "(step 5) was never put: kvm_release_pfn_clean skipped it at step 13 "
                    "because kvm_is_reserved_pfn(0x104) returned true"}
    c = f["causal"]
    assert c["verdict"] == "race" and c["alone"] is None
    assert f["same_execution_as"] is None
    first, second = c["deciding_pair"]
    assert (first["step"], first["thread"], first["function"]) == (5, "vcpu0",
                                                                   "hva_to_pfn_fast")
    assert (first["object"], first["field"], first["action"]) == ("page@0x104", "refcount",
                                                                  "rmw")
    assert (second["step"], second["thread"], second["function"]) == (44, "admin",
                                                                      "memunmap_pages")
    assert (c["first"], c["second"]) == (5, 44)
    order = c["suggested_ordering"]
    assert (order["must_precede"], order["instead_of"], order["common_locks"]) == (
        {"step": 44, "thread": "admin"}, {"step": 5, "thread": "vcpu0"}, [])
    # the kernel orders a gup reference against the teardown with a live pgmap reference
    # first, and the teardown waits for the holder's put: the put the hang lacks
    prim = order["kernel_primitive"]
    assert prim["primitive"] == "get_dev_pagemap() before the page reference, and its holder's put"
    assert prim["how"].endswith("so the teardown ends only when its holder puts it")
    assert order["options"] == [f"{prim['primitive']}: {prim['how']}"]
    assert order["window"] is None


def test_a_notifier_race_names_the_kernels_ordering_primitive() -> None:
    """sean-v1's use after free is decided by the fault's read of kvm->mmu_notifier_seq
    against the invalidation's increment: the kernel orders those with
    mmu_notifier_retry(), a refresh from the invalidation, not a lock around both."""
    f = next(x for x in _json(["check", "sean-v1", "remapped-vs-unbind"])["findings"]
             if x["kind"] == "use-after-free")
    first, second = f["causal"]["deciding_pair"]
    assert (first["object"], first["field"]) == ("kvm", "mmu_notifier_seq")
    assert (second["function"], second["field"]) == ("kvm_mmu_notifier_invalidate_range_end",
                                                     "mmu_notifier_seq")
    order = f["causal"]["suggested_ordering"]
    assert order["kernel_primitive"]["primitive"] == "mmu_notifier_retry()"
    assert order["options"][0].startswith("mmu_notifier_retry(): the fault reads "
                                          "kvm->mmu_notifier_seq before it resolves the pfn")
    assert "a lock around both" not in f["causal"]["text"]
    assert "the kernel orders these with mmu_notifier_retry()" in f["causal"]["text"]


def test_a_model_declares_the_ordering_of_its_own_field() -> None:
    from pfnlab import orders
    from pfnlab.explore import Field, Shared
    from pfnlab.kernel.ordering import ordering_of

    class Cache(Shared):
        gen = Field(0)

    class SubCache(Cache):
        pass

    orders(Cache, "gen", primitive="smp_load_acquire()", how="the reader re-checks gen",
           where="mm/example.c")
    got = ordering_of(SubCache, "gen")
    assert got is not None and got.primitive == "smp_load_acquire()"
    assert ordering_of(Cache, "other") is None


def test_a_second_finding_of_the_execution_says_which_one_it_shares() -> None:
    f2 = _json(["check", "v5.3", "devdax-unbind"])["findings"][1]
    assert f2["property"] == "refs-balanced"
    assert f2["same_execution_as"] == {"finding": 1, "entries": 14}


def test_a_sequential_bug_says_so_in_fields(model_file: Callable[..., Path]) -> None:
    path = model_file(GOAL, "goal.py")
    f = _json(["check", str(path), "v5.4", "arm-and-fail"])["findings"][0]
    assert f["causal"]["verdict"] == "sequential" and f["causal"]["alone"] == "arm"
    assert f["causal"]["deciding_pair"] is None and f["causal"]["suggested_ordering"] is None
    assert f["culprit"]["kind"] == "sequential" and f["culprit"]["thread"] == "arm"
    assert f["culprit"]["sentence"].startswith("no race: arm alone shows it")

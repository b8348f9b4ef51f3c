"""Issue 10, "continue past a finding", on the kernel models: a violation found only after
an earlier finding of its execution, and properties reported "not established" where a
finding that ends its execution cut the rest short (never "holds")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pfnlab import api
from pfnlab.matrix import NOT_ESTABLISHED, VIOLATED, Options, run_cell

ROOT = Path(__file__).resolve().parents[2]
MASK = "masked by no-metadata-after-teardown in 2 executions"


def test_a_use_after_free_is_found_past_the_unpinned_map() -> None:
    """dan-early-put drops the gup reference right after the fault, so kvm_vcpu_map maps a
    page it holds no reference on (pin-held, a stable invariant); the unbind then frees the
    memmap and the vCPU touches the mapped page: a use of freed memmap that the pin-held
    finding used to hide by ending the execution."""
    res = api.check("dan-early-put", "vcpu-map-vs-unbind")
    assert res.exhaustive
    assert set(res.violated) == {"pin-held", "no-spte-to-freed", "no-metadata-after-teardown"}
    f = next(f for f in res.findings if f.prop == "no-metadata-after-teardown")
    assert f.message.startswith("vcpu0 read page@0x104.data after it was freed")
    # the trace goes through the unpinned map before the use after free
    assert any("kvm_vcpu_map" in st.where for st in f.trace)
    assert f.trace[-1].thread == "vcpu0" and f.trace[-1].field == "data"


def test_masked_properties_are_not_established_in_the_matrix() -> None:
    cell = run_cell("dan-early-put", "devdax-unbind",
                    Options(["dan-early-put"], ["devdax-unbind"]))
    assert cell.exhaustive
    assert cell.violated() == ["no-metadata-after-teardown"]
    assert cell.status() == VIOLATED
    for p in ("refs-balanced", "teardown-terminates", "no-spte-to-freed"):
        v = cell.verdicts[p]
        assert (v.verdict, v.reason) == (NOT_ESTABLISHED, MASK)
    assert cell.verdicts["pin-held"].verdict == "n/a"


def test_check_says_what_is_not_established() -> None:
    out = subprocess.run([sys.executable, "-m", "pfnlab", "check", "dan-early-put",
                          "devdax-unbind", "--format", "json"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["not_established"]["refs-balanced"] == MASK
    assert set(doc["not_established"]) == {
        "refs-balanced", "no-put-unreferenced", "no-stale-spte", "no-spte-to-freed",
        "ad-only-tracked", "huge-only-thp", "teardown-terminates", "notifier-balanced"}
    text = subprocess.run([sys.executable, "-m", "pfnlab", "check", "dan-early-put",
                           "devdax-unbind"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300).stdout
    assert ("not established: refs-balanced, no-put-unreferenced, no-stale-spte,\n"
            "  no-spte-to-freed, ad-only-tracked, huge-only-thp, teardown-terminates,\n"
            "  notifier-balanced — masked by no-metadata-after-teardown in 2 executions (a\n"
            "  finding that ends its execution leaves the rest of it unchecked)\n") in text


def test_diff_does_not_call_a_masked_property_fixed() -> None:
    from pfnlab.patchdiff import UNKNOWN, diff

    (sd,) = diff("v5.3", "dan-early-put", ["devdax-unbind"])
    changes = {p.prop: (p.change, p.why) for p in sd.props}
    why = f"not established on dan-early-put: {MASK}"
    assert changes["refs-balanced"] == (UNKNOWN, why)
    assert changes["teardown-terminates"] == (UNKNOWN, why)
    assert changes["no-metadata-after-teardown"][0] == "broken"

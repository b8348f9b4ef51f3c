"""Issue 10, "no vacuous pass": the model code under review that no explored execution ran
(pfnlab/model/reach.py), like SPIN's "unreached in proctype"."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pfnlab import SCENARIOS, VARIANTS
from pfnlab.api import load_model, registries_restored
from pfnlab.explore.search import explore
from pfnlab.model.reach import recording, review

ROOT = Path(__file__).resolve().parents[2]

MODEL = textwrap.dedent('''\
    from pfnlab import variant
    from pfnlab.mm.memmap import is_zero_pfn, pfn_to_page, pfn_valid
    from pfnlab.mm.page import PageReserved, is_zone_device_page


    def kvm_is_reserved_pfn(pfn):
        if not pfn_valid(pfn):
            return is_zero_pfn(pfn)          # never: devdax pfns are valid
        page = pfn_to_page(pfn)
        if is_zone_device_page(page):
            return False
        return PageReserved(page)            # never: every devdax page is ZONE_DEVICE


    def kvm_is_zone_device_pfn(pfn):          # called: only ever true here
        return is_zone_device_page(pfn_to_page(pfn))


    variant("mine", parent="v5.4", summary="a patch under review",
            overrides={"kvm_is_reserved_pfn": kvm_is_reserved_pfn,
                       "kvm_is_zone_device_pfn": kvm_is_zone_device_pfn})
''')


def _review(variant: str, scenario: str) -> list[str]:
    with recording() as rec:
        explore(SCENARIOS[scenario].program(VARIANTS[variant]), stop_first=False,
                minimal=False)
    return review(rec, VARIANTS[variant], SCENARIOS[scenario]).lines()


def test_the_untaken_branches_of_a_patch_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(MODEL)
    with registries_restored():
        load_model(path)
        text = "\n".join(_review("mine", "devdax-unbind"))
    assert " ".join(text.split()) == " ".join((
        "unreached: no explored execution ran these parts of the code under review (the "
        "variant's overrides, the model file; 2 of its 7 kernel-function calls):\n"
        f"  is_zero_pfn() in kvm_is_reserved_pfn ({path}:8)\n"
        f"  PageReserved() in kvm_is_reserved_pfn ({path}:12)\n"
        "  kvm_is_reserved_pfn only returned false: the other branch of its callers never\n"
        "    ran\n"
        "  kvm_is_zone_device_pfn only returned true: the other branch of its callers\n"
        "    never ran").split())


def test_a_design_whose_code_all_ran_reports_nothing() -> None:
    assert _review("v5.4", "devdax-unbind") == []


def test_a_predicate_with_one_answer_is_reported() -> None:
    """v5.3 treats every devdax pfn as reserved: the put branch of kvm_release_pfn_clean
    never runs in devdax-unbind, and its zone-device helper is never called."""
    text = "\n".join(_review("v5.3", "devdax-unbind"))
    assert "kvm_is_zone_device_pfn (pfnlab/variants/v5_3.py:23): never called" in text
    assert "kvm_is_reserved_pfn only returned true" in text


def test_other_variants_code_in_the_same_file_is_not_under_review() -> None:
    with registries_restored():
        load_model(ROOT / "examples" / "pfncache.py")
        for v in ("v5.4", "pfncache-fixed"):
            assert _review(v, "pfncache-vs-unbind") == [], v


def test_check_prints_it_and_the_json_carries_it(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from pfnlab.report.jsonout import validate

    path = tmp_path / "mine.py"
    path.write_text(MODEL)
    out = subprocess.run([sys.executable, "-m", "pfnlab", "check", str(path), "mine",
                          "devdax-unbind"], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "unreached: no explored execution ran these parts of the code under review" \
        in out.stdout
    assert f"is_zero_pfn() in kvm_is_reserved_pfn ({path}:8)" in " ".join(out.stdout.split())
    js = subprocess.run([sys.executable, "-m", "pfnlab", "check", str(path), "mine",
                         "devdax-unbind", "--format", "json"], capture_output=True, text=True,
                        cwd=ROOT, timeout=300)
    doc = json.loads(js.stdout)
    validate(doc)
    assert [s["callee"] for s in doc["unreached"]["call_sites"]] == ["is_zero_pfn",
                                                                     "PageReserved"]
    assert doc["unreached"]["reviewed"] == 7

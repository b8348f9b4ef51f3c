"""Issue 10, "no vacuous pass", down to lines: ``check --unreached-lines`` lists the lines of
the model no explored execution ran (pfnlab/model/lines.py), in the base model as well as
in the code under review."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pfnlab import SCENARIOS, VARIANTS
from pfnlab.api import load_model, registries_restored
from pfnlab.cli import app
from pfnlab.explore.search import explore
from pfnlab.model.lines import INSTALL_HINT, model_files, review_lines, tracing_lines
from pfnlab.model.reach import recording, under_review
from pfnlab.report.jsonout import validate

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


    def helper_never_called(pfn):
        return pfn + 1


    variant("mine", parent="v5.4", summary="a patch under review",
            overrides={"kvm_is_reserved_pfn": kvm_is_reserved_pfn})
''')


def _lines(variant: str, scenario: str) -> Any:
    v, sc = VARIANTS[variant], SCENARIOS[scenario]
    overrides, files, _ = under_review(v, sc)
    with recording() as rec, tracing_lines(model_files(overrides, files)) as lt:
        explore(sc.program(v), stop_first=False, minimal=False)
    return review_lines(lt, rec.called, v, sc)


def _row(found: Any, function: str) -> Any:
    rows = [f for f in found.functions if f.function == function]
    assert len(rows) <= 1
    return rows[0] if rows else None


def test_the_untaken_branches_of_an_override_and_an_unused_helper(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(MODEL)
    with registries_restored():
        load_model(path)
        found = _lines("mine", "devdax-unbind")
    text = "\n".join(found.lines(200))
    assert f"  kvm_is_reserved_pfn ({path}:6): lines 8, 12" in text
    assert f"  helper_never_called ({path}:15): never ran" in text


def test_the_base_model_put_branch_v53_never_takes() -> None:
    """v5.3 calls every devdax pfn reserved: kvm_release_pfn_clean's put never runs (the
    2019 leak), and the line list says so without any override being involved."""
    import inspect

    from pfnlab.kvm.pfn import kvm_release_pfn_clean

    src, first = inspect.getsourcelines(kvm_release_pfn_clean.base)  # type: ignore[attr-defined]
    put = first + next(i for i, line in enumerate(src) if "put_page" in line)
    defined = first + next(i for i, line in enumerate(src) if line.startswith("def "))
    row = _row(_lines("v5.3", "devdax-unbind"), "kvm_release_pfn_clean")
    assert row is not None and row.ran and row.lines == (put,)
    assert row.where() == f"pfnlab/kvm/pfn.py:{defined}"
    # v5.4 puts: the same lines ran
    assert _row(_lines("v5.4", "devdax-unbind"), "kvm_release_pfn_clean") is None


def _put_line() -> tuple[int, int]:
    """The lines of ``def kvm_release_pfn_clean`` and of its put_page."""
    import inspect

    from pfnlab.kvm.pfn import kvm_release_pfn_clean

    src, first = inspect.getsourcelines(kvm_release_pfn_clean.base)  # type: ignore[attr-defined]
    put = first + next(i for i, line in enumerate(src) if "put_page" in line)
    defined = first + next(i for i, line in enumerate(src) if line.startswith("def "))
    return defined, put


def test_the_cli_prints_and_writes_the_lines(tmp_path: Path) -> None:
    defined, put = _put_line()
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["check", "v5.3", "devdax-unbind", "--unreached-lines",
                                 "--output", str(out)])
    assert r.exit_code == 1, r.output
    assert "unreached lines: no explored execution ran these lines of the model" in r.output
    assert f"kvm_release_pfn_clean (pfnlab/kvm/pfn.py:{defined}): line {put}" in r.output
    doc = json.loads(out.read_text())
    validate(doc)
    rows = {e["function"]: e for e in doc["unreached"]["lines"]}
    assert rows["kvm_release_pfn_clean"] == {"function": "kvm_release_pfn_clean",
                                             "where": f"pfnlab/kvm/pfn.py:{defined}",
                                             "ran": True, "lines": [put]}


def test_without_coverage_the_option_says_what_to_install(
        without_package: Callable[[str], None]) -> None:
    without_package("coverage")
    r = CliRunner().invoke(app, ["check", "v5.4", "devdax-unbind", "--unreached-lines"])
    assert r.exit_code == 2
    assert "pip install 'coverage>=7'" in " ".join(r.output.split())
    assert INSTALL_HINT.startswith("--unreached-lines")

"""The command line: lists, bad input, JSON matrix, check output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pfnlab", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_list_names_everything() -> None:
    out = run("list")
    assert out.returncode == 0
    from pfnlab.properties import PROPERTIES
    from pfnlab.scenarios import SCENARIOS
    from pfnlab.variants import VARIANTS

    for name in [*VARIANTS, *SCENARIOS, *PROPERTIES]:
        assert re.search(rf"^  {re.escape(name)}\s", out.stdout, re.M), name
    assert out.stdout.splitlines()[1].split()[0] == "v5.3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "v9.9", "devdax-unbind"], "unknown variant 'v9.9'; valid variants: v5.3,"),
        (["check", "v5.4", "nope"], "unknown scenario 'nope'; valid scenarios: devdax-unbind,"),
        (["matrix", "-S", "devdax-unbind", "--size", "vcpus=0"], "must be at least 1"),
        (["matrix", "-S", "devdax-unbind", "--size", "bogus=1"], "valid sizes:"),
        (["matrix", "--executions", "0"], "an execution budget must be at least 1"),
        (["matrix", "--seconds", "0"], "a time budget must be a positive number of seconds"),
        (["check", "v5.4", "devdax-unbind", "--seconds", "nan"],
         "a time budget must be a positive number of seconds, not nan; leave it out"),
        (["check", "v5.4", "devdax-unbind", "--seconds", "inf"], "not inf"),
        (["matrix", "--format", "xml"], "unknown format 'xml'; valid formats: text, json"),
        (["check", "v5.4", "devdax-unbind", "--strategy", "bfs"], "unknown strategy 'bfs'"),
        (["matrix", "--mm", "4.19"], "unknown mm version '4.19'; valid: 5.4, 5.18, variant"),
        (["thread", "--format", "pdf"], "unknown format 'pdf'; valid formats: text, md, html"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(args: list[str], message: str) -> None:
    out = run(*args)
    assert out.returncode == 2, out
    assert message in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr


def test_matrix_json_records() -> None:
    out = run("matrix", "-V", "v5.3", "-V", "v5.4", "-S", "devdax-unbind", "--format", "json")
    assert out.returncode == 1, out.stderr  # v5.3 violates: the matrix is a CI gate
    data = json.loads(out.stdout)
    assert data["schema"] == "pfnlab.matrix/1"
    assert data["parameters"]["variants"] == ["v5.3", "v5.4"]
    rows = {(r["variant"], r["property"]): r for r in data["results"]}
    assert set(rows[("v5.3", "teardown-terminates")]) >= {
        "variant", "scenario", "property", "verdict", "executions", "seconds", "coverage"}
    assert rows[("v5.3", "teardown-terminates")]["verdict"] == "violated"
    assert rows[("v5.3", "refs-balanced")]["verdict"] == "violated"
    assert rows[("v5.4", "teardown-terminates")]["verdict"] == "holds"
    assert rows[("v5.4", "pin-held")]["verdict"] == "n/a"
    assert all(r["coverage"].startswith("exhaustive") for r in data["results"])


def test_matrix_text_has_a_total_line() -> None:
    out = run("matrix", "-V", "v5.3", "-S", "devdax-unbind", "-S", "thp-split")
    assert out.returncode == 1, out.stderr
    assert "✘ teardown-terminates" in out.stdout
    # the total line is wrapped to the table's width
    assert re.search(r"total: 2 cells — 1 hold everything, 1 with violations, 0 not fully "
                     r"covered; [\d,]+ executions; [\d.]+ s", " ".join(out.stdout.split()))


def test_check_prints_the_minimal_hang_trace() -> None:
    out = run("check", "v5.3", "devdax-unbind")
    assert out.returncode == 1
    text = out.stdout
    assert "v5.3 / devdax-unbind: teardown-terminates violated (hang)" in text
    assert "minimal: fewest preemptions" in " ".join(text.split())
    assert "admin: memunmap_pages waits on pgmap dax0 done" in text
    assert "kvm_release_pfn_clean()" in text and "pfn_valid()" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    full = run("check", "v5.3", "devdax-unbind", "--full").stdout
    assert "pfn_valid()" in full and "section@0x104.state == present" in full


def test_check_clean_variant_says_what_was_covered() -> None:
    out = run("check", "v5.4", "devdax-unbind", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["findings"] == [] and data["exhaustive"]
    assert data["goals_missed"] == []


def test_the_statistics_state_the_fingerprint_collision_odds() -> None:
    """A "holds" rests on 128-bit state fingerprints: the odds that two of the states
    explored shared one are printed with the counts (n**2 / 2**129)."""
    out = run("check", "v5.4", "devdax-unbind")
    assert out.returncode == 0, out.stderr
    m = re.search(r"([\d,]+) states \(fingerprint collision odds < (\S+)\)", out.stdout)
    assert m is not None, out.stdout
    states = int(m.group(1).replace(",", ""))
    assert float(m.group(2)) >= states * states / 2.0 ** 129
    assert float(m.group(2)) < 1e-20


def test_version() -> None:
    from pfnlab import __version__

    out = run("--version")
    assert (out.returncode, out.stdout) == (0, f"pfnlab {__version__}\n")


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_the_coverage_and_count_lines_agree_for_sampling_strategies(strategy: str) -> None:
    """A stable field promoted mid-search starts it again: the coverage line counted the
    last round's executions, the count line every round's."""
    out = run("check", "v5.4", "devdax-unbind", "--strategy", strategy, "--executions", "50")
    text = " ".join(out.stdout.split())
    counted = re.search(r"(\d+) executions, ", text)
    cov = re.search(r"coverage: (\d+) \w+ executions", text)
    more = re.search(r"; (\d+) more before the search started again", text)
    assert counted and cov, text
    assert int(cov.group(1)) + (int(more.group(1)) if more else 0) == int(counted.group(1)) \
        == 50, text

"""``pfnlab check --swarm N``: bug hunting by diversified searches (issue 30 item 4)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pfnlab.cli import app

HUNT = ["check", "v5.3", "devdax-unbind", "--size", "vcpus=2", "--size", "pages=2",
        "--swarm", "4", "--seed", "3", "--executions", "30"]


def _json(args: list[str]) -> tuple[int, dict[str, Any]]:
    r = CliRunner().invoke(app, [*args, "--format", "json"])
    return r.exit_code, json.loads(r.stdout)


def test_swarm_finds_v5_3s_hang_and_its_trace_replays(tmp_path: Path) -> None:
    report = tmp_path / "swarm.json"
    r = CliRunner().invoke(app, [*HUNT, "--jobs", "1", "--output", str(report)])
    assert r.exit_code == 1, r.output
    assert "v5.3 / devdax-unbind: teardown-terminates violated (hang)" in r.output
    flat = " ".join(r.output.split())
    assert "4 of 4 swarm searches ran (seed 3)" in flat
    assert "swarm seed 3: --seed 3 runs the same 4 members again" in flat
    assert "what each member covered:" in flat
    doc = json.loads(report.read_text())
    hang = next(f for f in doc["findings"] if f["property"] == "teardown-terminates")
    assert hang["kind"] == "hang" and hang["minimal"].startswith("minimal:")
    assert not doc["exhaustive"]
    members = doc["swarm"]["members"]
    assert [m["strategy"] for m in members] == ["random", "pct", "bounded", "random"]
    assert any("hang:teardown-terminates" in m["findings"] for m in members)
    for m in members:
        assert m["executions"] >= 1 and m["runs"] >= 1 and m["coverage"]
    assert sum(m["executions"] for m in members) == doc["stats"]["executions"]
    again = CliRunner().invoke(app, ["replay", str(report)])
    assert again.exit_code == 0, again.output


def test_a_clean_design_is_inconclusive_never_holds() -> None:
    r = CliRunner().invoke(app, ["check", "v6.13", "devdax-unbind", "--swarm", "3",
                                 "--seed", "1", "--executions", "20", "--jobs", "1"])
    assert r.exit_code == 3, r.output
    flat = " ".join(r.output.split())
    assert re.search(r"inconclusive: no finding in 3 swarm searches \([\d,]+ executions\); "
                     r"a swarm never proves a property", flat), flat
    assert "holds" not in flat and "no finding" in flat


def test_the_same_seed_gives_the_same_swarm_on_one_worker_or_two() -> None:
    code1, one = _json([*HUNT, "--jobs", "1"])
    code2, two = _json([*HUNT, "--jobs", "2"])
    assert code1 == code2 == 1

    def runs(doc: dict[str, Any]) -> list[Any]:
        return [{k: v for k, v in m.items() if k != "seconds"} for m in doc["swarm"]["members"]]

    assert runs(one) == runs(two)
    assert [(f["property"], f["schedule"]) for f in one["findings"]] == \
        [(f["property"], f["schedule"]) for f in two["findings"]]
    code3, other = _json([*HUNT[:-4], "--seed", "4", "--executions", "30", "--jobs", "1"])
    assert code3 == 1  # another seed: other members (which find the same bugs here)
    assert [m["seed"] for m in other["swarm"]["members"]] != \
        [m["seed"] for m in one["swarm"]["members"]]


def test_without_a_seed_the_swarm_draws_one_and_says_it() -> None:
    code, doc = _json(["check", "v6.13", "devdax-unbind", "--swarm", "1",
                       "--executions", "5", "--jobs", "1"])
    assert code == 3
    seed = doc["swarm"]["seed"]
    assert f"(seed {seed})" in doc["coverage"]
    assert doc["swarm"]["members"][0]["strategy"] == "random"


def test_seed_also_seeds_a_random_walk() -> None:
    r = CliRunner().invoke(app, ["check", "v6.13", "devdax-unbind", "--strategy", "random",
                                 "--seed", "5", "--executions", "3"])
    assert r.exit_code == 3, r.output
    assert "random executions (seed 5)" in " ".join(r.output.split())


def test_first_stops_the_swarm_at_the_first_member_with_a_finding() -> None:
    code, doc = _json([*HUNT, "--jobs", "1", "--first"])
    assert code == 1 and len(doc["findings"]) == 1
    members = doc["swarm"]["members"]
    assert members[0]["findings"] and members[0]["runs"] == 1
    assert [m["coverage"] for m in members[1:]] == \
        ["not run: another member showed a finding first"] * 3


@pytest.mark.parametrize(("extra", "says"), [
    (["--swarm", "0"], "--swarm 0: a swarm has at least 1 member; give e.g. --swarm 8"),
    (["--swarm", "3", "--strategy", "dpor"], "--swarm with --strategy dpor: a swarm's members "
     "are random, pct and bounded searches"),
    (["--swarm", "3", "--unreached-lines"], "leave out --swarm (or --unreached-lines)"),
    (["--seed", "3"], "--seed 3: only --swarm and --strategy random or pct draw from a seed"),
])
def test_what_a_swarm_cannot_take_is_a_usage_error(extra: list[str], says: str) -> None:
    r = CliRunner().invoke(app, ["check", "v5.3", "devdax-unbind", *extra])
    assert r.exit_code == 2, r.output
    assert says in " ".join(r.output.split())


def test_ctrl_c_reports_what_the_members_covered_and_leaves_no_process() -> None:
    """A real SIGINT to a running swarm: exit 3, each running member's coverage so far,
    and none of its processes left."""
    import signal
    import time

    from tests.cli.test_faults import children, gone, started

    args = ["check", "v5.3", "devdax-unbind", "--size", "vcpus=4", "--size", "pages=4",
            "--swarm", "4", "--seed", "9", "--seconds", "120", "--jobs", "2"]
    with started(args) as p:
        end = time.monotonic() + 30
        while len(children(p.pid)) < 2 and time.monotonic() < end:
            time.sleep(0.1)
        members = children(p.pid)
        time.sleep(1.0)  # the members run some executions
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 3, (out, err)
        assert gone(members, 5)
    flat = " ".join(out.split())
    assert "interrupted (Ctrl-C)" in flat
    # both running members report what they covered: the interrupt stops a member's
    # search between two steps (common.request_stop), never outside its own handling
    assert re.search(r"1: \d+ random executions \(seed \d+\) \(interrupted\)", flat), flat
    assert re.search(r"2: \d+ PCT executions \(depth \d+, seed \d+\) \(interrupted\)",
                     flat), flat
    assert "stopped: interrupted" not in flat, flat
    assert "3: not run: interrupted" in flat


def test_matrix_and_sweep_run_a_swarm_in_each_cell_and_never_say_holds() -> None:
    """``matrix --swarm N`` / ``sweep --swarm N``: each cell is a swarm of the same N
    members (one seed plans them), found bugs are violations, and no property holds."""
    code, doc = _json(["matrix", "-V", "v5.3", "-V", "v6.13", "-S", "devdax-unbind",
                       "--swarm", "3", "--seed", "5", "--executions", "20", "--jobs", "1"])
    assert code == 1  # v5.3's leak and hang
    assert doc["parameters"]["swarm"] == 3 and doc["parameters"]["seed"] == 5
    verdict = {(r["variant"], r["property"]): r["verdict"] for r in doc["results"]}
    assert verdict[("v5.3", "teardown-terminates")] == "violated"
    assert verdict[("v5.3", "refs-balanced")] == "violated"
    assert "holds" not in verdict.values()
    assert verdict[("v6.13", "teardown-terminates")] == "not-covered"
    for r in doc["results"]:
        if r["verdict"] != "n/a":
            assert "3 of 3 swarm searches ran (seed 5)" in r["coverage"], r
    code, doc = _json(["matrix", "-V", "v6.13", "-S", "devdax-unbind", "--swarm", "2",
                       "--executions", "10", "--jobs", "1"])
    assert code == 3  # no finding: inconclusive, never clean
    assert "holds" not in {r["verdict"] for r in doc["results"]}
    code, doc = _json(["sweep", "-V", "v5.3", "-S", "devdax-unbind", "--size", "vcpus=1,2",
                       "--swarm", "2", "--seed", "5", "--executions", "20", "--jobs", "2"])
    assert code == 1
    assert sorted(c["sizes"]["vcpus"] for c in doc["cells"]) == [1, 2]
    assert all("2 of 2 swarm searches ran (seed 5)" in r["coverage"]
               for r in doc["results"] if r["verdict"] != "n/a")


@pytest.mark.parametrize("command", ["matrix", "sweep"])
def test_a_matrix_swarm_refuses_what_a_swarm_cannot_take(command: str) -> None:
    r = CliRunner().invoke(app, [command, "-S", "devdax-unbind", "--swarm", "2",
                                 "--strategy", "brute"])
    assert r.exit_code == 2
    assert "an exhaustive strategy would search the same executions in every member" in \
        " ".join(r.output.split())

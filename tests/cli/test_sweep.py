"""``pfnlab sweep`` (issue 12): every design by every scenario over a grid of sizes and host
mm versions, one table and one JSON; a scenario without a swept size is run once."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from pfnlab.api import registries_restored
from pfnlab.cli import app
from pfnlab.sweep import SweepOptions, cells_to_run, points

ARGS = ["sweep", "--scenario", "devdax-unbind", "--scenario", "ro-pfnmap", "--variant",
        "v5.3", "--variant", "v5.4", "--size", "vcpus=1,2", "--mm", "5.4,5.18"]


def test_the_grid_and_the_cells() -> None:
    opts = SweepOptions(variants=["v5.4"], scenarios=["devdax-unbind", "ro-pfnmap"],
                        grid={"vcpus": [1, 2], "pages": [1, 2]}, mms=["5.4", "5.18"])
    assert len(points(opts)) == 8
    cells = cells_to_run(opts)
    # devdax-unbind at every point; ro-pfnmap has no "pages": 2 vcpus x 2 mm only
    assert len([c for c in cells if c[1] == "devdax-unbind"]) == 8
    ro = [(o.sizes, o.mm) for _v, s, o in cells if s == "ro-pfnmap"]
    assert ro == [({"vcpus": 1}, "5.4"), ({"vcpus": 1}, "5.18"), ({"vcpus": 2}, "5.4"),
                  ({"vcpus": 2}, "5.18")]


def test_the_table_has_a_row_per_point_and_a_column_per_design() -> None:
    r = CliRunner().invoke(app, ARGS)
    assert r.exit_code == 1, r.output  # v5.3 leaks
    rows = [" ".join(line.split()) for line in r.output.splitlines()]
    assert "scenario sizes mm v5.3 v5.4" in rows
    assert "devdax-unbind vcpus=1 pages=1 faults=1 5.4 ✘ I1,I8 ✔" in rows
    assert "vcpus=2 pages=1 faults=1 5.18 ✘ I1,I3 ✘ I1,I3" in rows
    assert "ro-pfnmap vcpus=1 5.4 ✘ I11 ✘ I11" in rows  # bd2fae8da794 is v5.12
    assert any(line.startswith("total: 16 cells — ") for line in rows)


def test_the_json_records_sizes_and_mm() -> None:
    r = CliRunner().invoke(app, [*ARGS, "--format", "json"])
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert doc["schema"] == "pfnlab.sweep/1"
    assert doc["parameters"]["grid"] == {"vcpus": [1, 2]}
    assert doc["parameters"]["mm"] == ["5.4", "5.18"]
    assert len(doc["cells"]) == 16
    got = {(x["variant"], x["scenario"], x["sizes"]["vcpus"], x["mm"], x["property"]):
           x["verdict"] for x in doc["results"]}
    assert got[("v5.3", "devdax-unbind", 2, "5.4", "teardown-terminates")] == "violated"
    assert got[("v5.4", "devdax-unbind", 2, "5.4", "teardown-terminates")] == "holds"
    assert got[("v5.4", "devdax-unbind", 1, "5.18", "no-metadata-after-teardown")] == "violated"


@pytest.mark.parametrize(("extra", "says"), [
    (["--size", "vcpus=0"], "--size vcpus=0: sizes must be at least 1"),
    (["--size", "vcpus=1,x"], "--size vcpus: 'x' is not a whole number"),
    (["--size", "bogus=1"], "no selected scenario has a size 'bogus'"),
    (["--mm", "5.4,4.19"], "unknown mm version '4.19'"),
    (["--jobs", "0"], "--jobs must be at least 1"),
])
def test_bad_input_says_what_is_valid(extra: list[str], says: str) -> None:
    r = CliRunner().invoke(app, ["sweep", "--scenario", "ro-pfnmap", *extra])
    assert r.exit_code == 2
    assert says in r.output


def test_the_cells_run_on_ray_as_in_local_processes() -> None:
    """Issue 12: matrix and sweep cells as Ray tasks on a local instance with 2 CPUs, a
    model file's scenario and variant included (the file travels with the tasks)."""
    pytest.importorskip("ray")
    import ray

    args = ["sweep", "--model", "examples/apic_reload.py", "--scenario", "apic-vs-migrate",
            "--scenario", "ro-pfnmap", "--variant", "apic-reload-v4.15", "--variant",
            "apic-reload-v5.8", "--size", "vcpus=1,2", "--format", "json", "--jobs", "2"]
    try:
        with registries_restored():  # --model registers the file's names in this process
            local = CliRunner().invoke(app, args)
            remote = CliRunner().invoke(app, [*args, "--ray", "local"])
        matrix = CliRunner().invoke(app, ["matrix", "-V", "v5.3", "-S", "devdax-unbind",
                                          "--ray", "local", "--format", "json"])
    finally:
        ray.shutdown()
    assert local.exit_code == remote.exit_code == 1, remote.output
    verdicts = [{(x["variant"], x["scenario"], str(x["sizes"]), x["property"]): x["verdict"]
                 for x in json.loads(r.stdout)["results"]} for r in (local, remote)]
    assert verdicts[0] == verdicts[1]
    assert verdicts[1][("apic-reload-v5.8", "apic-vs-migrate", "{'entries': 2}",
                        "secondary-coherent")] == "holds"
    assert matrix.exit_code == 1
    assert {x["property"] for x in json.loads(matrix.stdout)["results"]
            if x["verdict"] == "violated"} == {"refs-balanced", "teardown-terminates"}


@pytest.mark.parametrize("cmd", [["sweep", "--scenario", "ro-pfnmap"],
                                 ["matrix", "-S", "ro-pfnmap"]])
def test_ray_without_ray_says_how_to_install(cmd: list[str],
                                            without_package: Callable[[str], None]) -> None:
    without_package("ray")
    r = CliRunner().invoke(app, [*cmd, "--ray", "local"])
    assert r.exit_code == 2
    assert "pip install 'pfnlab[ray]'" in " ".join(r.output.split())

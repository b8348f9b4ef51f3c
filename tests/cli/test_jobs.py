"""``pfnlab check --jobs N`` / ``--ray``: one search split among workers (issue 12)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from pfnlab.cli import app


def _verdicts(out: str) -> list[str]:
    return [line for line in out.splitlines() if " violated (" in line]


def test_jobs_2_finds_what_one_process_finds() -> None:
    args = ["check", "v5.3", "devdax-unbind", "--size", "vcpus=2"]
    one = CliRunner().invoke(app, args)
    two = CliRunner().invoke(app, [*args, "--jobs", "2"])
    assert one.exit_code == two.exit_code == 1
    # the same findings (listed shortest trace first rather than in discovery order)
    assert sorted(_verdicts(two.output)) == sorted(_verdicts(one.output)) != []
    flat = " ".join(two.output.split())
    assert "2 workers (local processes)" in flat and "subtrees below depth 12" in flat


@pytest.mark.parametrize(("extra", "says"), [
    (["--jobs", "0"], "--jobs 0: give at least 1"),
    (["--jobs", "2", "--strategy", "random"], "--strategy random runs in one process"),
])
def test_bad_jobs_are_usage_errors(extra: list[str], says: str) -> None:
    r = CliRunner().invoke(app, ["check", "v5.4", "devdax-unbind", *extra])
    assert r.exit_code == 2 and says in " ".join(r.output.split()), r.output


def test_ray_without_ray_says_how_to_install(without_package: Callable[[str], None]) -> None:
    without_package("ray")
    r = CliRunner().invoke(app, ["check", "v5.4", "devdax-unbind", "--ray", "local"])
    assert r.exit_code == 2
    assert "pip install 'pfnlab[ray]'" in " ".join(r.output.split())

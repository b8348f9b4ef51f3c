"""docs/cookbook.md: every command it shows prints the output block that follows it, and
its code imports only the documented API (issue 11)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = ROOT / "docs" / "cookbook.md"


def _pairs() -> list[tuple[str, str]]:
    text = COOKBOOK.read_text()
    return re.findall(r"```sh\n(pfnlab [^\n]*)\n```\n\n```text\n(.*?)```", text, re.S)


def test_every_recipe_has_a_check_and_a_diff_of_its_own_example() -> None:
    recipes = re.findall(r"^## \d+\. ", COOKBOOK.read_text(), re.M)
    assert len(recipes) >= 9  # 1-8, then the later ones under their own numbers
    cmds = [c for c, _ in _pairs()]
    assert len([c for c in cmds if c.startswith("pfnlab check ")]) == len(recipes)
    assert len([c for c in cmds if c.startswith("pfnlab diff ")]) == len(recipes)
    files = {c.split()[2] for c in cmds}
    assert len(files) == len(recipes) and all((ROOT / f).exists() for f in files)


@pytest.mark.parametrize(("cmd", "expected"), _pairs(), ids=[c for c, _ in _pairs()])
def test_a_cookbook_command_prints_what_the_cookbook_shows(cmd: str, expected: str) -> None:
    out = subprocess.run([sys.executable, "-m", "pfnlab", *cmd.split()[1:]],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 1, out.stderr  # a violation / the designs differ
    assert out.stdout.startswith(expected), (
        f"docs/cookbook.md shows for `{cmd}`:\n{expected}\nit prints:\n{out.stdout[:600]}")

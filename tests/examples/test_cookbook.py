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


def test_the_cookbook_has_nine_recipes_each_with_check_and_diff() -> None:
    cmds = [c for c, _ in _pairs()]
    assert len([c for c in cmds if c.startswith("pfnlab check ")]) == 9
    assert len([c for c in cmds if c.startswith("pfnlab diff ")]) == 9
    files = {c.split()[2] for c in cmds}
    assert len(files) == 9 and all((ROOT / f).exists() for f in files)


@pytest.mark.parametrize(("cmd", "expected"), _pairs(), ids=[c for c, _ in _pairs()])
def test_a_cookbook_command_prints_what_the_cookbook_shows(cmd: str, expected: str) -> None:
    out = subprocess.run([sys.executable, "-m", "pfnlab", *cmd.split()[1:]],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 1, out.stderr  # a violation / the designs differ
    assert out.stdout.startswith(expected), (
        f"docs/cookbook.md shows for `{cmd}`:\n{expected}\nit prints:\n{out.stdout[:600]}")

"""Every ```python block in the README and docs/ runs: a file's blocks in order, in one
namespace (a tutorial builds on its earlier blocks); what they declare is undone after."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pfnlab.api import registries_restored

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FILES = [
    pytest.param(path, id=path.name)
    for path in DOCS if path.exists() and "```python\n" in path.read_text()
]


@pytest.mark.parametrize("path", FILES)
def test_doc_examples_run(path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    ns: dict[str, object] = {"__name__": "__doc_example__"}
    with registries_restored():
        for n, code in enumerate(blocks):
            exec(compile(code, f"<{path.name}:block {n}>", "exec"), ns)


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    blocks = re.findall(r"```sh\n(.*?)```", "\n".join(lines[:15]), re.S)
    assert blocks[0].strip().endswith("pfnlab")
    assert "pytest" in blocks[1]

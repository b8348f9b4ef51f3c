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


def test_tutorial_shell_commands_run_on_its_model_file(tmp_path: Path) -> None:
    """The tutorial's ```sh commands, run on the my_bug.py its blocks build."""
    import shlex
    import subprocess
    import sys

    text = (ROOT / "docs" / "tutorial.md").read_text()
    # python blocks introduced by a line naming my_bug.py make up the file
    parts = re.findall(r"([^\n]*)\n\n```python\n(.*?)```", text, re.S)
    model = "\n\n".join(code for intro, code in parts if "my_bug.py" in intro)
    assert "variant(" in model and "@scenario" in model
    (tmp_path / "my_bug.py").write_text(model)
    commands = [ln.split("#")[0].strip()
                for block in re.findall(r"```sh\n(.*?)```", text, re.S)
                for ln in block.splitlines() if ln.strip().startswith("pfnlab ")]
    assert len(commands) >= 5
    for cmd in commands:
        args = shlex.split(cmd)[1:]
        out = subprocess.run([sys.executable, "-m", "pfnlab", *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        # 1: the check reports the tutorial's bug; anything else must succeed
        assert out.returncode in (0, 1), (cmd, out.stderr)
        assert "Traceback" not in out.stderr and out.stdout.strip(), cmd
    assert (tmp_path / "r.html").exists()
    # the pytest example of the tutorial, run by pytest with pfnlab's plugin
    tests = [code for _intro, code in parts if code.startswith("# test_my_bug.py")]
    assert tests
    (tmp_path / "test_my_bug.py").write_text(tests[0])
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_my_bug.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout


def test_the_tutorial_trace_is_what_the_check_prints() -> None:
    """Section 3's report excerpt: every line but the "..." elisions is in the report of
    the tutorial's model, in order (an abridged excerpt, never a stale one)."""
    from pfnlab.api import check

    text = (ROOT / "docs" / "tutorial.md").read_text()
    section = text[text.index("## 3. Read the trace"):text.index("## 4. The fix")]
    (excerpt,) = re.findall(r"```text\n(.*?)```", section, re.S)
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    ns: dict[str, object] = {"__name__": "__doc_example__"}
    with registries_restored():
        exec(compile(blocks[0], "<tutorial.md:block 0>", "exec"), ns)
        report = check("v5.4", "cached-pfn-vs-unbind").report()
    pos = 0
    for line in excerpt.splitlines():
        if not line.strip() or line.strip() == "...":
            continue
        line = line.removesuffix(" ...").rstrip()
        found = report.find(line, pos)
        assert found >= 0, f"docs/tutorial.md section 3 shows {line!r}, the report has not"
        pos = found + len(line)

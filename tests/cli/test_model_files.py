"""Issue 11, "model files travel badly": a report records the model files and the host mm
it came from; replay loads them again (or says to pass --model); diff takes --mm."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pfncache.py"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pfnlab", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_a_user_models_report_replays_without_model(tmp_path: Path) -> None:
    model = tmp_path / "pfncache.py"
    shutil.copy(EXAMPLE, model)
    report = tmp_path / "r.json"
    out = run("check", str(model), "v5.4", "pfncache-vs-unbind", "-o", str(report))
    assert out.returncode == 1, out.stderr
    doc = json.loads(report.read_text())
    assert doc["models"][0]["path"] == str(model) and len(doc["models"][0]["sha256"]) == 64
    assert doc["mm"] is None
    out = run("replay", str(report))
    assert out.returncode == 0, out.stdout + out.stderr
    assert ": reproduces:" in out.stdout
    # edited since: said, and replayed against the file as it is
    model.write_text(model.read_text() + "\n# edited\n")
    out = run("replay", str(report))
    assert out.returncode == 0 and "changed since the report was written" in out.stdout
    # moved away: one line that says what to do
    moved = tmp_path / "moved.py"
    model.rename(moved)
    out = run("replay", str(report))
    assert out.returncode == 2
    assert "cannot be read here: pass it with --model FILE" in out.stderr
    out = run("replay", str(report), "--model", str(moved))
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_report_replays_on_the_mm_it_was_checked_on(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out = run("check", "v5.4", "remapped-vs-unbind", "--mm", "5.18", "-o", str(report))
    assert out.returncode == 1, out.stderr
    assert json.loads(report.read_text())["mm"] == "5.18"
    out = run("replay", str(report))
    assert out.returncode == 0, out.stdout + out.stderr


def test_diff_takes_mm() -> None:
    """On the 5.18 host mm sean-v1 puts a reference it does not hold on remapped-vs-unbind;
    on v5.4 that property is masked by a use after free, so the difference is unknown."""
    out = run("diff", "v5.4", "sean-v1", "remapped-vs-unbind", "--mm", "5.18",
              "--format", "json")
    doc = json.loads(out.stdout)
    assert doc["mm"] == "5.18"
    changes = {p["property"]: p["change"] for p in doc["scenarios"][0]["properties"]}
    assert changes["no-put-unreferenced"] == "unknown"   # masked on v5.4: inconclusive
    assert out.returncode == 3


def test_a_variant_whose_name_ends_in_py_is_taken_as_a_name(tmp_path: Path) -> None:
    """Arguments ending in .py are model files, unless a model file loaded before declared
    that name (and no file of that name is waiting to be loaded)."""
    model = tmp_path / "evil.py"
    model.write_text('from pfnlab import variant\n\nvariant("evil.py", parent="v5.4")\n')
    for args in (["check", "evil.py", "evil.py", "devdax-unbind"],
                 ["check", "-m", "evil.py", "evil.py", "devdax-unbind"]):
        out = run(*args, "--jobs", "1", cwd=tmp_path)
        assert out.returncode == 0, (args, out.stderr)
        assert out.stdout.startswith("evil.py / devdax-unbind: no finding"), out.stdout
    out = run("check", "nothere.py", "v5.4", "devdax-unbind", cwd=tmp_path)
    assert out.returncode == 2 and "nothere.py: cannot read the model file" in out.stderr

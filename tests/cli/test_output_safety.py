"""Reports are never lost on the way to a file (issue 31): an output path that would
overwrite the model or another output is refused before any work, a write that fails
leaves the old report as it was, and a report naming a variant the model lacks is bad
input (exit 2), not a regression (exit 1)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pfnlab.cli import output

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pfnlab", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_output_over_the_model_file_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "mine.py"
    model.write_text((ROOT / "examples" / "retry_leak.py").read_text())
    before = model.read_text()
    out = run("check", str(model), "retry-leak", "--output", str(model))
    assert out.returncode == 2
    assert "that is the model file being checked; give the report a name of its own, " \
           f"e.g. {tmp_path / 'mine'}.json" in out.stderr
    assert model.read_text() == before


def test_one_path_for_two_outputs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r"
    out = run("check", "v5.3", "devdax-unbind", "--output", str(path), "--html", str(path))
    assert out.returncode == 2
    assert f"--output and --html both name {path}" in out.stderr
    assert not path.exists()


@pytest.mark.parametrize("path", ["-", "/dev/stdout"])
def test_output_dash_writes_the_json_report_on_standard_output(tmp_path: Path,
                                                               path: str) -> None:
    """As Unix tools do (it used to write a file named "-"): standard output holds the
    JSON alone, for jq or replay, and the text report goes to standard error."""
    out = run("check", "v5.3", "devdax-unbind", "--output", path, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert {f["property"] for f in doc["findings"]} == {"refs-balanced",
                                                        "teardown-terminates"}
    assert "teardown-terminates violated" in out.stderr
    assert "JSON report written" not in out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == []
    if path != "-":
        return
    replay = subprocess.run([sys.executable, "-m", "pfnlab", "replay", "-"],
                            input=out.stdout, capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert replay.returncode == 0, replay
    assert replay.stdout.count(": reproduces:") == 2


@pytest.mark.parametrize(("args", "says"), [
    (["--output", "-", "--html", "-"], "--output - and --html - both write to standard "
     "output: give --html a file name, e.g. report.html"),
    (["--html", "-", "--format", "json"], "--format json and --html - both write to "
     "standard output"),
])
def test_two_documents_on_standard_output_are_refused(args: list[str], says: str) -> None:
    out = run("check", "v5.3", "devdax-unbind", *args)
    assert out.returncode == 2
    assert says in " ".join(out.stderr.split()) and out.stdout == ""


def test_a_failed_write_keeps_the_old_report_and_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"old": true}\n')
    os.chmod(path, 0o640)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "fsync", full)
    err = output.write_file(str(path), '{"new": true}\n', "--output", "the JSON report")
    assert err == (f"--output {path}: writing failed: No space left on device; the JSON "
                   "report was not saved")
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    monkeypatch.undo()
    assert output.write_file(str(path), '{"new": true}\n', "--output", "it") is None
    assert json.loads(path.read_text()) == {"new": True}
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)  # the file keeps its mode


def test_replaying_a_report_of_an_unknown_variant_or_scenario_is_bad_input(
        tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out = run("check", "v5.3", "devdax-unbind", "--output", str(report))
    assert out.returncode == 1, out.stderr
    saved = json.loads(report.read_text())
    for key, typo, near in (("variant", "v5.33", "v5.3"),
                            ("scenario", "devdax-unbindd", "devdax-unbind")):
        doc = json.loads(json.dumps(saved))
        doc[key] = typo
        for f in doc.get("findings", []):
            if key in f:
                f[key] = typo
        report.write_text(json.dumps(doc))
        out = run("replay", str(report))
        assert out.returncode == 2, (out.stdout, out.stderr)
        assert f"the report names {key} {typo!r}, which the model has not (did you " \
               f"mean {near}" in out.stderr


def test_a_device_is_written_in_place_and_a_link_stays_a_link(tmp_path: Path) -> None:
    import stat

    err = output.write_file("/dev/full", "x\n", "--output", "the JSON report")
    assert err is not None and "No space left on device" in err
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # never replaced by a file
    target = tmp_path / "real.json"
    target.write_text("{}\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert output.write_file(str(link), '{"new": 1}\n', "--output", "it") is None
    assert link.is_symlink() and json.loads(target.read_text()) == {"new": 1}

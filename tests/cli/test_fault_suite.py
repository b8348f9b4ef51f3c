"""Every command and every option with bad input (issue 31): each value-taking option of
each command, read from the Typer application itself, is given values no option
accepts, and must refuse them with exit status 2 and one line, never a traceback (a flag,
a value it does not take); every output option given ``-`` writes standard output, one
document there and no file named "-"; every long-running command stopped by SIGTERM
(delivered twice, as GNU timeout does) reports what it covered and exits 3; every
command that starts workers (``--jobs``), killed by SIGKILL, leaves none running.

A new command or option joins by default. An option that legitimately accepts any text
(a path to write) belongs in :data:`PATHS`; one whose values cost time to try (a cluster
address) in :data:`SPECIAL`, with the bad values to give it instead; a command whose
valid arguments are needed for its options to be reached, in :data:`BASE`. Each of
those names must be an option or command the application has (a renamed one would
leave its entry behind and be tried as any other).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

from pfnlab.cli import app

ROOT = Path(__file__).resolve().parents[2]

#: arguments that make the rest of a command line valid (the smallest model)
BASE: dict[str, list[str]] = {
    "check": ["v5.3", "devdax-unbind"],
    "diff": ["v5.3", "v5.4", "devdax-unbind"],
    "matrix": ["-V", "v5.3", "-S", "devdax-unbind"],
    "sweep": ["-V", "v5.3", "-S", "devdax-unbind"],
    "replay": ["nothere.json"],
}
#: what no option takes: empty, not a number, negative, nan, a newline, an escape
BAD = ["", "x", "-1", "nan", "\n", "\x1b[31m"]
#: options that write a file: any name is a name; these are not
PATHS = {"--output": ["", "/nonexistent/dir/r.out"], "--html": ["", "/nonexistent/r.html"]}
#: options whose bad values are these instead
SPECIAL = {"--ray": ["127.0.0.1:1"], "--model": ["", "x", "/nonexistent/m.py", "m.json"]}

COMMANDS: dict[str, object] = dict(
    typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _cases() -> list[tuple[str, list[str]]]:
    out = []
    for name, cmd in COMMANDS.items():
        for p in cmd.params:  # type: ignore[attr-defined]
            if not isinstance(p, TyperOption):
                continue
            opt = max(p.opts, key=len)
            if p.is_flag or p.count:  # a flag takes no value
                out.append((name, [*BASE.get(name, []), f"{opt}=x"]))
                continue
            for value in PATHS.get(opt) or SPECIAL.get(opt) or BAD:
                out.append((name, [*BASE.get(name, []), opt, value]))
        for p in cmd.params:  # type: ignore[attr-defined]  # positional: names, files
            if isinstance(p, TyperArgument):
                for value in ["", "\n", "no-such-name"]:
                    out.append((name, [value, *BASE.get(name, [])[1:]]))
    return out


CASES = _cases()


@pytest.mark.parametrize(("command", "args"), CASES,
                         ids=[f"{c} {' '.join(a)!r}"[:70] for c, a in CASES])
def test_bad_input_is_refused_in_one_line(command: str, args: list[str]) -> None:
    t0 = time.monotonic()
    r = CliRunner().invoke(app, [command, *args])
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    assert time.monotonic() - t0 < 10  # refused before any work


def test_every_command_is_in_the_suite() -> None:
    tried = {c for c, _ in CASES}
    assert tried == set(COMMANDS), set(COMMANDS) - tried  # each has an option or argument


def _options(command: object) -> set[str]:
    return {o for p in command.params  # type: ignore[attr-defined]
            if isinstance(p, TyperOption) for o in p.opts}


def test_every_exception_names_what_the_application_has() -> None:
    options = set().union(*(_options(c) for c in COMMANDS.values()))
    assert set(BASE) <= set(COMMANDS), set(BASE) - set(COMMANDS)
    assert set(PATHS) | set(SPECIAL) <= options, (set(PATHS) | set(SPECIAL)) - options


#: every output option of every command (its line made valid by BASE)
OUTPUTS = [(name, opt) for name, cmd in COMMANDS.items() for opt in sorted(PATHS)
           if opt in _options(cmd)]


@pytest.mark.parametrize(("command", "option"), OUTPUTS, ids=[" ".join(o) for o in OUTPUTS])
def test_every_output_option_takes_dash_for_standard_output(
        tmp_path: Path, command: str, option: str) -> None:
    """As Unix tools read it (it used to be a file named "-"): the one document on
    standard output, whole (a text report mixed in would break the JSON for jq)."""
    out = subprocess.run([sys.executable, "-m", "pfnlab", command, *BASE.get(command, []),
                          option, "-"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode in (0, 1, 3), out.stderr
    assert list(tmp_path.iterdir()) == [], "a file was written"
    assert out.stdout.strip() and "Traceback" not in out.stderr
    doc = out.stdout.lstrip()
    if doc.startswith("{"):
        json.loads(doc)
    if doc.startswith("<!DOCTYPE html>"):
        assert doc.rstrip().endswith("</html>") and doc.count("<!DOCTYPE") == 1


#: a command line of each long-running command that runs for more than a few seconds
LONG: dict[str, list[str]] = {
    "check": ["check", "v5.4", "devdax-unbind", "--size", "vcpus=3", "--size", "pages=3"],
    "matrix": ["matrix", "-S", "devdax-unbind", "--size", "vcpus=3", "--jobs", "2"],
    "sweep": ["sweep", "-S", "devdax-unbind", "--size", "vcpus=3", "--jobs", "2"],
    "diff": ["diff", "v5.3", "v5.4", "devdax-unbind", "--size", "vcpus=3", "--size",
             "pages=3"],
    "thread": ["thread"],
}


@pytest.mark.parametrize("command", sorted(LONG))
def test_sigterm_reports_what_was_covered(command: str) -> None:
    """Delivered as GNU ``timeout`` does: to the command, then a moment later to its
    process group (workers included); one signal delivered twice is one interrupt."""
    import os

    from tests.cli.test_faults import handles_signals

    t_start = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "pfnlab", *LONG[command]], cwd=ROOT,
                         text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        handles_signals(p.pid)  # (started: not still importing on a loaded machine)
        time.sleep(max(0.5, 2 - (time.monotonic() - t_start)))
        p.send_signal(signal.SIGTERM)
        time.sleep(0.005)
        os.killpg(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 3, (out, err)
    assert "interrupted (SIGTERM)" in out + err, (out, err)
    assert "interrupted again" not in err and "Traceback" not in err


def test_every_long_running_command_is_tried_with_a_signal() -> None:
    quick = {"list", "replay"}  # they end within a second: nothing to interrupt
    assert set(LONG) == set(COMMANDS) - quick


#: the commands that start worker processes (they take --jobs)
FORKING = sorted(name for name, cmd in COMMANDS.items() if "--jobs" in _options(cmd))


@pytest.mark.parametrize("command", FORKING)
def test_no_worker_outlives_its_command_killed_by_sigkill(command: str) -> None:
    """SIGKILL leaves no handler to stop the workers: they must die with their parent
    (a parent-death signal), not run on orphaned. ``check --swarm``: test_faults.py."""
    from tests.cli.test_faults import gone, started, workers_of

    args = LONG[command] if "--jobs" in LONG[command] else [*LONG[command], "--jobs", "2"]
    with started(args) as p:
        kids = workers_of(p, 2)
        time.sleep(0.5)
        p.kill()
        p.wait(timeout=10)
        assert gone(kids, 5), "workers run on after their parent was killed"

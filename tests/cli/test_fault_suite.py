"""Every command and every option with bad input (issue 31): each value-taking option of
each command, read from the Typer application itself, is given values no option
accepts, and must refuse them with exit status 2 and one line, never a traceback; every
long-running command stopped by SIGTERM reports what it covered and exits 3.

A new command or option joins by default. An option that legitimately accepts any text
(a path to write) belongs in :data:`PATHS`; one whose values cost time to try (a cluster
address) in :data:`SPECIAL`, with the bad values to give it instead; a command whose
valid arguments are needed for its options to be reached, in :data:`BASE`.
"""

from __future__ import annotations

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
            if not isinstance(p, TyperOption) or p.is_flag or p.count:
                continue
            opt = max(p.opts, key=len)
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
    p = subprocess.Popen([sys.executable, "-m", "pfnlab", *LONG[command]], cwd=ROOT,
                         text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 3, (out, err)
    assert "interrupted (SIGTERM)" in out + err, (out, err)
    assert "Traceback" not in err


def test_every_long_running_command_is_tried_with_a_signal() -> None:
    quick = {"list", "replay"}  # they end within a second: nothing to interrupt
    assert set(LONG) == set(COMMANDS) - quick

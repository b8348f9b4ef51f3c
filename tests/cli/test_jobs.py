"""``pfnlab check --jobs N`` / ``--ray``: one search split among workers (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

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


def test_by_default_a_check_uses_the_machines_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: ``--jobs`` defaults to the machine's cores; a strategy that runs in one
    process, or the line tracer, then runs in one process rather than failing."""
    import pfnlab.cli.check_cmd as check_cmd

    monkeypatch.setattr(check_cmd, "default_workers", lambda: 2)
    args = ["check", "v5.4", "devdax-unbind"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "2 workers (local processes)" in " ".join(r.output.split())
    for extra in (["--strategy", "bounded"], ["--unreached-lines"], ["--jobs", "1"]):
        r = CliRunner().invoke(app, [*args, *extra])
        assert r.exit_code in (0, 3) and "workers" not in r.output, (extra, r.output)
    monkeypatch.setattr(check_cmd, "default_workers", lambda: 1)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "workers" not in r.output, r.output


def test_default_workers_are_the_cores_this_process_may_use() -> None:
    from pfnlab.explore.search.parallel import default_workers

    if hasattr(os, "sched_getaffinity"):
        assert default_workers() == len(os.sched_getaffinity(0))
    assert 1 <= default_workers() <= (os.cpu_count() or 1)


def test_the_api_splits_a_check_when_asked() -> None:
    """``pfnlab.api.check(..., jobs=2)``: the same findings as one process (the API's
    default)."""
    from pfnlab.api import check

    one = check("v5.3", "devdax-unbind", vcpus=2)
    two = check("v5.3", "devdax-unbind", vcpus=2, jobs=2)
    assert "workers" not in one.search.coverage and "2 workers" in two.search.coverage
    assert sorted((f.kind, f.prop) for f in one.search.findings) == \
        sorted((f.kind, f.prop) for f in two.search.findings) != []
    with pytest.raises(ValueError, match="jobs=0"):
        check("v5.3", "devdax-unbind", jobs=0)


@pytest.mark.parametrize(("extra", "says"), [
    (["--jobs", "0"], "--jobs 0: give at least 1"),
    (["--jobs", "2", "--strategy", "random"], "--strategy random runs in one process"),
    (["--jobs", "2", "--unreached-lines"], "--unreached-lines traces this process's lines"),
])
def test_bad_jobs_are_usage_errors(extra: list[str], says: str) -> None:
    r = CliRunner().invoke(app, ["check", "v5.4", "devdax-unbind", *extra])
    assert r.exit_code == 2 and says in " ".join(r.output.split()), r.output


def test_ray_without_ray_says_how_to_install(without_package: Callable[[str], None]) -> None:
    without_package("ray")
    r = CliRunner().invoke(app, ["check", "v5.4", "devdax-unbind", "--ray", "local"])
    assert r.exit_code == 2
    assert "pip install 'pfnlab[ray]'" in " ".join(r.output.split())


@pytest.mark.parametrize(("argv", "parsed"), [
    (["check", "v5.4", "devdax-unbind", "--ray"],
     ["check", "v5.4", "devdax-unbind", "--ray", "local"]),
    (["check", "v5.4", "devdax-unbind", "--ray", "--jobs", "2"],
     ["check", "v5.4", "devdax-unbind", "--ray", "local", "--jobs", "2"]),
    (["check", "v5.4", "devdax-unbind", "--ray", "HEAD:6379"],
     ["check", "v5.4", "devdax-unbind", "--ray", "HEAD:6379"]),
    (["check", "--ray=local", "v5.4", "devdax-unbind"],
     ["check", "--ray=local", "v5.4", "devdax-unbind"]),
    (["check", "v5.4", "--", "--ray"], ["check", "v5.4", "--", "--ray"]),
])
def test_ray_alone_means_a_local_instance(argv: list[str], parsed: list[str]) -> None:
    """Issue 12: ``--ray`` (a local Ray instance) or ``--ray ADDRESS``."""
    from pfnlab.cli.main import ray_value_optional

    assert ray_value_optional(argv) == parsed


def test_ray_alone_on_the_command_line_without_ray_says_how_to_install(tmp_path: Path) -> None:
    """The console script applies it: bare ``--ray`` reaches the Ray backend (here a
    Python without Ray, which says how to install it), not a usage error about a value."""
    import subprocess
    import sys

    (tmp_path / "ray.py").write_text("raise ImportError('no ray here')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "pfnlab", "check", "v5.4", "devdax-unbind",
                        "--ray"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "pip install 'pfnlab[ray]'" in " ".join(r.stderr.split())


@pytest.mark.parametrize("command", [
    ["check", "v5.3", "devdax-unbind"], ["matrix", "-S", "devdax-unbind"],
    ["sweep", "-S", "devdax-unbind", "--size", "vcpus=1"]], ids=lambda c: c[0])
def test_more_jobs_than_the_machine_can_hold_are_refused(command: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "pfnlab", *command, "--jobs", "1000000"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    text = " ".join(out.stderr.split())
    assert "--jobs 1000000: at most" in text and "give --jobs" in text
    assert "devdax" not in text  # not blamed on the scenario


def few_files(n: int = 30) -> None:
    """In the child: ``n`` open files at most (16 workers need more)."""
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


@pytest.mark.parametrize("command", [
    ["check", "v5.3", "devdax-unbind"],
    ["check", "v5.3", "devdax-unbind", "--swarm", "16", "--seed", "1"],
    ["matrix", "-S", "devdax-unbind"],  # (sweep forks its cells as matrix does)
], ids=["check", "check --swarm", "matrix"])
def test_workers_the_system_refuses_are_a_usage_error_naming_the_limit(
        command: list[str]) -> None:
    """Not an OSError blamed on the scenario (a swarm's, a matrix's and a sweep's)."""
    out = subprocess.run([sys.executable, "-m", "pfnlab", *command, "--jobs", "16"],
                         capture_output=True, text=True, timeout=60, preexec_fn=few_files)
    assert out.returncode == 2, out
    text = " ".join(out.stderr.split())
    assert text == "pfnlab: could not start 16 worker processes: Too many open files; give " \
        "fewer (--jobs), or raise the limit (ulimit -n, ulimit -u)", text


REFUSED_FILES = """
import os
from pfnlab import pipeline
from pfnlab.explore.search.parallel import WorkersNotStarted, backend

before = len(os.listdir("/proc/self/fd"))
try:
    pipeline.check("v5.3", "devdax-unbind", pipeline.Search(backend=backend(16, None)))
except WorkersNotStarted:
    print(len(os.listdir("/proc/self/fd")) - before)
"""


def test_workers_the_system_refuses_leave_the_files_they_took() -> None:
    """The error used to hold the refused workers' pipes open (its traceback), so at the
    limit even the import that prints the message failed: a traceback instead of it."""
    out = subprocess.run([sys.executable, "-c", REFUSED_FILES], capture_output=True,
                         text=True, timeout=60, preexec_fn=lambda: few_files(40))
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) <= 2, out.stdout  # (a pipe os.fork's caller may leak)


@pytest.mark.parametrize("command", [["check", "v5.3", "devdax-unbind"],
                                     ["matrix", "-S", "devdax-unbind"]], ids=lambda c: c[0])
def test_a_cluster_nobody_listens_at_is_refused_at_once(command: list[str]) -> None:
    """Ray retries an unreachable address without end (and Ctrl-C does not stop it)."""
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "pfnlab", *command, "--ray",
                              f"127.0.0.1:{port}"], capture_output=True, text=True,
                             timeout=30)
    assert out.returncode == 2, out
    assert f"--ray 127.0.0.1:{port}: cannot reach the cluster at 127.0.0.1:{port}: " \
        "Connection refused" in " ".join(out.stderr.split())


@pytest.mark.parametrize("reply", [b"HTTP/1.1 400 Bad Request\r\n\r\n", b""],
                         ids=["http", "silent"])
def test_a_server_that_is_not_ray_is_refused_at_once(reply: bytes) -> None:
    """Something listens but does not answer as Ray's GCS (an HTTP port, a server that
    says nothing): Ray retried it for a minute, and a SIGTERM then took 20 s more."""
    pytest.importorskip("ray")
    import socket
    import threading

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]

        def serve() -> None:
            with suppress(OSError):
                conn, _ = srv.accept()
                with conn:
                    conn.recv(64)
                    if reply:
                        conn.sendall(reply)
                    else:
                        time.sleep(6)  # past the probe's 5 s

        threading.Thread(target=serve, daemon=True).start()
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "pfnlab", "check", "v5.3",
                              "devdax-unbind", "--ray", f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert f"--ray 127.0.0.1:{port}: no Ray cluster at 127.0.0.1:{port}: something " \
        "listens there but does not answer as Ray's GCS (gRPC)" in " ".join(out.stderr.split())
    assert time.monotonic() - t0 < 20

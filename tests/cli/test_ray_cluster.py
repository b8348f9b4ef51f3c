"""Issue 30: ``pfnlab check --ray ADDRESS`` and ``pfnlab sweep --ray ADDRESS`` against a
Ray cluster started the ordinary way on this machine: ``ray start --head`` (token
authentication on, as Ray 2.60 turns it on when the head node has a token) and a second
node joined with ``ray start --address``, one CPU each. The verdicts are those of one
process; without the token, a message naming what to set, not Ray's log lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    address: str
    env: dict[str, str]  # a client's environment with the token (RAY_AUTH_MODE=token)
    bare: dict[str, str]  # the same without RAY_AUTH_MODE


def _free_port() -> int:
    """A port for the head node's GCS, outside the range Ray gives its workers (10002 to
    19999 by default)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not 10002 <= port <= 19999:
            return port


def _started(p: subprocess.Popen[bytes], log: Path, within: float = 60) -> None:
    """Wait until ``ray start`` says the node runs (``--block`` keeps it running)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return
        if p.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"ray start did not start a node:\n{log.read_text()[-3000:]}")


def _stop(p: subprocess.Popen[bytes]) -> None:
    """Stop a ``ray start --block`` (it stops the node's processes), then its process
    group (the node's processes, all started by it) if any is left."""
    p.terminate()
    with suppress(subprocess.TimeoutExpired):
        p.wait(timeout=30)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'pfnlab[ray]')")
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    assert ray_cli, "Ray is installed without its command line (ray)"
    # a short directory: Ray's socket paths under it must stay within 107 characters
    top = Path(tempfile.mkdtemp(prefix="pfnray"))
    home = top / "home"
    home.mkdir()
    bare = {k: v for k, v in os.environ.items()
            if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    bare["HOME"] = str(home)  # the token goes to (and is read from) ~/.ray/auth_token here
    env = {**bare, "RAY_AUTH_MODE": "token"}
    subprocess.run([ray_cli, "get-auth-token", "--generate"], env=bare, check=True,
                   capture_output=True, timeout=60)
    port = _free_port()
    common = ["--num-cpus", "1", "--temp-dir", str(top / "t"), "--disable-usage-stats",
              "--node-ip-address", "127.0.0.1", "--block"]
    procs = []
    try:
        head_log = top / "head.log"
        with open(head_log, "wb") as out:
            procs.append(subprocess.Popen(
                [ray_cli, "start", "--head", "--port", str(port), "--include-dashboard",
                 "false", *common], env=bare, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
        _started(procs[0], head_log)
        assert "Token authentication is enabled" in head_log.read_text()
        address = f"127.0.0.1:{port}"
        node_log = top / "node.log"
        with open(node_log, "wb") as out:
            procs.append(subprocess.Popen(
                [ray_cli, "start", "--address", address, *common], env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True))
        _started(procs[1], node_log)
        yield Cluster(address, env, bare)
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(top, ignore_errors=True)


def _pfnlab(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pfnlab", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def _check(out: subprocess.CompletedProcess[str]) -> tuple[int, bool, set[tuple[str, str]],
                                                           list[str]]:
    doc = json.loads(out.stdout)
    return (out.returncode, doc["exhaustive"],
            {(f["property"], f["kind"]) for f in doc["findings"]}, doc["goals_reached"])


@pytest.mark.parametrize("variant", ["v5.4", "v5.3"])
def test_check_on_the_cluster_gives_the_verdicts_of_one_process(cluster: Cluster,
                                                                 variant: str) -> None:
    args = ["check", variant, "devdax-unbind", "--size", "vcpus=2", "--format", "json"]
    one = _pfnlab([*args, "--jobs", "1"], cluster.env)
    on = _pfnlab([*args, "--ray", cluster.address], cluster.env)
    assert on.returncode in (0, 1), on.stderr
    assert _check(on) == _check(one)
    assert "2 workers (Ray)" in json.loads(on.stdout)["coverage"]


def test_sweep_on_the_cluster_gives_the_verdicts_of_one_process(cluster: Cluster) -> None:
    args = ["sweep", "--scenario", "devdax-unbind", "--scenario", "ro-pfnmap", "--variant",
            "v5.3", "--variant", "v5.4", "--size", "vcpus=1,2", "--format", "json"]
    one = _pfnlab([*args, "--jobs", "1"], cluster.env)
    on = _pfnlab([*args, "--ray", cluster.address], cluster.env)
    assert on.returncode == one.returncode == 1, on.stderr
    verdicts = [{(x["variant"], x["scenario"], str(x["sizes"]), x["property"]):
                 x["verdict"] for x in json.loads(r.stdout)["results"]} for r in (one, on)]
    assert verdicts[0] == verdicts[1]


@pytest.mark.parametrize("command", [["check", "v5.4", "devdax-unbind"],
                                     ["sweep", "--scenario", "ro-pfnmap"]],
                         ids=lambda c: c[0])
def test_without_the_token_a_message_names_what_to_set(cluster: Cluster,
                                                       command: list[str]) -> None:
    out = _pfnlab([*command, "--ray", cluster.address], cluster.bare)
    assert out.returncode == 2, out
    text = " ".join(out.stderr.split())
    assert f"--ray {cluster.address}: the cluster at {cluster.address} has token " \
        "authentication on, and this process sent no token: Ray sends one only with " \
        "RAY_AUTH_MODE=token. Set it, with the cluster's token" in text
    assert "RAY_AUTH_TOKEN, in the file RAY_AUTH_TOKEN_PATH names" in text
    assert "Authentication token is missing" not in text and "gcs_client" not in text
    assert len(out.stderr.strip().splitlines()) <= 6  # one paragraph


def test_a_wrong_token_is_named(cluster: Cluster) -> None:
    env = {**cluster.env, "RAY_AUTH_TOKEN": "0" * 64}
    out = _pfnlab(["check", "v5.4", "devdax-unbind", "--ray", cluster.address], env)
    assert out.returncode == 2, out
    assert f"the cluster at {cluster.address} refused the token in RAY_AUTH_TOKEN" in \
        " ".join(out.stderr.split())

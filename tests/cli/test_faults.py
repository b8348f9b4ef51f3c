"""Faults with real processes and signals (issue 31): one signal delivered twice is one
interrupt, no worker outlives its command, a matrix worker that dies is one cell's model
error, not a hang. Each test runs ``python -m pfnlab`` and kills whatever it started."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PFNLAB = [sys.executable, "-m", "pfnlab"]
#: a check that runs for minutes: 3 vCPUs by 3 pages
SLOW_CHECK = ["check", "v5.4", "devdax-unbind", "--size", "vcpus=3", "--size", "pages=3"]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def handles_signals(pid: int, within: float = 60) -> None:
    """Wait until ``pid`` catches SIGTERM (/proc's SigCgt): pfnlab has installed its
    handlers, so a signal from now on is reported, not the default death of a process
    still importing (which takes seconds on a loaded machine)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/status") as fh:
                caught = next(int(line.split()[1], 16) for line in fh
                              if line.startswith("SigCgt:"))
        except (OSError, StopIteration):
            return  # it ended (or no /proc): the caller sees how
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.02)
    pytest.fail(f"pfnlab (pid {pid}) installed no signal handler in {within} s")


def gone(pids: list[int], within: float) -> bool:
    """Whether every one of ``pids`` ends within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


#: the workers :func:`workers_of` saw, by the pid of their command: killed on the way out
#: of :func:`started` even when the command died first (a test that fails leaves none)
_SEEN: dict[int, set[int]] = {}


@contextlib.contextmanager
def started(args: list[str], **kw: object) -> Iterator[subprocess.Popen[str]]:
    """``pfnlab ARGS`` running; on the way out it and every process it started are
    killed."""
    p = subprocess.Popen([*PFNLAB, *args], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                         **kw)  # type: ignore[call-overload]
    seen = _SEEN.setdefault(p.pid, set())
    try:
        yield p
    finally:
        seen.update(children(p.pid))
        del _SEEN[p.pid]
        with contextlib.suppress(ProcessLookupError):
            p.kill()
        for pid in seen:  # before waiting: an orphan holds the pipes open
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        p.communicate(timeout=30)


def workers_of(p: subprocess.Popen[str], n: int, within: float = 20) -> list[int]:
    """The ``n`` worker processes ``p`` has started (waiting for them)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        kids = children(p.pid)
        _SEEN.get(p.pid, set()).update(kids)
        if len(kids) >= n:
            return kids
        time.sleep(0.05)
    pytest.fail(f"pfnlab started {children(p.pid)} workers, not {n}")


@pytest.mark.parametrize("args", [
    [*SLOW_CHECK, "--jobs", "2"],
    [*SLOW_CHECK, "--swarm", "4", "--jobs", "2", "--seed", "1"],
], ids=["check --jobs 2", "check --swarm"])
def test_a_signal_to_the_process_then_its_group_is_one_interrupt(args: list[str]) -> None:
    """What GNU timeout does: its signal to the command, then to the command's process
    group (the workers included) a moment later; the report still comes. (Every command
    gets it so in test_fault_suite.py; these are the modes with workers of their own.)"""
    with started(args, start_new_session=True) as p:
        workers_of(p, 2)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        time.sleep(0.005)
        os.killpg(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 3, err
    assert "interrupted again" not in err, err
    assert "interrupted (SIGTERM)" in out, out
    assert "Traceback" not in err


EARLY = """import os, signal, sys
import pfnlab.cli

entry = sys.modules["pfnlab.cli.main"]
parse = entry.ray_value_optional


def signalled(argv):
    os.kill(os.getpid(), signal.SIGTERM)  # handled here: installed, no command running
    return parse(argv)


entry.ray_value_optional = signalled
sys.argv = ["pfnlab", "list"]
entry.main()
"""


def test_a_signal_before_the_command_runs_is_one_line_and_exit_3() -> None:
    """On a loaded machine timeout's signal can come while the command line is still
    being parsed: it used to reach Typer as a KeyboardInterrupt (exit 130, nothing said)
    or end in a traceback."""
    out = subprocess.run([sys.executable, "-c", EARLY], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 3, out
    assert out.stderr == "pfnlab: interrupted (SIGTERM) before there was anything to " \
        "report\n" and out.stdout == ""


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs GNU timeout")
def test_the_readmes_timeout_example_prints_the_report() -> None:
    out = subprocess.run(["timeout", "-s", "TERM", "3", *PFNLAB, *SLOW_CHECK, "--jobs", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 124, out  # timeout's own status: it did stop the command
    assert "interrupted again" not in out.stderr, out.stderr
    assert "interrupted (SIGTERM)" in out.stdout, out
    assert "Traceback" not in out.stderr


def test_one_ctrl_c_delivered_twice_is_one_interrupt_and_a_second_one_stops_at_once(
) -> None:
    with started([*SLOW_CHECK, "--jobs", "2"]) as p:
        kids = workers_of(p, 2)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        time.sleep(0.005)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert gone(kids, 5), "a worker outlived its command"  # it used to run on
    assert p.returncode == 3, err
    assert "interrupted (Ctrl-C): no finding in what was explored" in " ".join(out.split())
    assert "interrupted again" not in err
    with started([*SLOW_CHECK, "--jobs", "2"]) as p:
        kids = workers_of(p, 2)
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 3, err
        assert gone(kids, 5), "a worker outlived its command"


def test_swarm_members_die_with_their_command_killed_by_sigkill() -> None:
    """A swarm forks members of its own (every command that forks workers is killed so in
    test_fault_suite.py)."""
    with started([*SLOW_CHECK, "--swarm", "4", "--jobs", "2", "--seed", "1"]) as p:
        kids = workers_of(p, 2)
        time.sleep(0.5)
        p.kill()
        p.wait(timeout=10)
        assert gone(kids, 5), "workers run on after their parent was killed"


SLEEPS = '''import os
import time

from pfnlab import scenario

PIDS = {pids!r}


@scenario("sleeps", properties=["refs-balanced"])
def build(variant, sizes):
    """its build waits until its worker is killed"""
    with open(os.path.join(PIDS, str(os.getpid())), "w"):
        pass
    time.sleep(60)
'''

EXITS = '''import os

from pfnlab import scenario


@scenario("exits", properties=["refs-balanced"])
def build(variant, sizes):
    """its build ends the process"""
    os._exit(7)
'''


def test_a_matrix_worker_killed_mid_run_is_that_cells_model_error(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    model = tmp_path / "sleeps.py"
    model.write_text(SLEEPS.format(pids=str(pids)))
    args = ["matrix", "-m", str(model), "-S", "sleeps", "-S", "devdax-unbind",
            "-V", "v5.3", "-V", "v5.4", "--jobs", "2", "--format", "json"]
    with started(args) as p:
        end = time.monotonic() + 30
        while len(os.listdir(pids)) < 2 and time.monotonic() < end:
            time.sleep(0.05)
        killed = [int(n) for n in os.listdir(pids)]
        assert len(killed) == 2, "the two 'sleeps' cells never started"
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 1, err  # a model error, as the exit status table says
    cells = {(c["variant"], c["scenario"]): c for c in json.loads(out)["cells"]}
    assert len(cells) == 4
    for v in ("v5.3", "v5.4"):
        assert cells[v, "sleeps"]["status"] == "model-error"
        assert "killed by SIGKILL" in cells[v, "sleeps"]["model_errors"][0]
        assert cells[v, "devdax-unbind"]["status"] in ("violated", "holds")


def test_a_matrix_worker_that_exits_is_that_cells_model_error(tmp_path: Path) -> None:
    model = tmp_path / "exits.py"
    model.write_text(EXITS)
    out = subprocess.run([*PFNLAB, "matrix", "-m", str(model), "-S", "exits", "-S",
                          "devdax-unbind", "-V", "v5.4", "--jobs", "2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    text = " ".join(out.stdout.split())
    assert "exited with status 7" in text and "2 cells" in text


ONLY_IN_A_WORKER = '''import os

from pfnlab import Host, instance, scenario, vcpu_faults, vm_on
from pfnlab.mm import zap_page_range

PARENT = os.getpid()


@scenario("{name}", properties=["refs-balanced"])
def build(variant, sizes):
    """a thread that does something else in a worker process"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)
        if os.getpid() != PARENT:
            {what}
        zap_page_range(ram.vma, ram.start, ram.end)

    return instance(s, {{"zap": zap, "vcpu0": vcpu_faults(s, 0, [0, 0])}}, ["refs-balanced"])
'''


def test_a_thread_that_raises_only_in_a_worker_is_a_finding(tmp_path: Path) -> None:
    """The worker cannot replay the coordinator's path past the raise: the raise is the
    finding (with its line), not the engine's 'cannot step now'."""
    model = tmp_path / "raises.py"
    model.write_text(ONLY_IN_A_WORKER.format(
        name="raises", what='raise RuntimeError("only in a worker")'))
    for _ in range(3):  # it used to fail about every other run
        out = subprocess.run([*PFNLAB, "check", str(model), "v5.4", "--jobs", "2"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 1, out.stderr
        flat = "".join(out.stdout.split())  # the report wraps the path anywhere
        assert f"RuntimeError:onlyinaworker(inzap,{model}:19)" in flat
        assert "couldnotbereproducedbyreplay" in flat


def test_a_model_that_takes_another_path_in_a_worker_says_so(tmp_path: Path) -> None:
    model = tmp_path / "returns.py"
    model.write_text(ONLY_IN_A_WORKER.format(name="returns", what="return"))
    out = subprocess.run([*PFNLAB, "check", str(model), "v5.4", "--jobs", "2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    text = " ".join(out.stderr.split())
    assert "the model takes another path in a worker process" in text
    assert "--jobs 1 runs the search in one process" in text and "cannot step now" not in text


CHECK_ONLY_IN_A_WORKER = '''import os

from pfnlab import Check, Host, define_property, instance, scenario, vcpu_faults, vm_on
from pfnlab.mm import zap_page_range

PARENT = os.getpid()
define_property("mine", "holds")


def inv():
    if os.getpid() != PARENT:
        raise ValueError("bad in a worker")


@scenario("inv", properties=["refs-balanced", "mine"])
def build(variant, sizes):
    """a check that raises only in a worker process"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)
        zap_page_range(ram.vma, ram.start, ram.end)

    return instance(s, {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0, 0])}, ["refs-balanced"],
                    invariants=[Check("mine", inv, "mine")])
'''


def test_a_check_that_raises_only_in_a_worker_is_a_finding(tmp_path: Path) -> None:
    """It used to surface as the engine's bare AssertionError at the @scenario line."""
    model = tmp_path / "inv.py"
    model.write_text(CHECK_ONLY_IN_A_WORKER)
    out = subprocess.run([*PFNLAB, "check", str(model), "v5.4", "--jobs", "2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "check mine: ValueError('bad in a worker')" in out.stdout
    assert "AssertionError" not in out.stdout + out.stderr


def test_workers_that_keep_dying_say_so_not_budget_reached(tmp_path: Path) -> None:
    model = tmp_path / "exits.py"
    model.write_text(ONLY_IN_A_WORKER.format(name="exits", what="os._exit(3)"))
    out = subprocess.run([*PFNLAB, "check", str(model), "v5.4", "--jobs", "2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out
    text = " ".join(out.stdout.split())
    assert "coverage: stopped (a worker process died 3 times: killed, out of memory, or " \
        "model code ending its process (os._exit))" in text
    assert "budget" not in text


class Picky(Exception):
    """An exception whose ``__init__`` takes other arguments than it passes on: pickled,
    it cannot be unpickled."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def test_an_exception_from_a_worker_travels_with_its_line() -> None:
    """One that cannot be unpickled used to break the pool and read as a dead worker; the
    line of any used to be lost (the @scenario line was named instead)."""
    import pickle

    from pfnlab.api import model_error
    from pfnlab.explore.search.parallel.workers import sendable

    def boom() -> None:
        raise Picky(1, 2)

    try:
        boom()
    except Picky as e:
        sent = sendable(e)
    got = pickle.loads(pickle.dumps(sent))
    assert isinstance(got, RuntimeError) and str(got) == "Picky: 1/2"
    line = boom.__code__.co_firstlineno + 1
    assert str(model_error(got, "scenario 'x' on v5.4")).endswith(
        f"tests/cli/test_faults.py:{line}: scenario 'x' on v5.4: RuntimeError: Picky: 1/2")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_seconds_stops_a_thread_that_never_reaches_a_scheduling_point(
        tmp_path: Path, jobs: str) -> None:
    model = tmp_path / "spins.py"
    model.write_text(ONLY_IN_A_WORKER.format(name="spins", what="while True:\n"
                                             "                pass").replace(
        "if os.getpid() != PARENT:", "if PARENT:"))
    t0 = time.monotonic()
    out = subprocess.run([*PFNLAB, "check", str(model), "v5.4", "--seconds", "1", "--jobs",
                          jobs], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out
    assert time.monotonic() - t0 < 15
    assert "interrupted (--seconds 1 passed inside one step: a model thread that never " \
        "reaches a scheduling point?)" in " ".join(out.stdout.split())



def test_diff_seconds_stops_each_search_that_never_reaches_a_scheduling_point(
        tmp_path: Path) -> None:
    """diff runs a search per design and scenario, each with the budget: the watchdog is
    started again before each, and stops the first that spins."""
    model = tmp_path / "spins.py"
    model.write_text(ONLY_IN_A_WORKER.format(name="spins", what="while True:\n"
                                             "                pass").replace(
        "if os.getpid() != PARENT:", "if PARENT:"))
    t0 = time.monotonic()
    out = subprocess.run([*PFNLAB, "diff", str(model), "v5.4", "v5.3", "--seconds", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out
    assert time.monotonic() - t0 < 15
    flat = " ".join(out.stdout.split())
    assert "interrupted (--seconds 1 passed inside one step: a model thread that never " \
        "reaches a scheduling point?): 0 of 1 scenarios compared; not compared: spins" in flat


SPINNING_BUILD = '''from pfnlab import scenario


@scenario("spins-in-build", properties=["refs-balanced"])
def build(variant, sizes):
    """its build never returns"""
    while True:
        pass
'''


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_matrix_cells_that_never_yield_are_stopped_at_their_seconds(
        tmp_path: Path, jobs: str) -> None:
    """A thread that never reaches a scheduling point cuts its cell; a build that never
    returns is its cell's model error; the other cells are checked."""
    model = tmp_path / "spins.py"
    model.write_text(ONLY_IN_A_WORKER.format(name="spins", what="while True:\n"
                                             "                pass").replace(
        "if os.getpid() != PARENT:", "if PARENT:"))
    build = tmp_path / "build.py"
    build.write_text(SPINNING_BUILD)
    out = subprocess.run([*PFNLAB, "matrix", "-m", str(model), "-m", str(build), "-S",
                          "spins", "-S", "spins-in-build", "-S", "devdax-unbind", "-V",
                          "v5.4", "--seconds", "1", "--jobs", jobs, "--format", "json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out  # the build's model error
    cells = {c["scenario"]: c for c in json.loads(out.stdout)["cells"]}
    assert cells["spins"]["status"] == "not-covered"
    assert cells["spins-in-build"]["model_errors"] == [
        "its check ran 2 s past --seconds 1 outside the search (a scenario build or model "
        "code that never returns?)"]
    assert cells["devdax-unbind"]["status"] == "holds"


DEEP = '''from pfnlab import Field, Host, Shared, instance, scenario, vcpu_faults, vm_on


class Box(Shared):
    v = Field(None)


@scenario("deep", properties=["refs-balanced"])
def build(variant, sizes):
    """a field holds a value nested 200,000 deep"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)
    box = Box("box")

    def writer():
        x = None
        for _ in range(200_000):
            x = (x,)
        box.v = x

    return instance(s, {"writer": writer, "vcpu0": vcpu_faults(s, 0, [0])}, ["refs-balanced"])
'''


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_value_nested_too_deeply_says_so(tmp_path: Path, jobs: str) -> None:
    model = tmp_path / "deep.py"
    model.write_text(DEEP)
    out = subprocess.run([*PFNLAB, "check", str(model), "v5.4", "--jobs", jobs], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert "RecursionError: a value in the model's state is nested too deeply" in \
        " ".join(out.stderr.split()) and "keep the values of shared fields shallow" in \
        " ".join(out.stderr.split())


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" once it has ended)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return ""


def ray_started(p: subprocess.Popen[str], part: str, within: float = 120) -> list[int]:
    """Wait until a process of ``p``'s local Ray instance whose command line holds
    ``part`` runs; every process below ``p`` then."""
    end = time.monotonic() + within
    while time.monotonic() < end and p.poll() is None:
        below = descendants(p.pid)
        for pid in below:
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as fh:
                if part.encode() in fh.read():
                    return below
        time.sleep(0.1)
    pytest.fail(f"no {part} below pfnlab")


@pytest.mark.parametrize(("sig", "when"), [(signal.SIGTERM, "default_worker.py"),
                                           (signal.SIGINT, "gcs_server")],
                         ids=["SIGTERM once Ray runs", "Ctrl-C while Ray starts"])
def test_a_signal_during_a_local_ray_run_reports_and_leaves_no_ray_process(
        sig: int, when: str) -> None:
    """Ray's start-up replaced the SIGTERM handler (a C++ stack dump, no report, exit 1);
    Ctrl-C while it started left its processes running."""
    pytest.importorskip("ray")
    args = [*SLOW_CHECK, "--ray", "local", "--jobs", "2"]
    with started(args) as p:
        try:
            ray_started(p, when)
            if sig == signal.SIGTERM:
                time.sleep(1)  # Ray's start-up or the search: either reports
            below = descendants(p.pid)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            assert p.returncode == 3, err
            assert "SIGTERM received" not in err
            assert f"interrupted ({'SIGTERM' if sig == signal.SIGTERM else 'Ctrl-C'})" in \
                out + err, (out, err)
            assert gone(below, 15), [cmdline(pid) for pid in below if alive(pid)]
        finally:
            for pid in descendants(p.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

"""Workers forked around Ctrl-C and SIGTERM (explore/search/parallel/forking.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from types import FrameType

from pfnlab.explore.search.parallel.forking import signals_held


def test_a_signal_while_workers_fork_is_delivered_after_the_fork() -> None:
    """A Ctrl-C that comes while a worker forks was raised in the fork's hooks and lost
    ("Exception ignored in _releaseLock"): now it waits for the end of the block."""
    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    # another thread that does not block the signal (a progress bar's, a pool's): the
    # kernel may hand the signal to it, and Python runs the handler in the main thread
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    old = signal.signal(signal.SIGINT, handler)
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert got == []  # held back
        time.sleep(0.05)
        assert got == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, old)
        stop.set()
        other.join()


def test_search_workers_die_with_their_parent() -> None:
    """A parent that stops at once (a second Ctrl-C: os._exit) leaves no worker behind
    holding its output open."""
    code = textwrap.dedent("""
        import os, sys
        from pfnlab.explore.search.parallel import LocalProcesses
        from tests.engine.programs import lost_update
        backend = LocalProcesses(2)
        backend.start(lost_update())
        print(" ".join(str(pid) for pool in backend.pools for pid in pool._processes),
              flush=True)
        os._exit(3)
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=60)
    pids = [int(p) for p in out.stdout.split()]
    assert out.returncode == 3 and len(pids) == 2, out.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_killed_while_it_sends_its_result_does_not_hang_the_exit() -> None:
    """Stopping workers kills them; one killed in the middle of writing its result left the
    pool's manager thread reading the rest for ever, and the interpreter's exit joins that
    thread: `check --seconds 15 --jobs 2` at 4 x 4 printed nothing and never ended. The
    worker here is killed while it sends 400 MB; the process must exit on its own."""
    code = textwrap.dedent("""
        import multiprocessing as mp, threading, time
        from concurrent.futures import ProcessPoolExecutor
        from pfnlab.explore.search.parallel.workers import _shutdown

        def big():
            time.sleep(0.3)
            return b"x" * 400_000_000

        if __name__ == "__main__":
            ex = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
            ex.submit(big)
            time.sleep(1.2)
            manager = ex._executor_manager_thread
            _shutdown(ex)
            manager.join(timeout=10)
            print("manager ended" if not manager.is_alive() else "manager stuck", flush=True)
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                             text=True, timeout=40)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the process did not exit: {e.stdout!r}") from None
    assert out.returncode == 0 and "manager ended" in out.stdout, (out.stdout, out.stderr)

"""Connecting to Ray: a local instance, or a cluster started the ordinary way.

:func:`ray_init` imports Ray (saying how to install it when it is missing), checks that a
cluster's address answers (Ray itself retries an unreachable one without end) and that
this process can authenticate to it (:func:`authenticated`: Ray 2.60 turns token
authentication on for a cluster whose head node has a token, ``~/.ray/auth_token``, and a
client without one only logs a line per second until it gives up), and keeps this
process's handlers of Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from pfnlab.explore.search.common import INTERRUPTED_BY
from pfnlab.explore.search.parallel.workers import default_workers

RAY_HINT = ("Ray is not installed: pip install 'pfnlab[ray]' (or pip install 'ray>=2.9'), "
            "or use local processes (--jobs N without --ray)")


#: set when an interrupt stopped Ray's start in this process (see :func:`ray_init`)
RAY_START_INTERRUPTED: list[bool] = [False]


def ray_init(cpus: int | None = None, address: str | None = None) -> Any:
    """The ``ray`` module, connected: to the cluster at ``address``, else to a local
    instance with ``cpus`` CPUs (the machine's cores); RuntimeError saying how to install
    Ray when it is missing."""
    # Ray's C++ handler of SIGTERM (a stack dump, then the process ends without its
    # report) is off: Ray reads this when it is imported
    os.environ.setdefault(_NO_RAY_HANDLER, "1")
    try:
        import ray
    except ImportError:
        raise RuntimeError(RAY_HINT) from None
    with suppress(Exception):  # imported before: the constant it was read into
        ray._private.ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
    with suppress(Exception):
        _cluster_errors_to_stderr(ray._private.worker)
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
        if address:
            reachable(address)
            authenticated(address)
        else:
            _quiet_auth_notice()
            kw["num_cpus"] = cpus or default_workers()
        with _own_signals():
            try:
                ray.init(address=address or None, **kw)
            except BaseException as e:  # Ctrl-C while it starts: what it started goes
                # (and the process must not run Ray's finalisers on a half-started core
                # worker: they can crash it at exit, RAY_START_INTERRUPTED says so)
                RAY_START_INTERRUPTED[0] = True
                started = _descendants()
                with suppress(Exception):
                    ray.shutdown()
                for pid in started:  # its agents outlive the shutdown of a raylet
                    with suppress(OSError):  # that had not finished starting
                        os.kill(pid, signal.SIGKILL)
                if isinstance(e, SystemExit) and e.code == signal.SIGTERM:
                    # SIGTERM while it started, to Ray's handler of the while
                    INTERRUPTED_BY[0] = "SIGTERM"
                    raise KeyboardInterrupt from None
                raise
    return ray


def _cluster_errors_to_stderr(worker: Any) -> None:
    """Ray's driver prints the errors the cluster reports ("A worker died or was killed
    ...", as when an actor is lost) to standard output, where ``--format json`` writes:
    they go to standard error (Ray's ``print_to_stdstream``, wrapped once)."""
    plain = worker.print_to_stdstream
    if getattr(plain, "to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") == "raylet":
            data = {**data, "is_err": True}
        plain(data, ignore_prefix)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def _descendants() -> list[int]:
    """The processes below this one (Linux /proc; elsewhere none)."""
    parent: dict[int, int] = {}
    with suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with suppress(OSError, ValueError, IndexError), \
                        open(f"/proc/{entry}/stat") as fh:
                    parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
    out, todo = [], [os.getpid()]
    while todo:
        me = todo.pop()
        kids = [pid for pid, pp in parent.items() if pp == me]
        out += kids
        todo += kids
    return out


@contextmanager
def _own_signals() -> Iterator[None]:
    """Ray's start-up puts in its own SIGTERM handler (one that exits): this process's
    handlers of SIGINT and SIGTERM are put back when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    prev = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in prev.items():
            if handler is not None:
                signal.signal(sig, handler)


_NO_RAY_HANDLER = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"


def reachable(address: str, timeout: float = 5.0) -> None:
    """RuntimeError unless something listens at a cluster's ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``; ``auto`` and other forms are left to Ray) and, at ``HOST:PORT``,
    answers as a gRPC server does (:func:`_speaks_grpc`): Ray itself retries an
    unreachable address without end, and Ctrl-C does not stop it."""
    import socket

    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        conn = socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                        timeout=timeout)
    except OSError as e:
        raise RuntimeError(
            f"cannot reach the cluster at {address}: {e.strerror or e}; start it (ray start "
            "--head) or give the address it printed, or use --ray local") from None
    with conn:
        # (a ray:// client server is gRPC too, but untested here: left to Ray)
        if (not address.startswith("ray://") and os.environ.get("RAY_USE_TLS", "0") in
                ("", "0") and not _speaks_grpc(conn)):
            raise RuntimeError(
                f"no Ray cluster at {address}: something listens there but does not answer "
                "as Ray's GCS (gRPC); give the address `ray start --head` printed (its GCS "
                "port, 6379 unless --port said otherwise), or use --ray local")


#: an HTTP/2 client's connection preface and an empty SETTINGS frame (RFC 9113 3.4, 6.5)
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _speaks_grpc(conn: Any) -> bool:
    """Whether the server on ``conn`` answers the HTTP/2 preface with a SETTINGS frame, as
    every gRPC server (Ray's GCS, its client server) does at once. Ray itself would retry
    a server that does not (an HTTP/1 port, say) for a minute, and Ctrl-C would not stop
    it."""
    try:
        conn.sendall(_HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            chunk = conn.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except OSError:
        return False
    return len(head) == 9 and head[3] == 0x04  # the frame's type: SETTINGS


def _quiet_auth_notice() -> None:
    """Drop Ray's notice that a new local instance has token authentication on (its
    default, which pfnlab keeps): printed on every run, it says nothing about the check.
    Ray's other warnings, the one for authentication turned off included, still show."""
    import logging

    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _AuthNoticeFilter) for f in logger.filters):
        logger.addFilter(_AuthNoticeFilter())


class _AuthNoticeFilter:
    """A logging filter: everything but "Token authentication is enabled for this Ray
    cluster"."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("Token authentication is enabled for this")


#: Ray's settings for token authentication (ray/_private/authentication)
AUTH_MODE, AUTH_TOKEN, AUTH_TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"


def authenticated(address: str) -> None:
    """RuntimeError naming what to set when the cluster at ``address`` (``HOST:PORT``)
    has token authentication on and this process has no token for it, or another one;
    nothing when it lets this process in, or when the question cannot be asked (another
    form of address, an older Ray: ``ray.init`` then says what is wrong)."""
    _host, sep, port = address.rpartition(":")
    if address.startswith("ray://") or not sep or not port.isdigit():
        return
    try:
        from ray._raylet import GcsClient  # type: ignore[attr-defined]
        from ray.exceptions import AuthenticationError
    except ImportError:
        return
    try:
        with _stderr_dropped():  # Ray's C++ client logs the refusal before it raises
            GcsClient(address=address)
    except AuthenticationError:
        raise RuntimeError(token_missing(address)) from None
    except Exception:
        return


def token_missing(address: str, env: dict[str, str] | None = None) -> str:
    """What to set to reach the cluster at ``address``, which refused this process's
    missing or wrong token (``env``: this process's environment by default)."""
    env = dict(os.environ) if env is None else env
    give = (f"the cluster's token (`ray get-auth-token` on the head node prints it) in "
            f"{AUTH_TOKEN}, in the file {AUTH_TOKEN_PATH} names, or in ~/.ray/auth_token")
    if env.get(AUTH_MODE, "").lower() != "token":
        return (f"the cluster at {address} has token authentication on, and this process "
                f"sent no token: Ray sends one only with {AUTH_MODE}=token. Set it, with "
                f"{give} (on the head node it is there already)")
    if env.get(AUTH_TOKEN):
        sent = f"the token in {AUTH_TOKEN}"
    elif env.get(AUTH_TOKEN_PATH):
        sent = f"the token in {env[AUTH_TOKEN_PATH]} ({AUTH_TOKEN_PATH})"
    elif os.path.isfile(os.path.expanduser("~/.ray/auth_token")):
        sent = "the token in ~/.ray/auth_token"
    else:
        return f"{AUTH_MODE}=token is set, but this process has no token: give {give}"
    return f"the cluster at {address} refused {sent}: give {give}"


@contextmanager
def _stderr_dropped() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null while the block runs (Ray's C++ logging writes
    there directly)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

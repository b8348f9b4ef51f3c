"""A model that misuses a primitive gets a finding naming its FILE:LINE, or a model error
that says what to do, never an engine crash: in every search (brute force, DPOR with and
without state caching), with the exact message pinned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pfnlab.explore import (
    Check,
    Field,
    Guarded,
    Instance,
    Lock,
    Program,
    Shared,
    Srcu,
    atomic,
    free,
    wait_until,
)
from pfnlab.explore.search import Budget, explore
from pfnlab.explore.search.brute import explore_brute

HERE = "tests/engine/test_misuse.py"


def line(marker: str) -> int:
    """The line of this file holding ``marker`` (once, outside this helper's calls)."""
    (n,) = [i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
            if marker in text and "line(" not in text]
    return n


class V(Shared):
    v = Field(0)


def unlock_not_held() -> Instance:
    lock = Lock("L")

    def t0() -> None:
        lock.release()  # misuse: unlock not held

    return Instance(threads={"t0": t0})


def srcu_unlock_not_held() -> Instance:
    srcu = Srcu("S")

    def t0() -> None:
        srcu.read_unlock()  # misuse: srcu unlock

    return Instance(threads={"t0": t0})


def wait_on_freed() -> Instance:
    x = V("x")

    def t0() -> None:
        free(x, "t0")

    def t1() -> None:
        wait_until(lambda: x.v == 1, "x.v == 1")  # misuse: waits on freed memory

    return Instance(threads={"t0": t0, "t1": t1})


def update_raises() -> Instance:
    x = V("x")

    def t0() -> None:
        atomic(x, "v", lambda o: (o // 0, None))  # misuse: update raises

    return Instance(threads={"t0": t0})


def update_not_a_pair() -> Instance:
    x = V("x")

    def t0() -> None:
        atomic(x, "v", lambda o: o + 1)  # misuse: not a pair

    return Instance(threads={"t0": t0})


def atomic_unknown_field() -> Instance:
    x = V("x")

    def t0() -> None:
        atomic(x, "nope", lambda o: (o, None))  # misuse: unknown field

    return Instance(threads={"t0": t0})


class NotGuarded(Shared):
    g = Guarded(0, by="lk")

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.lk = 3


def guard_not_a_lock() -> Instance:
    o = NotGuarded("o")

    def t0() -> None:
        o.g = 1  # misuse: guard is no lock

    return Instance(threads={"t0": t0})


def free_not_shared() -> Instance:
    def t0() -> None:
        free(3)  # type: ignore[arg-type]  # misuse: free of a non-object

    return Instance(threads={"t0": t0})


def free_mover_lock() -> Instance:
    lock = Lock("L")

    def t0() -> None:
        free(lock, "t0")  # misuse: free of a mover lock

    return Instance(threads={"t0": t0})


def lock_in_check() -> Instance:
    lock, x = Lock("L"), V("x")

    def t0() -> None:
        x.v = 1

    def inv() -> None:
        lock.acquire()  # misuse: a lock in a check

    return Instance(threads={"t0": t0}, invariants=[Check("inv", inv)])


CASES: list[tuple[Callable[[], Instance], tuple[str, str], str]] = [
    (unlock_not_held, ("assertion", "lock-balance"),
     f"t0 released L held by nobody (in t0, {HERE}:{line('misuse: unlock not held')})"),
    (srcu_unlock_not_held, ("assertion", "lock-balance"),
     "t0 left an SRCU read section of S it is not in "
     f"(in t0, {HERE}:{line('misuse: srcu unlock')})"),
    (wait_on_freed, ("use-after-free", "use-after-free"),
     f"t1 waits on x.v after it was freed (t0) (in t1, {HERE}:{line('misuse: waits on')})"),
    (update_raises, ("exception", "exception"),
     f"ZeroDivisionError: integer division or modulo by zero (in <lambda>, {HERE}:"
     f"{line('misuse: update raises')})"),
    (update_not_a_pair, ("exception", "exception"),
     "UpdateError: atomic(x, 'v', update): update(old) must return (new value, result), "
     f"not 1 (in t0, {HERE}:{line('misuse: not a pair')})"),
    (atomic_unknown_field, ("exception", "exception"),
     "AttributeError: atomic(x, 'nope', ...): V has no shared field 'nope' "
     f"(in t0, {HERE}:{line('misuse: unknown field')})"),
    (guard_not_a_lock, ("exception", "exception"),
     "RuntimeError: o.g is Guarded(by='lk') but o.lk is not a Lock "
     f"(in t0, {HERE}:{line('misuse: guard is no lock')})"),
    (free_not_shared, ("exception", "exception"),
     "TypeError: free(3): only a Shared object can be freed "
     f"(in t0, {HERE}:{line('misuse: free of a non-object')})"),
    (free_mover_lock, ("exception", "exception"),
     "t0 frees L, a mover lock or Srcu (its operations join the steps next to them, which a "
     "free in between would split): declare it Lock('L', mover=False) if the model frees it "
     f"(in t0, {HERE}:{line('misuse: free of a mover lock')})"),
    (lock_in_check, ("exception", "exception"),
     "check inv: RuntimeError(\"a lock was taken outside a model thread (in build() or a "
     "check): only a thread's code takes locks\") "
     f"(in inv, {HERE}:{line('misuse: a lock in a check')})"),
]


@pytest.mark.parametrize(("build", "key", "message"), CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_a_misused_primitive_is_a_finding_that_names_the_line(
        build: Callable[[], Instance], key: tuple[str, str], message: str) -> None:
    for who, search in (
            ("brute", lambda p: explore_brute(p, Budget(), stop_first=False)),
            ("dpor", lambda p: explore(p, stop_first=False, minimal=False)),
            ("dpor uncached", lambda p: explore(p, stop_first=False, minimal=False,
                                                cache=False))):
        res = search(Program(f"{build.__name__}/{who}", build))
        assert [(f.key, f.message) for f in res.findings] == [(key, message)], who


def test_waiting_outside_a_thread_is_a_model_error_that_says_what_to_do() -> None:
    def build() -> Instance:
        x = V("x")
        wait_until(lambda: x.v == 1, "never")  # in build(): no thread to block

        def t0() -> None:
            pass

        return Instance(threads={"t0": t0})

    with pytest.raises(RuntimeError, match=r"wait_until was called outside a model thread "
                       r"\(in build\(\) or a check\): only a thread's code can wait"):
        explore(Program("wait-in-build", build))

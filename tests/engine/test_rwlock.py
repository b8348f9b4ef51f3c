"""``RwLock`` (rwlock_t, explore/rwlock.py): readers share it, a writer excludes all;
checked exhaustively, against brute force, and with its reductions off."""

from __future__ import annotations

import pytest

from pfnlab.explore import Check, Field, Instance, Program, RwLock, Shared
from pfnlab.explore.findings import EXCEPTION
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import explore_dpor


class Room(Shared):
    """Who is inside the lock's sections (each thread its own flag: readers inside at once
    must not race on one counter), and what the writers wrote."""

    inside = Field(False)
    data = Field(0)
    seen = Field(-1)


def _program(readers: int, writers: int, reduce: bool = True) -> Program:
    def build() -> Instance:
        lock = RwLock("gpc.lock")
        data = Room("data")
        rooms = {n: Room(n) for n in [*(f"r{i}" for i in range(readers)),
                                       *(f"w{i}" for i in range(writers))]}

        def reader(me: Room) -> None:
            lock.read_lock()
            me.inside = True
            me.seen = data.data
            me.inside = False
            lock.read_unlock()

        def writer(me: Room) -> None:
            lock.write_lock()
            me.inside = True
            data.data = data.data + 1
            me.inside = False
            lock.write_unlock()

        def exclusive() -> str | None:
            w = [n for n, r in rooms.items() if n[0] == "w" and r.inside]
            r = [n for n, r in rooms.items() if n[0] == "r" and r.inside]
            return None if not w or (len(w) == 1 and not r) else f"{w} with {r} inside"

        threads = {n: (lambda me=room, f=(reader if n[0] == "r" else writer): f(me))
                   for n, room in rooms.items()}
        return Instance(
            threads=threads,
            invariants=[Check("exclusive", exclusive)],
            final_checks=[Check("released", lambda: None if (
                lock.writer is None and not lock.readers) else "still held")],
            goals=[Check("readers-together", lambda: sum(
                1 for n, r in rooms.items() if n[0] == "r" and r.inside) == 2)],
        )

    return Program(f"rwlock-{readers}r{writers}w", build, reduce=reduce)


def test_against_brute_force() -> None:
    dpor = explore_dpor(_program(1, 1), stop_first=False, collect_final_states=True)
    brute = explore_brute(_program(1, 1), stop_first=False, collect_final_states=True)
    assert dpor.ok and brute.ok and brute.exhaustive
    assert set(map(repr, dpor.final_states)) == set(map(repr, brute.final_states))


@pytest.mark.parametrize(("readers", "writers"), [(2, 1), (1, 2), (2, 2)])
def test_readers_share_it_and_a_writer_excludes_everyone(readers: int, writers: int) -> None:
    """Exhaustively: no writer is ever inside with anyone else, two readers are inside at
    once in some execution (not serialised as by a mutex), and the search with its
    reductions off (every lock operation a step of its own; brute force is out of reach
    past one reader and one writer) reaches the same final states."""
    dpor = explore_dpor(_program(readers, writers), stop_first=False,
                        collect_final_states=True)
    assert dpor.ok and dpor.exhaustive, dpor.findings
    assert ("readers-together" in dpor.goals_reached) == (readers >= 2)
    # every order of the writers against the readers: a reader sees 0 .. all the writes
    assert len(dpor.final_states) >= writers + 1
    unreduced = explore_dpor(_program(readers, writers, reduce=False), stop_first=False,
                             collect_final_states=True)
    assert unreduced.ok and set(unreduced.goals_reached) == set(dpor.goals_reached)
    assert set(map(repr, unreduced.final_states)) == set(map(repr, dpor.final_states))


def test_a_reader_and_a_writer_that_forget_the_lock_are_caught() -> None:
    def build() -> Instance:
        lock = RwLock("l")
        r, w = Room("r"), Room("w")

        def reader() -> None:
            lock.read_lock()
            r.inside = True
            r.inside = False
            lock.read_unlock()

        def sloppy() -> None:  # writes without taking it
            w.inside = True
            w.inside = False

        return Instance(threads={"r": reader, "w": sloppy}, invariants=[
            Check("exclusive", lambda: "a writer among readers" if r.inside and w.inside
                  else None)])

    res = explore_dpor(Program("sloppy", build))
    assert [f.prop for f in res.findings] == ["exclusive"]


def test_unlocking_a_mode_not_held_is_a_model_error() -> None:
    def build() -> Instance:
        lock = RwLock("l")

        def wrong() -> None:
            lock.read_lock()
            lock.write_unlock()

        return Instance(threads={"t": wrong})

    res = explore_dpor(Program("wrong", build))
    assert [f.kind for f in res.findings] == [EXCEPTION]
    assert "write_unlock(l) by t, which does not hold it for writing" in res.findings[0].message


def test_a_writer_waits_for_a_reader_that_never_leaves() -> None:
    def build() -> Instance:
        lock = RwLock("l")

        def stuck() -> None:
            lock.read_lock()

        def writer() -> None:
            lock.write_lock()
            lock.write_unlock()

        return Instance(threads={"reader": stuck, "writer": writer})

    res = explore_dpor(Program("stuck", build))
    assert any(f.kind == "hang" and "l free of readers and writers" in f.message
               for f in res.findings), [f.message for f in res.findings]

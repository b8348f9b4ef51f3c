"""Stable fields (stable.py): a read under the reader's own pin joins the step; a write or
free while another thread holds a pin promotes the field and the search starts again.

Pinned: a read under a pin is no scheduling point, one without a pin is; a write while
pinned promotes; the promotions a finding was found with travel in its JSON and replay
steps the same way. Differential: on random programs of pins, reads, writes and frees,
the reduced search (stable reads joined, promotions learnt) reaches the same final states
and findings as brute force of the same program with ``Program(reduce=False)``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pfnlab.explore import Field, Instance, Program, Shared, Stable, atomic, free
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search import Budget, explore
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import explore_dpor
from tests.engine.oracle import typed_final_states


def _pinned(o: Any, who: str) -> bool:
    return who in o.pins


class Obj(Shared):
    v = Stable(0, pinned=_pinned)
    pins: Field[tuple[str, ...]] = Field(())  # sorted: a canonical repr in final states


class Out(Shared):
    r = Field(())


class Flag(Shared):
    x = Field(0)


def _pin(o: Obj, who: str, on: bool) -> None:
    atomic(o, "pins", lambda p: (tuple(sorted((set(p) | {who}) if on else (set(p) - {who}))),
                                 None))


def _program(spec: list[list[tuple[Any, ...]]], reduce: bool = True) -> Program:
    def build() -> Instance:
        o = Obj("o")
        flag = Flag("flag")
        outs = [Out(f"out{i}") for i in range(len(spec))]

        def body(i: int, ops: list[tuple[Any, ...]]) -> Any:
            name = f"t{i}"

            def run() -> None:
                for op in ops:
                    if op[0] == "pin":
                        _pin(o, name, True)
                    elif op[0] == "unpin":
                        _pin(o, name, False)
                    elif op[0] == "read":
                        v = o.v
                        outs[i].r = (*outs[i].r, v)
                    elif op[0] == "check":  # a read that orders it after another thread
                        x = flag.x
                        outs[i].r = (*outs[i].r, ("flag", x))
                    elif op[0] == "flag":
                        flag.x = 1
                    elif op[0] == "write":
                        o.v = op[1]
                    elif op[0] == "free":
                        free(o, "freed")
            return run

        return Instance(threads={f"t{i}": body(i, ops) for i, ops in enumerate(spec)})

    return Program("stable-random", build, reduce=reduce)


def test_a_read_under_the_readers_pin_joins_the_step() -> None:
    spec = [[("pin",), ("read",), ("read",), ("unpin",)], [("read",)]]
    ex = Execution(_program(spec))
    ex.step(0)                            # pin; the reads under it join, then the unpin
    labels = []
    while ex.enabled():
        tid = ex.enabled()[0]
        labels.append(ex.label(tid))
        ex.step(tid)
    # t0's two reads of o.v under its pin join its steps; t1's read, with no pin, is a step
    assert [lab for lab in labels if lab.endswith("read o.v")] == ["read o.v"], labels
    ex.close()


def test_a_write_while_another_thread_holds_a_pin_promotes_the_field() -> None:
    prog = _program([[("pin",), ("read",), ("read",), ("unpin",)], [("write", 5)]])
    res = explore(prog, stop_first=False)
    assert prog.knowledge.steps() == frozenset({"Obj.v"})
    assert res.exhaustive and not res.findings


def test_a_program_whose_writes_never_meet_a_pin_promotes_nothing() -> None:
    prog = _program([[("pin",), ("read",), ("unpin",)], [("write", 5)]][:1])
    explore(prog, stop_first=False)
    assert prog.knowledge.steps() == frozenset()


def test_promotions_travel_with_a_finding() -> None:
    """The finding's details say which fields were steps when it was found; a replay of its
    schedule on a fresh program with them set reproduces it."""
    from pfnlab.explore.search import replay

    spec = [[("pin",), ("read",), ("read",), ("unpin",)], [("write", 5), ("free",)],
            [("read",)]]
    prog = _program(spec)
    res = explore(prog, stop_first=False)
    assert res.findings
    for f in res.findings:
        assert f.details["promoted"] == ["Obj.v"]
        fresh = _program(spec)
        fresh.knowledge.learn_all(f.details["promoted"])
        rr = replay(fresh, f.schedule)
        assert not rr.diverged and rr.find(f.key) is not None


OPS = st.one_of(st.just(("pin",)), st.just(("unpin",)), st.just(("read",)),
                st.tuples(st.just("write"), st.integers(1, 2)), st.just(("free",)),
                st.just(("check",)), st.just(("flag",)))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.lists(OPS, min_size=1, max_size=5), min_size=2, max_size=3))
# t0 reads the flag and then, under its pin, o.v; t1 sets the flag and then writes o.v: only
# with the write promoting o.v does t0 see the flag unset and the new value
@example([[("pin",), ("check",), ("read",)], [("flag",), ("write", 1)]])
def test_stable_reads_agree_with_every_read_a_step(spec: list[list[tuple[Any, ...]]]) -> None:
    with typed_final_states():
        ref = explore_brute(_program(spec, reduce=False), Budget(executions=5_000),
                            stop_first=False, collect_final_states=True)
        if not ref.exhaustive:
            return
        prog = _program(spec)
        red = explore_dpor(prog, Budget(), stop_first=False, collect_final_states=True)
    assert red.exhaustive
    assert red.final_states == ref.final_states
    assert {(k, p) for k, p, _m in red.violations} == {(k, p) for k, p, _m in ref.violations}

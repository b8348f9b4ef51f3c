"""Trace annotations: ghost writes and note() land on the step after which they ran."""

from __future__ import annotations

from pfnlab.explore import Field, Ghost, Instance, Program, Shared, atomic, note
from pfnlab.explore.runtime import Execution
from pfnlab.explore.schedule import Schedule, Step
from pfnlab.explore.search import replay


class Obj(Shared):
    count: Field[int] = Field(0)
    owners: Ghost[tuple[str, ...]] = Ghost(())


def _program() -> Program:
    def build() -> Instance:
        o = Obj("o")

        def t() -> None:
            old = atomic(o, "count", lambda c: (c + 1, c))
            o.owners = (*o.owners, "t")
            note(f"was {old}")
            _ = o.count

        return Instance(threads={"t": t})

    return Program("notes", build)


def test_ghosts_and_notes_are_recorded_on_the_step_in_trace_mode() -> None:
    rr = replay(_program(), Schedule([Step("t", ""), Step("t", "")]))
    first = rr.trace[0]
    assert first.ghosts == [("o", "owners", (), ("t",))]
    assert first.notes == ["was 0"]
    assert rr.trace[1].ghosts == [] and rr.trace[1].notes == []
    assert rr.state["o"]["count"] == 1 and rr.state["o"]["owners"] == ("t",)


def test_note_is_a_no_op_outside_trace_mode() -> None:
    ex = Execution(_program())
    ex.step(0)
    ex.step(0)
    assert ex.finished and ex.trace == []

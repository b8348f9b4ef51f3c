"""``Field.unobserved``: a read for ghost hooks that is no step, leaves no footprint and is
not recorded by checks, next to the same program reading the field for real."""

from __future__ import annotations

from pfnlab.explore import Check, Field, Ghost, Instance, Program, Shared
from pfnlab.explore.search import explore


class Var(Shared):
    """A shared variable and a ghost log of what a hook saw."""

    v = Field(0)
    seen = Ghost(())


def _program(unobserved: bool) -> Program:
    def build() -> Instance:
        x = Var("x")

        def hook() -> None:
            value = Var.v.unobserved(x) if unobserved else x.v
            x.seen = (*x.seen, value)

        def writer() -> None:
            x.v = 1

        return Instance(threads={"vcpu0": hook, "admin": writer},
                        invariants=[Check("v read", lambda: None)])

    return Program("unobserved" if unobserved else "read", build)


def test_an_unobserved_read_is_no_step_and_orders_nothing() -> None:
    read = explore(_program(False), stop_first=False)
    quiet = explore(_program(True), stop_first=False)
    # the read races the write: both orders; the unobserved one is ordered with nothing
    assert read.stats.executions == 2
    assert quiet.stats.executions == 1
    assert read.stats.states > quiet.stats.states


def test_outside_an_execution_it_is_the_value() -> None:
    x = Var("x")
    x.v = 7
    assert Var.v.unobserved(x) == 7

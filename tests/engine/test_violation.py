"""A check's :class:`Violation` message brings facts to the finding's ``details``, so that
reports read facts, not sentences (the leak explanation reads ``leaked_by``)."""

from __future__ import annotations

from pfnlab.explore import Check, Field, Instance, Program, Shared, Violation
from pfnlab.explore.search.dpor import explore_dpor


class X(Shared):
    v = Field(0)


def _program(stable: bool) -> Program:
    def build() -> Instance:
        x = X("x")

        def writer() -> None:
            x.v = 1

        def bad() -> str | None:
            return Violation(f"x is {x.v}", who="writer", value=x.v) if x.v else None

        return Instance(threads={"writer": writer},
                        invariants=[Check("x-zero", bad, "x-zero", stable=stable)])

    return Program(f"violation-{stable}", build)


def test_an_invariant_s_violation_details_reach_the_finding() -> None:
    for stable in (False, True):  # a halting finding, and a noted one
        res = explore_dpor(_program(stable), stop_first=False)
        (f,) = res.findings
        assert f.message == "x is 1" and type(f.message) is str
        assert f.details["who"] == "writer" and f.details["value"] == 1


def test_a_violation_is_its_message() -> None:
    v = Violation("vcpu0:fault returned holding 1 reference", leaked_by="vcpu0:fault")
    assert v == "vcpu0:fault returned holding 1 reference" and isinstance(v, str)
    assert v.details == {"leaked_by": "vcpu0:fault"}

"""Searches run with the collector's thresholds of gcpolicy.py, and restore the caller's."""

from __future__ import annotations

import gc

from pfnlab.explore import Field, Instance, Shared
from pfnlab.explore.program import Program
from pfnlab.explore.search import explore
from pfnlab.explore.search.gcpolicy import THRESHOLDS


class _Counter(Shared):
    v = Field(0)


def test_a_search_runs_with_the_search_thresholds_and_restores_the_callers() -> None:
    seen: list[tuple[int, int, int]] = []

    def build() -> Instance:
        c = _Counter("c")

        def bump() -> None:
            seen.append(gc.get_threshold())
            c.v = c.v + 1

        return Instance(threads={"a": bump, "b": bump})

    before = gc.get_threshold()
    assert before != THRESHOLDS
    explore(Program("bump", build), stop_first=False)
    assert seen and set(seen) == {THRESHOLDS}
    assert gc.get_threshold() == before

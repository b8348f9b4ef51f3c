"""``pfnlab.world()``: how a model file's overrides reach the objects its builder made."""

from __future__ import annotations

import pytest

from pfnlab import World, world
from pfnlab.explore import set_context


def test_world_outside_an_execution_says_where_to_call_it() -> None:
    set_context(None)
    with pytest.raises(RuntimeError, match="call it from a scenario's builder, a thread or "
                       "a kernel function"):
        world()
    w = World()
    set_context(w)
    try:
        assert world() is w
        w.extra["mine"] = 1
        assert world().extra == {"mine": 1}
    finally:
        set_context(None)

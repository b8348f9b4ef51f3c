"""Fixtures: a host installed as the process-wide context (plain attribute mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pfnlab.explore import set_context
from pfnlab.kernel.world import World
from pfnlab.mm import Host


@pytest.fixture
def make_host() -> Iterator[Callable[..., Host]]:
    """``make_host(mm_version="5.4", **host_kwargs)`` builds a host and installs it."""

    def make(mm_version: str = "5.4", **kw: object) -> Host:
        host = Host(**kw)  # type: ignore[arg-type]
        set_context(World(mm_version=mm_version, host=host))
        return host

    yield make
    set_context(None)


@pytest.fixture
def host(make_host: Callable[..., Host]) -> Host:
    """A 5.4 host with nothing mapped yet."""
    return make_host()

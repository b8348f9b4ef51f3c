"""Fixtures shared by every test folder."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def without_package(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``without_package("ray")``: importing that package (and its submodules) raises
    ImportError for the rest of the test, as on a machine where it is not installed."""

    def hide(package: str) -> None:
        real = builtins.__import__

        def fake(name: str, *a: Any, **kw: Any) -> Any:
            if name == package or name.startswith(package + "."):
                raise ImportError(name)
            return real(name, *a, **kw)

        monkeypatch.setattr(builtins, "__import__", fake)

    return hide

"""Fixtures shared by every test folder."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from pathlib import Path
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


@pytest.fixture
def model_file(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``model_file(TEXT, "name.py")``: write a model file and load it, as ``--model``
    does; the variants, scenarios and properties it registers are gone after the test."""
    from pfnlab.api import load_model, registries_restored

    def load(text: str, name: str = "model.py") -> Path:
        path = tmp_path / name
        path.write_text(text)
        load_model(path)
        return path

    with registries_restored():
        yield load

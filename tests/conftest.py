"""Fixtures shared by every test folder."""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# The property tests draw the same cases on every run ("ci", the default): a run fails
# because of a change, not because a new random draw found an old gap. Exploring with new
# draws is a run of its own: HYPOTHESIS_PROFILE=explore pytest tests/engine (a case it
# finds goes into the test as an @example, with what it showed).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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

"""pytest plugin (entry point ``pytest11``): a model check is an ordinary test.

Fixtures:

- ``pfnlab_check(variant, scenario, *, expect=None, model=None, **sizes)``: runs
  :func:`pfnlab.check`. With ``expect=None`` the check must pass: a finding fails the test
  with the rendered minimal trace (``pytest.fail``), and so does a pass that is not covered
  (budget cut, goal never reached). With ``expect="prop-id"`` (or a list of ids) the check
  must violate exactly those properties (a regression test for a known bug). ``model``
  loads a model file first. It returns the :class:`pfnlab.api.Result`. Each pass is
  recorded as the test's ``pfnlab`` property (``record_property``) and in a line of the
  terminal summary saying what was covered.

Model files loaded by the fixture are unloaded at the end of the test.

Options: ``--pfnlab-seconds N`` bounds each check's search (default: no bound).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

_SUMMARY_KEY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--pfnlab-seconds``: a time budget per model check."""
    group = parser.getgroup("pfnlab")
    group.addoption("--pfnlab-seconds", type=float, default=None,
                    help="stop each pfnlab model check after this many seconds")


def pytest_configure(config: pytest.Config) -> None:
    """Set up the list of covered checks shown in the terminal summary."""
    config.stash[_SUMMARY_KEY] = []


@pytest.fixture
def pfnlab_check(request: pytest.FixtureRequest,
                 record_property: Callable[[str, object], None]) -> Iterator[Any]:
    """Check a variant in a scenario; fail the test with the minimal trace on a finding."""
    from pfnlab.api import check, load_model, registries_restored

    seconds = request.config.getoption("--pfnlab-seconds")
    summary = request.config.stash.get(_SUMMARY_KEY, [])

    def run(variant: str, scenario: str, *, expect: str | list[str] | None = None,
            model: str | None = None, **sizes: int) -> Any:
        if model is not None:
            load_model(model)
        run_check: Any = check      # sizes are keywords of check()
        res = run_check(variant, scenario, seconds=seconds, **sizes)
        want = [expect] if isinstance(expect, str) else list(expect or [])
        if sorted(res.violated) != sorted(want):
            head = (f"pfnlab: {variant} / {scenario}: expected "
                    f"{', '.join(want) or 'no finding'}, found "
                    f"{', '.join(res.violated) or 'no finding'}")
            pytest.fail(f"{head}\n\n{res.report()}\ncoverage: {res.coverage}",
                        pytrace=False)
        if not want and (not res.exhaustive or res.goals_missed):
            pytest.fail(f"pfnlab: {variant} / {scenario}: no finding, but not covered: "
                        f"{res.coverage}"
                        + (f"; goals never reached: {', '.join(res.goals_missed)}"
                           if res.goals_missed else ""), pytrace=False)
        record_property("pfnlab", res.summary())
        summary.append(res.summary())
        return res

    with registries_restored():
        yield run


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    """One line per model check that ran: what it found and what it covered."""
    lines = config.stash.get(_SUMMARY_KEY, [])
    if lines:
        terminalreporter.write_sep("-", "pfnlab model checks")
        for line in lines:
            terminalreporter.write_line(line)

"""One real run of the thread report, shared by the tests that need it (about 20 s)."""

from __future__ import annotations

import pytest

from pfnlab.thread.run import Report, run_thread


@pytest.fixture(scope="session")
def report() -> Report:
    return run_thread()

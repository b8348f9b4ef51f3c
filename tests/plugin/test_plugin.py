"""The pytest plugin: a model check is an ordinary test."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pfncache.py"


def test_failing_check_fails_with_the_minimal_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=f"""
        def test_unbind(pfnlab_check):
            pfnlab_check("v5.4", "pfncache-vs-unbind", model={str(EXAMPLE)!r})
    """)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "expected no finding, found no-metadata-after-teardown" in out
    assert "trace (" in out and "free(page@0x104)" in out
    assert "Traceback" not in out


def test_passing_check_reports_coverage(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=f"""
        def test_fixed(pfnlab_check, record_property):
            r = pfnlab_check("pfncache-fixed", "pfncache-vs-unbind", model={str(EXAMPLE)!r})
            assert r.ok

        def test_known_bug(pfnlab_check):
            pfnlab_check("v5.3", "devdax-unbind", expect=["refs-balanced",
                                                         "teardown-terminates"])
    """)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=j.xml")
    res.assert_outcomes(passed=2)
    out = res.stdout.str()
    assert "pfnlab model checks" in out
    assert "pfncache-fixed / pfncache-vs-unbind: no finding (exhaustive" in out
    xml = (pytester.path / "j.xml").read_text()
    assert 'name="pfnlab"' in xml and "exhaustive" in xml

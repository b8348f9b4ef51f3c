"""The HTML report, end to end in headless Chromium: load the page, click a step, read it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    res = subprocess.run(
        [sys.executable, "-m", "pfnlab", "check", "v5.3", "devdax-unbind", "--html", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert res.returncode == 1, res.stderr
    return out


def test_page_is_self_contained(page_file: Path) -> None:
    html = page_file.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "teardown-terminates violated (hang)" in html
    assert "refs-balanced violated" in html
    assert "hang chain" in html and "reference ledger" in html and "causal core" in html


def test_click_a_step_shows_its_change_and_the_state(page_file: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            # the step where the vCPU's gup takes its page reference
            step = page.locator(".step", has_text="page@0x104.refcount: 1 -> 2").first
            step.click()
            detail = page.locator("#detail")
            text = detail.inner_text()
            assert "page@0x104.refcount" in text
            assert "1 -> 2" in text
            assert "state after this step" in text
            # the state table marks what this step changed
            changed = detail.locator("tr.changed").all_inner_texts()
            assert any("page@0x104.refcount" in row and "2" in row for row in changed)
            assert "sel" in (step.get_attribute("class") or "")
            # the causal pair of the hang is highlighted; the leak is sequential (no pair)
            assert page.locator(".step.causal").count() == 2
        finally:
            browser.close()


def test_page_with_only_a_fragment_has_no_step_panel() -> None:
    from pfnlab.report.html import render_html

    page = render_html("t", [], {}, extra_html="<section id='thread'>claims</section>")
    assert "<section id='thread'>claims</section>" in page
    assert 'id="detail"' not in page

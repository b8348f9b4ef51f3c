"""The report's text, Markdown and HTML forms, and docs/thread.md being up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pfnlab.matrix import HOLDS, VIOLATED, Verdict
from pfnlab.properties import NO_METADATA_AFTER_TEARDOWN, NO_PUT_UNREFERENCED
from pfnlab.thread.claims import Claim, Test, TraceSpec
from pfnlab.thread.render import (
    claim_text,
    render_html_section,
    render_markdown,
    render_text,
)
from pfnlab.thread.run import (
    MET,
    PARTLY,
    UNMET,
    ClaimResult,
    Evidence,
    KeyLine,
    Outcome,
    Report,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "thread.md"
REGEN = "pfnlab thread --format md --output docs/thread.md"
RACE = (NO_PUT_UNREFERENCED, NO_METADATA_AFTER_TEARDOWN)


def _sample() -> ClaimResult:
    claim = Claim(
        id="dan-racy", who="Dan Williams", date="2019-11-06 18:04",
        msgid="<CAPcyv4gJk2cXLdT2dZwCH2AssMVNxUfdx-bYYwJwy1LwFxOs0w@mail.gmail.com>",
        quote="This is racy unless you can be certain that the pfn and resulting page has "
        "already been pinned by get_user_pages().",
        question="Is is_zone_device_page() on a pfn racy exactly when no gup pin is held?",
        tests=(
            Test("v5.4", "remapped-vs-unbind", RACE, VIOLATED, "no pin: racy",
                 essential=True),
            Test("v5.4", "dirty-log-collapse", RACE, VIOLATED, "no pin, under mmu_lock"),
        ),
        traces=(TraceSpec("v5.4", "remapped-vs-unbind", NO_METADATA_AFTER_TEARDOWN,
                          ("follow_pfn",)),),
    )
    outcomes = [
        Outcome(claim.tests[0], MET, {NO_PUT_UNREFERENCED: Verdict(VIOLATED, "r"),
                                      NO_METADATA_AFTER_TEARDOWN: Verdict(HOLDS)}, 10, True),
        Outcome(claim.tests[1], UNMET, {p: Verdict(HOLDS) for p in RACE}, 1319, True),
    ]
    ev = Evidence(claim.traces[0], True, "vcpu0 read page@0x104.reserved after it was freed",
                  "use-after-free", 41, 1,
                  [KeyLine(6, "vcpu0", "hva_to_pfn > hva_to_pfn_remapped > follow_pfn",
                           "pte:mm@0x10.val = (260, True, ...)"),
                   KeyLine(40, "admin", "memunmap_pages > arch_remove_memory",
                           "free page@0x104")])
    return ClaimResult(claim, PARTLY, outcomes, [ev])


PINNED = """\
[4] dan-racy: Dan Williams, 2019-11-06 18:04
    <CAPcyv4gJk2cXLdT2dZwCH2AssMVNxUfdx-bYYwJwy1LwFxOs0w@mail.gmail.com>
    "This is racy unless you can be certain that the pfn and resulting page has
     already been pinned by get_user_pages()."
    Question: Is is_zone_device_page() on a pfn racy exactly when no gup pin is
    held?
    Verdict: PARTLY
    Runs:
    +! v5.4 / remapped-vs-unbind: no pin: racy
        predicts no-put-unreferenced or no-metadata-after-teardown violated;
        checker: violated: no-put-unreferenced
    -  v5.4 / dirty-log-collapse: no pin, under mmu_lock
        predicts no-put-unreferenced or no-metadata-after-teardown violated;
        checker: all hold, exhaustive, 1,319 executions
    trace: v5.4 / remapped-vs-unbind, no-metadata-after-teardown
      vcpu0 read page@0x104.reserved after it was freed (use-after-free; minimal
      trace: 41 steps, 1 preemption; key steps:)
        6 vcpu0: hva_to_pfn > hva_to_pfn_remapped > follow_pfn: pte:mm@0x10.val
          = (260, True, ...)
       40 admin: memunmap_pages > arch_remove_memory: free page@0x104"""


def test_one_claim_renders_exactly() -> None:
    assert claim_text(4, _sample()) == PINNED


def test_text_is_mail_ready(report: Report) -> None:
    text = render_text(report)
    for ln in text.splitlines():
        assert len(ln) <= 80, ln
        assert ln.isascii(), ln
    for r in report.results:
        assert f"] {r.claim.id}: " in text
        assert r.verdict.upper() in text or r.verdict in text


def test_markdown_has_every_claim(report: Report) -> None:
    md = render_markdown(report)
    for r in report.results:
        assert f". {r.claim.id}: " in md
        assert r.claim.msgid in md


def test_docs_thread_md_is_up_to_date(report: Report) -> None:
    current = DOC.read_text() if DOC.exists() else ""
    if render_markdown(report) != current:
        pytest.fail(f"docs/thread.md is out of date: run `{REGEN}` and commit it")


def test_html_section_is_self_contained(report: Report) -> None:
    frag = render_html_section(report)
    assert frag.startswith('<section class="pfnlab-thread"')
    assert frag.rstrip().endswith("</section>")
    for bad in ("http://", "https://", "src=", "<link", "<script"):
        assert bad not in frag
    for r in report.results:
        assert f'id="thread-{r.claim.id}"' in frag
    assert "&lt;CAPcyv4g" in frag   # Message-IDs are escaped


def test_readme_points_to_the_thread_report_first() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    fences = [i for i, ln in enumerate(lines) if ln.startswith("```")]
    after = next(ln for ln in lines[fences[3] + 1:] if ln.strip())
    assert "docs/thread.md" in after


def test_cli_rejects_unknown_format() -> None:
    out = subprocess.run([sys.executable, "-m", "pfnlab", "thread", "--format", "pdf"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 2
    assert "valid formats: text, md, html" in out.stderr


def test_cli_writes_the_report(report: Report, monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pfnlab import cli
    from pfnlab.thread import run as thread_run

    monkeypatch.setattr(thread_run, "run_thread", lambda: report)
    res = CliRunner().invoke(cli.app, ["thread"])
    assert res.exit_code == 0
    assert res.stdout == render_text(report)
    out = tmp_path / "t.md"
    res = CliRunner().invoke(cli.app, ["thread", "--format", "md", "--output", str(out)])
    assert res.exit_code == 0
    assert out.read_text() == render_markdown(report)

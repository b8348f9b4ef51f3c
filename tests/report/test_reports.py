"""Mail-ready reports: pinned leak, hang-chain and two-thread texts; JSON schema and replay;
patch-diff mode."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from pfnlab.explain.analysis import Analysis, analyse
from pfnlab.explore.findings import Finding
from pfnlab.explore.program import Program
from pfnlab.explore.search import explore
from pfnlab.report.causal import causal_text
from pfnlab.report.hangchain import chain_lines
from pfnlab.report.ledger import leak_sentence
from pfnlab.report.mailtrace import render_mail
from pfnlab.scenarios import SCENARIOS
from pfnlab.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[2]


@cache
def _check(variant: str, scenario: str) -> tuple[Program, tuple[Finding, ...]]:
    program = SCENARIOS[scenario].program(VARIANTS[variant])
    return program, tuple(explore(program, stop_first=False).findings)


def _analysis(variant: str, scenario: str, prop: str) -> Analysis:
    program, findings = _check(variant, scenario)
    f = next(f for f in findings if f.prop == prop)
    return analyse(program, f)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pfnlab", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


LEAK = (
    "page 0x104: reference taken by vcpu0 (vcpu0:fault) in hva_to_pfn_fast (step 5) was "
    "never put: kvm_release_pfn_clean skipped it at step 13 because "
    "kvm_is_reserved_pfn(0x104) returned true"
)


def test_leak_report_names_the_get_and_the_skipped_put() -> None:
    an = _analysis("v5.3", "devdax-unbind", "refs-balanced")
    assert [leak_sentence(lk) for lk in an.ledger.leaks] == [LEAK]
    assert an.ledger.underflows == []
    assert an.causal.first is None and "no race: vcpu0 alone" in causal_text(an.causal)


HANG = """\
admin: memunmap_pages waits on pgmap dax0 done (step 45)
  <- pgmap dax0 ref count 1: held by page 0x104
    <- page 0x104 refcount 1: held by vcpu0:fault
      <- reference of vcpu0:fault taken in hva_to_pfn_fast (step 5), leaked:
         kvm_release_pfn_clean skipped the put at step 13 because
         kvm_is_reserved_pfn(0x104) returned true"""


def test_hang_chain_goes_down_to_the_leaked_reference() -> None:
    an = _analysis("v5.3", "devdax-unbind", "teardown-terminates")
    assert "\n".join(line for ch in an.chains for line in chain_lines(ch)) == HANG


TWO_THREADS = """\
     vcpu0                                 admin
     -----                                 -----
  4  hva_to_pfn_fast()
       pgmap dax0 ref 2 -> 3
  5    page 0x104 ref 1 -> 2
  7    pgmap dax0 ref 3 -> 2"""


def test_two_thread_trace_fits_a_mail() -> None:
    an = _analysis("v5.3", "devdax-unbind", "teardown-terminates")
    text = render_mail(an.finding, decisive=an.decisive())
    assert text.startswith(TWO_THREADS)
    assert "\n 43                                        memunmap_pages()\n" in text
    assert "\n 13  kvm_release_pfn_clean()\n       kvm_is_reserved_pfn(0x104) = true\n" in text
    for t in (text, render_mail(an.finding, full=True)):
        assert all(len(line) <= 80 for line in t.splitlines())
        assert t.isascii()
    # an SRCU read section reads as the kernel writes it
    assert ("\n 32                                        mmu_notifier_invalidate_range_start()\n"
            "                                             srcu_read_lock(mm.notifier_srcu)\n"
            ) in text
    # a Guarded write (the SPTE install under mmu_lock) shows under the step it joined
    # (step 10 is a read: what kvm_is_reserved_pfn made of it decides THP adjustment)
    assert ("\n 10  transparent_hugepage_adjust()\n       kvm_is_reserved_pfn(0x104) = true\n"
            "     mmu_set_spte()\n       kvm.spte[0x0].spte None -> pfn\n") in text
    # the short form keeps the full trace's step numbers
    full = render_mail(an.finding, full=True)
    assert "\n 18  " in full and "\n 18  " not in text


def test_check_text_is_mail_ready() -> None:
    out = run("check", "v5.3", "devdax-unbind")
    assert out.returncode == 1, out.stderr
    assert all(len(line) <= 80 for line in out.stdout.splitlines())
    assert out.stdout.isascii()
    assert HANG in out.stdout and "causal core:" in out.stdout
    assert ("cause: the leaked reference above; the racing pair below only decides whether\n"
            "  that reference is taken at all.\ncausal core:") in out.stdout


@pytest.fixture(scope="module")
def check_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("json") / "check.json"
    out = run("check", "v5.3", "devdax-unbind", "--format", "json", "--output", str(path))
    assert out.returncode == 1, out.stderr
    return path


def test_check_json_validates_and_replays(check_json: Path) -> None:
    from pfnlab.report.jsonout import validate

    doc = json.loads(check_json.read_text())
    validate(doc)
    assert doc["schema"] == "pfnlab.check/2"
    props = {f["property"] for f in doc["findings"]}
    assert props == {"teardown-terminates", "refs-balanced"}
    out = run("replay", str(check_json))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": reproduces:") == 2


def test_replay_of_an_edited_schedule_reports_divergence(check_json: Path,
                                                         tmp_path: Path) -> None:
    doc = json.loads(check_json.read_text())
    f = doc["findings"][0]
    f["schedule"][3]["label"] = "kvm_release_pfn_clean: read page@0x104.refcount"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    out = run("replay", str(edited))
    assert out.returncode == 1
    assert "DOES NOT reproduce: diverged at step 4: the schedule says vcpu0 " in out.stdout


def test_diff_lists_the_fixed_properties_with_their_traces(tmp_path: Path) -> None:
    from pfnlab.report.jsonout import validate

    out = run("diff", "v5.3", "v5.4", "devdax-unbind")
    assert out.returncode == 1, out.stderr  # the designs differ
    head = out.stdout.split("\n\n")[0]
    assert "  teardown-terminates: fixed in v5.4" in head
    assert "  refs-balanced: fixed in v5.4" in head
    assert "v5.3 / devdax-unbind: teardown-terminates violated (hang)" in out.stdout
    # the hang's and the leak's schedules run on v5.4 without a finding
    assert out.stdout.count("on v5.4 the same schedule runs without a finding") == 2
    path = tmp_path / "diff.json"
    assert run("diff", "v5.3", "v5.4", "devdax-unbind", "-o", str(path)).returncode == 1
    doc = json.loads(path.read_text())
    validate(doc)
    changes = {p["property"]: p["change"] for p in doc["scenarios"][0]["properties"]}
    assert changes == {"teardown-terminates": "fixed", "refs-balanced": "fixed"}
    assert run("replay", str(path)).returncode == 0


def test_a_wait_in_an_anonymous_operation_names_the_waiting_function() -> None:
    from pfnlab.explore.findings import TraceStep
    from pfnlab.report.mailtrace import describe

    st = TraceStep(index=42, thread="vcpu0", label="", where=("<lambda>", "vcpu_fault"),
                   action="wait", obj="", field="vcpu0 fault retry")
    row = describe(st)
    assert row is not None and row.function == "vcpu_fault"
    st.where = ("dev_dax_unbind", "kill_dev_dax", "kill_dax")
    row = describe(st)
    assert row is not None and row.function == "kill_dev_dax"

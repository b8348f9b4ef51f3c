"""Issue 10, "reports say what decided the finding": a kernel function declared to return
an object or None is annotated with what it returned, like the boolean predicates."""

from __future__ import annotations

from pfnlab import api
from pfnlab.kernel.kfunc import _returns_pointer
from pfnlab.mm.gup import follow_pte
from pfnlab.mm.memmap import pfn_to_online_page, pfn_valid


def test_which_functions_return_a_pointer() -> None:
    assert _returns_pointer(pfn_to_online_page.base)     # -> Page | None
    assert _returns_pointer(follow_pte.base)             # -> PteVal | None
    assert not _returns_pointer(pfn_valid.base)          # -> bool: annotated as a bool


def test_a_null_that_decides_the_path_is_in_the_trace() -> None:
    """On VM_PFNMAP memory the slow gup finds no page: that NULL is why the fault takes
    hva_to_pfn_remapped (Paolo's race), and the full trace says so."""
    res = api.check("v5.3", "remapped-vs-unbind")
    text = res.report(full=True)
    assert "get_user_pages_unlocked(mm, 0x10, True) = NULL" in " ".join(text.split())
    # no bookkeeping string is shown as a kernel argument
    assert "str)" not in text


def test_the_trace_header_counts_steps_and_rows() -> None:
    """Rows are numbered by trace entry, steps by scheduling point: both are said."""
    res = api.check("v5.3", "devdax-unbind")
    head = " ".join(res.report().split("trace (", 1)[1].split(":", 1)[0].split())
    assert head == ("27 scheduling steps as 46 rows, lock operations and reads under a pin "
                    "joined to their steps; the deciding rows; --full for every row; minimal")


def test_an_unchanged_write_shows_when_the_finding_depends_on_it() -> None:
    from pfnlab.explore.findings import TraceStep
    from pfnlab.report.mailtrace import describe

    st = TraceStep(index=7, thread="admin", label="", where=("kill_dax",), action="write",
                   obj="dax:dax0", field="alive", before=False, after=False)
    assert describe(st) is None                      # the short form leaves it out ...
    row = describe(st, decisive=True)                # ... unless it decides the finding
    assert row is not None and row.text == "dax:dax0.alive False -> False"

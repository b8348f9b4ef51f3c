"""``pfnlab thread``: the seed thread's claims, each tested by the checker at run time.

:mod:`.claims` holds the claims and their expectation rules (data), :mod:`.run` runs the
checker and derives each verdict, :mod:`.render` prints text, Markdown and an HTML fragment.
"""

from pfnlab.thread.claims import CLAIMS, Claim, Test, TraceSpec
from pfnlab.thread.run import Report, run_thread

__all__ = ["CLAIMS", "Claim", "Report", "Test", "TraceSpec", "run_thread"]

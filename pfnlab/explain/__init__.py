"""What a finding means, computed from its trace: the reference ledger (``ledger.py``), the
wait-for chains of a hang (``hangs.py``), the causal core found by re-running reordered
executions (``causal.py``), all of them together (``analysis.py``). Results are typed facts;
:mod:`pfnlab.report` turns them into text, JSON and HTML."""

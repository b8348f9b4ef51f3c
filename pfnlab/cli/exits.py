"""The exit status of every ``pfnlab`` command: one table, for scripts and CI jobs.

====  =================================================================================
code  meaning
====  =================================================================================
0     clean: no finding (the search covered everything), no difference, every saved
      finding reproduces
1     a finding or a difference: ``check`` found something, a ``matrix`` cell has a
      violation or a model error, ``diff`` found the designs differ, a ``replay`` did
      not reproduce
2     usage or model error: a bad name, size, budget or path, a model file that does not
      load, a scenario whose build raises or that has no threads; nothing was claimed
3     inconclusive: interrupted (Ctrl-C, SIGTERM), a budget cut the search before it found
      anything, nothing was explored, or a "sometimes" goal was never reached
====  =================================================================================
"""

from __future__ import annotations

CLEAN = 0
FOUND = 1
USAGE = 2
INCONCLUSIVE = 3

#: the table, as each command's ``--help`` ends (one line per code)
TABLE = (
    "Exit status: 0 clean (no finding, no difference, every finding reproduces); "
    "1 a finding or a difference; 2 usage or model error (bad name, size, budget, path "
    "or model file); 3 inconclusive (Ctrl-C, a budget cut the search, nothing explored)."
)


def epilog(specific: str) -> str:
    """The ``--help`` epilog of a command: what its codes mean for it, then the table."""
    return f"{specific}\n\n{TABLE}"

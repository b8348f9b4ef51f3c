"""Published execution counts for the classic DPOR benchmarks, each with its exact source.

Every number here was read from a file of a public repository at the commit named; nothing
is derived or estimated. A (benchmark, size) with no entry has no published number that we
found, and is reported as "n/a".

- **Optimal** counts are the number of Mazurkiewicz traces (equivalence classes of
  complete executions) as counted by an optimal explorer:
  GenMC's test suite (MPI-SWS/genmc): line k of ``expected.<model>.in`` is the count for
  line k of ``args.<model>.in`` (scripts/runcorrect.sh reads the two files in step; a
  directory without ``args`` uses the first line and the program's defaults);
  the CAV'18 "Quasi-optimal POR" artifact (cesaro/dpu-cav18-exp): the "Confs" column
  (maximal configurations) of ``sec6.1-table1/logs.provided/TABLE.tex``;
  Concuerror's optimal-DPOR run of ``readers`` (parapluu/Concuerror).
- **Source-DPOR** counts are complete executions plus sleep-set-blocked ones:
  Nidhugg (source-DPOR, its default ``-sc`` algorithm) as run by the CAV'18 artifact,
  ``sec6.1-table1/logs.provided/<bench>_nidhugg.txt`` ("Trace count: C (also B sleepset
  blocked)"); Concuerror's ``--dpor source`` run of ``readers``
  (``tests/suites/dpor_tests/results/readers-test-inf-source.txt``: "64/64 interleavings
  explored", no sleep-set-blocked ones reported).

Caveats, kept with the numbers: GenMC's counts for ``indexer-mutex`` and ``filesystem`` are
from its LAPOR test directory, run under RC11 with ``-lapor`` (lock-aware reduction, which
does not count the order of critical sections that do not conflict), not under SC; for these
data-race-free programs they should be a lower bound on the SC trace count (RC11 equals SC
on race-free programs, and LAPOR merges executions that differ only in lock order), not
necessarily equal to it. Concuerror's ``readers`` is the Erlang version (each reader also
looks up its own key, which conflicts with nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

GENMC = "MPI-SWS/genmc@b03f01ed0f34"
CAV18 = "cesaro/dpu-cav18-exp@ad054d3d37aa"
CONCUERROR = "parapluu/Concuerror@0cbd2fc2acd7"


@dataclass(frozen=True)
class Published:
    """One published count: complete executions, sleep-set-blocked ones where the source
    reports them (source-DPOR), and where it comes from."""

    complete: int
    source: str
    blocked: int | None = None

    @property
    def total(self) -> int:
        """Complete plus sleep-set-blocked executions."""
        return self.complete + (self.blocked or 0)


def _genmc(directory: str, model: str, line: int, size: str) -> str:
    return (f"{GENMC} tests/correct/{directory}/expected.{model}.in line {line} "
            f"({size})")


def _nidhugg(bench: str) -> str:
    return f"{CAV18} sec6.1-table1/logs.provided/{bench}_nidhugg.txt"


def _dpu(bench: str) -> str:
    return f"{CAV18} sec6.1-table1/logs.provided/TABLE.tex, row {bench}, column Confs"


#: (benchmark, size) -> the optimal number of executions (Mazurkiewicz traces)
OPTIMAL: dict[tuple[str, int], Published] = {
    ("readers", 2): Published(4, _genmc("synthetic/readers", "sc.mo", 1, "-DN=2, SC")),
    ("readers", 6): Published(64, f"{CONCUERROR} tests/suites/dpor_tests/results/"
                                  "readers-test-inf-optimal.txt (readers(6), optimal DPOR)"),
    ("readers", 8): Published(256, _genmc("synthetic/readers", "sc.mo", 2, "-DN=8, SC")),
    ("readers", 13): Published(8192, _genmc("synthetic/readers", "sc.mo", 3, "-DN=13, SC")),
    ("lastzero", 5): Published(64, _genmc("synthetic/lastzero", "sc.mo", 1, "-DN=5, SC")),
    ("lastzero", 10): Published(3328, _genmc("synthetic/lastzero", "sc.mo", 2, "-DN=10, SC")),
    ("lastzero", 15): Published(147456,
                                _genmc("synthetic/lastzero", "sc.mo", 3, "-DN=15, SC")),
    ("indexer", 12): Published(8, _genmc("synthetic/indexer", "sc.mo", 1, "-DN=12, SC")),
    ("indexer", 15): Published(4096, _genmc("synthetic/indexer", "sc.mo", 2, "-DN=15, SC")),
    ("indexer-mutex", 13): Published(
        64, _genmc("lapor/indexer", "rc11.mo", 1, "N=13 as defined in indexer.c; RC11 with "
                                                    "-lapor, not SC")),
    ("filesystem", 19): Published(
        64, _genmc("lapor/filesystem", "rc11.mo", 1, "-DN=19; RC11 with -lapor, not SC")),
    ("mpat", 4): Published(384, _dpu("mpat-k4")),
    ("mpat", 5): Published(3840, _dpu("mpat-k5")),
    ("mpat", 6): Published(46080, _dpu("mpat-k6")),
    ("multiprodcon", 2): Published(60, _dpu("multipc-prods2_workers5")),
    ("multiprodcon", 3): Published(2958, _dpu("multipc-prods3_workers5")),
    ("multiprodcon", 4): Published(314064, _dpu("multipc-prods4_workers5")),
    ("fib_bench", 5): Published(
        218243, _genmc("synthetic/fib_bench", "sc.mo", 1, "NUM=5, the default of "
                                                          "fib_bench.c; SC")),
}

#: (benchmark, size) -> source-DPOR's complete and sleep-set-blocked executions
SOURCE_DPOR: dict[tuple[str, int], Published] = {
    ("readers", 6): Published(64, f"{CONCUERROR} tests/suites/dpor_tests/results/"
                                  "readers-test-inf-source.txt (readers(6), --dpor source)",
                              blocked=0),
    ("mpat", 4): Published(384, _nidhugg("mpat-k4"), blocked=0),
    ("mpat", 5): Published(3840, _nidhugg("mpat-k5"), blocked=0),
    ("mpat", 6): Published(46080, _nidhugg("mpat-k6"), blocked=0),
    ("multiprodcon", 2): Published(60, _nidhugg("multipc-prods2_workers5"), blocked=2856),
    ("multiprodcon", 3): Published(2958, _nidhugg("multipc-prods3_workers5"), blocked=85737),
}

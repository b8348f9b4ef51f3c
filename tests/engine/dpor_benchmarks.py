"""The classic DPOR benchmarks of the literature, written as plain pfnlab programs.

Each function mirrors one C program line by line: the same shared variables (one
:class:`Cell` per C variable or array element), the same threads in the same creation
order, and the same shared accesses, each a scheduling point as in the C program under
sequential consistency. Thread-local C variables are Python locals. Where the original
takes a ``pthread_mutex_t``, the program takes a :class:`~pfnlab.explore.Lock`.

Sources of the C programs (read for this translation):

- ``readers``, ``lastzero``, ``indexer`` (CAS), ``fib_bench``: GenMC,
  ``tests/correct/synthetic/<name>/<name>.c`` and ``variants/<name>0.c`` (MPI-SWS/genmc).
- ``indexer`` with a mutex per slot, ``filesystem``: GenMC,
  ``tests/correct/lapor/<name>/<name>.c`` and ``variants/<name>0.c``.
- ``mpat``, ``multiprodcon``: the CAV'18 "Quasi-optimal POR" artifact,
  ``benchmarks/mpat.c`` and ``benchmarks/multiprodcon.c`` (cesaro/dpu-cav18-exp).

Two places where the translation cannot be exact with today's engine API:

- A C11 ``compare_exchange`` that fails only reads the location. pfnlab's
  :func:`~pfnlab.explore.atomic` is one read-modify-write step whatever it returns, so a
  failed CAS is a write here: two failed CASes on one slot conflict, which can only add
  executions (never hide one).
- A ``pthread_mutex_lock`` here is a :class:`Lock` with the engine's defaults (a mover:
  the acquire runs on into the next access, the release joins the one before it).
"""

from __future__ import annotations

from collections.abc import Callable

from pfnlab.explore import Field, Instance, Lock, Program, Shared, atomic, fail


class Cell(Shared):
    """One shared C variable (``atomic_int``, ``int``, ``bool`` or ``unsigned``)."""

    v = Field(0)


def cells(name: str, n: int, init: int = 0) -> list[Cell]:
    """An array ``name[n]`` of shared cells, each ``init``."""
    out = [Cell(f"{name}[{i}]") for i in range(n)]
    for c in out:
        c.v = init
    return out


# ---------------------------------------------------------------------------- readers
def readers(n: int) -> Program:
    """GenMC ``readers``: one writer stores ``x = 42``, ``n`` readers each load ``x``.

    ``idx[i]`` (the reader's argument) is written before the threads start and only read
    after, so it is a local here. Mazurkiewicz traces: ``2**n``.
    """

    def build() -> Instance:
        x = Cell("x")

        def writer() -> None:
            x.v = 42

        def reader() -> None:
            _ = x.v

        threads: dict[str, Callable[[], object]] = {"writer": writer}
        threads.update({f"reader{i}": reader for i in range(1, n + 1)})
        return Instance(threads=threads)

    return Program(f"readers-{n}", build)


# ---------------------------------------------------------------------------- lastzero
def lastzero(n: int) -> Program:
    """GenMC ``lastzero``: a reader scans ``array[n..0]`` for the last zero; writer ``j``
    (1..n) stores ``array[j] = array[j-1] + 1``."""

    def build() -> Instance:
        array = cells("array", n + 1)

        def reader() -> None:
            i = n
            while array[i].v != 0:
                i -= 1

        def writer(j: int) -> Callable[[], None]:
            def run() -> None:
                array[j].v = array[j - 1].v + 1
            return run

        threads: dict[str, Callable[[], object]] = {"reader": reader}
        threads.update({f"writer{j}": writer(j) for j in range(1, n + 1)})
        return Instance(threads=threads)

    return Program(f"lastzero-{n}", build)


# ---------------------------------------------------------------------------- indexer
SIZE = 128   # indexer: hash table size
MAX = 4      # indexer: insertions per thread


def cas_update(expected: int, new: int) -> Callable[[int], tuple[int, bool]]:
    """The update of ``atomic_compare_exchange_strong(&cell, &expected, new)`` for
    :func:`~pfnlab.explore.atomic`: ``new`` and True if the cell held ``expected``."""

    def update(old: int) -> tuple[int, bool]:
        return (new, True) if old == expected else (old, False)

    return update


def indexer(n: int) -> Program:
    """GenMC ``synthetic/indexer``: ``n`` threads each insert ``MAX`` values into a hash
    table of ``SIZE`` slots with CAS, probing linearly on a collision."""

    def build() -> Instance:
        table = cells("table", SIZE)

        def thread(tid: int) -> Callable[[], None]:
            def run() -> None:
                for i in range(MAX):
                    w = i * 11 + tid
                    h = (w * 7) % SIZE
                    if h < 0:
                        fail("assert", "h < 0")
                    while not atomic(table[h], "v", cas_update(0, w)):
                        h = (h + 1) % SIZE
            return run

        return Instance(threads={f"t{tid}": thread(tid) for tid in range(n)})

    return Program(f"indexer-{n}", build)


def indexer_mutex(n: int) -> Program:
    """GenMC ``lapor/indexer``: the same with ``cas()`` written as a plain read and write
    of ``table[h]`` under ``cas_mutex[h]``; note the values start at ``m = 1``."""

    def build() -> Instance:
        table = cells("table", SIZE)
        cas_mutex = [Lock(f"cas_mutex[{h}]") for h in range(SIZE)]

        def cas(h: int, val: int, new_val: int) -> bool:
            ret = False
            cas_mutex[h].acquire()
            if table[h].v == val:
                table[h].v = new_val
                ret = True
            cas_mutex[h].release()
            return ret

        def thread(tid: int) -> Callable[[], None]:
            def run() -> None:
                m = 0
                while m < MAX:
                    m += 1
                    w = m * 11 + tid
                    h = (w * 7) % SIZE
                    if h < 0:
                        fail("assert", "h < 0")
                    while not cas(h, 0, w):
                        h = (h + 1) % SIZE
            return run

        return Instance(threads={f"t{tid}": thread(tid) for tid in range(n)})

    return Program(f"indexer-mutex-{n}", build)


# ---------------------------------------------------------------------------- filesystem
NUMBLOCKS = 26
NUMINODES = 32


def filesystem(n: int) -> Program:
    """GenMC ``lapor/filesystem``: thread ``tid`` locks inode ``tid % NUMINODES``; if it
    has no block, it searches ``busy[]`` for a free block, each probe under that block's
    lock, from block ``(2 i) % NUMBLOCKS``."""

    def build() -> Instance:
        locki = [Lock(f"locki[{i}]") for i in range(NUMINODES)]
        inode = cells("inode", NUMINODES)
        lockb = [Lock(f"lockb[{b}]") for b in range(NUMBLOCKS)]
        busy = cells("busy", NUMBLOCKS)

        def thread(tid: int) -> Callable[[], None]:
            def run() -> None:
                i = tid % NUMINODES
                locki[i].acquire()
                if inode[i].v == 0:
                    b = (i * 2) % NUMBLOCKS
                    while True:
                        lockb[b].acquire()
                        if not busy[b].v:
                            busy[b].v = 1
                            inode[i].v = b + 1
                            lockb[b].release()
                            break
                        lockb[b].release()
                        b = (b + 1) % NUMBLOCKS
                locki[i].release()
            return run

        return Instance(threads={f"t{tid}": thread(tid) for tid in range(n)})

    return Program(f"filesystem-{n}", build)


# ---------------------------------------------------------------------------- mpat
def mpat(k: int) -> Program:
    """CAV'18 ``mpat``: ``wa(i)`` locks and unlocks ``ma[i]``; ``ra(i)`` does the same
    inside a critical section of the common ``mi``. Threads start ``wa0, ra0, wa1, ...``."""

    def build() -> Instance:
        ma = [Lock(f"ma[{i}]") for i in range(k)]
        mi = Lock("mi")

        def wa(i: int) -> Callable[[], None]:
            def run() -> None:
                ma[i].acquire()
                ma[i].release()
            return run

        def ra(i: int) -> Callable[[], None]:
            def run() -> None:
                mi.acquire()
                ma[i].acquire()
                ma[i].release()
                mi.release()
            return run

        threads: dict[str, Callable[[], object]] = {}
        for i in range(k):
            threads[f"wa{i}"] = wa(i)
            threads[f"ra{i}"] = ra(i)
        return Instance(threads=threads)

    return Program(f"mpat-{k}", build)


# ---------------------------------------------------------------------------- multiprodcon
TASKS = 2    # multiprodcon: tasks a worker tries to take
ITERS = 2    # multiprodcon: digits each producer adds


def multiprodcon(prods: int, workers: int = 5) -> Program:
    """CAV'18 ``multiprodcon``: ``workers`` workers take tasks from ``workreq[id]`` under
    ``mut[id]``; ``prods`` producers build a number in ``prodbuff`` under ``prodmut`` and
    send one task to worker ``tmp % workers``. Workers start first, as in ``main``."""

    def build() -> Instance:
        mut = [Lock(f"mut[{i}]") for i in range(workers)]
        workreq = cells("workreq", workers)
        workdone = cells("workdone", workers)
        prodmut = Lock("prodmut")
        prodbuff = Cell("prodbuff")

        def worker(wid: int) -> Callable[[], None]:
            def run() -> None:
                havework = 0
                for _ in range(TASKS):
                    mut[wid].acquire()
                    if workreq[wid].v:
                        workreq[wid].v = workreq[wid].v - 1
                        havework = 1
                    mut[wid].release()
                    if havework:
                        workdone[wid].v = workdone[wid].v + 1
                        havework = 0
            return run

        def producer(pid: int) -> Callable[[], None]:
            def run() -> None:
                tmp = 0
                for _ in range(ITERS):
                    prodmut.acquire()
                    prodbuff.v = prodbuff.v * prods + pid
                    tmp = prodbuff.v
                    prodmut.release()
                if tmp > prods ** (ITERS * prods):
                    fail("assert", f"tmp = {tmp} out of range")
                dst = tmp % workers
                mut[dst].acquire()
                workreq[dst].v = workreq[dst].v + 1
                mut[dst].release()
            return run

        threads: dict[str, Callable[[], object]] = {}
        threads.update({f"worker{i}": worker(i) for i in range(workers)})
        threads.update({f"prod{i}": producer(i) for i in range(prods)})
        return Instance(threads=threads)

    return Program(f"multiprodcon-{prods}x{workers}", build)


# ---------------------------------------------------------------------------- fib_bench
def fib_bench(num: int) -> Program:
    """GenMC ``fib_bench``: two threads each ``num`` times add ``x`` and ``y`` into one of
    them; a third asserts neither exceeds 144 (it cannot for ``num <= 5``)."""

    def build() -> Instance:
        x, y = Cell("x"), Cell("y")
        x.v = y.v = 1

        def thread_1() -> None:
            for _ in range(num):
                prev_x = x.v
                prev_y = y.v
                x.v = prev_x + prev_y

        def thread_2() -> None:
            for _ in range(num):
                prev_x = x.v
                prev_y = y.v
                y.v = prev_x + prev_y

        def thread_3() -> None:
            if x.v > 144 or y.v > 144:
                fail("assert", "x or y > 144")

        return Instance(threads={"t1": thread_1, "t2": thread_2, "t3": thread_3})

    return Program(f"fib_bench-{num}", build)


#: every benchmark by name: the program at a size (bench/dpor_suite.py says what the size
#: counts for each)
BENCHMARKS: dict[str, Callable[[int], Program]] = {
    "readers": readers,
    "lastzero": lastzero,
    "indexer": indexer,
    "indexer-mutex": indexer_mutex,
    "filesystem": filesystem,
    "mpat": mpat,
    "multiprodcon": multiprodcon,
    "fib_bench": fib_bench,
}

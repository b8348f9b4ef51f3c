"""Issue 28, report noise, on model files of the shapes the issue describes: the rows
that decide a finding's path and every note are in the default trace; a sequential bug
gets no paragraph about orderings and no pointer to a ledger that is not printed; the
findings of one execution share one trace; set-up before a race is left out."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from pfnlab import api

PREDICATE = textwrap.dedent('''\
    from pfnlab import Host, Lock, Shared, define_property, fail, instance, kfunc, scenario, vm_on
    from pfnlab.explore import Field, note

    define_property("small-only", "the device is never mapped huge")


    class Dev(Shared):
        huge = Field(True)
        mapped = Field(0)

        def __init__(self, name):
            super().__init__(name)
            self.lock = Lock(f"{name}.lock")


    @kfunc
    def dev_is_huge(dev):
        """the predicate the mapper's branch asks"""
        return bool(dev.huge)


    def dev_map(dev):
        dev.lock.acquire()
        note("dev.lock held: mapping")
        if dev_is_huge(dev):
            dev.mapped = 2
            fail("small-only", "dev mapped with a huge mapping")
        dev.mapped = 1
        dev.lock.release()


    @scenario("map-huge", sizes={}, properties=["small-only"])
    def build(variant, sz):
        """one thread maps the device; the predicate says huge"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        dev = Dev("dev")
        return instance(s, {"mapper": lambda: dev_map(dev)}, ["small-only"])
''')


PREDICATE_REPORT = '''\
v5.4 / map-huge: small-only violated (assertion)
  dev mapped with a huge mapping

no race: mapper alone shows it, in program order (a sequential bug).

trace (2 scheduling steps as 3 rows, lock operations and reads under a pin
joined to their steps; the deciding rows; --full for every row; minimal: fewest
preemptions (0), then fewest steps (2) among executions showing this finding):

     mapper
     ------
  0  dev_map()
       lock(dev.lock)
       note: dev.lock held: mapping
  1    dev_is_huge(dev) = true
  2    dev.mapped 0 -> 2
'''


PREDICATE_FULL = '''\
v5.4 / map-huge: small-only violated (assertion)
  dev mapped with a huge mapping

no race: mapper alone shows it, in program order (a sequential bug).

trace (2 scheduling steps as 3 rows, lock operations and reads under a pin
joined to their steps; every row; minimal: fewest preemptions (0), then fewest
steps (2) among executions showing this finding):

     mapper
     ------
  0  dev_map()
       lock(dev.lock)
       note: dev.lock held: mapping
  1  dev_is_huge()
       dev.huge == True; dev_is_huge(dev) = true
  2  dev_map()
       dev.mapped 0 -> 2
'''


THRICE = textwrap.dedent('''\
    from pfnlab import Check, Host, Shared, define_property, fail, instance, scenario, vm_on
    from pfnlab.explore import Field

    define_property("below-one", "the counter stays below 1")
    define_property("below-two", "the counter stays below 2")
    define_property("no-third", "the counter is never bumped a third time")


    class Counter(Shared):
        n = Field(0)


    @scenario("bump-thrice", sizes={}, properties=["below-one", "below-two", "no-third"])
    def build(variant, sz):
        """one thread bumps a counter three times; each bump breaks one more property"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        c = Counter("c")

        def bump():
            c.n = 1
            c.n = 2
            c.n = 3
            fail("no-third", "bumped a third time")

        invs = [Check("below one", lambda: f"n is {c.n}" if c.n >= 1 else None, "below-one",
                      stable=True),
                Check("below two", lambda: f"n is {c.n}" if c.n >= 2 else None, "below-two",
                      stable=True)]
        return instance(s, {"bump": bump}, ["below-one", "below-two", "no-third"],
                        invariants=invs)
''')


THRICE_REPORT = '''\
v5.4 / bump-thrice: below-one violated (invariant)
  n is 1

no race: bump alone shows it, in program order (a sequential bug).

trace (1 step; the deciding rows; --full for every row; minimal: fewest
preemptions (0), then fewest steps (1) among executions showing this finding):

     bump
     ----
  0  bump()
       c.n 0 -> 1

v5.4 / bump-thrice: below-two violated (invariant)
  n is 2

no race: bump alone shows it, in program order (a sequential bug).

trace: same execution as finding 1 (below-one) up to its step 0, then (2 steps;
the deciding rows; --full for every row; minimal: fewest preemptions (0), then
fewest steps (2) among executions showing this finding):

     bump
     ----
  1  bump()
       c.n 1 -> 2

v5.4 / bump-thrice: no-third violated (assertion)
  bumped a third time

no race: bump alone shows it, in program order (a sequential bug).

trace: same execution as finding 2 (below-two) up to its step 1, then (3 steps;
the deciding rows; --full for every row; minimal: fewest preemptions (0), then
fewest steps (3) among executions showing this finding):

     bump
     ----
  2  bump()
       c.n 2 -> 3
'''


SETUP = textwrap.dedent('''\
    from pfnlab import Host, Shared, define_property, fail, instance, scenario, vm_on
    from pfnlab.explore import Field

    define_property("seen-unset", "the reader never sees the flag set")


    class Box(Shared):
        n = Field(0)


    @scenario("flag-race", sizes={}, properties=["seen-unset"])
    def build(variant, sz):
        """a writer logs twice to its own box, then sets a flag a reader checks"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        log, flag = Box("log"), Box("flag")

        def writer():
            log.n = 1
            log.n = 2
            flag.n = 1

        def reader():
            if flag.n:
                fail("seen-unset", "the reader saw the flag set")

        return instance(s, {"writer": writer, "reader": reader}, ["seen-unset"])
''')


SETUP_REPORT = '''\
v5.4 / flag-race: seen-unset violated (assertion)
  the reader saw the flag set

causal core: the finding needs writer's writer: flag.n 0 -> 1 (step 2) before
  reader's reader: flag.n == 1 (step 3); run the other way round, the execution
  ends without a finding, and nothing orders them. writer holds no lock at step
  2, reader holds no lock at step 3: no common lock, and a lock around the two
  steps alone would not decide which runs first; writer waiting for reader (a
  reference, a completion), or reader checking, under one lock with its step,
  whether writer's step has run, and backing off if it has, would order them.

trace (4 steps; the deciding rows; --full for every row; minimal: fewest
preemptions (0), then fewest steps (4) among executions showing this finding):
(steps 0-1, set-up before the race that no other thread's step touches, are left
out; --full shows them)

     writer                                reader
     ------                                ------
  2  writer()
       flag.n 0 -> 1
  3                                        reader()
                                             flag.n == 1
'''


SETUP_FULL = '''\
v5.4 / flag-race: seen-unset violated (assertion)
  the reader saw the flag set

causal core: the finding needs writer's writer: flag.n 0 -> 1 (step 2) before
  reader's reader: flag.n == 1 (step 3); run the other way round, the execution
  ends without a finding, and nothing orders them. writer holds no lock at step
  2, reader holds no lock at step 3: no common lock, and a lock around the two
  steps alone would not decide which runs first; writer waiting for reader (a
  reference, a completion), or reader checking, under one lock with its step,
  whether writer's step has run, and backing off if it has, would order them.

trace (4 steps; every row; minimal: fewest preemptions (0), then fewest steps
(4) among executions showing this finding):

     writer                                reader
     ------                                ------
  0  writer()
       log.n 0 -> 1
  1    log.n 1 -> 2
  2    flag.n 0 -> 1
  3                                        reader()
                                             flag.n == 1
'''


LOCKED = textwrap.dedent('''\
    from pfnlab import Host, Lock, Plain, Shared, define_property, fail, instance, kfunc
    from pfnlab import scenario, vm_on
    from pfnlab.explore import Field

    define_property("small-only", "the device is never mapped huge")


    class Dev(Shared):
        huge = Plain(True)
        mapped = Field(0)

        def __init__(self, name):
            super().__init__(name)
            self.lock = Lock(f"{name}.lock")


    @kfunc
    def dev_is_huge(dev):
        """the predicate: reads a field only ever accessed under dev.lock"""
        return bool(dev.huge)


    def dev_map(dev):
        dev.lock.acquire()
        huge = dev_is_huge(dev)
        dev.lock.release()
        dev.mapped = 2 if huge else 1
        if dev.mapped == 2:
            fail("small-only", "dev mapped with a huge mapping")


    @scenario("map-huge-locked", sizes={}, properties=["small-only"])
    def build(variant, sz):
        """one thread maps the device; the predicate, asked under the lock, says huge"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        dev = Dev("dev")
        return instance(s, {"mapper": lambda: dev_map(dev)}, ["small-only"])
''')


LOCKED_REPORT = '''\
v5.4 / map-huge-locked: small-only violated (assertion)
  dev mapped with a huge mapping

no race: mapper alone shows it, in program order (a sequential bug).

trace (3 scheduling steps as 4 rows, lock operations and reads under a pin
joined to their steps; the deciding rows; --full for every row; minimal: fewest
preemptions (0), then fewest steps (3) among executions showing this finding):

     mapper
     ------
  0  dev_map()
       lock(dev.lock)
       dev_is_huge(dev) = true
  1    unlock(dev.lock)
  2    dev.mapped 0 -> 2
  3    dev.mapped == 2
'''


def test_the_deciding_predicate_and_a_note_on_a_lock_row_are_shown(
        model_file: Callable[..., Path]) -> None:
    """What the predicate returned (it decides the branch that fails) and the model's note
    on the lock row are in the default trace; the sequential bug gets one line, not a
    paragraph about orderings nor a pointer to a ledger that is not printed."""
    model_file(PREDICATE, "predicate.py")
    res = api.check("v5.4", "map-huge")
    assert res.report() == PREDICATE_REPORT.rstrip("\n")
    assert res.report(full=True) == PREDICATE_FULL.rstrip("\n")
    assert "ledger" not in res.report(full=True)


def test_findings_of_one_execution_share_its_trace(model_file: Callable[..., Path]) -> None:
    """Three findings of one execution: the trace is printed once, each later finding
    refers to the one that printed most of it and shows only the rows after it."""
    model_file(THRICE, "thrice.py")
    res = api.check("v5.4", "bump-thrice")
    assert res.violated == ["below-one", "below-two", "no-third"]
    assert res.report() == THRICE_REPORT.rstrip("\n")


def test_setup_before_the_race_is_left_out(model_file: Callable[..., Path]) -> None:
    """The writer's log writes touch nothing the reader touches: the default trace starts
    at the race and says what it left out; --full shows them."""
    model_file(SETUP, "setup.py")
    res = api.check("v5.4", "flag-race")
    assert res.report() == SETUP_REPORT.rstrip("\n")
    assert res.report(full=True) == SETUP_FULL.rstrip("\n")


def test_a_predicate_read_under_a_lock_is_shown_on_the_lock_row(
        model_file: Callable[..., Path]) -> None:
    """The predicate reads only a field accessed under the lock (a plain access, riding
    along with the lock step): what it returned is shown on the lock row by default."""
    model_file(LOCKED, "locked.py")
    res = api.check("v5.4", "map-huge-locked")
    assert res.report() == LOCKED_REPORT.rstrip("\n")
    assert "       dev_is_huge(dev) = true" in res.report().splitlines()


# The reader starts once the writer's first step opened the box, then sets up a box of its
# own, then looks the box up and uses it: its set-up lies in the middle of the trace, after
# a step that matters and before the race
MID = textwrap.dedent('''\
    from pfnlab import Host, Shared, define_property, fail, instance, scenario, vm_on, wait_until
    from pfnlab.explore import Field

    define_property("stable-read", "the reader uses the value it looked up")


    class Box(Shared):
        n = Field(0)


    @scenario("lookup-race", sizes={}, properties=["stable-read"])
    def build(variant, sz):
        """the reader starts once the writer opened the box, sets up its own, then looks the
        box up and uses it; the writer changes it"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)
        box, mine = Box("box"), Box("mine")

        def writer():
            box.n = 1
            box.n = 2

        def reader():
            wait_until(lambda: box.n >= 1, what="box opened")
            mine.n = 1
            mine.n = 2
            seen = box.n
            if box.n != seen:
                fail("stable-read", f"looked up {seen}, used {box.n}")

        return instance(s, {"writer": writer, "reader": reader}, ["stable-read"])
''')


MID_TRACE = """\
trace (9 scheduling steps as 8 rows, lock operations and reads under a pin
joined to their steps; the deciding rows; --full for every row; minimal: fewest
preemptions (2), then fewest steps (9) among executions showing this finding):
(reader's steps 2-3, set-up before the race that no other thread's step touches,
are left out; --full shows them)

     writer                                reader
     ------                                ------
  0  writer()
       box.n 0 -> 1
  1                                        reader()
                                             wait box opened
  4                                          box.n == 1
  5  writer()
       box.n 1 -> 2
  7                                        reader()
                                             box.n == 2
"""


def test_set_up_in_the_middle_of_the_trace_is_left_out(
        model_file: Callable[..., Path]) -> None:
    """The reader's writes to its own box run after the writer's first step (which the
    reader waits for) and before the race: set-up, left out like the set-up before the
    first step that matters; --full shows them."""
    model_file(MID, "mid.py")
    res = api.check("v5.4", "lookup-race")
    text = res.report()
    assert text[text.index("trace ("):] == MID_TRACE.rstrip("\n")
    assert "writer's step 5 ran inside reader's window from step 4 to step 7" in " ".join(
        text.split())
    full = res.report(full=True)
    assert "left out" not in full
    assert f"  2{' ' * 42}mine.n 0 -> 1" in full.splitlines()


def test_the_lookup_that_opened_the_window_is_a_deciding_row() -> None:
    """examples/pfncache.py: the causal core names vcpu0's lookup of the PTE as the step
    that opened the window; the short trace shows it though it only reads."""
    from pfnlab.api import load_model, registries_restored

    with registries_restored():
        load_model(Path("examples/pfncache.py"))
        res = api.check("v5.4", "pfncache-vs-unbind")
        assert [f.kind for f in res.search.findings].count("use-after-free") == 1
        text = res.report()
    lines = text.splitlines()
    core = " ".join(text.split())
    assert "ran inside vcpu0's window from step" in core
    step = int(core.split("ran inside vcpu0's window from step ")[1].split()[0])
    row = next(ln for ln in lines if ln.startswith(f"{step:3d}  "))
    assert row.split()[1] == "gup_pte_range()"

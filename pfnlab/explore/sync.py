"""Blocking primitives: locks, SRCU, and "wait until a condition over shared state holds".

All are scheduling points. A thread whose next operation is the acquire of a held lock is
not enabled: it takes no step until the lock is released. A wait whose condition is false
is a *failed attempt*: a step that reads the shared state and leaves the thread blocked
until a step by another thread writes a field that its attempt read and makes the attempt
able to succeed. If every live thread is blocked, the execution hangs, and the finding
names what each thread waits for.
"""

from __future__ import annotations

from collections.abc import Callable

from pfnlab.explore.shared import HOOKS, Field, Shared

#: What an object's mover field is called, by primitive (see Execution._joins).
MOVER_FIELD = "_mover_field"


class Lock(Shared):
    """A non-recursive lock (spinlock or mutex). ``owner`` is the holding thread's name.

    By default a lock is a *mover* (Lipton's reduction): its acquire runs on into the
    thread's next operation and its release joins the operation before it, so a critical
    section with one racing access is one step, as in the kernel-level step tables. That is
    sound because nothing but lock operations can tell when a mover lock changed hands:
    checks, ``wait_until`` conditions and other threads may not read its owner (doing so is
    an error that says what to do). Declare ``Lock(name, mover=False)`` for a lock whose
    owner a check or condition must see (``spin_is_locked``-style polling): every acquire
    and release is then its own step.
    """

    owner: Field[str | None] = Field(None)

    def __init__(self, name: str, *, mover: bool = True) -> None:
        super().__init__(name)
        self.__dict__[MOVER_FIELD] = "owner" if mover else None

    def acquire(self) -> None:
        """Take the lock; the thread is not enabled while another thread holds it."""
        rt = HOOKS.current
        if rt is None:
            self.__dict__["owner"] = "setup"
            return
        rt.acquire(self)

    def release(self) -> None:
        """Release the lock; releasing a lock this thread does not hold is a finding."""
        rt = HOOKS.current
        if rt is None:
            self.__dict__["owner"] = None
            return
        rt.release(self)

    def held_by(self) -> str | None:
        """The holder's name, without a scheduling point (for checks, conditions, reports).

        Tracked like a read of ``owner`` in checks and ``wait_until`` conditions. Of a mover
        lock (the default) only the holder itself may ask (``lockdep_assert_held``).
        """
        rt = HOOKS.current
        if rt is not None:
            rt.observe(self, "owner")
        return self.__dict__["owner"]


class Srcu(Shared):
    """An SRCU domain (``struct srcu_struct``): read-side sections and ``synchronize_srcu``.

    ``readers`` holds the name of the thread of each read-side critical section in progress
    (sorted; a thread in two nested sections is there twice): a thread can leave only a
    section it entered, as with the index ``srcu_read_lock()`` returns, and leaving one it
    is not in is a ``lock-balance`` finding. Readers never block; :meth:`synchronize` waits
    until there are none (a grace period; the model waits for every reader, not only those
    that began before it, which can only add waiting). The read lock is a right mover and
    the unlock a left mover, like a lock's: the only observer of ``readers`` is
    ``synchronize``, which cannot complete while a section is open, and no thread's unlock
    depends on another's lock, so a read section with one racing access in it is one step.
    Checks and conditions may not read ``readers``.
    """

    readers: Field[tuple[str, ...]] = Field(())

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__[MOVER_FIELD] = "readers"

    def read_lock(self) -> None:
        """``srcu_read_lock()``: enter a read-side critical section (never blocks)."""
        rt = HOOKS.current
        if rt is None:
            self.__dict__["readers"] = enter_section(self.__dict__["readers"], "setup")
            return
        rt.share(self, +1)

    def read_unlock(self) -> None:
        """``srcu_read_unlock()``: leave the read-side critical section this thread entered
        last."""
        rt = HOOKS.current
        if rt is None:
            self.__dict__["readers"] = leave_section(self.__dict__["readers"], "setup")
            return
        rt.share(self, -1)

    def synchronize(self, what: str = "", prop: str = "") -> None:
        """``synchronize_srcu()``: block until no read-side section is open."""
        d = self.__dict__

        def no_readers() -> bool:
            return not d["readers"]

        rt = HOOKS.current
        label = what or f"{d['_name']} synchronize_srcu"
        if rt is None:
            if not no_readers():
                raise RuntimeError(f"{label} outside an execution with readers present")
            return
        rt.wait(no_readers, label, prop, grace=self)


def enter_section(readers: tuple[str, ...], who: str) -> tuple[str, ...]:
    """``readers`` of an Srcu after thread ``who`` enters a read section."""
    return tuple(sorted((*readers, who)))


def leave_section(readers: tuple[str, ...], who: str) -> tuple[str, ...]:
    """``readers`` after ``who`` leaves one of its read sections (it must be in one)."""
    i = readers.index(who)
    return readers[:i] + readers[i + 1:]


def wait_until(cond: Callable[[], object], what: str, prop: str = "") -> None:
    """Block until ``cond()`` is true. ``what`` names the wait in hang reports.

    If the execution hangs with this thread waiting here, the hang is reported under
    property ``prop`` (e.g. ``"teardown-terminates"``), else under ``"hang"``.

    ``cond`` is evaluated by the engine without scheduling points; the fields it reads are the
    footprint of the wait step. Only a step that writes one of them can wake the thread.
    """
    rt = HOOKS.current
    if rt is None:
        if not cond():
            raise RuntimeError(f"wait_until({what}) outside an execution with a false condition")
        return
    rt.wait(cond, what, prop)


def wait_for_change(read: Callable[[], object], seen: object, what: str, prop: str = "") -> None:
    """Block until ``read()`` no longer returns ``seen``: the retry step of a retry loop.

    A loop that retries because shared state was in the way (``mmu_notifier_retry``, a
    cache refresh, a ``-EAGAIN``) and runs again before anything changed would fail the
    same way, deterministically: that iteration is a stutter, and re-running it only
    lengthens executions (unboundedly: the engine reports ``no-progress`` at
    ``max_steps``). Wait for what the retry depends on to change instead::

        while True:
            seq = kvm.mmu_notifier_seq
            if try_install(seq):
                break
            wait_for_change(lambda: kvm.mmu_notifier_seq, seq, "mmu_notifier_seq moves")

    Every verdict about states the loop reaches is kept (stutter steps change no state);
    a retry that could never succeed shows up as a hang naming ``what``.
    """
    wait_until(lambda: read() != seen, what, prop)

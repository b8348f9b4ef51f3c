"""RCU: read-side critical sections, grace periods and callbacks (kernel/rcu/tree.c,
include/linux/rcupdate.h).

Model choices:

- One RCU domain per host (``Host.rcu``, an :class:`RcuState`): since the flavour
  consolidation of v4.20 a grace period waits for ``rcu_read_lock()``,
  ``rcu_read_lock_sched()`` and preempt-disabled sections alike, so they are one domain.
- A grace period waits for the read-side sections that began before it and not for later
  ones. It is built on two :class:`~pfnlab.explore.Srcu` halves and a phase, as SRCU is in
  the kernel: a reader enters the half the phase names; ``synchronize_rcu`` flips the
  phase and waits until the old half is empty, then flips again and waits for the other
  half. Every section open when it started is in one of the two halves and keeps its
  thread there until it ends, so both waits are needed and enough; a section that begins
  after the second flip is in a half already waited for. Grace periods of concurrent
  callers may overlap (no lock between them), as in the kernel.
- Nested sections: an inner ``rcu_read_lock`` enters the half of the thread's outermost
  section (the kernel counts the nesting; only the outermost section matters).
- Callbacks (``call_rcu``, ``kfree_rcu``) are queued on the domain and run by a model
  thread the scenario adds, :func:`rcu_callback_thread` (the kernel's ``rcu_core`` /
  rcuc kthread): it takes what is queued, waits for a grace period and runs it, until it
  finds the queue empty. A callback queued after that stays pending when the execution
  ends, as one still queued when the kernel's window of interest closes.

Reads and writes of RCU-protected pointers (``rcu_dereference``, ``rcu_assign_pointer``)
are ``Field`` accesses: the model is sequentially consistent, and the ordering they give
on weak memory is what it assumes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pfnlab.explore import Field, Shared, Srcu, atomic, current_thread, free
from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.hooks import host

#: a queued callback: the object handed to call_rcu, the name of the function to run and
#: what kfree_rcu says freed the object ("" for call_rcu)
RcuCallback = tuple[Shared, str, str | tuple[str, str]]

#: callback functions by name (a queue holds names: a state's fields must be encodable)
_CALLBACKS: dict[str, Callable[..., None]] = {}


class RcuState(Shared):
    """The host's RCU domain (``struct rcu_state``): the phase new readers enter, the two
    halves of readers (:class:`~pfnlab.explore.Srcu`), and the queued callbacks."""

    gp_phase: Field[int] = Field(0)
    callbacks: Field[tuple[RcuCallback, ...]] = Field(())

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.halves = (Srcu(f"{name}.readers0"), Srcu(f"{name}.readers1"))

    def half_of(self, who: str) -> int | None:
        """The half whose readers include thread ``who``, if it is in a read section (no
        step: only ``who`` itself enters or leaves, so it is ``who``'s own state)."""
        for i, half in enumerate(self.halves):
            if who in half.__dict__["readers"]:
                return i
        return None


def _me(what: str) -> str:
    """The running thread's name: which half it is in is its own state (only it enters
    and leaves), so reading it steers nothing another thread could change."""
    who = current_thread()
    if who is None:
        raise RuntimeError(f"{what} outside a model thread: only a thread's code enters RCU "
                           "read-side sections or waits for a grace period")
    return who


@kfunc
def rcu_read_lock() -> None:
    """include/linux/rcupdate.h v5.4: enter an RCU read-side critical section."""
    rcu = host().rcu
    half = rcu.half_of(_me("rcu_read_lock()"))
    if half is None:
        half = rcu.gp_phase
    rcu.halves[half].read_lock()


@kfunc
def rcu_read_unlock() -> None:
    """include/linux/rcupdate.h v5.4: leave the RCU read-side section entered last."""
    rcu = host().rcu
    half = rcu.half_of(_me("rcu_read_unlock()"))
    if half is None:  # the Srcu reports the unbalanced unlock (lock-balance)
        half = 0
    rcu.halves[half].read_unlock()


@kfunc
def rcu_read_lock_sched() -> None:
    """include/linux/rcupdate.h v5.4: a sched section, one domain with RCU since v4.20."""
    rcu_read_lock()


@kfunc
def rcu_read_unlock_sched() -> None:
    """include/linux/rcupdate.h v5.4: leave the sched read-side section entered last."""
    rcu_read_unlock()


def _flip(old: int) -> tuple[int, int]:
    return 1 - old, old


@kfunc
def synchronize_rcu() -> None:
    """kernel/rcu/tree.c v5.4: wait until every read section begun before the call ended."""
    rcu = host().rcu
    _me("synchronize_rcu()")
    first = atomic(rcu, "gp_phase", _flip)
    rcu.halves[first].synchronize(f"synchronize_rcu: readers{first} of {rcu.name}")
    atomic(rcu, "gp_phase", _flip)
    rcu.halves[1 - first].synchronize(f"synchronize_rcu: readers{1 - first} of {rcu.name}")


@kfunc
def call_rcu(head: Shared, func: Callable[[Any], None]) -> None:
    """kernel/rcu/tree.c v5.4: queue ``func(head)`` to run after a grace period."""
    _queue(head, func, "")


def _queue(head: Shared, func: Callable[..., None], why: str | tuple[str, str]) -> None:
    key = f"{func.__module__}.{func.__qualname__}"
    _CALLBACKS.setdefault(key, func)
    atomic(host().rcu, "callbacks", lambda cbs: ((*cbs, (head, key, why)), None))


@kfunc
def kfree(obj: Shared, why: str | tuple[str, str] = "") -> None:
    """mm/slab.c v5.4: free ``obj`` now; ``why`` (or (property, why)) names the later use."""
    free(obj, why or f"{obj.name} freed by kfree")


@kfunc
def kfree_rcu(obj: Shared, why: str | tuple[str, str] = "") -> None:
    """include/linux/rcupdate.h v5.4: kfree ``obj`` after a grace period (``call_rcu``)."""
    _queue(obj, _kfree_rcu_callback, why or f"{obj.name} freed by kfree_rcu")


def _kfree_rcu_callback(obj: Shared, why: str | tuple[str, str]) -> None:
    """The callback kfree_rcu queues (``kvfree_rcu_bulk``): the kfree."""
    free(obj, why)


@kfunc
def rcu_do_batch(cbs: tuple[RcuCallback, ...]) -> None:
    """kernel/rcu/tree.c v5.4: invoke callbacks whose grace period has ended, in order."""
    for head, key, why in cbs:
        if why:
            _CALLBACKS[key](head, why)
        else:
            _CALLBACKS[key](head)


def rcu_callback_thread() -> None:
    """kernel/rcu/tree.c v5.4 ``rcu_core`` as a thread body (the rcuc kthread): take the
    queued callbacks, wait for a grace period, run them; end when it finds none queued."""
    rcu = host().rcu
    while True:
        cbs = atomic(rcu, "callbacks", lambda q: ((), q))
        if not cbs:
            return
        synchronize_rcu()
        rcu_do_batch(cbs)


__all__ = [
    "RcuState",
    "call_rcu",
    "kfree",
    "kfree_rcu",
    "rcu_callback_thread",
    "rcu_do_batch",
    "rcu_read_lock",
    "rcu_read_lock_sched",
    "rcu_read_unlock",
    "rcu_read_unlock_sched",
    "synchronize_rcu",
]

"""Stable fields: state that does not change while it is pinned, read without a step.

The kernel reads much of ``struct page`` without a lock: PG_reserved, the zone bits,
``page->pgmap``, the memory section behind ``pfn_valid``. These reads are safe because the
reader holds a pin (a page reference; for ``__ro_after_init`` data, nothing can change at
all), and are racy without one (Dan Williams: "this is racy unless the page is pinned").

``Stable(default, pinned=fn)`` declares it: ``fn(obj, thread)`` (a check-style predicate,
read without steps) says whether the model thread named ``thread`` holds a pin on ``obj``
now; ``pinned`` omitted means ``__ro_after_init`` (pinned always). A read by a model thread
that holds a pin is not a scheduling point: it joins the thread's current step, with the
predicate's reads in the step's footprint; before the thread's first step (its initial
run) it is made at once, as part of the initial state. Any other read is a scheduling
point like a ``Field``'s.

*What the reduction needs*, with how the engine checks each (never trusting the
declaration):

1. No write or free of the field while another thread holds a pin. Every write of a
   stable field by a model thread, and every free of an object with stable fields,
   evaluates the predicate for *every* other thread, finished ones included (whether a
   thread has finished is in no footprint, so DPOR may explore only the order in which
   the pinning thread finished first; a pin never released is a pin). If one holds a pin
   then, the field is *promoted*: its reads become scheduling points for this program,
   and the search starts again.
2. A pin a joined read relied on is released only by its holder. Each joined read records
   the pin (``Execution.pins``) until the reader's next step; a step of another thread
   that makes the predicate false meanwhile promotes the field (in a finer execution the
   read may come after that release, and after a write no pin announced any more).
3. The predicate is a function of shared state (fields, ghost fields) and the thread's
   name: its reads are what the footprints carry.

The search ends at a fixpoint: in every explored execution no write or free met another
thread's pin and no recorded pin was released by another thread.

*Why a read under the reader's own pin may join the step before it.* Let thread T read
stable field F of o, holding a pin on o, right after its previous operation X; in a finer
execution other threads' steps S1..Sk come between X and the read. Let Si be the first that
writes F or frees o (if none, the read commutes with all of them: Lipton's left mover, and
the finer execution is equivalent to one where it joins X). The coarse execution X+read,
S1..Si exists (the read changes nothing the others see). At Si, either T still holds its
pin, and (1) promotes F, or some Sj before it released the pin, and (2) promotes F at Sj:
the recorded pin is there, since T took no step since X. Both decisions are the same in
every equivalent execution: the writing or releasing step's footprint has the predicates'
reads, and the recording step (X+read) and the clearing step (T's next) carry them too, so
they are ordered against it; one execution of each Mazurkiewicz trace is explored (a state
pruned by caching had its continuations explored: the recorded pins are part of the state's
fingerprint). Before a thread's first step the argument runs the other way: T holds the pin
at the read and keeps it until its own first step, so the read commutes with the others'
steps before that one (a right mover), unless one of them writes F (1) or releases the pin
first (2).

Promotions are kept per program (and recorded in JSON reports, so that ``replay`` steps
the same way); ``Program(reduce=False)`` turns stable reads into ordinary steps.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from pfnlab.explore.shared import Field

if TYPE_CHECKING:
    from pfnlab.explore.program import Program
    from pfnlab.explore.shared import Shared

T = TypeVar("T")


class Stable(Field[T]):
    """A field that does not change while a thread holds a pin on its object: a read by a
    thread for which ``pinned(obj, thread_name)`` holds is not a scheduling point (see
    :mod:`pfnlab.explore.stable`). ``pinned`` omitted: ``__ro_after_init``, written only
    at set-up."""

    __slots__ = ("pinned",)

    def __init__(self, default: T, *,
                 pinned: Callable[[Any, str], object] | None = None) -> None:
        super().__init__(default)
        self.pinned = pinned

    def _load(self, rt: Any, obj: Shared) -> Any:
        return rt.stable_read(obj, self)


def stable_fields(cls: type) -> tuple[Stable[Any], ...]:
    """The :class:`Stable` descriptors of ``cls`` (cached on the class)."""
    got = cls.__dict__.get("_stable_")
    if got is None:
        got = tuple(f for name in getattr(cls, "_fields_", ())
                    if isinstance(f := getattr(cls, name, None), Stable))
        setattr(cls, "_stable_", got)  # noqa: B010
    return got


_KEYS: dict[tuple[type, str], str] = {}


def stable_key(cls: type, field: str) -> str:
    """How a promoted field is named: ``Class.field`` (memoised: asked at every stable
    read)."""
    k = _KEYS.get((cls, field))
    if k is None:
        k = _KEYS[(cls, field)] = f"{cls.__name__}.{field}"
    return k


def free_key(cls: type) -> str:
    """The promotion that says a model thread freed an object of ``cls`` (runtime._guard:
    guarded accesses after a write in the same step are then scheduling points)."""
    return stable_key(cls, "~free")


#: The learnt fact that a model thread creates shared objects (``Shared(...)`` after its
#: first step begins). Checkpoints are off for such a program (a rebuilt thread would
#: create the object a second time, snapshot.py): the first creation made with checkpoints
#: on records it, and the search starts again without them, as after a promotion.
ALLOCATES = "~alloc"

_PROMOTED: weakref.WeakKeyDictionary[Program, set[str]] = weakref.WeakKeyDictionary()


def promoted(program: Program) -> frozenset[str]:
    """The stable fields of ``program`` whose reads are scheduling points now."""
    return frozenset(_PROMOTED.get(program, ()))


def promotions(program: Program) -> int:
    """How many stable fields of ``program`` are promoted (no copy: searches ask it at every
    step to see whether they must start again)."""
    got = _PROMOTED.get(program)
    return 0 if got is None else len(got)


def promoted_live(program: Program) -> set[str]:
    """The set behind :func:`promoted`, for the runtime (promotions show at once)."""
    return _PROMOTED.setdefault(program, set())


def promote(program: Program, name: str) -> bool:
    """Make ``name`` (``Class.field``) a scheduling point for ``program``; True if new."""
    got = _PROMOTED.setdefault(program, set())
    if name in got:
        return False
    got.add(name)
    return True


def set_promoted(program: Program, names: Iterable[str]) -> None:
    """Start ``program`` with ``names`` promoted (a replay of a saved report)."""
    _PROMOTED.setdefault(program, set()).update(names)

"""Stable fields: state that does not change while it is pinned, read without a step.

The kernel reads much of ``struct page`` without a lock: PG_reserved, the zone bits,
``page->pgmap``, the memory section behind ``pfn_valid``. These reads are safe because the
reader holds a pin (a page reference; for ``__ro_after_init`` data, nothing can change at
all), and are racy without one (Dan Williams: "this is racy unless the page is pinned").

``Stable(default, pinned=fn)`` declares it: ``fn(obj, thread)`` (a check-style predicate,
read without steps) says whether the model thread named ``thread`` holds a pin on ``obj``
now; ``pinned`` omitted means ``__ro_after_init`` (pinned always). The pin must be the
thread's own: only that thread's steps may take or drop it (a page reference the ledger
attributes to it, not "the refcount is above zero", which another thread's put changes).
A read by a model thread that holds a pin is not a scheduling point: it joins the
thread's current step, with the predicate's reads in the step's footprint. Any other read
is a scheduling point like a ``Field``'s.

The engine never trusts the declaration. Every write of a stable field by a model thread,
and every free of an object with stable fields, evaluates the predicate for every other
live thread when it is performed (its reads in that step's footprint): if one holds a pin
then, the field is *promoted* (all its reads become scheduling points for this program,
as for a ``Field``) and the search starts again. The search ends at a fixpoint: in every
explored execution each write or free of a stable field happened while no other thread
held a pin on it. (``__ro_after_init``: any write or free after set-up promotes.)

*Why a read under the reader's own pin may join the step before it.* Let thread T read
stable field F of o holding a pin on o, right after T's previous operation X. In a finer
execution other threads' steps may come between X and the read. T held the pin from X on
(only T's own steps take or drop it, and T took none in between), so none of those steps
writes F or frees o, or that write would be one made while a pin was held, which the
search finds and promotes F for (next paragraph). So the read commutes with every one of
them (Lipton's left mover) and the finer execution is equivalent to one where it joins X.
Before a thread's first step there is no X to join: a read under a pin there is a
scheduling point (a thread could start by reading a flag whose pin another thread is
about to drop). *Why every write while pinned is seen.* The writing step's footprint has
the predicates' reads, so DPOR orders it against every step that changes them: in each
Mazurkiewicz trace the predicates have one value at the write, and one execution of each
trace is explored (a state pruned by caching had its continuations explored already).

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

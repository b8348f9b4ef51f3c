"""How the kernel orders two steps that race on a field: the primitive a fix should use.

A causal core names the pair of steps whose order decides a finding; the fix must order
them, and for many fields the kernel has one way it does that (an mmu notifier sequence
re-checked under a lock, a reference that a teardown waits for). The kernel model declares
it next to the field (``orders(Kvm, "mmu_notifier_seq", ...)``), a user's model for its own
fields, and explanations name it instead of a generic "a lock around both".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: the pseudo-field of an object's freeing: ``orders(Page, FREED, ...)`` says how the kernel
#: orders an access to the object against its being freed
FREED = "<freed>"


@dataclass(frozen=True)
class Ordering:
    """The kernel's way of ordering steps that race on a field."""

    primitive: str   # "mmu_notifier_retry()"
    how: str         # one sentence: what each side does
    where: str       # the kernel files (and version) that do it
    #: the primitive orders a pair only where the two steps share no lock (a lockless
    #: reader of a field written under a lock); two steps under one lock are already
    #: serialised, and what orders them is something else
    lockless: bool = False
    #: the primitive orders only the objects this says yes to (a ZONE_DEVICE page's
    #: refcount, not every page's); None: every object of the class
    applies: Callable[[Any], bool] | None = None

    def orders_object(self, obj: Any) -> bool:
        """Whether this ordering is the kernel's for ``obj`` (see :attr:`applies`)."""
        return self.applies is None or bool(self.applies(obj))


_ORDERINGS: dict[tuple[type, str], Ordering] = {}


def orders(cls: type, *fields: str, primitive: str, how: str, where: str,
           lockless: bool = False, applies: Callable[[Any], bool] | None = None) -> None:
    """Declare that the kernel orders the steps racing on ``cls.field`` (each of
    ``fields``; :data:`FREED` for an access racing the object's freeing) with
    ``primitive``; ``how`` says what each side does, ``where`` names the files that do it;
    ``lockless``: only for a pair that shares no lock; ``applies(obj)``: only for the
    objects it is true of (read once the pair has run, without scheduling points). A later
    declaration for the same field replaces the earlier one."""
    if not fields:
        raise ValueError(f"orders({cls.__name__}, ...): name at least one field")
    for f in fields:
        _ORDERINGS[(cls, f)] = Ordering(primitive, how, where, lockless, applies)


def ordering_of(cls: type, field: str) -> Ordering | None:
    """The ordering declared for ``cls.field`` or for that field of a base class."""
    for klass in cls.__mro__:
        o = _ORDERINGS.get((klass, field))
        if o is not None:
            return o
    return None

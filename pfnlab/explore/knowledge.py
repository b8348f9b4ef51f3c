"""What the searches of a program learnt about it: one object, kept with the program.

Some reductions rest on a premise that only running the program can confirm or refute
(docs/reductions.md sections 5a, 10, 11): a Stable field no thread writes under a reader,
no thread freeing objects with Guarded fields, no thread creating shared objects while
checkpoints are on. A search starts by assuming each premise; the first step that refutes
one records a *fact* here, and the search starts again with it (its executions so far
count). Facts only accumulate, so searches end at a fixpoint. Every search, replay and
worker of a program reads the same :class:`Knowledge` (``Program.knowledge``); a worker
process gets the facts with each task and sends back the ones it learnt.

Facts are strings, so that a report can carry them and a replay set them again:

- ``Class.field``: a promoted Stable field, whose reads are scheduling points
  (:func:`promoted_key`);
- ``Class.~free``: a model thread frees objects of a class with Guarded fields, whose
  accesses after a write in the same step are then steps (:func:`freed_key`);
- ``Class.field~written`` (``Class.*~written``: objects freed): a model thread writes the
  Stable field, so the reads of it joined to threads' last steps are part of the state
  (:func:`written_key`);
- ``~alloc``: a model thread creates shared objects, so checkpoints are off
  (:data:`ALLOCATES`).

The first two change how the program is stepped (:meth:`Knowledge.steps`: what a report
records for replay); the others change only what a state holds and how it is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: the fact that a model thread creates shared objects (checkpoints off)
ALLOCATES = "~alloc"
_WRITTEN = "~written"

_KEYS: dict[tuple[type, str], str] = {}


def promoted_key(cls: type, field: str) -> str:
    """``Class.field``: the fact that stable ``field`` of ``cls`` is promoted (memoised:
    asked at every stable read)."""
    k = _KEYS.get((cls, field))
    if k is None:
        k = _KEYS[(cls, field)] = f"{cls.__name__}.{field}"
    return k


def freed_key(cls: type) -> str:
    """The fact that a model thread freed an object of ``cls``, which has Guarded fields."""
    return promoted_key(cls, "~free")


def written_key(cls: type, field: str) -> str:
    """The fact that a model thread writes stable ``field`` of ``cls`` (``*``: frees an
    object of ``cls``, which has stable fields)."""
    return promoted_key(cls, field + _WRITTEN)


class Knowledge:
    """The facts learnt about one program (module docstring). Grows only."""

    __slots__ = ("_facts",)

    def __init__(self, facts: Iterable[str] = ()) -> None:
        self._facts: set[str] = set(facts)

    def __contains__(self, fact: object) -> bool:
        return fact in self._facts

    def __len__(self) -> int:
        """How many facts: a search compares it with the count it started with (no copy:
        asked at every step)."""
        return len(self._facts)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._facts))

    def __repr__(self) -> str:
        return f"Knowledge({sorted(self._facts)!r})"

    def learn(self, fact: str) -> bool:
        """Record ``fact``; True if it is new (the search must then start again)."""
        if fact in self._facts:
            return False
        self._facts.add(fact)
        return True

    def learn_all(self, facts: Iterable[str]) -> None:
        """Record every one of ``facts`` (what a task or a saved report brings)."""
        self._facts.update(facts)

    def all(self) -> frozenset[str]:
        """Every fact."""
        return frozenset(self._facts)

    def steps(self) -> frozenset[str]:
        """The facts that change how the program is stepped: promoted fields and freed
        classes (what a finding records, so that its replay steps the same way)."""
        return frozenset(k for k in self._facts
                         if k != ALLOCATES and not k.endswith(_WRITTEN))

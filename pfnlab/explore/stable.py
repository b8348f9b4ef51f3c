"""Stable fields: state that does not change while it is pinned, read without a step.

The kernel reads much of ``struct page`` without a lock: PG_reserved, the zone bits,
``page->pgmap``, the memory section behind ``pfn_valid``. These reads are safe because the
reader holds a pin (a page reference; for ``__ro_after_init`` data, nothing can change at
all), and are racy without one (Dan Williams: "this is racy unless the page is pinned").

``Stable(default, pinned=fn)`` declares it: ``fn(obj, thread)`` (a check-style predicate
over shared state, read without steps) says whether the model thread named ``thread``
holds a pin on ``obj`` now; ``pinned`` omitted means ``__ro_after_init`` (pinned always).
A read by a model thread that holds a pin is not a scheduling point: it *joins* the
thread's current step, with the predicate's reads in the step's footprint; before the
thread's first step (its initial run) it is made at once, as part of the initial state.
Any other read is a scheduling point like a ``Field``'s.

*What makes a joined read sound*, checked in every execution, never trusted: a read
joined to its thread's step X must be a left mover, i.e. no other thread may write the
field (or free its object) between X and the point a finer execution could make the read,
which is any point up to the thread's next step. So each joined read is *recorded*
(``Execution.joined``) until the reader's next step that makes progress, and a write or
free by another thread of a recorded field *promotes* it: its reads become scheduling
points for this program, and the search starts again. The search ends at a fixpoint: in
no explored execution did a write overtake a joined read. The pin is only the heuristic
that decides which reads to join (where the kernel relies on one, a write there is a bug
the checker reports anyway); whether the pin is really held, by whom, and who releases
it no longer matters to soundness (a pin released by another thread, a pinning thread
that has finished: both once made a wrong pass).

*Why a fixpoint is sound.* Let a finer execution have thread T's read R of field F of
object o after T's step X, with other threads' steps S1..Sk in between, and let Si be the
first that writes F or frees o (if none, R commutes with all of them and the execution is
equivalent to one where R joins X). The coarse execution X+R, S1..Si exists (R changes
nothing the others see), and at Si the record of R is there, since T took no step since
X: Si promotes F. Whether the record is there at Si is the same in every equivalent
execution: the recording step reads F (it made R) and the clearing step reads F in its
footprint (``Execution._after_take``), and Si writes F, so DPOR orders both against Si;
one execution of each Mazurkiewicz trace is explored. State caching: the records of
fields that threads write or free are part of the state's fingerprint (a state reached
with a record may need a promotion that the same state without it does not); which
fields those are is learnt (``knowledge.written_key``: the first write or free of a stable field
by a thread starts the search again), so records of fields nobody writes split no state.
A failed attempt (a wait that blocks at once) clears nothing: the thread did not move.
Before a thread's first step the argument runs the other way (R is a right mover up to that
step) with the records of its initial run.

*Promoting early.* A write or free of a stable field while another thread holds a pin
also promotes it at once (``Execution._eager_promotions``, every other thread asked,
finished ones too): it is where a joined read would be overtaken, so the promotion comes
in the first executions that write, not only in one where the read happens to be in the
reader's last step. This promotes earlier or more, never less.

Promotions and the learnt facts are the program's (``Program.knowledge``, knowledge.py;
recorded in JSON reports, so that ``replay`` steps the same way);
``Program(reduce=False)`` turns stable reads into ordinary steps.
"""

from __future__ import annotations

from collections.abc import Callable
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


def promoted(program: Program) -> frozenset[str]:
    """The stable fields of ``program`` promoted so far, and its freed classes with Guarded
    fields: ``program.knowledge.steps()`` (knowledge.py)."""
    return program.knowledge.steps()

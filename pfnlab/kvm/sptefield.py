"""``Spte.spte``: the SPTE field whose every write by a model thread the VM's ledger sees.

A file of its own so that traces show the kernel function that wrote the SPTE
(``mmu_set_spte``, ``mmu_spte_clear_track_bits``), not this descriptor.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import Guarded, Shared, current_thread
from pfnlab.explore.runtime import hide_from_traces


class SpteField(Guarded[Any]):
    """``Spte.spte``: guarded by ``mmu_lock`` (checked at every access); every write a model
    thread makes is shown to the VM's ledger (``Spte.ledger_hooks``, set to
    :func:`pfnlab.kvm.ghost.origins.spte_written`: the SPTE's origin, I4, I5 and I11 at
    install), whichever kernel function, base or override, makes it."""

    __slots__ = ()

    def _store(self, rt: Any, obj: Shared, value: Any) -> None:
        old = obj.__dict__[self.name]  # mmu_lock is held: no other thread writes it
        super()._store(rt, obj, value)
        if current_thread() is not None:
            obj.ledger_hooks.spte_written(obj, old, value)  # type: ignore[attr-defined]

    def _rmw(self, rt: Any, obj: Shared, update: Any) -> Any:
        change: list[tuple[Any, Any]] = []

        def watched(old: Any) -> tuple[Any, Any]:
            new, result = update(old)
            change.append((old, new))
            return new, result

        result = super()._rmw(rt, obj, watched)
        if change and current_thread() is not None:
            obj.ledger_hooks.spte_written(obj, *change[-1])  # type: ignore[attr-defined]
        return result


hide_from_traces(__file__)

"""``Pte.val``: the page-table entry field that shows what threads read to the host's hooks.

A file of its own so that traces, which name the innermost model function of a step, show
the kernel function that read the entry (``gup_pte_range``), not this descriptor.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import Field, Shared, current_thread
from pfnlab.explore.runtime import hide_from_traces
from pfnlab.mm.memmap import run_pte_hooks


class PteField(Field[Any]):
    """``Pte.val``: a marked access like any :class:`~pfnlab.explore.Field`; what a model
    thread reads is also shown to the host's ``pte_hooks`` (no steps), so that a secondary
    MMU's ledger knows which pfn the thread saw at which hva, and when (I4 judges an SPTE
    by it), whoever reads the page table: gup, ``follow_pte``, a variant's own walk."""

    __slots__ = ()

    def _load(self, rt: Any, obj: Shared) -> Any:
        value = rt.read(obj, self.name)
        if current_thread() is not None:
            run_pte_hooks(obj, value)
        return value


hide_from_traces(__file__)

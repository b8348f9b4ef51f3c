"""The host of the running execution and the hooks its primitives run (no kernel
counterpart): how the KVM ledger follows every get, put, A/D update, page-table read and
free, whoever's code makes it (:func:`pfnlab.kvm.ghost.subscribe`).
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import context
from pfnlab.mm.mm_types import Page


def host() -> Any:
    """The host of the running execution (``context().host``)."""
    ctx = context()
    if ctx is None or ctx.host is None:
        raise RuntimeError("no host model: set_context(World(host=Host(...))) first")
    return ctx.host


def run_free_hooks(page: Page) -> None:
    """Ledger (no steps): run the host's ``free_hooks`` on ``page``, whose freed state changed.

    Called in the step that made the change: a refcount reaching or leaving 0, the removal
    of its memmap. Hooks only read state without scheduling points and write ghost fields.
    """
    ctx = context()
    h = getattr(ctx, "host", None) if ctx is not None else None
    for hook in getattr(h, "free_hooks", ()):
        hook(page)


def run_ref_hooks(page: Page, owner: str, delta: int) -> None:
    """Ledger (no steps): run the host's ``ref_hooks`` for a reference of ``owner`` on
    ``page`` (a compound head): taken (``delta`` +1, after the increment) or about to be
    dropped (-1, before the decrement). Called by the refcount primitives only, so that
    every get and put is seen whoever calls it."""
    ctx = context()
    h = getattr(ctx, "host", None) if ctx is not None else None
    for hook in getattr(h, "ref_hooks", ()):
        hook(page, owner, delta)


def run_pte_hooks(pte: Any, value: Any) -> None:
    """Ledger (no steps): run the host's ``pte_hooks`` after a model thread read ``value``
    from page-table entry ``pte`` (:class:`~pfnlab.mm.ptefield.PteField`)."""
    ctx = context()
    h = getattr(ctx, "host", None) if ctx is not None else None
    for hook in getattr(h, "pte_hooks", ()):
        hook(pte, value)


def run_ad_hooks(page: Page, what: str) -> None:
    """Ledger (no steps): run the host's ``ad_hooks`` before ``what`` (``SetPageDirty``,
    ``mark_page_accessed``) sets a bit on ``page``."""
    ctx = context()
    h = getattr(ctx, "host", None) if ctx is not None else None
    for hook in getattr(h, "ad_hooks", ()):
        hook(page, what)

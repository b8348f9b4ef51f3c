"""Calls that models written for pfnlab 0.1 made, now no-ops that warn: the page refcount
and A/D primitives record what they recorded (:mod:`pfnlab.kvm.ghost.hooks`)."""

from __future__ import annotations

import warnings
from typing import Any


def ref_taken(page: Any, owner: str) -> None:
    """No longer needed (a no-op): ``get_page`` and gup record KVM's references."""
    _obsolete("ref_taken")


def ref_dropping(page: Any, owner: str, why: str) -> None:
    """No longer needed (a no-op): ``put_page`` checks and records KVM's puts."""
    _obsolete("ref_dropping")


def ad_update(page: Any, what: str) -> None:
    """No longer needed (a no-op): ``SetPageDirty``/``mark_page_accessed`` record I6."""
    _obsolete("ad_update")


def get_on_dead_page(page: Any) -> None:
    """No longer needed (a no-op): ``get_page`` records I2 (a get on refcount 0)."""
    _obsolete("get_on_dead_page")


def _obsolete(name: str) -> None:
    warnings.warn(f"ghost.{name}() does nothing now: the page refcount and A/D primitives "
                  "record what it recorded; remove the call", DeprecationWarning, stacklevel=3)

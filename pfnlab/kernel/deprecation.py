"""Deprecations: a changed calling convention warns for a release before it breaks.

pfnlab follows semantic versions (CHANGELOG.md): a name or parameter that goes away keeps
working for at least one minor release, with a :class:`PfnlabDeprecationWarning` that says
what to write instead. The warning is a ``FutureWarning`` (shown by default: model files
are written by the people who run them). Each distinct deprecation warns once per process.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_WARNED: set[str] = set()

#: the release from which kernel functions take no ``owner`` argument, and the release that
#: stops accepting it (see :func:`owner_parameter_removed`)
OWNER_REMOVED_IN, OWNER_GONE_IN = "0.3", "0.5"


class PfnlabDeprecationWarning(FutureWarning):
    """A model file uses a name or calling convention that a later release removes."""


def rearm() -> None:
    """Warn again for every deprecation (a model file is being loaded)."""
    _WARNED.clear()


def deprecated(key: str, message: str, stacklevel: int = 3) -> None:
    """Warn ``message`` (once per process for ``key``) as a :class:`PfnlabDeprecationWarning`."""
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, PfnlabDeprecationWarning, stacklevel=stacklevel)


def owner_parameter_removed(fn: F | None = None, *, at: int | None = None) -> Any:
    """Mark kernel function ``fn`` (under ``@kfunc``) as one that took an ``owner`` argument
    before :data:`OWNER_REMOVED_IN` (as its last positional parameter, or at index ``at``):
    for one release its dispatcher accepts the argument from old callers and hands it to
    old overrides (:mod:`pfnlab.kernel.kfunc`), warning."""

    def mark(f: F) -> F:
        f.owner_removed = (OWNER_REMOVED_IN, at)  # type: ignore[attr-defined]
        return f

    return mark if fn is None else mark(fn)

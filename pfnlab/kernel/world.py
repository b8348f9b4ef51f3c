"""The context object of a kernel-model execution: host mm, KVM, and the variant in force."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore import context


@dataclass
class World:
    """Everything a kernel function may need that the kernel keeps in globals.

    ``overrides`` maps kernel-function names to the running variant's implementations
    (see :mod:`pfnlab.kernel.kfunc`); ``mm_version`` selects mm behaviour that changed over
    time ("5.4" or "5.18", e.g. whether memunmap_pages waits for page references).
    ``extra`` is the model file's own: a scenario's builder puts the objects it made there
    (``world().extra["gpc"] = gpc``) and an override finds them again with :func:`world`.
    """

    overrides: dict[str, Callable[..., Any]] = field(default_factory=dict)
    mm_version: str = "5.4"
    variant: str = "v5.4"
    host: Any = None
    kvm: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def world() -> World:
    """The running execution's :class:`World`: in a scenario's builder, a thread or a
    kernel function (an override reaches the objects its model file's builder made through
    ``world().extra``, ``world().kvm`` and ``world().host``). A fresh one per execution."""
    w = context()
    if not isinstance(w, World):
        raise RuntimeError(
            "world(): no kernel-model execution is running; call it from a scenario's "
            "builder, a thread or a kernel function (outside them, a test sets one with "
            "pfnlab.explore.set_context(World(...)))")
    return w

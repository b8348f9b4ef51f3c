"""The context object of a kernel-model execution: host mm, KVM, and the variant in force."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class World:
    """Everything a kernel function may need that the kernel keeps in globals.

    ``overrides`` maps kernel-function names to the running variant's implementations
    (see :mod:`pfnlab.kernel.kfunc`); ``mm_version`` selects mm behaviour that changed over
    time ("5.4" or "5.18", e.g. whether memunmap_pages waits for page references).
    """

    overrides: dict[str, Callable[..., Any]] = field(default_factory=dict)
    mm_version: str = "5.4"
    variant: str = "v5.4"
    host: Any = None
    kvm: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

"""Design variants: named sets of kernel-function overrides, resolved through a parent chain.

A :class:`Variant` changes only the functions it changes. Its effective overrides are its
parent's, updated with its own (a child wins). ``v5.4`` (a78986aae9b2 merged) is the base
model and overrides nothing. A variant's :meth:`world` builds the
:class:`~pfnlab.kernel.world.World` a scenario installs with ``set_context``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.runtime import name_code
from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS
from pfnlab.kernel.world import World

#: Every registered variant, by name (filled by the variant modules at import).
VARIANTS: dict[str, Variant] = {}


@dataclass(frozen=True)
class Variant:
    """A design variant: what it changes relative to ``parent``, and where it comes from."""

    name: str
    parent: str | None
    summary: str
    cite: str
    overrides: dict[str, Callable[..., Any]] = field(default_factory=dict)
    mm_version: str = "5.4"

    def resolved(self) -> dict[str, Callable[..., Any]]:
        """The overrides in force: the parent chain's, updated with this variant's own."""
        chain: list[Variant] = []
        v: Variant | None = self
        while v is not None:
            if v in chain:
                raise ValueError(f"variant {self.name!r}: parent chain loops at {v.name!r}")
            chain.append(v)
            v = get_variant(v.parent) if v.parent else None
        out: dict[str, Callable[..., Any]] = {}
        for v in reversed(chain):
            out.update(v.overrides)
        return out

    def implementation(self, name: str) -> Callable[..., Any]:
        """What this variant runs for kernel function ``name``: its override, its parent
        chain's, or the base model's. An override that extends its parent's version calls
        ``get_variant(PARENT).implementation(NAME)(...)``."""
        if name not in KERNEL_FUNCTIONS:
            close = difflib.get_close_matches(name, KERNEL_FUNCTIONS, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise KeyError(f"{name!r} is not a kernel function of the model{hint}")
        impl = self.resolved().get(name)
        return impl if impl is not None else KERNEL_FUNCTIONS[name].base  # type: ignore

    def chain(self) -> list[str]:
        """Names from this variant up to the root."""
        names = [self.name]
        v = self
        while v.parent:
            v = get_variant(v.parent)
            names.append(v.name)
        return names

    def world(self, **kw: Any) -> World:
        """A World with this variant's overrides (``kw``: host, kvm, extra, mm_version)."""
        kw.setdefault("mm_version", self.mm_version)
        return World(overrides=self.resolved(), variant=self.name, **kw)


def register(variant: Variant) -> Variant:
    """Add ``variant`` to :data:`VARIANTS` (names are unique)."""
    if variant.name in VARIANTS:
        raise ValueError(f"variant {variant.name!r} is defined twice")
    for fn_name in variant.overrides:
        if fn_name not in KERNEL_FUNCTIONS:
            close = difflib.get_close_matches(fn_name, KERNEL_FUNCTIONS, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(
                f"variant {variant.name!r} overrides {fn_name!r}, which is not a kernel "
                f"function of the model{hint}; decorate a new one with @kfunc"
            )
    for fn_name, fn in variant.overrides.items():
        name_code(fn, fn_name)  # traces and reports show the kernel name, not the Python one
    VARIANTS[variant.name] = variant
    return variant


def variant(
    name: str,
    parent: str | None = "v5.4",
    overrides: dict[str, Callable[..., Any]] | None = None,
    *,
    summary: str = "",
    cite: str = "",
    mm_version: str = "5.4",
) -> Variant:
    """Declare and register a variant: ``parent``'s kernel functions, with ``overrides``.

    ``overrides`` maps kernel-function names (``"kvm_release_pfn_clean"``, any function of
    the model decorated with :func:`~pfnlab.kernel.kfunc.kfunc`) to the implementations
    this design uses; everything else is the parent's. ``parent`` is a registered variant
    (``"v5.4"``, the base model, by default). Returns the registered :class:`Variant`;
    ValueError for a name defined twice, an unknown parent, or an override of a name that
    is not a kernel function (the message lists what is valid).
    """
    if parent is not None and parent not in VARIANTS:
        raise ValueError(
            f"variant {name!r}: unknown parent {parent!r}; known: {', '.join(VARIANTS)}"
        )
    return register(Variant(name=name, parent=parent, summary=summary or name, cite=cite,
                            overrides=dict(overrides or {}), mm_version=mm_version))


def get_variant(name: str) -> Variant:
    """The variant called ``name`` (KeyError listing the known ones otherwise)."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


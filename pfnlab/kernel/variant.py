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

from pfnlab.explore.runtime import code_name, name_code
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


def check_name(kind: str, name: object) -> None:
    """Refuse (ValueError) a name of a ``kind`` ("variant", "scenario") that cannot be
    typed on a command line or shown on one line of a table: empty, or holding a control
    character (a newline, a tab, an escape)."""
    import unicodedata

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{kind} {name!r}: a {kind} needs a name (what pfnlab list shows "
                         f"and pfnlab check takes), e.g. 'my-{kind}'")
    bad = [c for c in name if unicodedata.category(c).startswith("C")]
    if bad:
        raise ValueError(f"{kind} {name!r}: {bad[0]!r} in a name (tables show it on one "
                         "line, commands take it as typed): use letters, digits, '-', '_'"
                         " and '.'")


def register(variant: Variant) -> Variant:
    """Add ``variant`` to :data:`VARIANTS` (names are unique)."""
    check_name("variant", variant.name)
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
    for fn_name, fn in list(variant.overrides.items()):
        # traces and reports show the kernel name, not the Python one; a function that
        # already stands for another kernel function (one override for two names, in two
        # variants) runs as a copy of its own, shown under this name (issue 28)
        fn = variant.overrides[fn_name] = named_for(fn, fn_name)
        name_code(fn, fn_name)
    VARIANTS[variant.name] = variant
    return variant


def named_for(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn``, to be shown under kernel name ``name``: ``fn`` itself unless its frames are
    already named otherwise (:func:`~pfnlab.explore.runtime.name_code`: it overrides
    another kernel function somewhere), else a copy of it with a code object of its own
    (same source, lines, globals, defaults and closure), since the name of a frame belongs
    to its code object. A decorated function (``__wrapped__``) is returned as it is: the
    code its frames run is the wrapped one's, which a copy of the wrapper would not
    change."""
    import types

    known = code_name(fn)
    if known is None or known == name or not isinstance(fn, types.FunctionType) or \
            hasattr(fn, "__wrapped__"):
        return fn
    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__,
                              fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__qualname__, copy.__module__, copy.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
    copy.__annotations__ = dict(fn.__annotations__)
    copy.__dict__.update(fn.__dict__)
    return copy


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


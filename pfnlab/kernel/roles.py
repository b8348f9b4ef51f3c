"""What a function is to the reference ledger of a report, declared where it is defined.

A get or put of a counted reference (a page's ``_refcount``, a pgmap's percpu_ref) happens
inside a *refcount API*: ``get_page``, ``put_page``, gup, ``page_ref_inc``. A report names
the kernel function that took or dropped the reference, the caller of the outermost such
API on the stack (``gup in hva_to_pfn_fast``, ``put_page in memunmap_pages``), and the API
it went through. Each API says so with :func:`refcount_api` on its definition, so that an
override of it (same name) or a wrapper of your own declared the same way is read alike::

    @refcount_api("get_page")     # shown as "get_page in <caller>"
    @kfunc
    def kvm_get_pfn(pfn: int) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: function name -> the API family a report shows ("gup", "get_page", "put_page"), or ""
#: for an API shown under its own name (``put_dev_pagemap``, ``page_ref_inc``)
REFCOUNT_APIS: dict[str, str] = {}


def refcount_api(family: str = "") -> Callable[[F], F]:
    """Declare the decorated function a refcount API of ``family`` (see the module)."""

    def declare(fn: F) -> F:
        REFCOUNT_APIS[fn.__name__] = family
        return fn

    return declare


#: kernel functions that put a reference their caller hands them, unless they decide not to
#: (``kvm_release_pfn_clean`` skips a reserved pfn): a leak's explanation names the
#: predicate such a function called as what decided the put was skipped
RELEASES: set[str] = set()


def releases_reference(fn: F) -> F:
    """Declare the decorated function a release (see :data:`RELEASES`); an override of it,
    shown under the name it replaces, is one too."""
    RELEASES.add(fn.__name__)
    return fn


def refcount_site(where: tuple[str, ...]) -> tuple[str, str] | None:
    """``(kernel function, API shown)`` of a get or put whose model stack (outermost first)
    is ``where``: the caller of the outermost refcount API, and that API's family (its own
    name if it has none); None if no refcount API is on the stack."""
    for i, fn in enumerate(where):
        family = REFCOUNT_APIS.get(fn)
        if family is not None:
            return (where[i - 1] if i > 0 else fn), family or fn
    return None

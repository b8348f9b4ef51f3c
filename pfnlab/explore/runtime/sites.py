"""Where in the model's code a thread is: the names traces show, the FILE:LINE findings
give (engine-internal; kernel models name their functions with :func:`name_code`)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Collection
from typing import Any

import greenlet

from pfnlab.explore.runtime.threads import ThreadState

_HERE = __file__.rsplit("/", 1)[0]
_EXPLORE = _HERE.rsplit("/", 1)[0]
#: the engine's files whose frames a model thread's stack passes through (field
#: descriptors, primitives, the runtime): left out of traces and FILE:LINE
ENGINE_FILES = {
    *(_HERE + "/" + f for f in os.listdir(_HERE) if f.endswith(".py")),
    *(_EXPLORE + "/" + f for f in ("shared.py", "stable.py", "sync.py", "threadstate.py")),
}


class _CodeNames(dict[int, tuple[Any, str]]):
    """Names by code object *identity* (``id``, the code kept alive with its name): two
    code objects compare equal when only their ``co_qualname`` differs, so a copy of a
    function made to carry a second name (:func:`code_name`) would share the first one's
    entry in a dict keyed by the code itself."""

    def get_name(self, code: Any) -> str | None:
        hit = dict.get(self, id(code))
        return hit[1] if hit is not None and hit[0] is code else None


#: the names traces show for the code objects of named functions (see name_code)
CODE_NAMES = _CodeNames()


def name_code(fn: Callable[..., Any], name: str) -> None:
    """Name ``fn``'s frames ``name``: traces show them so (an override under the name of the
    kernel function it replaces, whatever its Python name) and :func:`model_caller` stops
    at them. A code object has one name; a function to be shown under two is given a copy
    per name by its caller (kernel/variant.py)."""
    import inspect

    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is not None:
        CODE_NAMES[id(code)] = (code, name)


def code_name(fn: Callable[..., Any]) -> str | None:
    """The name :func:`name_code` gave ``fn``'s frames, or None."""
    import inspect

    code = getattr(inspect.unwrap(fn), "__code__", None)
    return None if code is None else CODE_NAMES.get_name(code)


def hide_from_traces(filename: str) -> None:
    """Leave the functions of ``filename`` out of step labels (dispatch wrappers)."""
    ENGINE_FILES.add(filename)


def model_stack() -> tuple[str, ...]:
    """Names of the model functions on the current thread's stack, outermost first."""
    f = sys._getframe(2)
    names: list[str] = []
    while f is not None:
        code = f.f_code
        if code.co_name == "run" and code.co_filename in ENGINE_FILES:
            break
        if code.co_filename not in ENGINE_FILES:
            names.append(CODE_NAMES.get_name(code) or code.co_name)
        f = f.f_back  # type: ignore[assignment]
    names.reverse()
    return tuple(names)


def model_caller(skip: Collection[str] = ()) -> str:
    """The innermost *named* function (see :func:`name_code`: the model's kernel functions
    and their overrides, under the kernel name) on the running thread's stack whose file is
    not in ``skip``, or "" if there is none: who called the primitive that asks (a ledger
    hook names the kernel function that put a page, not a helper of it)."""
    f: Any = sys._getframe(1)
    while f is not None:
        code = f.f_code
        name = CODE_NAMES.get_name(code)
        if name is not None and code.co_filename not in skip:
            return name
        f = f.f_back
    return ""


def site(t: ThreadState) -> str:
    """`` (in FUNCTION, FILE:LINE)``: where thread ``t``'s code is (suspended at its pending
    operation, or running now), or "" when that is not in a model file."""
    f: Any = sys._getframe(1) if t.glet is greenlet.getcurrent() else t.glet.gr_frame
    while f is not None:
        code = f.f_code
        if code.co_filename not in ENGINE_FILES and not code.co_filename.startswith("<"):
            return f" (in {CODE_NAMES.get_name(code) or code.co_name}, " \
                f"{shown(code.co_filename)}:{f.f_lineno})"
        f = f.f_back
    return ""


def shown(path: str) -> str:
    """``path`` relative to the working directory when under it."""
    import os

    rel = os.path.relpath(path) if os.path.isabs(path) else path
    return rel if not rel.startswith("..") else path


#: the pfnlab package (its kernel model and checker), told from a model file of a user's
_PFNLAB = _EXPLORE.rsplit("/", 1)[0] + "/"


def model_frame(e: BaseException) -> str:
    """``in FUNCTION, FILE:LINE`` of the innermost traceback frame in model code (not the
    engine's), the file relative to the working directory when under it; "" if none. For
    a ``RecursionError``, whose innermost frame is anywhere in the cycle, the innermost
    frame of a file outside pfnlab (the model file's code in the cycle) if there is one."""
    frames = [fr for fr in traceback.extract_tb(e.__traceback__)
              if fr.filename not in ENGINE_FILES and not fr.filename.startswith("<")]
    if isinstance(e, RecursionError):
        frames = [fr for fr in frames if not fr.filename.startswith(_PFNLAB)] or frames
    if not frames:
        return ""
    fr = frames[-1]
    return f"in {fr.name}, {shown(fr.filename)}:{fr.lineno}"


def where_failed(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        fr = tb[-1]
        return f"assertion failed in {fr.name} ({fr.filename.rsplit('/', 1)[-1]}:{fr.lineno})"
    return "assertion failed"

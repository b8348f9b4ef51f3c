"""Kernel functions that a variant can replace by name.

Model functions are decorated with :func:`kfunc`. A call goes to the running variant's
override of that name if it has one, else to the decorated (base) implementation. Variants
therefore change only the functions they change, and the model calls every kernel function
by its kernel name, as the kernel does.

In a traced execution, every kernel function that returns a bool (a predicate such as
``kvm_is_reserved_pfn``) notes its call and result on the thread's latest step as a
:class:`~pfnlab.kernel.calls.KernelCall` (``kvm_is_reserved_pfn(0x104) = True``), and so
does every one declared to return an object or None (``-> Page | None``:
``pfn_to_online_page``, ``kvm_pfn_to_refcounted_page``): ``pfn_to_online_page(0x104) =
NULL`` or ``= page@0x104``, and every one whose docstring names an errno (``-EFAULT``), so
reports can say what decided a branch. Every call also goes to the listeners of calls.py.

The overrides in force come from the execution's context object: whatever
:func:`pfnlab.explore.set_context` was given must have an ``overrides`` attribute mapping
kernel-function names to implementations (an empty dict for the base model).
"""

from __future__ import annotations

import errno
import functools
import inspect
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pfnlab.explore.runtime import hide_from_traces, name_code
from pfnlab.explore.shared import HOOKS, Shared, context
from pfnlab.explore.threadstate import call_summarised
from pfnlab.kernel.calls import ENTERED, KernelCall, listeners
from pfnlab.kernel.deprecation import OWNER_GONE_IN, OWNER_REMOVED_IN, deprecated
from pfnlab.kernel.operation import current_owner, enter_owner, leave_owner, owner_stack

F = TypeVar("F", bound=Callable[..., Any])

#: how deep an override may run on its thread's stack (calling itself by its kernel name,
#: through ``KERNEL_FUNCTIONS`` or a helper) before its next call is refused as a recursion
#: without end: the kernel's own recursions (page-table levels, a retried fault) stay far
#: below it
SELF_CALL_LIMIT = 32
#: a stack this deep may hold an override SELF_CALL_LIMIT times (a level of an override
#: calling itself is at least two frames: it and the dispatch)
_DEEP = 2 * SELF_CALL_LIMIT

#: kernel functions whose next dispatch runs the base model's version, not the override in
#: force (pushed by :class:`KernelFunctionTable` for a 0.1-style lookup, taken by the
#: dispatch it calls at once, before any scheduling point)
_BASE_NEXT: list[str] = []


class KernelFunctionTable(dict[str, Callable[..., Any]]):
    """``KERNEL_FUNCTIONS``: every kernel function, by name.

    ``KERNEL_FUNCTIONS[name]`` runs the version of the variant being checked, as calling
    the function by its name does (since 0.2). In 0.1 it was the base model's version, and
    an override extended the base by calling ``KERNEL_FUNCTIONS[name](...)`` from its own
    body; read the new way, that call is the override calling itself without end. Such a
    lookup, made in the body of the override of ``name`` that is in force, still gets the
    base model's version, with a :class:`~pfnlab.kernel.deprecation.PfnlabDeprecationWarning`
    saying to write ``KERNEL_FUNCTIONS[name].base(...)``."""

    def __getitem__(self, name: str) -> Callable[..., Any]:
        entry = dict.__getitem__(self, name)
        ctx = context()
        impl = ctx.overrides.get(name) if ctx is not None else None
        if impl is None or sys._getframe(1).f_code is not getattr(impl, "__code__", None):
            return entry
        deprecated(f"table-self:{name}:{impl.__qualname__}", (
            f"{impl.__qualname__}, the override of {name}(), calls KERNEL_FUNCTIONS[{name!r}], "
            "which has run the checked variant's version (this override) since pfnlab 0.2: "
            "that would call itself without end, so it is taken to mean the base model's "
            f"version, as it did in 0.1; write KERNEL_FUNCTIONS[{name!r}].base(...) for it "
            f"(or VARIANTS[parent].implementation({name!r})(...) for a parent design's)"))

        @functools.wraps(entry)
        def base_version(*args: Any, **kwargs: Any) -> Any:
            mark = len(_BASE_NEXT)
            _BASE_NEXT.append(name)
            try:
                return entry(*args, **kwargs)
            finally:
                del _BASE_NEXT[mark:]  # taken by the dispatch already, unless it raised first

        return base_version


#: Every kernel function of the model, by name. Calling one runs the version of the variant
#: being checked (its override, or the base model's), as calling it by its own name does;
#: ``KERNEL_FUNCTIONS[name].base`` is the base model's implementation, and
#: :meth:`~pfnlab.kernel.variant.Variant.implementation` a given variant's.
KERNEL_FUNCTIONS: dict[str, Callable[..., Any]] = KernelFunctionTable()


class KernelFunctionRecursion(RecursionError):
    """An override found :data:`SELF_CALL_LIMIT` deep on its thread's stack (calling itself
    by its name, through ``KERNEL_FUNCTIONS`` or through a helper): a recursion without end,
    most often an override meant to extend the base model's version."""


def _override(ctx: Any, name: str) -> Callable[..., Any] | None:
    """The override of ``name`` in force, or None (none, or a 0.1-style base lookup)."""
    impl: Callable[..., Any] | None = ctx.overrides.get(name) if ctx is not None else None
    if impl is not None and _BASE_NEXT and _BASE_NEXT[-1] == name:
        return None
    return impl


def _self_call(impl: Callable[..., Any], name: str) -> None:
    """Refuse a call of kernel function ``name``, whose override in force is ``impl``, once
    ``impl`` runs :data:`SELF_CALL_LIMIT` deep on the thread's stack (calling itself by its
    name, through ``KERNEL_FUNCTIONS``, or through a helper), with what to write instead.
    Only a deep stack is walked: ``sys._getframe(_DEEP)`` fails fast on a shallow one."""
    code = getattr(impl, "__code__", None)
    if code is None:
        return
    try:
        sys._getframe(_DEEP)
    except ValueError:
        return  # too shallow to hold the override SELF_CALL_LIMIT times
    depth = 0
    f: Any = sys._getframe(1)
    while f is not None:
        depth += f.f_code is code
        f = f.f_back
    if depth < SELF_CALL_LIMIT:
        return
    raise KernelFunctionRecursion(
        f"{impl.__qualname__} ({code.co_filename}:{code.co_firstlineno}), the override of "
        f"{name}() in force, has called {name}() {depth} deep: calling a kernel function by "
        f"its name or as KERNEL_FUNCTIONS[{name!r}] runs the checked variant's version, here "
        f"this override itself; for the base model's version call {name}.base(...) (or "
        f"KERNEL_FUNCTIONS[{name!r}].base(...)), for a parent design's "
        f"VARIANTS[parent].implementation({name!r})(...)")


class LibraryFunctionReplaced(UserWarning):
    """A model file's ``@kfunc`` has the name of a kernel function pfnlab defines itself."""


def kfunc(fn: F) -> F:
    """Register ``fn`` as a kernel function that variants may override by name.

    A model file may define a kernel function that pfnlab itself has (one written before
    pfnlab had it): its definition replaces the library's in the registry, with a
    :class:`LibraryFunctionReplaced` warning, and the model's own calls run it; the
    library's code goes on calling its own version, and an override of the name in a
    variant applies to both. Two definitions within pfnlab, or within model files, are an
    error.
    """
    name = fn.__name__
    old = KERNEL_FUNCTIONS.get(name)
    if old is not None and getattr(old, "base", old) is not fn:
        if not (_in_library(getattr(old, "base", old)) and not _in_library(fn)):
            raise ValueError(f"kernel function {name!r} is defined twice in the model")
        where = getattr(getattr(old, "base", old), "__module__", "pfnlab")
        warnings.warn(
            f"kernel function {name!r} is defined by pfnlab too ({where}): the model's "
            "definition replaces it for the model's own calls; remove it to use pfnlab's, "
            "or rename it if it is a different function",
            LibraryFunctionReplaced, stacklevel=2)
    pointer = _returns_pointer(fn)
    # an int that the docstring says can be an errno ("-EFAULT"): a count that went
    # negative (an underflow) is not one
    errnos = re.search(r"-E[A-Z]{2,}", fn.__doc__ or "") is not None

    if getattr(fn, "owner_removed", None):
        return cast(F, _owner_adapter(fn, _dispatcher(fn, name, pointer, errnos, 2)))
    return cast(F, _dispatcher(fn, name, pointer, errnos, 1))


def _dispatcher(fn: Callable[..., Any], name: str, pointer: bool, errnos: bool,
                caller: int) -> Callable[..., Any]:
    """The registered callable of kernel function ``name``: runs the variant's override or
    ``fn``, and notes what it returned on the trace. The frame that called the kernel
    function is ``caller`` frames up from it (2 under an adapter)."""

    # what an override must return: what the library's own version is declared to
    spec = _return_spec(fn) if _in_library(fn) else None

    @functools.wraps(fn)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        ctx = context()
        impl = ctx.overrides.get(name) if ctx is not None else None
        if _BASE_NEXT and impl is not None and _BASE_NEXT[-1] == name:
            _BASE_NEXT.pop()
            impl = None
        if impl is not None:
            _self_call(impl, name)
        rt = HOOKS.current
        if rt is None:
            return (fn if impl is None else impl)(*args, **kwargs)
        owners = owner_stack()
        if listeners and not rt.replaying:  # it ran, even if it raises or never returns
            listeners[-1](name, sys._getframe(caller), ENTERED)
        result = call_summarised(rt, fn if impl is None else impl, args, kwargs)
        if impl is not None and spec is not None and not _fits(result, spec):
            raise ReturnConventionError(_misfit(name, fn, impl, result))
        if owner_stack() != owners:
            # a summarised call's effect on its caller must be its value (threadstate.py)
            raise RuntimeError(
                f"{name}() returned inside an operation it began, or outside one it was "
                f"called in (operations {owners} before the call, {owner_stack()} after): "
                "begin and end an operation in one function, best with "
                "`with operation(owner):`")
        if rt.trace_on:
            if result is True or result is False:
                rt.note(KernelCall(name, _args(args), str(result)))
            elif pointer and (result is None or isinstance(result, Shared)):
                rt.note(KernelCall(name, _args(args),
                                   "NULL" if result is None else result.name))
            elif errnos and (err := _errno(result)):
                rt.note(KernelCall(name, _args(args), err))
        if listeners and not rt.replaying:  # e.g. what no execution reached (reach.py)
            listeners[-1](name, sys._getframe(caller), result)
        return result

    dispatch.base = fn  # type: ignore[attr-defined]
    KERNEL_FUNCTIONS[name] = dispatch
    name_code(fn, name)
    return dispatch


def _owner_adapter(fn: Callable[..., Any], dispatch: Callable[..., Any]) -> Callable[..., Any]:
    """For one release, a kernel function that no longer takes ``owner`` (the reference
    belongs to the running thread's operation, :mod:`pfnlab.kernel.operation`) still works
    with model files written before: a caller that passes ``owner`` (after the function's
    own positional parameters, or by keyword) has it honoured, the function running as
    that owner's operation, and an override that declares an ``owner`` parameter gets the
    current operation's owner; each warns once (:mod:`pfnlab.kernel.deprecation`)."""
    name = fn.__name__
    params = inspect.signature(fn).parameters.values()
    npos = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    at = fn.owner_removed[1]  # type: ignore[attr-defined]
    at = npos if at is None else at  # where old callers passed it
    #: per override: whether it declares ``owner``, and whether that has a default
    takes: dict[Callable[..., Any], tuple[bool, bool]] = {}

    @functools.wraps(fn)
    def adapted(*args: Any, **kwargs: Any) -> Any:
        owner: str | None = None
        if len(args) > npos:
            owner, args = args[at], args[:at] + args[at + 1:]
        if "owner" in kwargs:
            owner = kwargs.pop("owner")
        if owner is not None:
            deprecated(f"owner-argument:{name}", (
                f"{name}() takes no `owner` argument since pfnlab {OWNER_REMOVED_IN}: the "
                "references it takes belong to the running thread's operation; drop the "
                "argument and run the thread's work in `with operation(owner):` "
                f"(pfnlab.operation). Until {OWNER_GONE_IN} the argument is honoured."))
        impl = _override(context(), name)
        if impl is not None:
            got = takes.get(impl)
            if got is None:
                param = inspect.signature(impl).parameters.get("owner")
                got = takes[impl] = (param is not None,
                                     param is not None and param.default is not param.empty)
            wants, has_default = got
            if wants:
                deprecated(f"owner-parameter:{name}:{impl.__qualname__}", (
                    f"{impl.__qualname__}, an override of {name}(), declares an `owner` "
                    f"parameter, which {name}() has not had since pfnlab {OWNER_REMOVED_IN}: "
                    "remove it (the references it takes belong to the running thread's "
                    f"operation). Until {OWNER_GONE_IN} it is given the operation's owner."))
                given = current_owner() if owner is None else owner
                if given or not has_default:  # (outside every operation: its own default,
                    kwargs["owner"] = given  # e.g. "kvm", as 0.2 called it)
        if owner is None or owner == current_owner():
            return dispatch(*args, **kwargs)
        enter_owner(owner)
        try:
            result = dispatch(*args, **kwargs)
        except BaseException:
            leave_owner(owner, unwinding=True)
            raise
        leave_owner(owner)
        return result

    adapted.base = fn  # type: ignore[attr-defined]
    KERNEL_FUNCTIONS[name] = adapted
    return adapted


class ReturnConventionError(TypeError):
    """An override returned what the library's version of the kernel function does not
    (a tuple of another length, an object for an int, ...): most often a model written for
    an earlier pfnlab, whose version of the function returned something else. pfnlab's
    callers would read the value by the new convention and report what follows as a
    finding; the override's thread stops here instead, with this model error."""


#: a return annotation, parsed: the alternatives of a union, each a name (``"int"``,
#: ``"None"``, ``"Page"``) or ``("tuple", (item, ...))`` / ``("list", ())``
Spec = tuple[Any, ...]


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at the ``sep`` s outside brackets."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == sep and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()]


def _parse(text: str) -> Spec | None:
    """A return annotation's text as a :data:`Spec`; None when it checks nothing (``Any``,
    or a form this reading does not know)."""
    alts: list[Any] = []
    for alt in _split(text, "|"):
        if alt in ("Any", "object", "") or alt.startswith(("Optional", "Union", "Callable")):
            return None
        if alt.startswith("tuple[") and alt.endswith("]"):
            items = [_parse(x) for x in _split(alt[6:-1], ",")]
            if "..." in alt:
                alts.append(("tuple", None))
            else:
                alts.append(("tuple", tuple(items)))
        elif alt.startswith(("list[", "list")):
            alts.append(("list", ()))
        elif alt.isidentifier() or alt == "None":
            alts.append(alt)
        else:
            return None
    return tuple(alts)


def _return_spec(fn: Callable[..., Any]) -> Spec | None:
    """What ``fn`` is declared to return, for checking an override's value; None for a
    function that returns nothing (``-> None``: its callers use no value) or anything."""
    ret = getattr(fn, "__annotations__", {}).get("return")
    if ret is None:
        return None
    text = ret if isinstance(ret, str) else getattr(ret, "__name__", repr(ret))
    spec = _parse(text)
    return None if spec == ("None",) else spec


def _fits(value: Any, spec: Spec | None) -> bool:
    """Whether ``value`` is of the declared form ``spec`` (None: anything). A kernel bool
    may come back as an int or None (falsy), as C and sloppy Python return them."""
    if spec is None:
        return True
    for alt in spec:
        if isinstance(alt, tuple):
            kind, items = alt
            if kind == "list" and isinstance(value, list):
                return True
            if kind == "tuple" and isinstance(value, tuple) and (
                    items is None or (len(value) == len(items)
                                      and all(map(_fits, value, items)))):
                return True
        elif alt == "None":
            if value is None:
                return True
        elif alt == "bool":
            if value is None or isinstance(value, int):
                return True
        elif alt == "int":
            if isinstance(value, int):
                return True
        elif alt == "str":
            if isinstance(value, str):
                return True
        elif any(k.__name__ == alt for k in type(value).__mro__):
            return True
    return False


def _misfit(name: str, fn: Callable[..., Any], impl: Callable[..., Any], value: Any) -> str:
    """What :class:`ReturnConventionError` says."""
    code = getattr(impl, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    ret = fn.__annotations__.get("return")
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    what = (f"a tuple of {len(value)}" if isinstance(value, tuple)
            else type(value).__name__ if value is not None else "None")
    doc = (fn.__doc__ or "").strip().split("\n")[0]
    return (f"{getattr(impl, '__qualname__', impl)}{where}, the override of {name}(), returned "
            f"{shown} ({what}), but pfnlab's {name}() returns {ret} ({doc}) and its callers "
            "read the value so: a model written for an earlier pfnlab, whose version returned "
            "something else? CHANGELOG.md says what changed; return what the library's "
            "version returns")


def _in_library(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is pfnlab's own (its module is in the ``pfnlab`` package)."""
    module = getattr(fn, "__module__", "") or ""
    return module == "pfnlab" or module.startswith("pfnlab.")


def _errno(result: object) -> str:
    """``-EFAULT`` for a kernel function's negative errno result (an int, or a tuple whose
    first item is the kernel's ``r``, as ``hva_to_pfn_remapped`` returns), else ""."""
    r = result[0] if isinstance(result, tuple) and result else result
    if type(r) is not int or r >= 0:
        return ""
    name = errno.errorcode.get(-r, str(-r))
    return f"-{name}" + (", ..." if isinstance(result, tuple) and len(result) > 1 else "")


def _returns_pointer(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is declared to return an object or None (``-> Page | None``)."""
    ret = getattr(fn, "__annotations__", {}).get("return")
    text = ret if isinstance(ret, str) else repr(ret)
    return ("| None" in text or "Optional" in text) and "bool" not in text


def _args(args: tuple[Any, ...]) -> str:
    """Short argument text for a predicate's trace note: ints in hex, objects by name;
    strings are the model's bookkeeping (the ledger owner), not kernel arguments: left out."""
    out = []
    for a in args:
        if isinstance(a, str):
            continue
        if isinstance(a, bool) or a is None:
            out.append(str(a))
        elif isinstance(a, int):
            out.append(hex(a))
        elif isinstance(a, Shared):
            out.append(a.name)
        else:
            out.append(type(a).__name__)
    return ", ".join(out)


hide_from_traces(__file__)

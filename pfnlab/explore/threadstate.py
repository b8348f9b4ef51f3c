"""Thread states at operation boundaries, so that finished work does not split states.

The engine cannot copy a greenlet, so it identifies a thread's state by its history: the
values the thread received from shared state, in order. That is sound (threads are
deterministic) but keeps apart states that differ only in values the thread no longer
holds: a vCPU whose first fault read ``mmu_notifier_seq == 0`` and one that read ``1`` are
different forever, although after the fault returned nothing of it is left. (The reference
SPIN model resets dead locals by hand for the same reason.)

A thread may be given as a list of *operations* (``Instance(threads={"vcpu0": [fault_a,
fault_b, exit]})``): the engine runs them in order, and when one starts the thread's state
is exactly the operations left, so its history key is reset to a key of those: each
remaining function's code, defaults and closure values, encoded by content
(:func:`~pfnlab.explore.fingerprint.canon`, plus lists, dicts, sets, dataclasses and plain
objects by their attributes), shared objects by name. A closure holding anything that has no
encoding leaves the history key as it is: never a guess.

Within an operation, a call to a *summarised* function (every kernel function of the model:
``pfnlab.kernel.kfunc``) gives the same treatment to the values it read: when it returns, the
thread's key becomes the key it had when the call began extended by the call's nesting depth
and the returned value (:func:`call_summarised`), so two executions whose ``pfn_valid`` read
different things but returned the same answer continue as one state. (The depth tells apart
two calls that began at the same key, one inside the other.) Sound for the same reason: the
caller's frames after the return are determined by its history when the call began and the
value returned. The conditions are checked at every call, never assumed: every argument is
an immutable value or a shared object (a callee cannot have changed something the caller
holds, except through shared fields), the call returns normally (an exception keeps the
whole history), and the return value has a canonical encoding.

Why it is sound: an operation's behaviour is a function of its closure, the shared state
and the values it receives from it after it starts. Operations hand nothing to each other
but through shared fields (their return values are dropped), and model threads change
model state only through shared fields, the engine's premise that its footprints rest on
too. Objects that existed when the threads started (hosts, set-up records: ``Statics``) are
encoded once per execution on that premise.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pfnlab.explore.fingerprint import Unencodable, canon, digest, returned

F = TypeVar("F", bound=Callable[..., Any])

_SIMPLE = frozenset({int, str, bool, type(None), float, bytes})
_SCALARS: dict[tuple[type, Any], bytes] = {}
_CODES: dict[types.CodeType, bytes] = {}
_MAX_NODES = 20_000  # an encoding larger than this falls back to history (cost guard)


class Statics:
    """Plain objects that existed when the threads started (the scenario's set-up: hosts,
    set-up records), encoded once per execution.

    Threads change model state only through shared fields (the engine's premise), so these
    objects' attributes are the same in every state of the execution; memoising their
    encodings makes a thread's key cost what its own locals cost.
    """

    def __init__(self, roots: list[Any]) -> None:
        self.ids: set[int] = set()
        self.keep: list[Any] = roots  # keep them alive: ids stay unique
        self.memo: dict[int, bytes] = {}
        walker = _Encoder(None)
        walker.collect = self.ids
        try:
            for r in roots:
                walker.value(r)
        except Unencodable:
            pass  # what was reached is still set-up state; the rest is encoded by content


class _Encoder:
    def __init__(self, statics: Statics | None) -> None:
        self.statics = statics
        self.collect: set[int] | None = None
        self.out: list[bytes] = []
        self.seen: dict[int, int] = {}
        self.nodes = 0

    def value(self, v: Any) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise Unencodable("thread state too large to encode")
        t = type(v)
        if t in _SIMPLE:
            k = (t, v)
            b = _SCALARS.get(k)
            if b is None:
                b = canon(v)
                if len(_SCALARS) < 100_000:
                    _SCALARS[k] = b
            self.out.append(b)
            return
        d = getattr(v, "__dict__", None)
        if d is not None and "_idx" in d:  # a Shared object: by name
            self.out.append(b"@" + d["_name"].encode())
            return
        if t is tuple or t is frozenset or hasattr(t, "_fields") or (
                dataclasses.is_dataclass(v) and t.__dataclass_params__.frozen):
            try:
                self.out.append(canon(v))
                return
            except Unencodable:
                pass
        ref = self.seen.get(id(v))
        if ref is not None:  # shared or cyclic structure: a back-reference
            self.out.append(b"^%d;" % ref)
            return
        self.seen[id(v)] = len(self.seen)
        if t is list or t is tuple:
            self.out.append(b"[%d:" % len(v))
            for x in v:
                self.value(x)
            self.out.append(b"]")
        elif t is dict:
            self.out.append(b"<%d:" % len(v))
            for k, x in v.items():  # insertion order: deterministic for a deterministic model
                self.value(k)
                self.value(x)
            self.out.append(b">")
        elif t is set or t is frozenset:
            items = sorted(self._sub(x) for x in v)
            self.out.append(b"{%d:" % len(items) + b"".join(items) + b"}")
        elif isinstance(v, types.FunctionType):
            self.out.append(b"F" + _code_tag(v.__code__))
            self.value(v.__defaults__)
            self.value(v.__kwdefaults__)
            for cell in v.__closure__ or ():
                try:
                    self.value(cell.cell_contents)
                except ValueError:  # an empty cell
                    self.out.append(b"-")
        elif isinstance(v, types.MethodType):
            self.out.append(b"M")
            self.value(v.__func__)
            self.value(v.__self__)
        elif isinstance(v, (types.BuiltinFunctionType, type, types.ModuleType)):
            self.out.append(b"B" + _name_tag(v))
        elif dataclasses.is_dataclass(v) or _plain_python_object(t):
            st = self.statics
            if st is not None and id(v) in st.ids:
                enc = st.memo.get(id(v))
                if enc is None:
                    sub = _Encoder(None)
                    sub.nodes = self.nodes
                    sub._object(v)
                    enc = st.memo[id(v)] = digest(b"".join(sub.out)).to_bytes(16, "little")
                self.out.append(b"S" + enc)
                return
            if self.collect is not None:
                self.collect.add(id(v))
            self._object(v)
        else:
            raise Unencodable(f"a {t.__qualname__} in a thread's locals")

    def _object(self, v: Any) -> None:
        t = type(v)
        if dataclasses.is_dataclass(v):
            self.out.append(b"D" + _name_tag(t))
            for f in dataclasses.fields(v):
                self.value(getattr(v, f.name))
        else:
            self.out.append(b"O" + _name_tag(t))
            self.value(v.__dict__)

    def _sub(self, v: Any) -> bytes:
        saved = self.out
        self.out = []
        try:
            self.value(v)
            return b"".join(self.out)
        finally:
            self.out = saved


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python


def _plain_python_object(t: type) -> bool:
    """Instances keep all their state in ``__dict__`` (Python classes, no slots, no C base)."""
    return all(c is object or (c.__flags__ & _HEAPTYPE and "__slots__" not in c.__dict__)
               for c in t.__mro__)


def _name_tag(v: Any) -> bytes:
    s = f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', getattr(v, '__name__', ''))}"
    b = s.encode()
    return b"%d:" % len(b) + b


def _code_tag(code: types.CodeType) -> bytes:
    b = _CODES.get(code)
    if b is None:
        s = f"{code.co_filename}:{code.co_firstlineno}:{code.co_qualname}".encode()
        b = _CODES[code] = b"%d:" % len(s) + s
    return b


def ops_key(name: str, ops: list[Any], index: int, statics: Statics | None) -> int | None:
    """The state key of thread ``name`` about to start ``ops[index]``: the operations left,
    encoded by content (code, defaults, closure values). None if one has no encoding."""
    enc = _Encoder(statics)
    enc.out.append(b"ops:" + name.encode() + b"#%d:" % index)
    try:
        for fn in ops[index:]:
            enc.value(fn)
    except Unencodable:
        return None
    return digest(b"".join(enc.out))


_IMMUTABLE: frozenset[type] = frozenset(
    {int, str, bool, type(None), float, bytes, complex, range})
#: types every instance of which is fine as an argument: the scalars, and each Shared
#: subclass once met (learnt, so that the common case is one set lookup)
_OK_TYPES: set[type] = set(_IMMUTABLE)
_THREAD_MODE = 1  # runtime._THREAD: model thread code is running


def _immutable(v: Any, depth: int = 0) -> bool:
    """Whether ``v`` cannot be changed in place by a callee (shared objects change only
    through their fields, which are part of the state)."""
    t = type(v)
    if t in _IMMUTABLE:
        return True
    if t is tuple or t is frozenset or (isinstance(v, tuple) and hasattr(t, "_fields")):
        return depth < 4 and all(_immutable(x, depth + 1) for x in v)
    d = getattr(v, "__dict__", None)
    if d is not None and "_idx" in d and "_name" in d:  # a Shared object
        _OK_TYPES.add(t)
        return True
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return bool(t.__dataclass_params__.frozen) and depth < 4 and all(
            _immutable(getattr(v, f.name), depth + 1) for f in dataclasses.fields(v))
    return False


def call_summarised(rt: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``fn(*args, **kwargs)`` in the running model thread of execution ``rt``; when it
    returns, replace the history of what it read by the value it returned (module doc)."""
    t = rt.running
    if t is None or rt.mode != _THREAD_MODE or not rt.hashable or not rt.movers:
        return fn(*args, **kwargs)
    for a in args:
        if type(a) not in _OK_TYPES and not _immutable(a):
            return fn(*args, **kwargs)
    if kwargs and not all(_immutable(a) for a in kwargs.values()):
        return fn(*args, **kwargs)
    h0 = t.key
    depth = t.depth = t.depth + 1
    try:
        result = fn(*args, **kwargs)
    finally:
        t.depth = depth - 1
    if t.key != h0 and rt.running is t and t.op is not None:
        try:  # noqa: SIM105 - the hot path: no context-manager object per call
            t.key = returned(h0, depth, result)
        except Unencodable:
            pass  # no encoding: keep the whole history
    return result


def summarised(fn: F) -> F:
    """Decorate a model function whose only effect on its caller is the value it returns
    (and shared fields): when it returns, what it read no longer splits states.

    Every kernel function (``@kfunc``) is summarised this way. The conditions are checked
    at each call (see :func:`call_summarised`); a call that does not meet them keeps the
    thread's whole history, so a wrong use costs reduction, never a verdict.
    """
    from pfnlab.explore.shared import HOOKS

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        rt = HOOKS.current
        if rt is None:
            return fn(*args, **kwargs)
        return call_summarised(rt, fn, args, kwargs)

    return cast(F, call)

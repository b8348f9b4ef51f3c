"""Shared model state: objects whose field reads and writes are scheduling points.

A model declares its shared state as subclasses of :class:`Shared` with :class:`Field`
descriptors::

    class Page(Shared):
        refcount = Field(1)
        flags = Field(0)

Inside a running execution, every read or write of a field by a model thread is one
scheduling point whose *footprint* is ``(object, field, read|write)``. The exploration
engine computes independence of two steps from their footprints; model code never declares
it. Outside an execution (set-up code, reports) fields behave like plain attributes.

Values stored in fields must be hashable (ints, strings, tuples, frozensets, None, other
Shared objects) so that whole states can be fingerprinted; a field holding an unhashable value
turns state caching off for that run, and the statistics say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, overload

T = TypeVar("T")

#: Marker field name in a footprint meaning "every field of the object" (used by free()).
ALL_FIELDS = "*"


class _Hooks:
    """The execution currently running, as seen by field descriptors (None when idle)."""

    current: Any = None


HOOKS = _Hooks()


class Field(Generic[T]):
    """A shared field: reads and writes by a model thread are scheduling points."""

    __slots__ = ("default", "name")

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        fields = owner.__dict__.get("_fields_")
        if fields is None:
            inherited: tuple[str, ...] = ()
            for base in owner.__mro__[1:]:
                inherited = base.__dict__.get("_fields_", ()) or inherited
                if inherited:
                    break
            setattr(owner, "_fields_", inherited)  # noqa: B010
        setattr(owner, "_fields_", (*owner.__dict__["_fields_"], name))  # noqa: B010

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Field[T]: ...

    @overload
    def __get__(self, obj: Shared, objtype: type | None = None) -> T: ...

    def __get__(self, obj: Shared | None, objtype: type | None = None) -> T | Field[T]:
        if obj is None:
            return self
        rt = HOOKS.current
        if rt is None:
            return obj.__dict__[self.name]
        return self._load(rt, obj)

    def __set__(self, obj: Shared, value: T) -> None:
        rt = HOOKS.current
        if rt is None:
            obj.__dict__[self.name] = value
        else:
            self._store(rt, obj, value)

    def unobserved(self, obj: Shared) -> T:
        """``obj``'s value of this field with no scheduling point, no footprint and no
        recorded read (``Page.refcount.unobserved(page)``): for ghost hooks that decide from
        what the host *is*. Such a read must not steer the model, and a decision that
        depends on a field another thread writes in an unordered step must add that
        dependency itself (a ghost write of a field both steps write)."""
        return cast(T, obj.__dict__[self.name])

    # How the running execution ``rt`` performs an access; each kind of field says its own.
    def _load(self, rt: Any, obj: Shared) -> Any:
        return rt.read(obj, self.name)

    def _store(self, rt: Any, obj: Shared, value: Any) -> None:
        rt.write(obj, self.name, value)

    def _rmw(self, rt: Any, obj: Shared, update: Callable[[Any], tuple[Any, Any]]) -> Any:
        """How :func:`atomic` updates this field (a subclass may watch the change)."""
        return rt.rmw(obj, self.name, update)


class Plain(Field[T]):
    """A field accessed with plain loads and stores: *not* a scheduling point.

    Use it for state that no thread writes after set-up (``__ro_after_init``: PG_reserved,
    the zone, ``page->pgmap``) and for state every thread accesses only under a lock
    (SPTEs under ``mmu_lock``, PTEs under the ptl). A plain access rides along with the
    thread's current step and is part of that step's footprint, so steps shrink to the
    kernel-level actions between lock operations and marked (``Field``) accesses.

    The engine checks the annotation, it never trusts it: a happens-before race detector
    (:mod:`pfnlab.explore.races`) reports any two conflicting plain accesses that no lock
    or marked access orders as a ``data-race`` finding ("data race on spte@0x0.spte: vcpu1
    writes it in mmu_set_spte while vcpu0 read it, ..."). Make a field that threads
    legitimately access without a lock (``READ_ONCE``, atomics) a ``Field``.
    """

    __slots__ = ()

    def __set_name__(self, owner: type, name: str) -> None:
        super().__set_name__(owner, name)
        setattr(owner, "_has_plain_", True)  # noqa: B010

    def _load(self, rt: Any, obj: Shared) -> Any:
        return rt.plain_read(obj, self.name)

    def _store(self, rt: Any, obj: Shared, value: Any) -> None:
        rt.plain_write(obj, self.name, value)


class Guarded(Field[T]):
    """A field protected by a lock (``lockdep_assert_held``): ``by`` names the attribute of
    the owning object that holds the :class:`~pfnlab.explore.Lock`.

    Every write must hold the lock; the engine checks it at each one and reports a write
    without it as a ``lock-guard`` finding, never trusting the declaration. An access made
    with the lock held is not a scheduling point: no other thread can write the field
    then, so the access commutes with every other thread's step (Lipton's both-mover), and
    it joins the thread's current step and footprint. A read without the lock (a
    ``READ_ONCE`` of ``mmu_notifier_seq`` before taking ``mmu_lock``) is allowed only with
    ``lockless_reads=True``, and is then a scheduling point like any marked read; since
    such a reader can run while the lock is held, writes of such a field stay scheduling
    points too. Checks may read it; a ``wait_until`` condition is a lockless reader.
    """

    __slots__ = ("by", "lockless_reads")

    def __init__(self, default: T, *, by: str, lockless_reads: bool = False) -> None:
        super().__init__(default)
        self.by = by
        self.lockless_reads = lockless_reads

    def __set_name__(self, owner: type, name: str) -> None:
        super().__set_name__(owner, name)
        setattr(owner, "_has_guarded_", True)  # noqa: B010

    def _load(self, rt: Any, obj: Shared) -> Any:
        return rt.guarded_read(obj, self)

    def _store(self, rt: Any, obj: Shared, value: Any) -> None:
        rt.guarded_write(obj, self, value)


def guard_of(cls: type, field: str) -> Guarded[Any] | None:
    """The :class:`Guarded` descriptor of ``cls.field``, if it is one."""
    f = getattr(cls, field, None)
    return f if isinstance(f, Guarded) else None


def is_plain(cls: type, field: str) -> bool:
    """Whether ``cls.field`` is a :class:`Plain` field."""
    return isinstance(cls.__dict__.get(field) or getattr(cls, field, None), Plain)


class Ghost(Field[T]):
    """Bookkeeping for checks (who holds which reference): part of the state, never a step.

    Reads and writes of a ghost field are not scheduling points and carry no footprint, so
    they must not steer the model's control flow, and concurrent updates must commute
    (counters, sets). Invariants that read ghost fields are re-checked when they change.
    """

    __slots__ = ()

    def __get__(self, obj: Shared | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        rt = HOOKS.current
        if rt is not None and rt.peek is not None:
            rt.peek.add((obj.__dict__["_idx"], self.name))
        return obj.__dict__[self.name]

    def __set__(self, obj: Shared, value: T) -> None:
        rt = HOOKS.current
        if rt is None:
            obj.__dict__[self.name] = value
        else:
            rt.ghost_write(obj, self.name, value)


class Shared:
    """Base class of shared model objects. Each has a unique, stable ``name``.

    The name is the object's identity across executions: fingerprints, footprints and
    schedules refer to objects by name, so two executions of the same model agree on them.
    """

    _fields_: tuple[str, ...] = ()
    _has_plain_: bool = False
    _has_guarded_: bool = False

    def __init__(self, name: str) -> None:
        self.__dict__["_name"] = name
        self.__dict__["_freed"] = None
        for f in type(self)._fields_:
            default = getattr(type(self), f).default
            self.__dict__[f] = default() if callable(default) else default
        rt = HOOKS.current
        self.__dict__["_idx"] = rt.register(self) if rt is not None else -1

    @property
    def name(self) -> str:
        """The object's stable name, e.g. ``page@0x100``."""
        return self.__dict__["_name"]

    def __hash__(self) -> int:
        return hash(("shared", self.__dict__["_name"]))

    def __repr__(self) -> str:
        return self.__dict__["_name"]

    def peek(self, field: str) -> Any:
        """Read a field without making a scheduling point (for reports, checks and conditions).

        In an invariant, goal, final check or ``wait_until`` condition the read is recorded
        like a field read: a step that writes the field re-checks the invariant and wakes
        the waiter. In a model thread it is *not* a scheduling point: use the field itself.
        """
        rt = HOOKS.current
        if rt is not None:
            rt.observe(self, field)
        return self.__dict__[field]

    def fields(self) -> dict[str, Any]:
        """All shared fields and their current values, without scheduling points."""
        return {f: self.__dict__[f] for f in type(self)._fields_}


def atomic(obj: Shared, field: str, update: Callable[[Any], tuple[Any, Any]]) -> Any:
    """One atomic read-modify-write of ``obj.field`` as a single scheduling point.

    ``update(old)`` returns ``(new, result)``; the field becomes ``new`` and ``result`` is
    returned to the caller. This is how ``atomic_dec_and_test`` and friends are modelled.
    """
    rt = HOOKS.current
    if rt is None:
        new, result = update(obj.__dict__[field])
        obj.__dict__[field] = new
        return result
    key = (type(obj), field)
    desc = _RMW_FIELDS.get(key, _UNSEEN)
    if desc is _UNSEEN:
        d = getattr(type(obj), field, None)
        if not isinstance(d, Field):
            raise AttributeError(f"atomic({obj!r}, {field!r}, ...): {type(obj).__name__} "
                                 f"has no shared field {field!r}")
        desc = _RMW_FIELDS[key] = d if type(d)._rmw is not Field._rmw else None
    if desc is not None:
        return desc._rmw(rt, obj, update)
    return rt.rmw(obj, field, update)


#: per (class, field): the descriptor whose ``_rmw`` watches atomic updates, or None
_RMW_FIELDS: dict[tuple[type, str], Any] = {}
_UNSEEN = object()


def free(obj: Shared, why: str | tuple[str, str] = "") -> None:
    """Free ``obj``: any later access to it by a model thread is a use-after-free finding.

    ``why`` says what freed it; a ``(property_id, text)`` tuple also names the property the
    use-after-free is reported under (default ``"use-after-free"``).
    """
    if not isinstance(obj, Shared):
        raise TypeError(f"free({obj!r}): only a Shared object can be freed")
    rt = HOOKS.current
    if rt is None:
        obj.__dict__["_freed"] = why or "freed"
        return
    rt.free(obj, why)


def note(text: str) -> None:
    """Annotate the running thread's latest step with ``text`` (trace mode only).

    Reports show notes next to the step, e.g. what a predicate returned. Outside a traced
    execution this does nothing, so model code may call it freely; it is not a step.
    """
    rt = HOOKS.current
    if rt is not None and rt.trace_on:
        rt.note(text)


def keep(value: Any) -> Any:
    """The running model thread keeps ``value``, read from ghost state (which leaves no
    history), in a local that decides something later (a check's verdict): make it part
    of the thread's state, so that two states in which the thread kept different values
    are never taken for one. Returns ``value``. Not a step; outside a thread it does
    nothing."""
    rt = HOOKS.current
    if rt is not None and rt.running is not None and rt.mode == 1:  # runtime._THREAD
        rt._received(rt.running, value)
    return value


def is_freed(obj: Shared) -> bool:
    """Whether ``obj`` has been freed (no scheduling point; for reports, checks, conditions).

    Read by a check or a ``wait_until`` condition it is tracked like a field read: freeing
    ``obj`` re-checks the invariant and wakes the waiter.
    """
    rt = HOOKS.current
    if rt is not None:
        rt.observe(obj, "_freed")
    return obj.__dict__["_freed"] is not None


_IDLE_CONTEXT: list[Any] = [None]


def set_context(value: Any) -> None:
    """Attach a model-defined context object (e.g. the host) to the running execution.

    Called from a program's ``build()``; model functions find it again with
    :func:`context`. Outside an execution it sets a process-wide default (unit tests).
    """
    rt = HOOKS.current
    if rt is None:
        _IDLE_CONTEXT[0] = value
    else:
        rt.context = value


def current_thread() -> str | None:
    """The name of the model thread running now (None outside a thread's step): for
    ledgers that attribute what a thread does, never for steering the model."""
    rt = HOOKS.current
    if rt is None or getattr(rt, "mode", None) != 1:  # runtime._THREAD: thread code runs
        return None
    t = rt.running
    return None if t is None else str(t.name)


def context() -> Any:
    """The context object of the running execution (see :func:`set_context`)."""
    rt = HOOKS.current
    if rt is None:
        return _IDLE_CONTEXT[0]
    return rt.context

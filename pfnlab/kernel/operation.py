"""The operation a thread is in: who a reference taken now belongs to.

The kernel does not say who holds a page reference; the model's ledger does (the owner of
every reference KVM takes: ``vcpu0:fault``, ``vcpu0:map``, ``kvm``). The owner is the
running thread's current *operation*, kept in the thread itself: a context variable of
the thread's greenlet, so each model thread has its own, a thread rebuilt from a checkpoint
re-establishes it by running its code again, and each operation of a thread given as a
list of operations starts with none (the engine runs each in a fresh context). The refcount
primitives of :mod:`pfnlab.mm.page` read it when their caller names no owner; the host's
own holders (``mapping``, ``pagecache``) are still named where the host takes them.

Operations nest (a map inside a fault would belong to the map while it runs). The ledger's
view of which owners are inside an operation (``KvmLedger.active``) is kept by the
brackets of :mod:`pfnlab.kvm.ghost` (``with operation(owner)``), which call
:func:`enter_owner` and :func:`leave_owner` here.
"""

from __future__ import annotations

from contextvars import ContextVar

_OWNERS: ContextVar[tuple[str, ...]] = ContextVar("pfnlab_operation_owners", default=())


def current_owner() -> str:
    """The owner of the running thread's innermost operation; "" outside every one (a
    reference taken then is recorded for nobody, as the host's anonymous ones are)."""
    owners = _OWNERS.get()
    return owners[-1] if owners else ""


def owner_stack() -> tuple[str, ...]:
    """The running thread's operations, outermost first."""
    return _OWNERS.get()


def enter_owner(owner: str) -> None:
    """The running thread enters an operation of ``owner`` (no step, no shared state)."""
    _OWNERS.set((*_OWNERS.get(), owner))


def leave_owner(owner: str, *, unwinding: bool = False) -> None:
    """The running thread leaves its innermost operation, which must be ``owner``'s.

    ``unwinding``: the operation is left by an exception already in flight (a finding, or
    the thread's greenlet being ended when its execution is abandoned or collected, where
    the context may no longer hold the bracket): leave it if it is the innermost, and
    never raise over the exception that is unwinding."""
    owners = _OWNERS.get()
    if unwinding:
        if owners and owners[-1] == owner:
            _OWNERS.set(owners[:-1])
        return
    if not owners or owners[-1] != owner:
        inner = owners[-1] if owners else "none"
        raise RuntimeError(
            f"operation brackets do not nest: leaving {owner!r} while the innermost "
            f"operation is {inner!r}; end operations in the reverse order of their start "
            "(use `with operation(owner):`)")
    _OWNERS.set(owners[:-1])

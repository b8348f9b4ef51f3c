"""Marked field accesses: a read, write or read-modify-write of a Shared field that is a
step of its own, and the update functions of ``atomic()`` (engine-internal; model code reaches
them through ``Execution.read``, ``write`` and ``rmw``).

A marked write releases the field and a marked read acquires it (races.py); an update
function that raises, or does not return ``(new, result)``, is an ``exception`` finding.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from pfnlab.explore.findings import EXCEPTION
from pfnlab.explore.runtime.ops import ABORT, RAN, READ, RMW, WRITE, Op
from pfnlab.explore.runtime.services import Outcome, Runtime
from pfnlab.explore.runtime.sites import model_frame, site
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.shared import Shared


def access(ex: Runtime, t: ThreadState, op: Op) -> Outcome:
    """A marked field's read, write or read-modify-write (``READ``, ``WRITE``, ``RMW``)."""
    k = op.kind
    obj = op.obj
    d = obj.__dict__
    field = op.field
    idx = d["_idx"]
    races = ex.races
    if races is not None:  # a marked write releases the field, a read acquires it
        if k != WRITE:
            races.acquire(t.tid, (idx, field))
        if k != READ:
            races.release(t.tid, (idx, field), rmw=k == RMW)
    before = d[field]
    if k == READ:
        return ((idx, field, False),), before, before, RAN
    fp = ((idx, field, True),)
    if k == WRITE:
        ex._set(obj, d["_name"], field, op.arg)
        return fp, before, None, RAN
    try:
        new, result = apply_update(op.arg, before, obj, field)
    except Exception as e:  # the model's update function: a finding, not a crash
        at = model_frame(e) if not isinstance(e, UpdateError) else ""
        ex._set_finding(t, EXCEPTION, "exception",
                        f"{type(e).__name__}: {e} ({at or site(t)[2:-1]})",
                        tb=traceback.format_exc())
        return fp, before, None, ABORT
    ex._set(obj, d["_name"], field, new)
    return fp, before, result, RAN


class UpdateError(TypeError):
    """An ``atomic()`` update function that does not return ``(new, result)``."""


def apply_update(update: Callable[[Any], Any], old: Any, obj: Shared, field: str
                 ) -> tuple[Any, Any]:
    """``update(old)`` as ``atomic()`` applies it: it must return ``(new, result)``."""
    got = update(old)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise UpdateError(f"atomic({obj.__dict__['_name']}, {field!r}, update): update(old) "
                          f"must return (new value, result), not {got!r}")
    return got

"""Custom checks that never looked at the model: a check that holds vacuously.

A check of one's own (``instance(..., invariants=[...], final_checks=[...])``) that looks
its object up with a wrong key, in a plain dict made at set-up, gets None every time and
returns None ("holds") without reading a single shared field: it passes whatever the
design does. While a check runs inside :func:`watching`, every user check that
:func:`watched` wrapped records whether it was evaluated and whether it read shared state
(or returned a message) at least once; a check evaluated but never so is *vacuous*, and
``check`` says so ("check X never read any shared state: it holds vacuously") and lists it
in the JSON (``vacuous_checks``). The record is a collector (explore/collect.py), so the
workers of a parallel search record into it too.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from pfnlab.explore import Check
from pfnlab.explore.collect import collecting
from pfnlab.explore.shared import HOOKS


@dataclass
class CheckReads:
    """Which user checks were evaluated, and which of them ever read shared state."""

    evaluated: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    #: the checks that returned a message at least once
    failed: set[str] = field(default_factory=set)
    #: per check, the lines its function returned from (every evaluation)
    returns: dict[str, set[int]] = field(default_factory=dict)
    #: per check, (file, function, the line of its last return that can give a message)
    condition: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def fresh(self) -> CheckReads:
        """An empty record, for one task of a parallel search."""
        return CheckReads()

    def merge(self, other: CheckReads) -> None:
        """Add what ``other`` (a task's record, back from its worker) saw."""
        self.evaluated |= other.evaluated
        self.read |= other.read
        self.failed |= other.failed
        for name, lines in other.returns.items():
            self.returns.setdefault(name, set()).update(lines)
        self.condition.update(other.condition)

    @contextmanager
    def activate(self) -> Iterator[CheckReads]:
        """Record the evaluations of watched checks made inside this block here."""
        _ACTIVE.append(self)
        try:
            yield self
        finally:
            _ACTIVE.remove(self)

    def vacuous(self) -> list[str]:
        """The checks evaluated that never read shared state nor failed, and those that
        returned early in every evaluation (:meth:`why`), sorted."""
        return sorted((self.evaluated - self.read) | set(self.why()))

    def why(self) -> dict[str, str]:
        """The checks that read shared state but never failed and, in every evaluation,
        returned before the last return that can give a message (their condition): an
        early ``return None`` taken every time, as when the object the condition is about
        was looked up under a wrong key. What a report says of each."""
        out: dict[str, str] = {}
        for name in sorted(self.read - self.failed):
            taken, cond = self.returns.get(name), self.condition.get(name)
            if not taken or cond is None or max(taken) >= cond[2]:
                continue
            where = ", ".join(str(n) for n in sorted(taken))
            out[name] = (f"check {name!r} returned at line {where} of {cond[1]} "
                         f"({os.path.basename(cond[0])}) in every evaluation, never reaching "
                         f"its condition at line {cond[2]}: it holds vacuously (a wrong key "
                         "or name, so that every lookup gave None, or an object never in "
                         "the state its condition is about?)")
        return out


_ACTIVE: list[CheckReads] = []


@contextmanager
def watching() -> Iterator[CheckReads]:
    """Record, inside this block, which watched checks ever read shared state."""
    rec = CheckReads()
    with collecting(rec):
        yield rec


def watched(check: Check) -> Check:
    """``check``, recording each evaluation into the record :func:`watching` made active
    (nothing outside one). An evaluation reads shared state when the engine saw it read a
    field (its read set, ``peek``, is not empty) or it returned a message."""
    fn, name = check.fn, check.name
    cond = _condition(fn)

    def run() -> object:
        if not _ACTIVE:
            return fn()
        taken: list[int] = []
        out = _returning(fn, taken) if cond is not None else fn()
        rec = _ACTIVE[-1]
        rec.evaluated.add(name)
        if out is not None:
            rec.failed.add(name)
        if taken and cond is not None:
            rec.returns.setdefault(name, set()).update(taken)
            rec.condition[name] = cond
        if name not in rec.read:
            rt = HOOKS.current
            if out is not None or (rt is not None and getattr(rt, "peek", None)):
                rec.read.add(name)
        return out

    return dataclasses.replace(check, fn=run)



def _condition(fn: Callable[[], object]) -> tuple[str, str, int] | None:
    """(file, function name, line) of the last ``return`` of ``fn`` that can give a
    message (not ``return``/``return None``), when ``fn`` also has an earlier return (a
    guard it may take instead); None for a lambda, a function without source, or one with
    a single way out."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_name == "<lambda>":
        return None
    try:
        lines, first = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    top = tree.body[0] if tree.body else None
    if not isinstance(top, ast.FunctionDef):
        return None
    rets: list[ast.Return] = []
    todo: list[ast.AST] = list(top.body)
    while todo:  # the function's own returns, not those of functions nested in it
        node = todo.pop()
        if isinstance(node, ast.Return):
            rets.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                          | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))
    msgs = [r.lineno for r in rets
            if r.value is not None and not (isinstance(r.value, ast.Constant)
                                            and r.value.value is None)]
    if not msgs or len(rets) < 2:
        return None
    return code.co_filename, code.co_name, max(msgs) + first - 1


def _returning(fn: Callable[[], object], taken: list[int]) -> object:
    """Call ``fn``, appending to ``taken`` the line it returned from."""
    code = fn.__code__
    prev = sys.getprofile()

    def prof(frame: FrameType, event: str, _arg: object) -> None:
        if event == "return" and frame.f_code is code:
            taken.append(frame.f_lineno)

    sys.setprofile(prof)
    try:
        return fn()
    finally:
        sys.setprofile(prev)

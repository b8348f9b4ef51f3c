"""Lines of the model no explored execution ran: SPIN's "unreached in proctype", by line.

:mod:`pfnlab.model.reach` says which kernel functions and call sites of the code under review
no execution reached, at no cost. This module goes down to lines, for the whole model: run
a search inside :func:`tracing_lines` (``pfnlab check --unreached-lines``) and every line of
every kernel function in force (the base model's, or the variant's override) and of the
user's model files is traced with coverage.py (greenlet-aware, so each model thread is
traced on its own stack). :func:`unreached_lines` then lists, for each kernel function that
ran, the lines of its body that never ran (a branch never taken: an ``if`` whose body no
execution entered, an error path, a loop never iterated), and each function of a user's
file that never ran at all.

Tracing makes model code some 2-4 times slower, so it is an option, not the default. A
line is "ran" when any execution of the search ran it, whatever the thread and however the
search reached it (a checkpoint's rebuild re-runs a thread's code along the same lines).
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pfnlab.model.reach import _short, under_review

INSTALL_HINT = ("--unreached-lines traces the model with coverage.py, which is not installed: "
                "pip install 'coverage>=7' (or pip install 'pfnlab[lines]')")


@dataclass(frozen=True)
class FunctionLines:
    """The lines of one function's body that no execution ran."""

    function: str
    file: str
    first: int            # the def line
    lines: tuple[int, ...]
    ran: bool             # whether any line of the body ran

    def where(self) -> str:
        """``file:line`` of the def."""
        return f"{_short(self.file)}:{self.first}"


@dataclass
class UnreachedLines:
    """What :func:`unreached_lines` found."""

    functions: list[FunctionLines] = field(default_factory=list)
    traced: int = 0     # functions looked at

    def lines(self, width: int = 80) -> list[str]:
        """The text ``check --unreached-lines`` prints."""
        if not self.functions:
            return [f"unreached lines: none (every line of the {self.traced} kernel functions "
                    "that ran, and of the model files' functions, ran)"]
        out = textwrap.wrap(
            "unreached lines: no explored execution ran these lines of the model (in the "
            f"{self.traced} functions traced: the kernel functions in force that ran, and the "
            "model files' functions):", width, subsequent_indent="  ", break_on_hyphens=False)
        for f in self.functions:
            what = ("never ran" if not f.ran
                    else ("line " if len(f.lines) == 1 else "lines ") + _ranges(f.lines))
            out += textwrap.wrap(f"  {f.function} ({f.where()}): {what}", width,
                                 subsequent_indent="    ", break_on_hyphens=False,
                                 break_long_words=False)
        return out

    def as_json(self) -> list[dict[str, Any]]:
        """The JSON form (``unreached.lines``)."""
        return [{"function": f.function, "where": f.where(), "ran": f.ran,
                 "lines": list(f.lines)} for f in self.functions]


def _ranges(lines: Iterable[int]) -> str:
    """``3, 7-9, 12``."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(lines):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [n]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(out)


class LineTrace:
    """A coverage.py session over the model's files (see :func:`tracing_lines`)."""

    def __init__(self, files: Iterable[str]) -> None:
        try:
            import coverage
        except ImportError:
            raise RuntimeError(INSTALL_HINT) from None
        self.files = sorted({os.path.abspath(f) for f in files})
        self.cov = coverage.Coverage(data_file=None, include=self.files,
                                     concurrency=["greenlet"], config_file=False)

    def executed(self, file: str) -> tuple[set[int], set[int]]:
        """(statement lines, lines that ran) of ``file``."""
        _f, statements, _excluded, missing, _text = self.cov.analysis2(file)
        return set(statements), set(statements) - set(missing)


@contextmanager
def tracing_lines(files: Iterable[str]) -> Iterator[LineTrace]:
    """Trace every line run in ``files`` inside this block."""
    lt = LineTrace(files)
    lt.cov.start()
    try:
        yield lt
    finally:
        lt.cov.stop()


def model_files(overrides: dict[str, Callable[..., Any]], user: Iterable[str]) -> list[str]:
    """The files to trace: those of every kernel function (base and overrides in force) and
    the user's model files."""
    from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

    fns = [getattr(f, "base", f) for f in KERNEL_FUNCTIONS.values()] + list(overrides.values())
    out = {os.path.abspath(inspect.getsourcefile(inspect.unwrap(f)) or "") for f in fns}
    out |= {os.path.abspath(f) for f in user}
    return sorted(f for f in out if f and os.path.exists(f))


def _body(fn: Callable[..., Any]) -> tuple[str, int, int, int] | None:
    """(file, def line, first body line after the docstring, last line) of ``fn``."""
    fn = inspect.unwrap(fn)
    try:
        lines, start = inspect.getsourcelines(fn)
        file = os.path.abspath(inspect.getsourcefile(fn) or "")
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    return (file, start + node.lineno - 1, *_span(node, start - 1))


def _span(node: ast.FunctionDef | ast.AsyncFunctionDef, offset: int) -> tuple[int, int]:
    body = node.body
    if (len(body) > 1 and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
        body = body[1:]
    return body[0].lineno + offset, (node.end_lineno or node.lineno) + offset


def _file_functions(path: str) -> list[tuple[str, int, int, int]]:
    """(name, def line, first body line, last line) of every function defined in ``path``
    outside other functions (methods included)."""
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    out: list[tuple[str, int, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((prefix + child.name, child.lineno, *_span(child, 0)))
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def unreached_lines(trace: LineTrace, called: set[str],
                    overrides: dict[str, Callable[..., Any]],
                    user: Iterable[str] = (), skip: Iterable[str] = ()) -> UnreachedLines:
    """The lines ``trace`` saw no execution run: in every kernel function in force that was
    ``called`` (an override if the variant has one, else the base model's), and in every
    function of the ``user`` files but those named in ``skip`` (not in force here)."""
    from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

    out = UnreachedLines()
    cache: dict[str, tuple[set[int], set[int]]] = {}

    def lines_of(file: str) -> tuple[set[int], set[int]]:
        if file not in cache:
            try:
                cache[file] = trace.executed(file)
            except Exception:  # coverage.py: not a traced or parsable file
                cache[file] = (set(), set())
        return cache[file]

    def look(name: str, file: str, first: int, lo: int, hi: int, *, listed_if_never: bool
             ) -> None:
        statements, ran = lines_of(file)
        body = {n for n in statements if lo <= n <= hi}
        if not body:
            return
        out.traced += 1
        missing = tuple(sorted(body - ran))
        if not missing:
            return
        never = len(missing) == len(body)
        if never and not listed_if_never:
            return
        out.functions.append(FunctionLines(name, file, first, missing, not never))

    skipped = set(skip)
    seen: set[tuple[str, int]] = set()
    for name in overrides:  # a base implementation the variant replaces is not in force
        base = getattr(KERNEL_FUNCTIONS.get(name), "base", None)
        span = _body(base) if base is not None else None
        if span is not None:
            seen.add((span[0], span[1]))
    for name in sorted(called):
        fn = overrides.get(name) or getattr(KERNEL_FUNCTIONS.get(name), "base", None)
        span = _body(fn) if fn is not None else None
        if span is None:
            continue
        file, first, lo, hi = span
        seen.add((file, first))
        look(name, file, first, lo, hi, listed_if_never=False)
    for path in dict.fromkeys(os.path.abspath(u) for u in user):
        for name, first, lo, hi in _file_functions(path):
            if (path, first) not in seen and name.rsplit(".", 1)[-1] not in skipped:
                look(name, path, first, lo, hi, listed_if_never=True)
    out.functions.sort(key=lambda f: (f.file, f.first))
    return out


def review_lines(trace: LineTrace, called: set[str], variant: Any, scenario: Any
                 ) -> UnreachedLines:
    """:func:`unreached_lines` for a check of ``variant`` in ``scenario``."""
    overrides, files, others = under_review(variant, scenario)
    return unreached_lines(trace, called, overrides, files, skip=others)

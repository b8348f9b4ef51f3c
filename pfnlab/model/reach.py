"""What the explored executions never reached: SPIN's "unreached in proctype" for models.

A pass means something only if the code it is about ran. While a search runs inside
:func:`recording`, every kernel-function call (:func:`~pfnlab.kernel.kfunc.kfunc`) records
its name (kernel/calls.py passes it here), its call site (file and line of the caller)
and, for a predicate, whether it returned true or false. :func:`unreached` compares that
with the code under review:

- every kernel function the variant overrides (the patch): an override never called, and
  every call site of a kernel function in its body that no execution reached (the branch
  around it was never taken);
- every function of a user's model file (the file of the scenario or variant when it is
  not a built-in one) that the check can run, i.e. that the scenario's builder or an
  override in force reaches by name (:func:`reachable`; another variant's helper or
  another scenario's builder in the same file is not the code under review): its
  kernel-function call sites no execution reached;
- predicates among the overrides that returned only one answer (``kvm_is_reserved_pfn``
  only ever ``true``: the other branch of every caller is unexplored).

Call sites are found statically (``ast``) and matched by line to the caller's frame at the
call, so a site means "this call expression ran at least once". A call is recorded when it
starts (kernel/calls.py: ``ENTERED``), so a function the run died or hung inside ran.
Recording costs a set insertion or two per kernel-function call; nothing is recorded
outside :func:`recording`.
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

from pfnlab.explore.collect import collecting
from pfnlab.kernel.calls import listening
from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Recorder:
    """Kernel-function calls seen while recording."""

    called: set[str] = field(default_factory=set)
    sites: set[tuple[str, int]] = field(default_factory=set)
    answers: dict[str, set[bool]] = field(default_factory=dict)

    def call(self, name: str, frame: Any, result: object) -> None:
        """Record one call of kernel function ``name`` from ``frame``."""
        self.called.add(name)  # at its start (ENTERED), and when it returns
        if frame is not None:
            self.sites.add((frame.f_code.co_filename, frame.f_lineno))
        if result is True or result is False:
            self.answers.setdefault(name, set()).add(result)

    def fresh(self) -> Recorder:
        """An empty recorder, for one task of a parallel search (explore/collect.py)."""
        return Recorder()

    def merge(self, other: Recorder) -> None:
        """Add the calls ``other`` (a task's recorder, back from its worker) saw."""
        self.called |= other.called
        self.sites |= other.sites
        for name, answers in other.answers.items():
            self.answers.setdefault(name, set()).update(answers)

    @contextmanager
    def activate(self) -> Iterator[Recorder]:
        """Record the kernel-function calls made inside this block here."""
        with listening(self.call):
            yield self


@contextmanager
def recording() -> Iterator[Recorder]:
    """Record kernel-function calls made inside this block."""
    rec = Recorder()
    with collecting(rec):  # a parallel search's workers record for it too
        yield rec


@dataclass(frozen=True)
class Site:
    """A kernel-function call in the code under review."""

    file: str
    line: int
    function: str      # the function the call is in
    callee: str        # the kernel function called

    def where(self) -> str:
        """``file:line`` with the file relative to the working directory when inside it."""
        return f"{_short(self.file)}:{self.line}"


@dataclass
class Unreached:
    """What no explored execution reached in the code under review."""

    never_called: list[tuple[str, str]] = field(default_factory=list)   # (name, file:line)
    sites: list[Site] = field(default_factory=list)
    one_answer: list[tuple[str, bool]] = field(default_factory=list)   # predicate, answer
    reviewed: int = 0      # call sites under review

    def __bool__(self) -> bool:
        return bool(self.never_called or self.sites)

    def lines(self, width: int = 80) -> list[str]:
        """The text ``check`` prints (empty when everything under review ran)."""
        out: list[str] = []
        if not (self.never_called or self.sites or self.one_answer):
            return out
        n = len(self.sites)
        if n or self.never_called:
            head = ("unreached: no explored execution ran these parts of the code under review "
                    f"(the variant's overrides, the model file; {n} of its {self.reviewed} "
                    "kernel-function calls):")
        else:
            head = (f"unreached: every one of the {self.reviewed} kernel-function calls in the "
                    "code under review ran, but:")
        out += textwrap.wrap(head, width, subsequent_indent="  ", break_on_hyphens=False)
        for name, where in self.never_called:
            out.append(f"  {name} ({where}): never called")
        for s in self.sites:
            out += textwrap.wrap(f"  {s.callee}() in {s.function} ({s.where()})", width,
                                 subsequent_indent="    ", break_on_hyphens=False,
                                 break_long_words=False)
        for name, ans in self.one_answer:
            out += textwrap.wrap(f"  {name} only returned {str(ans).lower()}: the other "
                                 "branch of its callers never ran", width,
                                 subsequent_indent="    ", break_on_hyphens=False,
                                 break_long_words=False)
        return out

    def as_json(self) -> dict[str, Any]:
        """The JSON form (``check --format json``: ``unreached``)."""
        return {
            "never_called": [{"function": n, "where": w} for n, w in self.never_called],
            "call_sites": [{"callee": s.callee, "function": s.function, "where": s.where()}
                           for s in self.sites],
            "one_answer": [{"predicate": n, "answer": a} for n, a in self.one_answer],
            "reviewed": self.reviewed,
        }


def _short(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") else path


def user_file(fn: Callable[..., Any]) -> str | None:
    """The file ``fn`` is defined in, when it is not a built-in part of pfnlab."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return None
    path = os.path.abspath(code.co_filename)
    return None if path.startswith(_PKG + os.sep) else path


def _calls(tree: ast.AST, names: set[str], offset: int, file: str) -> list[Site]:
    """Kernel-function call sites in ``tree``, with the function each is in."""
    out: list[Site] = []

    def visit(node: ast.AST, fn: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = fn
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                here = getattr(child, "name", f"<lambda line {child.lineno + offset}>")
            if isinstance(child, ast.Call):
                f = child.func
                callee = f.id if isinstance(f, ast.Name) else (
                    f.attr if isinstance(f, ast.Attribute) else None)
                if callee in names:
                    out.append(Site(file, child.lineno + offset, here, callee))
            visit(child, here)

    visit(tree, "<module>")
    return out


def _sites_of_function(fn: Callable[..., Any], names: set[str]) -> list[Site]:
    fn = inspect.unwrap(fn)
    try:
        lines, start = inspect.getsourcelines(fn)
        file = os.path.abspath(inspect.getsourcefile(fn) or "")
    except (OSError, TypeError):
        return []
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return []
    return _calls(tree, names, start - 1, file)


def _units(tree: ast.Module) -> list[tuple[str, ast.AST, set[str]]]:
    """The file's units of code, each with its name, its tree and the names it refers to:
    a module-level function; a method of a module-level class (the class itself, a unit
    of its own, refers to each of its methods: code that makes an object may call any);
    a module-level assignment (``THREADS = {...}``, named after its targets). Functions
    and lambdas nested in a unit belong to it."""
    out: list[tuple[str, ast.AST, set[str]]] = []

    def refs(node: ast.AST) -> set[str]:
        got: set[str] = set()
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                got.add(n.id)
            elif isinstance(n, ast.Attribute):
                got.add(n.attr)
        return got

    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((stmt.name, stmt, refs(stmt)))
        elif isinstance(stmt, ast.ClassDef):
            methods = [m for m in stmt.body if isinstance(m, ast.FunctionDef |
                                                            ast.AsyncFunctionDef)]
            rest = ast.Module(body=[m for m in stmt.body if m not in methods],
                              type_ignores=[])
            out.append((stmt.name, rest, refs(rest) | {m.name for m in methods}))
            out += [(m.name, m, refs(m)) for m in methods]
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out.append((n.id, stmt, refs(stmt)))
    return out


def reachable(path: str, roots: Iterable[str]) -> set[str] | None:
    """The names of the units of code in the file at ``path`` (:func:`_units`) that code
    starting at the functions named ``roots`` can run: the roots, and everything they
    refer to by name, transitively. A name refers to every unit of that name (a method
    called on an object is found by its name alone). None if the file does not parse."""
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    edges: dict[str, set[str]] = {}
    for name, _node, names in _units(tree):
        edges.setdefault(name, set()).update(names)
    seen: set[str] = set()
    todo = [r for r in roots if r in edges]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo += [m for m in edges[n] if m in edges and m not in seen]
    return seen


def _sites_of_file(path: str, names: set[str], reach: set[str] | None = None) -> list[Site]:
    """The kernel-function call sites in the functions of the file at ``path``; with
    ``reach``, only those in the units of code named there (:func:`reachable`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    out: list[Site] = []
    for name, node, _refs in _units(tree):
        if reach is not None and name not in reach:
            continue
        one = ast.Module(body=[node], type_ignores=[]) if isinstance(node, ast.stmt) else node
        out += [s for s in _calls(one, names, 0, path) if s.function != "<module>"]
    return sorted(set(out), key=lambda s: (s.line, s.callee))


def unreached(rec: Recorder, overrides: dict[str, Callable[..., Any]],
              files: Iterable[str] = (), own: Iterable[str] | None = None,
              skip: Iterable[str] = (), roots: Iterable[str] | None = None) -> Unreached:
    """What ``rec`` never saw of ``overrides`` (name -> implementation) and ``files``. An
    override never called is listed only if its name is in ``own`` (default: all): a
    variant's ancestors' overrides that its own code no longer calls are not its patch.
    Functions named in ``skip`` are left out of the files' scan (code not in force); with
    ``roots`` (function names), so is every function of a file that code starting at
    them cannot reach (:func:`reachable`: another variant's helpers, another scenario's
    builder)."""
    mine = set(overrides) if own is None else set(own)
    names = set(KERNEL_FUNCTIONS)
    sites: dict[tuple[str, int, str], Site] = {}
    out = Unreached()
    for name, impl in sorted(overrides.items()):
        if name not in rec.called:
            if name in mine:
                code = getattr(inspect.unwrap(impl), "__code__", None)
                where = f"{_short(code.co_filename)}:{code.co_firstlineno}" if code else "?"
                out.never_called.append((name, where))
            continue
        for s in _sites_of_function(impl, names):
            sites[(s.file, s.line, s.callee)] = s
        ans = rec.answers.get(name)
        if ans is not None and len(ans) == 1:
            out.one_answer.append((name, next(iter(ans))))
    # said once, "never called" (under the kernel name), not again call site by call site
    # (under the Python name)
    never = {n for n, _w in out.never_called} | set(skip) | {
        getattr(inspect.unwrap(overrides[n]), "__name__", n) for n, _w in out.never_called}
    for path in dict.fromkeys(files):
        reach = None if roots is None else reachable(path, roots)
        for s in _sites_of_file(path, names, reach):
            if s.function not in never:  # said once: "never called"; or not in force
                sites.setdefault((s.file, s.line, s.callee), s)
    out.reviewed = len(sites)
    out.sites = sorted((s for s in sites.values() if (s.file, s.line) not in rec.sites),
                       key=lambda s: (s.file, s.line))
    return out


def under_review(variant: Any, scenario: Any
                 ) -> tuple[dict[str, Callable[..., Any]], list[str], set[str]]:
    """What a check of ``variant`` in ``scenario`` reviews: the overrides in force (name ->
    implementation, the parent chain's too), the user files they and the scenario come
    from, and the names of the functions in those files that are not in force (other
    variants' overrides)."""
    from pfnlab.kernel.variant import VARIANTS

    overrides = variant.resolved()
    files = [f for f in (user_file(scenario.build),
                         *(user_file(fn) for fn in overrides.values())) if f]
    in_force = {getattr(inspect.unwrap(fn), "__name__", "") for fn in overrides.values()}
    others = {getattr(inspect.unwrap(fn), "__name__", "") for v in VARIANTS.values()
              for fn in v.overrides.values()} - in_force
    return overrides, files, others


def review(rec: Recorder, variant: Any, scenario: Any) -> Unreached:
    """:func:`unreached` for a check of ``variant`` in ``scenario`` (:func:`under_review`)."""
    overrides, files, others = under_review(variant, scenario)
    # not in force here: other variants' overrides, and base functions this one replaces;
    # and in the files, only what the scenario's builder and the overrides in force reach
    return unreached(rec, overrides, files, own=variant.overrides,
                     skip=others | set(overrides), roots=entry_points(variant, scenario))


def entry_points(variant: Any, scenario: Any) -> set[str]:
    """The Python names of the functions a check of ``variant`` in ``scenario`` starts
    from in the user's files: the scenario's builder and every override in force (what
    they call is found by :func:`reachable`)."""
    fns = [scenario.build, *variant.resolved().values()]
    return {getattr(inspect.unwrap(fn), "__name__", "") for fn in fns}

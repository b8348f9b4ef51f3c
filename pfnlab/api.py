"""Checking from Python, and loading model files: what the ``pfnlab`` command does.

- :func:`check` explores one variant in one scenario and returns a :class:`Result`;
- :func:`diff` compares two variants on scenarios (``pfnlab diff``) and returns its text;
- :func:`load_model` imports a user's model file so that the scenarios, variants and
  properties it declares are registered (``pfnlab --model FILE``); a broken file raises
  :class:`ModelFileError` whose message is ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pfnlab import catalog, pipeline
from pfnlab.explore.program import Program
from pfnlab.explore.search import Budget
from pfnlab.explore.search.common import Result as SearchResult
from pfnlab.explore.search.common import not_established
from pfnlab.kernel import deprecation
from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS
from pfnlab.kernel.variant import VARIANTS
from pfnlab.model.scenario import SCENARIOS
from pfnlab.properties import PROPERTIES


@dataclass
class Result:
    """One check: the variant, the scenario, the program explored and the search's result."""

    variant: str
    scenario: str
    program: Program
    search: SearchResult
    #: the model's own checks that never read shared state: they hold vacuously
    vacuous_checks: list[str] = field(default_factory=list)
    #: for a vacuous check that read shared state but returned early every time: why
    vacuous_why: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No finding."""
        return self.search.ok

    @property
    def findings(self) -> list[object]:
        """The findings (:class:`~pfnlab.explore.Finding`), each with its minimal trace."""
        return list(self.search.findings)

    @property
    def violated(self) -> list[str]:
        """The ids of the violated properties, in the order found."""
        return list(dict.fromkeys(f.prop for f in self.search.findings))

    @property
    def coverage(self) -> str:
        """What the search covered ("exhaustive: ...", or where a budget cut it)."""
        return self.search.coverage

    @property
    def exhaustive(self) -> bool:
        """Every interleaving (up to equivalence) was explored."""
        return self.search.exhaustive

    @property
    def goals_missed(self) -> list[str]:
        """Goals of the scenario no execution reached (a pass would be vacuous)."""
        return list(self.search.goals_missed)

    @property
    def not_established(self) -> dict[str, str]:
        """The scenario's properties violated nowhere that still do not hold: executions
        cut short by a finding of another property (a use after free, ``fail()``) leave
        the rest of them unchecked. Maps each to why ("masked by P in N executions")."""
        return not_established(self.search, SCENARIOS[self.scenario].properties)

    def summary(self) -> str:
        """One line: findings or pass, and the coverage."""
        head = (f"{self.variant} / {self.scenario}: "
                + (f"violates {', '.join(self.violated)}" if self.violated else "no finding"))
        extra = f"; goals never reached: {', '.join(self.goals_missed)}" if self.goals_missed \
            else ""
        if self.not_established:
            extra += f"; not established: {', '.join(self.not_established)}"
        if self.vacuous_checks:
            extra += f"; vacuous checks: {', '.join(self.vacuous_checks)}"
        st = self.search.stats
        return f"{head} ({self.coverage}; {st.executions} executions{extra})"

    def report(self, full: bool = False) -> str:
        """The text ``pfnlab check`` prints for each finding (ledger, causal core, trace)."""
        return report(self, full=full)


def check(variant: str, scenario: str, *, mm: str | None = None, strategy: str = "dpor",
          executions: int | None = None, seconds: float | None = None,
          stop_first: bool = False, jobs: int = 1, **sizes: int) -> Result:
    """Explore ``variant`` in ``scenario`` (``sizes`` override the scenario's defaults).

    Names are looked up in :data:`~pfnlab.VARIANTS` and :data:`~pfnlab.SCENARIOS`
    (KeyError listing the known ones). Every distinct finding is collected, each with its
    minimal trace, unless ``stop_first``. ``jobs`` > 1 splits the DPOR search among that
    many local worker processes, as ``pfnlab check --jobs`` does (whose default is the
    cores; here the default is this process alone, as a test or the pytest plugin wants).
    """
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: give at least 1")
    workers = None
    if jobs > 1:
        from pfnlab.explore.search.parallel import LocalProcesses

        workers = LocalProcesses(jobs)
    done = pipeline.check(variant, scenario, pipeline.Search(
        strategy=strategy, stop_first=stop_first,
        budget=Budget(executions=executions, seconds=seconds), backend=workers),
        sizes=sizes, mm=mm)
    return Result(variant, scenario, done.program, done.result, done.vacuous,
                  done.vacuous_why)


def report(result: Result, full: bool = False) -> str:
    """The mail-ready report of every finding of ``result`` (empty string if none), then
    a warning per check of the model's own that holds vacuously."""
    from pfnlab.explain.analysis import analyse, unchecked_after
    from pfnlab.report.analysis import render_reports, vacuous_lines

    title = f"{result.variant} / {result.scenario}"
    props = SCENARIOS[result.scenario].properties
    analyses = [analyse(result.program, f) for f in result.search.findings]
    for an in analyses:
        an.unchecked = unchecked_after(an.finding, result.search, props)
    return "\n\n".join([*render_reports(title, analyses, full=full),
                        *(["\n".join(vacuous_lines(result.vacuous_checks,
                                                   result.vacuous_why))]
                          if result.vacuous_checks else [])])


def diff(variant_a: str, variant_b: str, scenarios: list[str] | str, *,
         full: bool = False, **sizes: int) -> str:
    """The text of ``pfnlab diff A B SCENARIO...``: what B fixes and breaks, with traces."""
    from pfnlab.patchdiff import diff as run_diff
    from pfnlab.report.diffmode import render_diff

    names = [scenarios] if isinstance(scenarios, str) else list(scenarios)
    for v in (variant_a, variant_b):
        catalog.design(v)  # KeyError naming the known ones
    return render_diff(variant_a, variant_b, run_diff(variant_a, variant_b, names, sizes=sizes),
                       full=full)


# ----------------------------------------------------------------------------- model files
class ModelFileError(Exception):
    """A model file that does not load: the message is ``FILE:LINE: what is wrong``."""


_PKG = os.path.dirname(os.path.abspath(__file__))
#: pfnlab's model of the kernel (not its engine, reports or command line)
_MODEL = tuple(os.path.join(_PKG, d) for d in ("kvm", "mm", "model", "scenarios", "variants"))


def _inside(filename: str, folder: str) -> bool:
    return os.path.abspath(filename).startswith(folder + os.sep)


def _library(filename: str) -> bool:
    import sysconfig

    paths = sysconfig.get_paths()
    return any(_inside(filename, paths[k]) for k in ("stdlib", "platstdlib", "purelib",
                                                      "platlib") if k in paths)


def _shown(filename: str) -> str:
    rel = os.path.relpath(filename) if os.path.isabs(filename) else filename
    return rel if not rel.startswith("..") else filename


def model_error(e: BaseException, what: str, builder: object = None) -> ModelFileError:
    """``e``, raised by model code while ``what`` ran (``"scenario 'x' on v5.4"``), as a
    :class:`ModelFileError` whose message is ``FILE:LINE: what: Type: message``.

    The line is the innermost one of the user's code (a model file, outside pfnlab), else
    of pfnlab's kernel model; when neither is on the stack (the builder returned no
    threads, or not an ``instance(...)``: the engine refused it), the ``builder``
    function's definition.
    """
    # an exception from a worker process brings the frames it was raised at (workers.py)
    shipped = getattr(e, "worker_frames", None)
    frames = ([traceback.FrameSummary(fn, ln, "") for fn, ln in shipped] if shipped
              else [f for f in traceback.extract_tb(e.__traceback__) if f.filename])
    user = [f for f in frames if not _inside(f.filename, _PKG) and not _library(f.filename)
            and not f.filename.startswith("<")]
    model = [f for f in frames if any(_inside(f.filename, d) for d in _MODEL)]
    code = getattr(builder, "__code__", None)
    if user or model:
        fr = (user or model)[-1]
        where = f"{_shown(fr.filename)}:{fr.lineno}"
    elif code is not None:
        where = f"{_shown(code.co_filename)}:{code.co_firstlineno}"
    else:
        where = "pfnlab"
    msg = str(e)
    if isinstance(e, RecursionError) and not (user or model):
        text = ("RecursionError: a value in the model's state is nested too deeply for the "
                "checker to fingerprint or copy it (a field holding a structure nested "
                "thousands deep?): keep the values of shared fields shallow")
    elif isinstance(e, ValueError) and msg.endswith("has no threads"):
        text = ("its builder returned no threads: instance(s, {'name': function, ...}, ...) "
                "needs at least one")
    else:
        text = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    return ModelFileError(f"{where}: {what}: {text}")


@dataclass
class ModelFile:
    """What a loaded model file declared."""

    path: str
    module: ModuleType
    scenarios: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    #: SHA-256 of the file's text when it was loaded (recorded in JSON reports)
    sha256: str = ""


_LOADED: dict[str, ModelFile] = {}


def load_model(path: str | os.PathLike[str]) -> ModelFile:
    """Import the model file at ``path``; its declarations register into the registries.

    Loading the same file again returns what the first load declared. A file that does not
    compile, raises while it is imported or declares a name twice raises
    :class:`ModelFileError` naming the file and line, and registers nothing.
    """
    full = os.path.abspath(os.fspath(path))
    if full in _LOADED:
        return _LOADED[full]
    shown = os.fspath(path)
    if os.path.isdir(full):
        raise ModelFileError(f"{shown}: is a directory, not a model file (a .py file)")
    try:
        with open(full, "rb") as fb:
            raw = fb.read()
    except OSError as e:
        raise ModelFileError(f"{shown}: cannot read the model file: {e.strerror}") from None
    if not full.endswith(".py"):
        raise ModelFileError(f"{shown}: a model file is Python source ending in .py "
                             f"(see docs/tutorial.md), not {os.path.basename(full)}")
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        lineno = raw[:e.start].count(b"\n") + 1
        raise ModelFileError(f"{shown}:{lineno}: not UTF-8 text (byte {raw[e.start]:#04x}); a "
                             "model file is Python source saved as UTF-8") from None
    try:
        compile(source, full, "exec")
    except ValueError as e:  # a null byte, on Pythons that say ValueError
        raise ModelFileError(f"{shown}: invalid source: {e}") from None
    except SyntaxError as e:
        where = f"{shown}:{e.lineno}" if e.lineno else shown
        text = (e.text or "").rstrip("\n")
        caret = ""
        if text and e.offset:
            indent = len(text) - len(text.lstrip())
            caret = f"\n    {text.strip()}\n    {' ' * max(0, e.offset - 1 - indent)}^"
        raise ModelFileError(f"{where}: invalid syntax: {e.msg}{caret}") from None
    deprecation.rearm()  # each model file hears of every deprecation it uses
    stem = os.path.splitext(os.path.basename(full))[0]
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    modname = f"pfnlab_model_{''.join(c if c.isalnum() else '_' for c in stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(modname, full)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ModelFileError(f"{shown}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    before = _keys()
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(modname, None)
        _rollback(before)
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        line = None
        for fr in traceback.extract_tb(e.__traceback__):
            if os.path.abspath(fr.filename) == full:
                line = fr.lineno
        where = f"{shown}:{line}" if line else shown
        raise ModelFileError(f"{where}: {type(e).__name__}: {e}") from None
    after = _keys()
    mf = ModelFile(full, module,
                   scenarios=[n for n in SCENARIOS if n not in before[0]],
                   variants=[n for n in VARIANTS if n not in before[1]],
                   properties=[n for n in PROPERTIES if n not in before[2]],
                   sha256=hashlib.sha256(source.encode()).hexdigest())
    del after
    _LOADED[full] = mf
    return mf


def _keys() -> tuple[set[str], set[str], set[str], dict[str, Any]]:
    """The registries' names (and the kernel functions themselves: a model file's
    ``@kfunc`` may replace one of pfnlab's)."""
    return set(SCENARIOS), set(VARIANTS), set(PROPERTIES), dict(KERNEL_FUNCTIONS)


def _rollback(before: tuple[set[str], set[str], set[str], dict[str, Any]]) -> None:
    regs: tuple[dict[str, Any], ...] = (SCENARIOS, VARIANTS, PROPERTIES, KERNEL_FUNCTIONS)
    for reg, keys in zip(regs, before, strict=True):
        for k in [k for k in reg if k not in keys]:
            del reg[k]
    KERNEL_FUNCTIONS.update(before[3])  # the library's own, where a model file replaced it


@contextmanager
def registries_restored() -> Iterator[None]:
    """Undo, on exit, every scenario, variant, property and kernel function declared inside
    (and forget the model files loaded inside): for tests that load model files."""
    before = _keys()
    loaded = set(_LOADED)
    try:
        yield
    finally:
        _rollback(before)
        for k in [k for k in _LOADED if k not in loaded]:
            del _LOADED[k]

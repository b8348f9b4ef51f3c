"""bench/differential.py: the long differential run, its reproducibility and its shrinker."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.engine.programs import WIDE, WideSpec, compile_program, wide_source, wide_spec

BENCH = Path(__file__).resolve().parents[2] / "bench" / "differential.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_differential", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_a_short_run_reports_no_disagreement(bench: ModuleType,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--programs", "6", "--seed", "3", "--jobs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("differential run: 6 programs from #0, seed 3, 1 jobs, "
                      f"≤ {bench.LONG_INTERLEAVINGS} interleavings each")
    assert out[-1] == "6 programs, 0 disagreements"


def test_programs_are_reproducible_one_by_one(bench: ModuleType) -> None:
    a = bench.spec_of(1, 4711, WIDE)
    assert a == bench.spec_of(1, 4711, WIDE)
    assert a == wide_spec(random.Random("1:4711").randint, WIDE)
    assert a != bench.spec_of(2, 4711, WIDE)


def _has_free(spec: WideSpec) -> bool:
    def ops(seq: tuple) -> bool:
        return any(o[0] == "free" or (o[0] in ("cs", "if") and ops(o[2])) for o in seq)

    return any(ops(t) for t in spec.threads)


def test_shrinking_keeps_what_is_wrong_and_drops_the_rest(bench: ModuleType) -> None:
    i = next(i for i in range(100) if _has_free(bench.spec_of(5, i, WIDE)))
    small = bench.shrink(bench.spec_of(5, i, WIDE), _has_free)
    assert len(small.threads) == 1 and len(small.threads[0]) == 1
    assert small.threads[0][0][0] == "free"
    assert (small.invariants, small.goals, small.finals) == ((), (), ())


def test_a_disagreement_is_printed_as_code(bench: ModuleType,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = bench.Outcome(7, ["dpor cache=True: made up"], [], 1, 1, 1)
    assert bench.report(5, out, WIDE, shrinking=False) == 1
    text = capsys.readouterr().out
    assert "program #7 (seed 5) DISAGREES:\n  dpor cache=True: made up" in text
    assert "# reproduce: python bench/differential.py --seed 5 --start 7 --programs 1" in text
    source = text[text.index("from pfnlab.explore import"):]
    assert source == wide_source(bench.spec_of(5, 7, WIDE), "disagreement-7") + "\n"
    compile_program(source, "printed")

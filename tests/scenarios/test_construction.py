"""Scenario registry and construction: order, sizes, goals reached under v5.4."""

import pytest

from pfnlab.explore import Execution
from pfnlab.explore.search import explore
from pfnlab.properties import PROPERTIES
from pfnlab.scenarios import SCENARIOS
from pfnlab.variants import get_variant

ORDER = [
    "devdax-unbind",
    "fsdax-truncate",
    "thp-split",
    "dirty-log-collapse",
    "remapped-vs-unbind",
    "vcpu-map-vs-unbind",
    "two-vcpu-same-gfn",
    "ro-pfnmap",
]


def test_registry_order_and_properties():
    assert list(SCENARIOS) == ORDER
    assert list(PROPERTIES) == [
        "refs-balanced", "no-put-unreferenced", "no-metadata-after-teardown",
        "no-stale-spte", "no-spte-to-freed", "ad-only-tracked", "huge-only-thp",
        "teardown-terminates", "pin-held", "notifier-balanced", "readonly-respected",
        "secondary-coherent", "no-root-after-free",
    ]
    for s in SCENARIOS.values():
        assert set(s.properties) <= set(PROPERTIES)
        assert s.goals and s.params and all(v >= 1 for v in s.params.values())


@pytest.mark.parametrize("bad", [{"vcpus": 0}, {"bogus": 1}, {"pages": -2}])
def test_bad_sizes_are_rejected_with_the_valid_names(bad):
    sc = SCENARIOS["devdax-unbind"]
    with pytest.raises(ValueError) as e:
        sc.program(get_variant("v5.4"), **bad)
    msg = str(e.value)
    assert "devdax-unbind" in msg and "vcpus" in msg and "pages" in msg and "faults" in msg


def test_program_name_and_larger_sizes_build():
    sc = SCENARIOS["devdax-unbind"]
    prog = sc.program(get_variant("v5.4"), vcpus=3, pages=2, faults=2)
    assert prog.name == "v5.4/devdax-unbind"
    ex = Execution(prog)
    assert ex.thread_names() == ["admin", "vcpu0", "vcpu1", "vcpu2"]
    assert ex.context.variant == "v5.4" and ex.context.kvm is not None
    ex.close()


@pytest.mark.parametrize("name", ORDER)
def test_every_scenario_reaches_its_goals_under_v54(name):
    sc = SCENARIOS[name]
    res = explore(sc.program(get_variant("v5.4")), stop_first=False, minimal=False)
    assert res.exhaustive
    assert sorted(res.goals_reached) == sorted(sc.goals), res.goals_missed
    # every finding is under a registered property of the scenario (or a model error)
    for f in res.findings:
        assert f.prop in sc.properties, (f.kind, f.prop, f.message)

"""Compatibility: the scenario toolkit lives in :mod:`pfnlab.model.scenario` (public via
:mod:`pfnlab`)."""

from pfnlab.model.scenario import *  # noqa: F403
from pfnlab.model.scenario import (  # noqa: F401
    ALL_KVM,
    GOAL_MAP_OVERLAP,
    GOAL_OVERLAP,
    GOAL_TEARDOWN,
    SCENARIOS,
    Progress,
    Scenario,
    Setup,
    checks,
    goal_map_during_invalidation,
    goal_overlap,
    goal_reached,
    instance,
    mm_version,
    norefs,
    own_gfns,
    reached,
    register_scenario,
    scenario,
    teardown_goals,
    vcpu_faults,
    vm_on,
    with_vcpus,
)

"""What a scenario is: a named, sized recipe, its registry, and the host mm it runs on.

A :class:`Scenario` is a named, sized recipe: ``build(variant, sizes)`` runs inside the
engine's ``Execution`` (it is the body of ``Program.build``) and returns an
:class:`~pfnlab.explore.Instance` with threads made of the model's thread bodies
(:mod:`pfnlab.kvm.threads`, :mod:`pfnlab.mm.dax`, ...), the invariants and final checks of
the properties it checks (ids from :mod:`pfnlab.properties`) and its goals.
:meth:`Scenario.program` validates the sizes, installs the variant's
:class:`~pfnlab.kernel.world.World` (overrides and mm version) before ``build`` runs, and
returns the :class:`~pfnlab.explore.Program` the search explores.

The pieces every scenario builds from are :mod:`pfnlab.model.setup` (the VM over host
regions, the vCPU threads, milestones) and :mod:`pfnlab.model.instance` (the instance with
the built-in checks of its properties, and the goals); both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import overload

from pfnlab.explore import Instance, Program, set_context
from pfnlab.kernel.variant import Variant, check_name
from pfnlab.model.instance import (  # re-exported: pfnlab.model.scenario.instance as before
    ALL_KVM,
    GOAL_MAP_OVERLAP,
    GOAL_OVERLAP,
    GOAL_TEARDOWN,
    checks,
    goal_map_during_invalidation,
    goal_overlap,
    goal_reached,
    instance,
    teardown_goals,
)
from pfnlab.model.setup import (  # re-exported: pfnlab.model.scenario.vm_on as before
    Progress,
    Setup,
    norefs,
    own_gfns,
    reached,
    vcpu_faults,
    vm_on,
    vm_on_devdax,
    with_vcpus,
)
from pfnlab.properties import PROPERTIES

__all__ = [
    "ALL_KVM", "DEFAULT_MM", "GOAL_MAP_OVERLAP", "GOAL_OVERLAP", "GOAL_TEARDOWN",
    "MAX_SIZE", "MAX_VCPUS", "MM_VERSIONS", "SCENARIOS", "Progress", "Scenario", "Setup",
    "checks", "goal_map_during_invalidation", "goal_overlap", "goal_reached", "instance",
    "mm_version", "norefs", "own_gfns", "reached", "register_scenario", "scenario",
    "size_cap", "teardown_goals", "vcpu_faults", "vm_on", "vm_on_devdax", "with_vcpus",
]


#: the most vCPUs a scenario may have (3 vCPUs by 3 pages already takes minutes)
MAX_VCPUS = 16
#: the largest any other size may be (pages, faults, huge pages, ...)
MAX_SIZE = 64


def size_cap(name: str) -> int:
    """The largest value size ``name`` may take (checked by :meth:`Scenario.sizes`)."""
    return MAX_VCPUS if name == "vcpus" else MAX_SIZE


@dataclass(frozen=True)
class Scenario:
    """A scenario: default sizes, the properties it checks, its goals and its builder."""

    name: str
    summary: str
    params: dict[str, int]
    properties: tuple[str, ...]
    goals: tuple[str, ...]
    build: Callable[[Variant, dict[str, int]], Instance]

    def __post_init__(self) -> None:
        unknown = [p for p in self.properties if p not in PROPERTIES]
        if unknown:
            raise ValueError(f"scenario {self.name!r}: unknown property ids {unknown}")
        for k, v in self.params.items():  # defaults obey the rules --size does
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= size_cap(k):
                raise ValueError(
                    f"scenario {self.name!r}: default size {k}={v!r} must be a whole number "
                    f"from 1 to {size_cap(k)} (the same rule as --size)")

    def sizes(self, **sizes: int) -> dict[str, int]:
        """The default sizes updated with ``sizes``; ValueError naming the valid ones."""
        valid = ", ".join(f"{k} (default {v})" for k, v in self.params.items())
        out = dict(self.params)
        for k, v in sizes.items():
            if k not in self.params:
                raise ValueError(
                    f"scenario {self.name!r} has no size {k!r}; valid sizes: {valid}"
                )
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(
                    f"scenario {self.name!r}: size {k}={v!r} must be an integer >= 1; "
                    f"valid sizes: {valid}"
                )
            cap = size_cap(k)
            if v > cap:
                raise ValueError(
                    f"scenario {self.name!r}: size {k}={v} is above the cap of {cap} "
                    f"({MAX_VCPUS} vCPUs, {MAX_SIZE} for other sizes: a state space grows "
                    "exponentially with each size)"
                )
            out[k] = v
        return out

    @overload
    def program(self, variant: Variant, **sizes: int) -> Program: ...

    @overload
    def program(self, variant: Variant, mm: str | None = None, **sizes: int) -> Program: ...

    def program(self, variant: Variant, mm: object = None, **sizes: int) -> Program:
        """The program ``<variant>/<scenario>`` at these sizes (defaults for the rest).

        ``mm`` selects the host mm the KVM design runs on (:func:`mm_version`): ``None``
        (default) or ``"5.4"``, the mm of the 2019 thread; ``"5.18"``; ``"variant"``, the
        variant's own ``mm_version``. Comparing designs on the same mm is the default.
        (The first overload only lets callers pass a ``dict[str, int]`` of sizes.)
        """
        merged = self.sizes(**sizes)
        mm_ver = mm_version(variant, mm)
        build = self.build

        def run() -> Instance:
            set_context(variant.world(mm_version=mm_ver))
            return build(variant, merged)

        return Program(f"{variant.name}/{self.name}", run)


#: Every registered scenario, by name, in the order the checker reports them.
SCENARIOS: dict[str, Scenario] = {}


def register_scenario(sc: Scenario) -> Scenario:
    """Add ``sc`` to :data:`SCENARIOS` (ValueError if the name is taken, empty or holds a
    control character)."""
    check_name("scenario", sc.name)
    if sc.name in SCENARIOS:
        raise ValueError(f"scenario {sc.name!r} is defined twice")
    SCENARIOS[sc.name] = sc
    return sc


def scenario(
    name: str,
    *,
    summary: str = "",
    sizes: dict[str, int] | None = None,
    properties: Iterable[str] = (),
    goals: Iterable[str] = (),
) -> Callable[[Callable[[Variant, dict[str, int]], Instance]], Scenario]:
    """Decorator: declare and register a scenario whose builder is the decorated function.

    The builder ``build(variant, sizes)`` runs at the start of every execution: it makes
    the host (:class:`~pfnlab.mm.Host`), the VM (:func:`vm_on`), the threads, and returns
    :func:`instance` (or an :class:`~pfnlab.explore.Instance`). ``sizes`` are the default
    sizes (``--size NAME=N`` changes them), ``properties`` the ids checked (built-in ones
    from :data:`~pfnlab.properties.PROPERTIES`, or your own from
    :func:`~pfnlab.properties.define_property`), ``goals`` the names of the "sometimes"
    goals the builder returns (a pass with a goal never reached is reported not covered).
    The summary defaults to the builder's docstring's first line.
    """

    def deco(build: Callable[[Variant, dict[str, int]], Instance]) -> Scenario:
        doc = (build.__doc__ or "").strip().splitlines()
        return register_scenario(Scenario(
            name=name,
            summary=summary or (doc[0] if doc else name),
            params=dict(sizes or {}),
            properties=tuple(properties),
            goals=tuple(goals),
            build=build,
        ))

    return deco


#: host mm versions a scenario can run on (see :func:`mm_version`)
MM_VERSIONS = ("5.4", "5.18")
#: the default: the mm of the 2019 thread (memunmap_pages waits for page references)
DEFAULT_MM = "5.4"


def mm_version(variant: Variant, mm: object) -> str:
    """The mm version for ``mm``: ``None`` → 5.4, "5.4"/"5.18", "variant" → the variant's.

    "5.4": ``memunmap_pages`` drops the idle page references and waits for the rest (the
    2019 hang). "5.18" (27674ef6c73f): it waits only for the pgmap's percpu_ref and removes
    the memmap whatever the page refcounts are. ValueError naming the valid values.
    """
    if mm is None:
        return DEFAULT_MM
    if mm == "variant":
        return variant.mm_version
    if isinstance(mm, str) and mm in MM_VERSIONS:
        return mm
    valid = ", ".join(repr(v) for v in (None, *MM_VERSIONS, "variant"))
    raise ValueError(f"unknown mm {mm!r}; valid: {valid}")

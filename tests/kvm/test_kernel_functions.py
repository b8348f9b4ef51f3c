"""Issue 11, "calling a kernel function is a trap": KERNEL_FUNCTIONS[name] runs the checked
variant's version (it ran the base one, bypassing the override); ``.base`` and
``Variant.implementation`` name the others."""

from __future__ import annotations

import pytest

from pfnlab import KERNEL_FUNCTIONS, VARIANTS
from pfnlab.explore import Check, Instance, Program, set_context
from pfnlab.explore.search import explore
from pfnlab.mm import Host


def _answer_of(variant: str, call: str) -> bool:
    """What kvm_is_zone_device_pfn says of a devdax pfn, called as ``call`` says, while
    ``variant`` is checked (read from a final check over a ghost the thread set)."""
    from pfnlab.explore import Ghost, Shared

    class Out(Shared):
        v = Ghost(None)

    def build() -> Instance:
        host = Host()
        dax = host.add_devdax(1, name="dax0")
        set_context(VARIANTS[variant].world(host=host))
        out = Out("out")

        def t0() -> None:
            fn = KERNEL_FUNCTIONS["kvm_is_zone_device_pfn"]
            if call == "base":
                fn = fn.base  # type: ignore[attr-defined]
            elif call == "v5.4":
                fn = VARIANTS["v5.4"].implementation("kvm_is_zone_device_pfn")
            out.v = fn(dax.pfn)

        return Instance(threads={"t0": t0},
                        final_checks=[Check("answer", lambda: f"answer {out.v}")])

    res = explore(Program(f"kf-{variant}-{call}", build), stop_first=False, minimal=False)
    return res.findings[0].message == "answer True"


def test_calling_by_name_runs_the_checked_variants_version() -> None:
    # v5.3 has no kvm_is_zone_device_pfn (its stand-in says no); the base model's says yes
    assert _answer_of("v5.3", "registry") is False
    assert _answer_of("v5.4", "registry") is True


def test_base_and_a_named_variants_version() -> None:
    assert _answer_of("v5.3", "base") is True
    assert _answer_of("v5.3", "v5.4") is True
    own = VARIANTS["v5.3"].overrides["kvm_is_zone_device_pfn"]
    assert VARIANTS["v5.3"].implementation("kvm_is_zone_device_pfn") is own
    # v5.4 overrides nothing: the base model's function
    assert VARIANTS["v5.4"].implementation("kvm_is_zone_device_pfn") is \
        KERNEL_FUNCTIONS["kvm_is_zone_device_pfn"].base  # type: ignore[attr-defined]


def test_an_unknown_name_says_what_is_close() -> None:
    with pytest.raises(KeyError, match="did you mean kvm_is_zone_device_pfn"):
        VARIANTS["v5.4"].implementation("kvm_is_zone_device_pf")

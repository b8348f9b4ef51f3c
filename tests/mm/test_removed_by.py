"""``Host.removed_by(thread)``: the thread that removes device memory reads its flags,
zone, pgmap and sections without steps; a wrong declaration costs steps, never a verdict.
"""

from __future__ import annotations

import pytest

from pfnlab.explore import Program, context
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search import explore
from pfnlab.scenarios import SCENARIOS
from pfnlab.variants import get_variant


def _program(variant: str, scenario: str, remover: str | None) -> Program:
    base = SCENARIOS[scenario].program(get_variant(variant))

    def build():  # type: ignore[no-untyped-def]
        inst = base.build()
        context().host.remover = remover  # what removed_by() declares (or no declaration)
        return inst

    return Program(f"{scenario}-{remover}", build)


def _labels(prog: Program) -> list[str]:
    """The steps of the execution that runs the vCPU first (its fault installs an SPTE, the
    admin's VM exit then zaps it), each as 'thread: label'."""
    ex = Execution(prog)
    out = []
    while ex.enabled():
        tid = ex.enabled()[-1]
        out.append(f"{ex.threads[tid].name}: {ex.label(tid)}")
        ex.step(tid)
    ex.close()
    return out


def test_the_removers_reads_of_device_page_flags_are_not_steps() -> None:
    declared = _labels(_program("v5.4", "devdax-unbind", "admin"))
    undeclared = _labels(_program("v5.4", "devdax-unbind", None))
    reads = [f"read {f}" for f in ("page@0x104.reserved", "page@0x104.zone",
                                   "section@0x104.state")]
    assert any(r in lab for lab in undeclared for r in reads if lab.startswith("admin"))
    assert not any(r in lab for lab in declared for r in reads if lab.startswith("admin"))
    assert len(declared) < len(undeclared)
    # the refcount the WARNs read races with the vCPUs' gets and puts: still a step
    assert any("read page@0x104.refcount" in lab for lab in declared if lab.startswith("admin"))


@pytest.mark.parametrize(("variant", "scenario"), [
    ("v5.3", "devdax-unbind"), ("v5.4", "devdax-unbind"),
    ("dan-early-put", "vcpu-map-vs-unbind"), ("sean-v1", "remapped-vs-unbind"),
])
def test_a_wrong_declaration_costs_steps_never_a_verdict(variant: str, scenario: str) -> None:
    pinned = {"Page.pgmap", "Page.reserved", "Page.zone", "Section.state"}

    def verdict(remover: str | None) -> object:
        prog = _program(variant, scenario, remover)
        res = explore(prog, stop_first=False, minimal=False)
        assert res.exhaustive
        # caught, not trusted: the admin's removal while vcpu0 "holds" the pages promotes
        # them back to steps; the right declaration promotes none of them
        assert pinned <= prog.knowledge.steps() if remover == "vcpu0" else \
            not pinned & prog.knowledge.steps()
        return sorted(f.key for f in res.findings)

    right, none, wrong = verdict("admin"), verdict(None), verdict("vcpu0")
    assert right == none == wrong

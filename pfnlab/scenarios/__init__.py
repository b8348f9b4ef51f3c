"""Scenarios: one module each; :data:`SCENARIOS` in the order the checker reports them.

==================  =========================================================================
name                what runs
==================  =========================================================================
devdax-unbind       vCPUs fault on a devdax guest; VM exit, then device unbind (2019 hang)
fsdax-truncate      vCPUs fault on an fsdax file while it is truncated (layout-break wait)
thp-split           vCPUs fault on THP tails while the host splits the THP
dirty-log-collapse  dirty logging off (zap collapsible SPTEs) while the devdax is unbound
remapped-vs-unbind  hva_to_pfn_remapped on VM_PFNMAP device memory while it is unbound
vcpu-map-vs-unbind  kvm_vcpu_map holds a devdax page across unbind
two-vcpu-same-gfn   two vCPUs fault on the same devdax gfn while it is unbound
ro-pfnmap           read and write faults on read-only VM_PFNMAP memory (bd2fae8da794)
==================  =========================================================================
"""

from pfnlab import SCENARIOS, Scenario, register_scenario
from pfnlab.catalog import scenario as get_scenario
from pfnlab.scenarios import (
    devdax_unbind,
    dirty_log_collapse,
    fsdax_truncate,
    remapped_vs_unbind,
    ro_pfnmap,
    thp_split,
    two_vcpu_same_gfn,
    vcpu_map_vs_unbind,
)

for _s in (
        devdax_unbind.SCENARIO,
        fsdax_truncate.SCENARIO,
        thp_split.SCENARIO,
        dirty_log_collapse.SCENARIO,
        remapped_vs_unbind.SCENARIO,
        vcpu_map_vs_unbind.SCENARIO,
        two_vcpu_same_gfn.SCENARIO,
        ro_pfnmap.SCENARIO,
):
    register_scenario(_s)


__all__ = ["SCENARIOS", "Scenario", "get_scenario"]

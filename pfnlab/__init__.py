"""pfnlab: a model checker for KVM/mm page-refcount and page-lifetime bugs.

This module is the public API: everything a model file needs is one import away
(``from pfnlab import ...``), and the built-in scenarios and variants are written with it.
The kernel functions themselves are in :mod:`pfnlab.mm` (host mm) and :mod:`pfnlab.kvm`
(KVM's MMU), under their kernel names.

Declare
    - :func:`scenario` (decorator) — a scenario: default sizes, properties, goals, and the
      builder that makes the host, the VM, the threads and the checks;
    - :func:`variant` — a design: its parent and the kernel functions it overrides by name;
    - :func:`define_property` — a property of your own, checked by your own
      :class:`Check` s (invariants after every step, final checks at the end);
    - :func:`kfunc` — a new kernel function that variants may override by name.

Build (inside a scenario's builder)
    - :class:`Host` — the host: ``add_anon``, ``add_thp``, ``add_devdax``, ``add_fsdax``,
      ``add_pfnmap_io``, ... each returns a :class:`Region` (pfns, VMA, mappings);
    - :func:`vm_on` — a VM with one memslot per region and its vCPUs (a :class:`Setup`);
      :func:`vm_on_devdax` — the same over one device-dax region, with the device;
    - thread bodies (plain functions; each read or write of a shared field is a scheduling
      point): :func:`vcpu_faults`, :func:`vcpu_fault`, :func:`vm_exit`,
      :func:`vcpu_exit`, :func:`dev_dax_unbind`, :func:`kill_dev_dax`,
      :func:`fsdax_break_layouts`, :func:`dirty_log_disable`, :func:`vcpu_map_thread`,
      :func:`thp_split_thread`; :func:`with_vcpus` adds a fault thread per vCPU;
    - :class:`PfnCache` — a mapping KVM keeps without a page reference (a pfn cache, the
      VMCS APIC-access address), checked by the built-in ``secondary-coherent``;
    - :func:`operation` — ``with operation("vcpu0:gpc"):`` a thread's work whose page
      references belong to that owner in the ledger and must all be put when it returns
      (the built-in thread bodies run faults and maps this way);
    - :func:`instance` — the threads, the built-in checks of the properties, goals and
      your own checks;
    - :func:`world` — the running execution's :class:`World`: a builder keeps its own
      objects in ``world().extra`` and an override finds them there (and ``world().kvm``,
      ``world().host``); :func:`free` frees a shared object (a later access is a
      use-after-free); :func:`note` annotates the thread's latest step in the trace;
    - :func:`orders` — ``orders(MyCache, "seq", primitive=..., how=..., where=...)``: how
      the kernel orders steps that race on a field of your model, named by the causal core
      of a finding whose deciding pair races there (as KVM's ``mmu_notifier_seq`` is);
      ``lockless=True`` only for a pair that shares no lock, the field
      ``pfnlab.kernel.ordering.FREED`` for an access racing the object's freeing.

Check
    - :func:`check` — explore one variant in one scenario (a :class:`Result`);
      :func:`diff` — which properties one variant fixes or breaks relative to another;
      :func:`report` — the mail-ready text of a result's findings;
    - :func:`load_model` — load a model file (what ``pfnlab --model FILE`` does).

Upgrading (CHANGELOG.md; docs/tutorial.md, "When pfnlab changes")
    - :class:`PfnlabDeprecationWarning` — a model file uses a name or calling convention a
      later release removes (it still works, for at least one release);
    - :class:`LibraryFunctionReplaced` — a ``@kfunc`` of a model file has the name of one of
      pfnlab's own, which it replaces for the model's calls;
    - :class:`ReturnConventionError` and :class:`KernelFunctionRecursion` — the model errors
      of an override that returns another form of value than pfnlab's version, or calls
      itself without end.
"""

from pfnlab.explore import (
    Check,
    Instance,
    Lock,
    RwLock,
    Shared,
    Srcu,
    Stable,
    ThreadBody,
    Violation,
    fail,
    free,
    keep,
    note,
    summarised,
    wait_for_change,
    wait_until,
)
from pfnlab.explore.shared import Field, Ghost, Guarded, Plain
from pfnlab.kernel.deprecation import PfnlabDeprecationWarning
from pfnlab.kernel.kfunc import (
    KERNEL_FUNCTIONS,
    KernelFunctionRecursion,
    LibraryFunctionReplaced,
    ReturnConventionError,
    kfunc,
)
from pfnlab.kernel.ordering import orders
from pfnlab.kernel.variant import VARIANTS, Variant, register, variant
from pfnlab.kernel.world import World, world
from pfnlab.kvm import (
    Kvm,
    Memslot,
    PfnCache,
    Vcpu,
    dirty_log_disable,
    ghost,
    kvm_owner,
    kvm_vcpu_map,
    kvm_vcpu_unmap,
    vcpu_exit,
    vcpu_fault,
    vcpu_map_thread,
    vm_exit,
)
from pfnlab.kvm.ghost import operation
from pfnlab.kvm.vcpu_map import map_owner, touch_mapping
from pfnlab.mm import (
    Host,
    Region,
    dev_dax_unbind,
    fsdax_break_layouts,
    kill_dev_dax,
    thp_split_thread,
)
from pfnlab.model.scenario import (
    ALL_KVM,
    GOAL_MAP_OVERLAP,
    GOAL_OVERLAP,
    GOAL_TEARDOWN,
    SCENARIOS,
    Scenario,
    Setup,
    goal_map_during_invalidation,
    goal_overlap,
    goal_reached,
    instance,
    own_gfns,
    reached,
    register_scenario,
    scenario,
    teardown_goals,
    vcpu_faults,
    vm_on,
    vm_on_devdax,
    with_vcpus,
)
from pfnlab.properties import (
    NO_METADATA_AFTER_TEARDOWN,
    NO_PUT_UNREFERENCED,
    NO_SPTE_TO_FREED,
    NO_STALE_SPTE,
    NOTIFIER_BALANCED,
    PIN_HELD,
    PROPERTIES,
    READONLY_RESPECTED,
    REFS_BALANCED,
    TEARDOWN_TERMINATES,
    Property,
    define_property,
)

register_variant = register

from pfnlab.api import ModelFileError, Result, check, diff, load_model, report  # noqa: E402
from pfnlab.catalog import load_builtins  # noqa: E402

__version__ = "0.4.0"

__all__ = [
    "ALL_KVM",
    "GOAL_MAP_OVERLAP",
    "GOAL_OVERLAP",
    "GOAL_TEARDOWN",
    "KERNEL_FUNCTIONS",
    "NOTIFIER_BALANCED",
    "NO_METADATA_AFTER_TEARDOWN",
    "NO_PUT_UNREFERENCED",
    "NO_SPTE_TO_FREED",
    "NO_STALE_SPTE",
    "PIN_HELD",
    "PROPERTIES",
    "READONLY_RESPECTED",
    "REFS_BALANCED",
    "SCENARIOS",
    "TEARDOWN_TERMINATES",
    "VARIANTS",
    "Check",
    "Field",
    "Ghost",
    "Guarded",
    "Host",
    "Instance",
    "KernelFunctionRecursion",
    "Kvm",
    "LibraryFunctionReplaced",
    "Lock",
    "Memslot",
    "ModelFileError",
    "PfnCache",
    "PfnlabDeprecationWarning",
    "Plain",
    "Property",
    "Region",
    "Result",
    "ReturnConventionError",
    "RwLock",
    "Scenario",
    "Setup",
    "Shared",
    "Srcu",
    "Stable",
    "ThreadBody",
    "Variant",
    "Vcpu",
    "Violation",
    "World",
    "check",
    "define_property",
    "dev_dax_unbind",
    "diff",
    "dirty_log_disable",
    "fail",
    "free",
    "fsdax_break_layouts",
    "ghost",
    "goal_map_during_invalidation",
    "goal_overlap",
    "goal_reached",
    "instance",
    "keep",
    "kfunc",
    "kill_dev_dax",
    "kvm_owner",
    "kvm_vcpu_map",
    "kvm_vcpu_unmap",
    "load_model",
    "map_owner",
    "note",
    "operation",
    "orders",
    "own_gfns",
    "reached",
    "register_scenario",
    "register_variant",
    "report",
    "scenario",
    "summarised",
    "teardown_goals",
    "thp_split_thread",
    "touch_mapping",
    "variant",
    "vcpu_exit",
    "vcpu_fault",
    "vcpu_faults",
    "vcpu_map_thread",
    "vm_exit",
    "vm_on",
    "vm_on_devdax",
    "wait_for_change",
    "wait_until",
    "with_vcpus",
    "world",
]

# the built-in designs and scenarios are model files written with the names above: the
# catalog loads them now that they can be imported
load_builtins()

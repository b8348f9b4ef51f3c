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


# Issue 29, item 4: a model written against an earlier pfnlab must not recurse to a
# cut-off, nor have a value of the old convention read by the new one and reported as a
# finding: each is a model error that says what changed.

_SCENARIO = '''
from pfnlab import KERNEL_FUNCTIONS, Host, instance, scenario, variant, vcpu_faults, vm_on
from pfnlab.kvm import hva_to_pfn_fast, kvm_release_pfn_clean
from pfnlab.mm import pfn_to_page, zap_page_range


@scenario("kf-fault-vs-zap", sizes={"faults": 1}, properties=["refs-balanced"])
def build(variant, sz):
    """a vCPU faults on anonymous memory while the host zaps it"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)

    return instance(s, {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0])}, ["refs-balanced"])
'''


def test_an_override_calling_itself_by_name_is_refused_with_what_to_write(model_file) -> None:
    """An override that meant to extend the base model's version and calls its own name
    (each level a shared write: a scheduling point) stops at SELF_CALL_LIMIT deep in every
    execution, with a message naming `.base`, instead of recursing to Python's limit."""
    from pfnlab.api import check
    from pfnlab.kernel.kfunc import SELF_CALL_LIMIT

    path = model_file(_SCENARIO + '''

def release_marking(pfn):
    """kvm_release_pfn_clean: mark the page accessed, then (meant) the base's put."""
    pfn_to_page(pfn).accessed = True
    return kvm_release_pfn_clean(pfn)


variant("kf-self", parent="v5.4", overrides={"kvm_release_pfn_clean": release_marking})
''')
    res = check("kf-self", "kf-fault-vs-zap")
    assert res.exhaustive
    [f] = res.findings
    assert f.kind == "exception" and f.message.startswith("KernelFunctionRecursion: ")
    assert f"release_marking ({path}:" in f.message
    assert f"called kvm_release_pfn_clean() {SELF_CALL_LIMIT} deep" in f.message
    assert "kvm_release_pfn_clean.base(...)" in f.message


def test_a_recursive_override_within_the_limit_runs(model_file) -> None:
    """A kernel function's own recursion (page-table levels, a retry) is not refused."""
    from pfnlab.api import check

    model_file(_SCENARIO + '''

def release_levels(pfn, level=3):
    """kvm_release_pfn_clean, recursing by its name over three levels, then the base's."""
    if level:
        pfn_to_page(pfn).accessed = True
        return kvm_release_pfn_clean(pfn, level=level - 1)
    return kvm_release_pfn_clean.base(pfn)


variant("kf-levels", parent="v5.4", overrides={"kvm_release_pfn_clean": release_levels})
''')
    res = check("kf-levels", "kf-fault-vs-zap")
    assert res.exhaustive and not res.findings


def test_an_override_returning_an_earlier_convention_is_a_model_error(model_file) -> None:
    """hva_to_pfn_fast returns the pfn or None; an override that returns (pfn, writable)
    (as a model of another convention would) would be read as a pfn by hva_to_pfn. The
    thread stops at the override's return with the library's convention, not with a
    finding about the kernel."""
    from pfnlab.api import check

    path = model_file(_SCENARIO + '''

def fast_with_writable(addr, write_fault, writable):
    """hva_to_pfn_fast, returning (pfn, writable)"""
    pfn = hva_to_pfn_fast.base(addr, write_fault, writable)
    return None if pfn is None else (pfn, True)


variant("kf-old-return", parent="v5.4", overrides={"hva_to_pfn_fast": fast_with_writable})
''')
    res = check("kf-old-return", "kf-fault-vs-zap")
    assert res.findings and {f.kind for f in res.findings} == {"exception"}
    msg = res.findings[0].message
    assert msg.startswith("ReturnConventionError: fast_with_writable (")
    assert f"{path}:" in msg
    assert "returned (0x103, True)" in msg or "returned (259, True) (a tuple of 2)" in msg
    assert "but pfnlab's hva_to_pfn_fast() returns int | None" in msg
    text = " ".join(res.report().split())
    assert "kf-old-return / kf-fault-vs-zap: model error (exception)" in text
    assert ("no race: vcpu0 alone runs into it, in program order (an error in the model's "
            "code, not a finding about the design).") in text


def test_an_override_reaching_itself_through_a_helper_is_refused_too(model_file) -> None:
    """An override that reaches itself through a helper of its own (which looks the name
    up in the table: the helper is no override, so the lookup runs the override) is refused
    at the same depth, with the same message."""
    from pfnlab.api import check
    from pfnlab.kernel.kfunc import SELF_CALL_LIMIT

    path = model_file(_SCENARIO + '''

def base_release(pfn):
    return KERNEL_FUNCTIONS["kvm_release_pfn_clean"](pfn)


def release_through_a_helper(pfn):
    """kvm_release_pfn_clean, meant to extend the base through a helper."""
    return base_release(pfn)


variant("kf-helper", parent="v5.4",
        overrides={"kvm_release_pfn_clean": release_through_a_helper})
''')
    res = check("kf-helper", "kf-fault-vs-zap")
    assert res.findings and {f.kind for f in res.findings} == {"exception"}
    msg = res.findings[0].message
    assert msg.startswith(f"KernelFunctionRecursion: release_through_a_helper ({path}:")
    assert f"called kvm_release_pfn_clean() {SELF_CALL_LIMIT} deep" in msg
    # the refused call: the helper's
    line = path.read_text().splitlines().index(
        '    return KERNEL_FUNCTIONS["kvm_release_pfn_clean"](pfn)') + 1
    assert msg.endswith(f"(in base_release, {path}:{line})"), msg


def test_a_recursion_error_names_the_model_files_line(model_file) -> None:
    """A recursion of the model's own code (no override in it) runs to Python's limit;
    the finding names the model file's line in the cycle, not a frame of pfnlab's."""
    from pfnlab.api import check

    path = model_file(_SCENARIO + '''

def spin(pfn, n):
    return spin(pfn, n + 1) if pfn_to_page(pfn) is not None else n


def release_spinning(pfn):
    """kvm_release_pfn_clean after a recursion without end of the model's own."""
    spin(pfn, 0)
    return kvm_release_pfn_clean.base(pfn)


variant("kf-spin", parent="v5.4", overrides={"kvm_release_pfn_clean": release_spinning})
''')
    res = check("kf-spin", "kf-fault-vs-zap")
    assert res.findings and {f.kind for f in res.findings} == {"exception"}
    msg = res.findings[0].message
    assert msg.startswith("RecursionError: ")
    line = path.read_text().splitlines().index(
        "    return spin(pfn, n + 1) if pfn_to_page(pfn) is not None else n") + 1
    assert msg.endswith(f"(in spin, {path}:{line})"), msg

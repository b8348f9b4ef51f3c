"""The owner of a reference is the running thread's operation (pfnlab.kernel.operation):
``with operation(owner):`` in a thread body, read by the refcount primitives, never passed
through kernel functions; for one release the old ``owner`` argument still works, warning
(pfnlab.kernel.deprecation)."""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from pfnlab import check
from pfnlab.api import registries_restored
from pfnlab.kernel import deprecation
from pfnlab.kernel.deprecation import PfnlabDeprecationWarning, owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.operation import current_owner, enter_owner, leave_owner, owner_stack

# one vCPU thread that gets (and maybe puts) a reference on an anonymous page, inside an
# operation of its own, outside every operation, or in nested ones
MODEL = textwrap.dedent('''\
    from pfnlab import (Check, Ghost, Host, Shared, define_property, ghost, instance,
                        operation, scenario, vm_on)
    from pfnlab.kvm import kvm_get_pfn, kvm_release_pfn_clean
    from pfnlab.mm import get_page, pfn_to_page, put_page
    from pfnlab.kernel.operation import current_owner

    SEEN = define_property("owners-seen", "the owners the thread saw (always reported)")


    class Seen(Shared):
        owners = Ghost(())


    def body(how, pfn, seen):
        def note():
            seen.owners = (*seen.owners, current_owner())

        if how == "balanced":
            with operation("vcpu0:mine"):
                kvm_get_pfn(pfn)
                note()
                kvm_release_pfn_clean(pfn)
        elif how == "leak":
            with operation("vcpu0:mine"):
                kvm_get_pfn(pfn)
        elif how == "outside":
            kvm_get_pfn(pfn)
            kvm_release_pfn_clean(pfn)
        elif how == "nested":
            with operation("vcpu0:outer"):
                get_page(pfn_to_page(pfn))
                with operation("vcpu0:inner"):
                    note()
                    kvm_get_pfn(pfn)
                    kvm_release_pfn_clean(pfn)
                note()
                put_page(pfn_to_page(pfn))
            note()
        elif how == "cross":
            with operation("vcpu0:outer"):
                get_page(pfn_to_page(pfn))
                with operation("vcpu0:inner"):
                    put_page(pfn_to_page(pfn))   # the outer operation's reference
        elif how == "ops":
            # a thread given as operations: each starts outside every operation
            return [lambda: ghost.owner_begin("vcpu0:left-open"), note]
        return None


    @scenario("operation-owner", sizes={"how": 1},
              properties=["refs-balanced", "no-put-unreferenced"])
    def build(variant, sz):
        """one vCPU thread gets a reference on an anonymous page"""
        host = Host()
        ram = host.add_anon(1, name="ram")
        s = vm_on(host, [ram], 1)
        seen = Seen("seen")
        how = ["balanced", "leak", "outside", "nested", "cross", "ops"][sz["how"] - 1]
        thread = body(how, ram.pfn, seen) if how == "ops" else (
            lambda: body(how, ram.pfn, seen))
        owners = Check("owners", lambda: f"owners seen: {seen.owners}", SEEN)
        return instance(s, {"vcpu0": thread}, ["refs-balanced", "no-put-unreferenced"],
                        final_checks=[owners] if how in ("nested", "ops") else [])
''')

HOW = {"balanced": 1, "leak": 2, "outside": 3, "nested": 4, "cross": 5, "ops": 6}


@pytest.fixture
def model(model_file: Callable[..., Path]) -> None:
    model_file(MODEL, "operation_model.py")


def run(how: str) -> dict[str, str]:
    res = check("v5.4", "operation-owner", how=HOW[how])
    assert res.exhaustive
    return {f.prop: f.message for f in res.findings}


def messages(how: str) -> set[tuple[str, str]]:
    res = check("v5.4", "operation-owner", how=HOW[how])
    assert res.exhaustive
    return {(f.prop, f.message) for f in res.findings}


def test_references_taken_inside_an_operation_are_its_and_must_be_put(model: None) -> None:
    assert run("balanced") == {}
    # the operation returning with it (I1 where it arises) and the final check
    assert messages("leak") == {
        ("refs-balanced", "vcpu0:mine returned still holding 1 reference(s) on pfn 0x103 "
                          "(leaked)"),
        ("refs-balanced", "KVM still holds page references: pfn 0x103 by vcpu0:mine x1")}


def test_a_reference_kvm_takes_outside_every_operation_is_kvms_and_a_leak_at_once(
        model: None) -> None:
    assert messages("outside") == {
        ("refs-balanced", "kvm returned still holding 1 reference(s) on pfn 0x103 (leaked)")}


def test_operations_nest_and_each_owns_what_it_took(model: None) -> None:
    assert run("nested") == {
        "owners-seen": "owners seen: ('vcpu0:inner', 'vcpu0:outer', '')"}
    # a put inside the inner operation of the outer one's reference is not the inner's
    cross = run("cross")
    assert set(cross) == {"no-put-unreferenced"}
    assert "vcpu0:inner puts page pfn" in cross["no-put-unreferenced"]


def test_each_operation_of_a_thread_given_as_a_list_starts_outside_every_operation(
        model: None) -> None:
    assert run("ops") == {"owners-seen": "owners seen: ('',)"}


def test_brackets_must_nest() -> None:
    enter_owner("a")
    enter_owner("b")
    with pytest.raises(RuntimeError, match="do not nest: leaving 'a' while the innermost "
                       "operation is 'b'"):
        leave_owner("a")
    leave_owner("b")
    leave_owner("a")
    assert owner_stack() == () and current_owner() == ""


def test_an_operation_left_by_an_exception_never_raises_over_it() -> None:
    """A thread's greenlet ended when its execution is abandoned (Ctrl-C) or collected may
    unwind in a context that no longer holds its bracket: the exception in flight is what
    matters, not a second one about the brackets ("Exception ignored in <greenlet>")."""
    leave_owner("vcpu2:fault", unwinding=True)
    enter_owner("a")
    enter_owner("b")
    leave_owner("a", unwinding=True)
    assert owner_stack() == ("a", "b")
    leave_owner("b", unwinding=True)
    leave_owner("a", unwinding=True)
    assert owner_stack() == ()


def test_a_kernel_function_that_returns_inside_an_operation_it_began_is_refused(
        model_file: Callable[..., Path]) -> None:
    """A summarised kernel call's only effect on its caller is its value; one that leaves
    the running operation changed would make two states that differ in it one."""
    model_file(textwrap.dedent('''\
        from pfnlab import Host, ghost, instance, kfunc, scenario, vm_on


        @kfunc
        def begin_and_return():
            ghost.owner_begin("vcpu0:open")


        @scenario("unbalanced-operation", properties=["refs-balanced"])
        def build(variant, sz):
            """a kernel function begins an operation and returns inside it"""
            host = Host()
            s = vm_on(host, [host.add_anon(1, name="ram")], 1)
            return instance(s, {"vcpu0": begin_and_return}, ["refs-balanced"])
    '''), "unbalanced.py")
    res = check("v5.4", "unbalanced-operation")
    text = res.report()
    assert "begin_and_return() returned inside an operation it began" in text, text


# ------------------------------------------------------------------ the deprecated owner


@kfunc
@owner_parameter_removed(at=1)
def _kfunc_owner_was_second(a: int, b: int) -> tuple[int, int, str]:
    """A kernel function whose ``owner`` was its second parameter (as kvm_follow_pfn's)."""
    return (a, b, current_owner())


def test_an_old_caller_passing_owner_has_it_honoured_with_a_warning() -> None:
    deprecation.rearm()
    with pytest.warns(PfnlabDeprecationWarning, match=r"_kfunc_owner_was_second\(\) takes "
                      "no `owner` argument since pfnlab 0.3"):
        assert _kfunc_owner_was_second(1, "old", 2) == (1, 2, "old")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process (per model file loaded)
        assert _kfunc_owner_was_second(1, b=2, owner="kw") == (1, 2, "kw")
    assert _kfunc_owner_was_second(1, 2) == (1, 2, "")


def test_an_old_override_declaring_owner_gets_the_running_operation(
        model_file: Callable[..., Path]) -> None:
    model_file(MODEL + textwrap.dedent('''\

        from pfnlab import variant
        from pfnlab.mm import put_page


        def release_0_2(pfn, owner="kvm"):
            """An override written for 0.2: it names the owner of its put."""
            assert owner == "vcpu0:mine", owner
            put_page(pfn_to_page(pfn), owner)


        variant("old-release", parent="v5.4",
                overrides={"kvm_release_pfn_clean": release_0_2})
    '''), "old_override.py")
    with pytest.warns(PfnlabDeprecationWarning, match="release_0_2, an override of "
                      r"kvm_release_pfn_clean\(\), declares an `owner` parameter"):
        res = check("old-release", "operation-owner", how=HOW["balanced"])
    assert res.ok and res.exhaustive, res.summary()


def test_every_kernel_function_that_lost_owner_is_marked() -> None:
    """The functions that took ``owner`` in 0.2 (by name) all accept it for one release."""
    from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

    took_owner_in_0_2 = {
        "tdp_page_fault", "try_async_pf", "transparent_hugepage_adjust", "hva_to_pfn",
        "hva_to_pfn_fast", "hva_to_pfn_slow", "hva_to_pfn_remapped", "__gfn_to_pfn_memslot",
        "kvm_get_pfn", "kvm_release_pfn_clean", "kvm_release_pfn_dirty", "kvm_release_pfn",
        "pfn_cache_lookup", "kvm_release_page_clean", "kvm_release_page_dirty",
        "kvm_try_get_pfn", "kvm_follow_pfn", "kvm_release_faultin_page"}
    with registries_restored():
        marked = {n for n, f in KERNEL_FUNCTIONS.items()
                  if getattr(getattr(f, "base", f), "owner_removed", None)}
    assert took_owner_in_0_2 <= marked, took_owner_in_0_2 - marked


def test_an_old_override_keeps_its_own_default_outside_every_operation() -> None:
    """0.2 called an override of kvm_release_pfn_clean without an owner outside every
    operation, so its default (``owner="kvm"``) applied; inside one it gets the owner."""
    from pfnlab import World
    from pfnlab.explore import set_context

    seen: list[str] = []

    def old(a: int, b: int, owner: str = "kvm") -> tuple[int, int, str]:
        seen.append(owner)
        return (a, b, owner)

    deprecation.rearm()
    set_context(World(overrides={"_kfunc_owner_was_second": old}))
    try:
        with pytest.warns(PfnlabDeprecationWarning, match="declares an `owner` parameter"):
            assert _kfunc_owner_was_second(1, 2) == (1, 2, "kvm")
        enter_owner("vcpu0:fault")
        try:
            assert _kfunc_owner_was_second(1, 2) == (1, 2, "vcpu0:fault")
        finally:
            leave_owner("vcpu0:fault")
    finally:
        set_context(None)
    assert seen == ["kvm", "vcpu0:fault"]

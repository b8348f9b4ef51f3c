"""Issue 11: every example and every tutorial block imports only the documented API:
``pfnlab`` and its documented kernel-function modules ``pfnlab.mm`` and ``pfnlab.kvm``
(their pdoc pages are built by tests/test_apidocs.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"pfnlab", "pfnlab.mm", "pfnlab.kvm"}


def _imports(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return [m for m in out if m.split(".")[0] == "pfnlab"]


def _tutorial_blocks() -> list[str]:
    text = (ROOT / "docs" / "tutorial.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.py")),
                         ids=lambda p: p.name)
def test_an_example_imports_only_the_documented_api(path: Path) -> None:
    private = [m for m in _imports(path.read_text()) if m not in PUBLIC]
    assert not private, (f"{path.name} imports {private}: export what it needs from "
                         "pfnlab, pfnlab.mm or pfnlab.kvm")


def test_tutorial_blocks_import_only_the_documented_api() -> None:
    blocks = _tutorial_blocks()
    assert blocks
    private = [m for b in blocks for m in _imports(b) if m not in PUBLIC]
    assert not private, private


def test_every_kernel_function_of_the_base_model_is_in_the_documented_api() -> None:
    """A model may call or override any kernel function of the host mm and KVM models:
    each one is exported (and so documented) by ``pfnlab.mm`` or ``pfnlab.kvm``. (Kernel
    functions a design adds, such as v6.0's ``kvm_try_get_pfn``, live in its variant.)"""
    import pfnlab.kvm
    import pfnlab.mm
    from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

    missing = []
    for name, dispatch in KERNEL_FUNCTIONS.items():
        module = dispatch.base.__module__  # type: ignore[attr-defined]
        for prefix, public in (("pfnlab.mm", pfnlab.mm), ("pfnlab.kvm", pfnlab.kvm)):
            if module.startswith(prefix + ".") and (name not in public.__all__ or
                                                     getattr(public, name) is not dispatch):
                missing.append(f"{module}.{name}")
    assert not missing, f"export these from pfnlab.mm / pfnlab.kvm: {missing}"


def test_every_kernel_function_says_what_it_returns() -> None:
    """Issue 11's return conventions: a kernel function of the base model that returns
    something other than a predicate's bool says what (a "Returns ..." sentence, or a
    docstring that names the value: "the head page ...", "NULL if ...", "-EINVAL
    otherwise", "0 if ... else -EAGAIN", "... on success")."""
    import pfnlab.kvm
    import pfnlab.mm  # noqa: F401 - registers the mm kernel functions
    from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

    vague = []
    for name, dispatch in sorted(KERNEL_FUNCTIONS.items()):
        fn = dispatch.base  # type: ignore[attr-defined]
        if not fn.__module__.startswith(("pfnlab.mm.", "pfnlab.kvm.")):
            continue
        if fn.__annotations__.get("return") in (None, "None", "bool"):
            continue
        doc = fn.__doc__ or ""
        head = doc.split("\n")[0]
        after = head.split(":", 1)[1].strip() if ":" in head else head
        if not (re.search(r"\bReturns?\b|NULL|-E[A-Z]{2,}|\bon success\b|\b0 if\b", doc)
                or re.match(r"(the|an?|one|level)\b", after, re.I)):
            vague.append(name)
    assert not vague, f"say what these return (a 'Returns ...' sentence): {vague}"

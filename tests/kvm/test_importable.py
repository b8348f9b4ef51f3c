"""Every kernel function of the model is importable from the public packages and says
which kernel file and version it follows (a model file may call or override any of them)."""

from __future__ import annotations

import re

import pfnlab
import pfnlab.kvm
import pfnlab.mm
from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS

#: helpers a design proposed that no kernel release has: they stay in the design's file
PROPOSALS = {"kvm_is_hugepage_allowed"}   # Paolo's helper, pfnlab/variants/paolo_online_helper.py


def _library() -> dict[str, object]:
    return {n: getattr(f, "base", f) for n, f in KERNEL_FUNCTIONS.items()
            if getattr(getattr(f, "base", f), "__module__", "").startswith("pfnlab")}


def test_every_kernel_function_is_importable() -> None:
    missing = sorted(n for n in _library() if n not in PROPOSALS and not any(
        hasattr(pkg, n) for pkg in (pfnlab.kvm, pfnlab.mm, pfnlab)))
    assert not missing, f"not importable from pfnlab.kvm or pfnlab.mm: {missing}"


def test_every_kernel_function_names_its_kernel_file_and_version() -> None:
    """(thread bodies, which are kernel functions so that a design may replace them, say
    "Thread body:" instead)"""
    undocumented = sorted(
        n for n, f in _library().items()
        if n not in PROPOSALS and not (f.__doc__ or "").startswith("Thread body")
        and not re.search(r"(\.[ch]|\.h|mm|kvm)\b.*\bv\d", (getattr(f, "__doc__", "") or "")
                         .split("\n")[0]))
    assert not undocumented, undocumented

"""A model file written before pfnlab had one of its kernel functions keeps loading: its
``@kfunc`` replaces pfnlab's for its own calls, with a warning that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfnlab.api import ModelFileError, check, load_model, registries_restored
from pfnlab.kernel.kfunc import KERNEL_FUNCTIONS, LibraryFunctionReplaced

OLD_MODEL = '''
from pfnlab import kfunc


@kfunc
def kvm_is_zone_device_pfn(pfn):
    """The model's own version, written before pfnlab had one: never ZONE_DEVICE."""
    return False
'''

HELPER = '''
from pfnlab import kfunc


@kfunc
def gpc_helper(pfn):
    """A kernel function of the model's own."""
    return pfn
'''


def test_a_model_files_kfunc_replaces_the_librarys_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "old_model.py"
    path.write_text(OLD_MODEL)
    with registries_restored():
        with pytest.warns(LibraryFunctionReplaced,
                          match="'kvm_is_zone_device_pfn' is defined by pfnlab too "
                                r"\(pfnlab.kvm.pfn\): the model's definition replaces it"):
            mf = load_model(path)
        assert mf.module.kvm_is_zone_device_pfn(0x104) is False
        assert KERNEL_FUNCTIONS["kvm_is_zone_device_pfn"] is mf.module.kvm_is_zone_device_pfn
        # pfnlab's own code still calls its own version: v5.4 still puts device pages
        res = check("v5.4", "devdax-unbind")
        assert res.exhaustive and not res.findings
    # unloaded: pfnlab's is back in the registry
    assert KERNEL_FUNCTIONS["kvm_is_zone_device_pfn"].__module__ == "pfnlab.kvm.pfn"


def test_two_model_files_with_one_kernel_function_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(HELPER)
    (tmp_path / "b.py").write_text(HELPER)
    with registries_restored():
        load_model(tmp_path / "a.py")
        with pytest.raises(ModelFileError, match="kernel function 'gpc_helper' is defined twice"):
            load_model(tmp_path / "b.py")
    assert "gpc_helper" not in KERNEL_FUNCTIONS

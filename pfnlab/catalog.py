"""The catalog: names -> designs and scenarios, the built-in ones and those of model files.

The registries are :data:`pfnlab.kernel.variant.VARIANTS` and
:data:`pfnlab.model.scenario.SCENARIOS`; what fills them is a model file's ``variant(...)``
and ``@scenario(...)``. The built-in designs and scenarios are model files too: the
packages :mod:`pfnlab.variants` and :mod:`pfnlab.scenarios` are written with the public
API (``from pfnlab import ...``) as a user's file is, and the catalog loads them, once, when
``pfnlab`` has been imported (:func:`load_builtins`). No module of the checker imports a
built-in design: it looks names up here.
"""

from __future__ import annotations

import importlib

from pfnlab.kernel.variant import Variant, get_variant
from pfnlab.model.scenario import SCENARIOS, Scenario

#: the packages of the built-in designs and scenarios, loaded like model files
BUILTIN_PACKAGES = ("pfnlab.variants", "pfnlab.scenarios")


def load_builtins() -> None:
    """Load the built-in designs and scenarios into the registries (once; the packages
    import ``pfnlab``, so this runs when ``pfnlab`` itself has been imported)."""
    for name in BUILTIN_PACKAGES:
        importlib.import_module(name)


def design(name: str) -> Variant:
    """The design named ``name`` (KeyError listing the known ones)."""
    return get_variant(name)


def scenario(name: str) -> Scenario:
    """The scenario named ``name`` (KeyError listing the known ones)."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]

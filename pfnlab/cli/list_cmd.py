"""``pfnlab list``: the variants, scenarios and properties, one line each."""

from __future__ import annotations

from pfnlab.cli import exits
from pfnlab.cli.app import app
from pfnlab.cli.common import ModelOpt, load
from pfnlab.cli.guard import guarded
from pfnlab.kernel.variant import VARIANTS
from pfnlab.model.scenario import SCENARIOS
from pfnlab.properties import PROPERTIES


@app.command("list", epilog=exits.epilog("Exits 0, or 2 when a model file does not load."))
@guarded
def list_cmd(model: ModelOpt = None) -> None:
    """Name the variants, scenarios and properties, one line each."""
    load(model)
    out = ["variants:"]
    w = max(len(n) for n in VARIANTS)
    for name, v in VARIANTS.items():
        out.append(f"  {name.ljust(w)}  {v.summary}")
    out.append("scenarios:")
    w = max(len(n) for n in SCENARIOS)
    for name, s in SCENARIOS.items():
        sizes = ", ".join(f"{k}={v}" for k, v in s.params.items())
        out.append(f"  {name.ljust(w)}  {s.summary} [{sizes}]")
    out.append("properties:")
    w = max(len(n) for n in PROPERTIES)
    for pid, p in PROPERTIES.items():
        out.append(f"  {pid.ljust(w)}  ({p.invariant}) {p.meaning}")
    print("\n".join(out))

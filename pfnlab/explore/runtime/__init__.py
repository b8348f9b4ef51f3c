"""One execution of a program, stepped by a search strategy (engine-internal).

:class:`Execution` (execution.py) holds the threads, the shared objects and the schedule,
and steps them with stepping.py (fields.py: a field access that is a step of its own;
riding.py: one that rides along with a step);
ops.py is the vocabulary of a step, threads.py a thread, sites.py where in the model's code
a thread is; checks.py, snapshot.py and stepmemo.py are what an execution checks, how it
goes back to an earlier state, and how it applies a step it has taken before.
"""

from pfnlab.explore.runtime.execution import Execution
from pfnlab.explore.runtime.fields import apply_update
from pfnlab.explore.runtime.ops import FAULT_LABEL, RESUME_LABEL, Footprint
from pfnlab.explore.runtime.sites import code_name, hide_from_traces, model_caller, name_code
from pfnlab.explore.runtime.threads import ThreadState

__all__ = [
    "FAULT_LABEL",
    "RESUME_LABEL",
    "Execution",
    "Footprint",
    "ThreadState",
    "apply_update",
    "code_name",
    "hide_from_traces",
    "model_caller",
    "name_code",
]

"""Kernel-function calls as typed records, and who listens to them.

The kernel model publishes what its functions did; what reads that (traces, reports, the
"unreached" check of model/reach.py) subscribes here, so that the model never imports a
reader:

- in a traced execution, a call whose result decides a branch (a predicate's bool, a
  pointer or NULL, a negative errno) is noted on the thread's step as a :class:`KernelCall`
  (``str()`` of it is the text reports print: ``kvm_is_reserved_pfn(0x104) = True``);
- every call is passed to the :data:`listeners` in force (a recorder of reached code),
  when it starts and when it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KernelCall:
    """What a kernel function returned, noted on the step after which its thread went on.

    ``args`` is the short argument text (ints in hex, objects by name); ``value`` is the
    result as the kernel would say it: ``True``/``False``, ``NULL`` or an object's name
    for a pointer, ``-EFAULT`` for an errno (``-EFAULT, ...`` when the kernel function
    returns more than the errno).
    """

    name: str
    args: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}({self.args}) = {self.value}"

    def answer(self) -> str:
        """The result as reports print it: true/false lower case, NULL and names as is."""
        return self.value.lower() if self.value in ("True", "False") else self.value


#: called with ``(name, caller's frame, ENTERED)`` when a kernel function is called, and
#: again with ``(name, caller's frame, result)`` when it returns: a call that raises (a
#: ``fail()``, a BUG_ON) or never returns (its thread hangs) was still made
Listener = Callable[[str, Any, object], None]


class _Entered:
    """The "result" a listener is given when a kernel function starts."""

    def __repr__(self) -> str:
        return "ENTERED"


#: what a listener gets as the result of a call that has only started
ENTERED: object = _Entered()

#: the listeners in force, innermost last (kfunc.py calls the last one)
listeners: list[Listener] = []


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Pass every kernel-function call made inside this block to ``listener``."""
    listeners.append(listener)
    try:
        yield
    finally:
        listeners.remove(listener)

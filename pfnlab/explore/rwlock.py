"""``rwlock_t``: any number of readers or one writer, built from the engine's primitives.

The state is two fields, ``writer`` (the holding writer's thread name, or None) and
``readers`` (the names of the threads in a read section, sorted), changed only under an
inner mover lock (``guard``), as a kernel rwlock changes its counter atomically. Taking
it is a retry loop: under ``guard``, take it if it is free for this mode, else drop
``guard`` and wait until it is (a ``wait_until`` on the two fields, so that only their
change wakes the waiter). Nothing here is new to the engine: a lock, two marked fields
and a wait, each explored as any model's are, so the search's soundness arguments
(docs/reductions.md sections 1, 2 and 5) cover it as they cover any model code.

Two readers may hold it at once (both inside their sections, in any interleaving of what
they do there); a writer excludes readers and writers. Releasing a mode this thread does
not hold is a model error. Like the kernel's ``rwlock_t`` it is not fair: a stream of
readers can keep a writer waiting (the kernel's queued rwlock lets a waiting writer in
first; no modelled bug needs that), and a reader that takes it twice while a writer waits
does not deadlock.
"""

from __future__ import annotations

from pfnlab.explore.shared import Field, Shared, current_thread
from pfnlab.explore.sync import Lock, enter_section, leave_section, wait_until


class RwLock(Shared):
    """A reader-writer lock (module docstring): ``read_lock``/``read_unlock`` and
    ``write_lock``/``write_unlock``, each a scheduling point."""

    writer: Field[str | None] = Field(None)
    readers: Field[tuple[str, ...]] = Field(())

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["guard"] = Lock(f"{name}.guard")

    def _label(self) -> str:
        return str(self.__dict__["_name"])

    def _guard_and_me(self) -> tuple[Lock, str]:
        """The inner lock, and the name of the thread calling (``setup`` outside one)."""
        return self.__dict__["guard"], current_thread() or "setup"

    def read_lock(self) -> None:
        """``read_lock()``: enter a read section once no writer holds it."""
        guard, me = self._guard_and_me()
        while True:
            guard.acquire()
            if self.writer is None:
                self.readers = enter_section(self.readers, me)
                guard.release()
                return
            guard.release()
            wait_until(lambda: self.writer is None, f"{self._label()} released by its writer")

    def read_unlock(self) -> None:
        """``read_unlock()``: leave the read section this thread entered."""
        guard, me = self._guard_and_me()
        guard.acquire()
        readers = self.readers
        if me not in readers:
            guard.release()
            raise RuntimeError(f"read_unlock({self._label()}) by {me}, which holds no read "
                               f"section of it (readers: {', '.join(readers) or 'none'})")
        self.readers = leave_section(readers, me)
        guard.release()

    def write_lock(self) -> None:
        """``write_lock()``: take it alone, once no reader and no writer holds it."""
        guard, me = self._guard_and_me()
        while True:
            guard.acquire()
            if self.writer is None and not self.readers:
                self.writer = me
                guard.release()
                return
            guard.release()
            wait_until(lambda: self.writer is None and not self.readers,
                       f"{self._label()} free of readers and writers")

    def write_unlock(self) -> None:
        """``write_unlock()``: release it (held for writing by this thread)."""
        guard, me = self._guard_and_me()
        guard.acquire()
        if self.writer != me:
            holder = self.writer
            guard.release()
            raise RuntimeError(f"write_unlock({self._label()}) by {me}, which does not hold "
                               f"it for writing (writer: {holder or 'none'})")
        self.writer = None
        guard.release()

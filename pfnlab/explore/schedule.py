"""Schedules: the one input of an execution, written with thread names and step labels.

A schedule is a list of :class:`Step` s. Each names the thread that runs and the label of the
step it takes (``"put_page: write page@0x100.refcount"``), so it survives small edits of the
model: replay checks each label and reports where the execution diverges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One scheduling decision: ``thread`` takes its next step, expected to be ``label``."""

    thread: str
    label: str

    def __str__(self) -> str:
        return f"{self.thread}: {self.label}"


class Schedule(list[Step]):
    """An ordered list of steps; serialises to JSON and to one line per step."""

    def to_json(self) -> list[dict[str, str]]:
        """The schedule as a JSON-compatible list of ``{"thread", "label"}`` objects."""
        return [{"thread": s.thread, "label": s.label} for s in self]

    @classmethod
    def from_json(cls, data: list[dict[str, str]]) -> Schedule:
        """Read a schedule written by :meth:`to_json`."""
        return cls(Step(d["thread"], d["label"]) for d in data)

    def dumps(self) -> str:
        """The schedule as a JSON string."""
        return json.dumps(self.to_json())

    def threads(self) -> list[str]:
        """The thread of each step, in order."""
        return [s.thread for s in self]

    def __str__(self) -> str:
        return "\n".join(f"{i:3d}  {s}" for i, s in enumerate(self))

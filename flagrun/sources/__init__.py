"""Where a trial's metric points come from.

A source turns what a training process writes into scalar series, tag -> points, and
grows them as the process writes more: ``events.EventReader`` reads TensorBoard event
files of any writer. Every source has the ``MetricSource`` shape, so the tuning loop
reads one like another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Scalar:
    """One point of a scalar series."""

    step: int
    wall_time: float
    value: float


class MetricSource(Protocol):
    """A trial's scalar series as they grow."""

    @property
    def scalars(self) -> dict[str, list[Scalar]]:
        """Everything read so far: tag -> points in order of arrival."""
        ...

    def poll(self) -> bool:
        """Take in whatever the trial wrote since the last call; True if any point is new."""
        ...

    def tags(self) -> list[str]:
        """The scalar tags read so far, sorted."""
        ...

"""Where a trial's metric points come from.

A source turns what a training process writes into scalar series, tag -> points, and
grows them as the process writes more: ``events.EventReader`` reads TensorBoard event
files of any writer, ``hypertune.HypertuneReader`` the metric file of Google's
``cloudml-hypertune`` reporter. Every source has the ``MetricSource`` shape, so the tuning
loop reads one like another; ``for_run`` gives the one source of a run folder (both
together), which every executor uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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


def last_points(scalars: dict[str, list[Scalar]]) -> dict[str, dict]:
    """``{tag: {"value": last value, "step": its step}}``, tags sorted, as run.json keeps them.

    JSON has no NaN or infinity: they are written as the strings ``"nan"``, ``"inf"``,
    ``"-inf"``.
    """
    return {
        tag: {"value": _json_number(series[-1].value), "step": series[-1].step}
        for tag, series in sorted(scalars.items())
        if series
    }


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def for_run(run_dir: Path) -> MetricSource:
    """Everything a trial in ``run_dir`` reports: its event files and its hypertune file
    (a tag in both is taken from the hypertune file, the objective Cloud ML reads)."""
    from flagrun.sources.events import EventReader
    from flagrun.sources.hypertune import METRIC_FILE, HypertuneReader

    return Combined([EventReader(run_dir), HypertuneReader(Path(run_dir) / METRIC_FILE)])


class Combined:
    """Several sources read as one; on a tag in more than one, the later source wins."""

    def __init__(self, parts: Sequence[MetricSource]) -> None:
        self.parts = list(parts)
        self._scalars: dict[str, list[Scalar]] = {}

    @property
    def scalars(self) -> dict[str, list[Scalar]]:
        return self._scalars

    def poll(self) -> bool:
        new = [part.poll() for part in self.parts]  # every part, not only up to the first
        if any(new):
            merged: dict[str, list[Scalar]] = {}
            for part in self.parts:
                merged.update(part.scalars)
            self._scalars = merged
        return any(new)

    def tags(self) -> list[str]:
        return sorted(self._scalars)

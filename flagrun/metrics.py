"""A run's scalar metrics: reading them, their final value, and what a tag name means.

The points come from the run's event files (``flagrun.sources.events``); what a tag
means and which tag a user's name stands for is ``flagrun.tags`` (re-exported here).

NaN and infinities: ``aggregate(..., "last")`` returns the last value even when it is
NaN; ``max``/``min`` ignore non-finite values unless every value is non-finite, when the
last value is returned. ``summarize`` writes non-finite values as the strings ``"nan"``,
``"inf"`` and ``"-inf"`` so that run.json stays valid JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from flagrun._crc32c import masked_crc32c, masked_crc32c_many
from flagrun.errors import MetricsError
from flagrun.sources import Scalar, last_points
from flagrun.sources.events import LOG_DIR, SKIP_DIRS, EventReader
from flagrun.tags import display_names, find_tag, metric_name, resolve_tag

__all__ = [
    "AGGREGATIONS",
    "LOG_DIR",
    "SKIP_DIRS",
    "EventReader",
    "Scalar",
    "aggregate",
    "display_names",
    "find_tag",
    "masked_crc32c",
    "masked_crc32c_many",
    "metric_name",
    "read_scalars",
    "resolve_tag",
    "summarize",
]

AGGREGATIONS = ("last", "max", "min")


def read_scalars(run_dir: Path) -> dict[str, list[Scalar]]:
    """Every scalar series in a run folder's event files: tag -> points."""
    reader = EventReader(run_dir)
    reader.poll()
    return reader.scalars


def summarize(run_dir: Path) -> dict[str, dict]:
    """``{tag: {"value": last value, "step": its step}}`` for run.json.

    Non-finite values are written as the strings ``"nan"``, ``"inf"``, ``"-inf"``.
    """
    return last_points(read_scalars(run_dir))


# -- Aggregation ---------------------------------------------------------------------------


def aggregate(series: Sequence[Scalar], how: str = "last") -> tuple[float, int]:
    """The final value of a series and its step: ``last``, ``max`` or ``min``.

    ``last`` is Cloud ML's finalMetric and may be NaN. ``max``/``min`` skip NaN and
    infinite values (the first best point wins a tie); when every value is non-finite
    they return the last point, so the caller sees the NaN/inf.
    """
    if how not in AGGREGATIONS:
        raise MetricsError(
            f"unknown metric aggregation {how!r}", hint=f"use one of {', '.join(AGGREGATIONS)}"
        )
    if not series:
        raise MetricsError("the metric has no values yet", hint="the script wrote no points")
    finite = [p for p in series if math.isfinite(p.value)]
    if how == "last" or not finite:
        return series[-1].value, series[-1].step
    pick = max if how == "max" else min
    best = pick(finite, key=lambda p: p.value)
    return best.value, best.step

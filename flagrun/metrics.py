"""A run's scalar metrics: reading them, their final value, and what a tag name means.

The points come from the run's event files (``flagrun.sources.events``). A tag is named
as the event files have it (``validation/epoch_accuracy``) or as Keras 1 users type it
(``val_acc``); ``resolve_tag`` maps one onto the other.

NaN and infinities: ``aggregate(..., "last")`` returns the last value even when it is
NaN; ``max``/``min`` ignore non-finite values unless every value is non-finite, when the
last value is returned. ``summarize`` writes non-finite values as the strings ``"nan"``,
``"inf"`` and ``"-inf"`` so that run.json stays valid JSON.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from flagrun._crc32c import masked_crc32c, masked_crc32c_many
from flagrun.errors import MetricsError
from flagrun.sources import Scalar
from flagrun.sources.events import LOG_DIR, SKIP_DIRS, EventReader

__all__ = [
    "AGGREGATIONS",
    "LOG_DIR",
    "SKIP_DIRS",
    "EventReader",
    "Scalar",
    "aggregate",
    "find_tag",
    "masked_crc32c",
    "masked_crc32c_many",
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
    summary = {}
    for tag, series in sorted(read_scalars(run_dir).items()):
        if series:
            last = series[-1]
            summary[tag] = {"value": _json_number(last.value), "step": last.step}
    return summary


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


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


# -- Tag resolution ------------------------------------------------------------------------

_SAME = {"acc": ("accuracy", "acc"), "accuracy": ("accuracy", "acc")}


def _candidates(tag: str) -> list[str]:
    """What a Keras-1 style name may be written as, most likely first."""
    if tag.startswith("val_"):
        side, base, bare = "validation", tag[4:], "val_{}"
    else:
        side, base, bare = "train", tag, "{}"
    out = []
    for name in _SAME.get(base, (base,)):
        if name.startswith("epoch_"):
            out += [f"{side}/{name}"]
        else:
            out += [f"{side}/epoch_{name}", f"{side}/{name}", bare.format(name)]
    return [c for i, c in enumerate(out) if c not in out[:i]]


def _lookup(tag: str, available: Sequence[str]) -> tuple[str | None, list[str]]:
    """The tag ``tag`` stands for, or None and the ambiguous matches (if any)."""
    names = set(available)
    if tag in names:
        return tag, []
    for candidate in [tag, *_candidates(tag)]:
        if candidate != tag and candidate in names:
            return candidate, []
    for candidate in [tag, *_candidates(tag)]:
        matches = sorted(n for n in names if n.endswith("/" + candidate))
        if len(matches) == 1:
            return matches[0], []
        if matches:
            return None, matches
    return None, []


def find_tag(tag: str, available: Iterable[str]) -> str | None:
    """The available tag that ``tag`` (exact path or alias) names, or None."""
    return _lookup(tag, list(available))[0]


def resolve_tag(tag: str, available: Iterable[str]) -> str:
    """The available tag that ``tag`` names; MetricsError listing the tags otherwise.

    An exact tag path wins; then ``acc``/``accuracy``/``loss``/``X`` resolve to
    ``train/epoch_X`` and ``val_X`` to ``validation/epoch_X`` (Keras 3), then to the
    ``epoch_``-free layouts (``validation/accuracy``, tf.keras 1's bare ``val_acc``),
    then to a unique tag ending in ``/<tag>``.
    """
    names = sorted(set(available))
    found, ambiguous = _lookup(tag, names)
    if found is not None:
        return found
    if ambiguous:
        raise MetricsError(
            f"metric tag {tag!r} is ambiguous: it matches {', '.join(ambiguous)}",
            hint=f"write the full tag path, e.g. {ambiguous[0]!r}",
        )
    if not names:
        raise MetricsError(
            f"metric tag {tag!r} not found: the run wrote no scalar tags",
            hint="write TensorBoard scalars (Keras' TensorBoard callback or "
            "flagrun.log_metrics) into the run folder's logs/",
        )
    closest = difflib.get_close_matches(tag, names, n=1, cutoff=0.0)
    raise MetricsError(
        f"metric tag {tag!r} not found; the event files have: {', '.join(names)}",
        hint=f"did you mean {closest[0]!r}? use one of the tags above",
    )

"""A job's trials as the report shows them, and their parameter importances: data, no HTML.

Parameter importances: fANOVA (Optuna's default) needs scikit-learn and a random forest,
too slow for a report that must appear in well under two seconds. Instead each
parameter gets the share of the objective's variance that its values alone explain
(epsilon-squared of a one-way analysis of variance): the complete trials are grouped by
the parameter (a categorical value, or a quantile bin of a numeric one, at most
sqrt(n) bins), and ``(SS_between - (k - 1) * MS_within) / SS_total``, floored at 0, is
reported. Unlike the plain correlation ratio it does not grow just because a parameter
has many distinct values. It sees each parameter alone: interactions are not split up,
and the shares need not add up to 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagrun import _paths, jobstore, store
from flagrun.errors import StoreError
from flagrun.htmlreport._text import _finite, _is_number
from flagrun.records import TrialState


@dataclass
class Trial:
    """One trial as the report shows it."""

    id: int
    state: TrialState
    value: float | None
    step: int | None
    params: dict[str, Any]
    duration: float | None
    reason: str | None
    curve: list[tuple[int, float]] = field(default_factory=list)


def read_trials(job_dir: Path, metric_tag: str) -> list[Trial]:
    """Every trial of the job's index, with its learning curve of the objective's tag."""
    from flagrun import metrics

    trials = []
    for row in jobstore.read_trials(job_dir):
        try:
            run_dir: Path | None = _paths.inside(job_dir, row.run_dir, "runDir")
        except StoreError:
            run_dir = None  # a symlink leading out of the job folder: not read
        scalars = metrics.read_scalars(run_dir) if run_dir and run_dir.is_dir() else {}
        tag = metrics.find_tag(metric_tag, scalars)
        curve = [(p.step, p.value) for p in scalars[tag]] if tag else []
        trials.append(
            Trial(
                id=row.trial_id,
                state=row.state,
                value=_finite(row.objective_value),
                step=row.training_step,
                params=dict(row.hyperparameters),
                duration=row.duration,
                reason=row.reason,
                curve=curve,
            )
        )
    return trials


def scored(
    trials: Sequence[Trial], states: Sequence[TrialState] = (TrialState.COMPLETE,)
) -> list[tuple[Trial, float]]:
    """The trials in ``states`` that have an objective value, each with that value."""
    found = []
    for trial in trials:
        if trial.state in states and trial.value is not None:
            found.append((trial, trial.value))
    return found


def best_trial(trials: Sequence[Trial], maximize: bool) -> Trial | None:
    done = scored(trials)
    if not done:
        return None
    return (max if maximize else min)(done, key=lambda pair: pair[1])[0]


def trial_flags(run_dir: Path, trial: Trial) -> dict[str, Any]:
    """Every flag the trial ran with (defaults included), else its hyperparameters."""
    try:
        flags = store.read_run(run_dir).flags
    except StoreError:
        flags = {}
    return flags or trial.params


# -- parameter importances ----------------------------------------------------------------


def param_importances(trials: Sequence[Trial], params: Sequence[str]) -> dict[str, float]:
    """Each parameter's share of the objective's variance (epsilon-squared; module doc).

    Empty when fewer than 3 complete trials have a finite objective.
    """
    done = scored(trials)
    if len(done) < 3:
        return {}
    values = [value for _, value in done]
    mean = sum(values) / len(values)
    total = sum((v - mean) ** 2 for v in values)
    shares = {}
    for name in params:
        groups = _groups([t.params.get(name) for t, _ in done], values)
        shares[name] = _epsilon_squared(groups, mean, total)
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def _groups(settings: list[Any], values: list[float]) -> list[list[float]]:
    """The objective values grouped by the parameter's value (numbers in quantile bins)."""
    numeric = all(_is_number(s) for s in settings if s is not None)
    present = [(s, v) for s, v in zip(settings, values, strict=True) if s is not None]
    unset = [v for s, v in zip(settings, values, strict=True) if s is None]
    by_key: dict[Any, list[float]] = {}
    if numeric and len({s for s, _ in present}) > _max_bins(len(values)):
        present.sort(key=lambda pair: pair[0])
        bins = _max_bins(len(values))
        first_rank: dict[Any, int] = {}
        for rank, (setting, _) in enumerate(present):
            first_rank.setdefault(setting, rank)
        for setting, value in present:
            by_key.setdefault(first_rank[setting] * bins // len(present), []).append(value)
    else:
        for setting, value in present:
            by_key.setdefault(repr(setting), []).append(value)
    groups = list(by_key.values())
    return groups + [unset] if unset else groups


def _max_bins(count: int) -> int:
    return max(2, math.isqrt(count))


def _epsilon_squared(groups: list[list[float]], mean: float, total: float) -> float:
    count, k = sum(len(g) for g in groups), len(groups)
    if total <= 0 or k < 2 or count <= k:
        return 0.0
    between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups)
    within = max(total - between, 0.0)
    return max(0.0, (between - (k - 1) * within / (count - k)) / total)

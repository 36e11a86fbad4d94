"""Stopping a trial that cannot finish within ``trialTimeout``, as soon as its pace shows it.

A trial that would run past its timeout is killed there and counts for nothing: the compute
it took until then is lost. With early stopping on, the tuner stops it as soon as its own
pace says it cannot finish: a finished trial of the job wrote N points of the objective
(the most any COMPLETE trial wrote, kept on each as the ``points`` user attribute), and
this trial's points so far, at the pace it writes them, would take it past the timeout.
It ends PRUNED with the projection as its reason, so TPE learns that its region is too
slow for the budget (a timed-out trial is FAILED, which TPE ignores).

The pace is the time between its first and last point of this process; with one point,
the time from its start to that point less the job's start-up; with none yet, the time it
has run so far, less the start-up, is a lower bound of the time to its first point. The
start-up is the trial's own when it says how far it is through its epochs (the time to
its first reading: its training had begun); while it has not said yet, in a job whose
finished trials did, it is unknown, and the time run projects nothing (its batches will
speak within seconds of its training); else it is the longest any finished trial of the
job had before its first epoch began (its first point less its pace, kept on each as the
``startup`` user attribute). On a GPU a process may take seconds to import and compile
and then a second an epoch: counted into every epoch those seconds stopped every trial of
a 27-epoch job before its first point, and a start-up a few seconds longer than the
first finished trial's still stopped small models. ``MARGIN`` keeps a trial that would
only just finish (epochs that vary) from being stopped. Points written before a resume
from a checkpoint count as done, not towards the pace.

Nothing is projected from points before a trial of the job finished: until then no one
knows how many points a trial writes. A trial that says how far it is through its epochs
(``flagrun.pace``: Keras under capture, or the script's own calls) needs no points:
until its first point, the pace of its batches says when its training ends (its epochs
are in the reading), a lower bound of its run, from its first seconds of training and
from the job's first trials on. Nothing is projected on a Dask cluster: there a trial
may wait in the scheduler's queue, and its points carry another machine's clock, so the
time since the tuner started it is not the time its process ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import optuna

from flagrun.pace import Pace
from flagrun.sources import Scalar

POINTS_ATTR = "points"  # user attribute: how many points of the objective a trial wrote
STARTUP_ATTR = "startup"  # user attribute: seconds from a trial's start to its first epoch
PACED_ATTR = "paced"  # user attribute: the trial said how far it was through its epochs
MARGIN = 1.1  # a trial is stopped when its projection passes the timeout by 10%


def expected_points(trials: Iterable[optuna.trial.FrozenTrial]) -> int:
    """The most points of the objective any finished trial wrote (0 when none finished)."""
    return max((int(t.user_attrs.get(POINTS_ATTR, 0)) for t in _finished(trials)), default=0)


def expected_startup(trials: Iterable[optuna.trial.FrozenTrial]) -> float:
    """The longest start-up any finished trial had (0 when none says)."""
    startups = (float(t.user_attrs.get(STARTUP_ATTR, 0.0)) for t in _finished(trials))
    return max(startups, default=0.0)


def job_paced(trials: Iterable[optuna.trial.FrozenTrial]) -> bool:
    """Whether a finished trial said how far it was through its epochs: then so will the
    others, once their training begins."""
    return any(t.user_attrs.get(PACED_ATTR) for t in _finished(trials))


def _finished(trials: Iterable[optuna.trial.FrozenTrial]) -> Iterable[optuna.trial.FrozenTrial]:
    """The COMPLETE trials: what a trial that runs to its end does is read off them."""
    return (t for t in trials if t.state == optuna.trial.TrialState.COMPLETE)


def startup_seconds(series: Sequence[Scalar], started_at: float) -> float | None:
    """How long the trial's process ran before its first epoch began: its first point less
    the pace between its points; None with fewer than two points of its own."""
    times = _own_times(series, started_at)
    if len(times) < 2:
        return None
    pace = (times[-1] - times[0]) / (len(times) - 1)
    return max(0.0, times[0] - pace)


def projected_seconds(
    series: Sequence[Scalar],
    started_at: float,
    now: float,
    expected: int,
    epoch_time: tuple[Pace, float] | None = None,
    startup: float | None = 0.0,
) -> float | None:
    """How long the trial's process will run (seconds since ``started_at``, a wall time)
    to write ``expected`` points at its pace so far (``startup`` seconds of it before its
    first epoch; None: not known yet, so the time it has run says nothing), or, before its
    first point, to train its epochs at the pace of its batches (``epoch_time``: its
    latest progress reading and the epoch time it shows), whichever is longer; None when
    nothing says."""
    projection = _projection(series, started_at, now, expected, epoch_time, startup)
    return None if projection is None else projection[0]


def _projection(
    series: Sequence[Scalar],
    started_at: float,
    now: float,
    expected: int,
    epoch_time: tuple[Pace, float] | None,
    startup: float | None = 0.0,
) -> tuple[float, bool] | None:
    """``projected_seconds``, and whether the pace of its batches gave it."""
    by_points = _by_points(series, started_at, now, expected, startup)
    by_batches = None
    if epoch_time is not None and not _own_times(series, started_at):
        by_batches = _by_batches(*epoch_time, started_at)
    if by_batches is not None and (by_points is None or by_batches > by_points):
        return by_batches, True
    return None if by_points is None else (by_points, False)


def _by_points(
    series: Sequence[Scalar],
    started_at: float,
    now: float,
    expected: int,
    startup: float | None,
) -> float | None:
    """The time to ``expected`` points at the pace of those so far; None when it has
    written them all, nothing is expected, or it has none and its start-up is unknown."""
    remaining = expected - len(series)
    if expected <= 0 or remaining <= 0:
        return None
    times = _own_times(series, started_at)
    if not times:  # its first epoch takes no less than the time it has run past start-up
        if startup is None:
            return None
        ran = now - started_at
        return ran + (remaining - 1) * max(0.0, ran - startup)
    if len(times) == 1:
        return times[0] + remaining * max(0.0, times[0] - (startup or 0.0))
    pace = (times[-1] - times[0]) / (len(times) - 1)
    return times[-1] + remaining * pace


def _own_times(series: Sequence[Scalar], started_at: float) -> list[float]:
    """The times of the points this process wrote, from its start (a resumed trial's
    points from before are done, not paced)."""
    return [point.wall_time - started_at for point in series if point.wall_time >= started_at]


def _by_batches(reading: Pace, seconds: float, started_at: float) -> float:
    """The time to the end of its last epoch, each of ``seconds``, from the reading's
    batch of its epoch (epochs count from 0, as Keras numbers them after a restore too)."""
    left_of_this_epoch = (reading.steps - reading.done) / reading.steps
    epochs_after = reading.epochs - reading.epoch - 1
    return reading.time - started_at + (left_of_this_epoch + epochs_after) * seconds


def overrun_reason(
    series: Sequence[Scalar],
    started_at: float,
    now: float,
    expected: int,
    timeout: float,
    epoch_time: tuple[Pace, float] | None = None,
    startup: float | None = 0.0,
) -> str | None:
    """Why the trial is stopped, when its projection passes ``timeout`` by the margin."""
    projection = _projection(series, started_at, now, expected, epoch_time, startup)
    if projection is None or projection[0] <= timeout * MARGIN:
        return None
    projected, by_batches = projection
    pace = "its pace"
    if by_batches and epoch_time is not None:
        pace = f"the pace of its batches (~{epoch_time[1]:.0f} s an epoch)"
    points = f"{len(series)} of {expected} points" if expected > 0 else f"{len(series)} points"
    return (
        f"stopped after {now - started_at:.0f} s with {points}: at {pace} it would need "
        f"~{projected:.0f} s, past trialTimeout {timeout:g} s"
    )

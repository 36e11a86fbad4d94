"""TensorBoard HParams plugin data for runs and tuning jobs, written without TensorFlow.

TensorBoard's hparams dashboard reads three summaries (tensors of plugin ``hparams``):

* the *experiment* (``_hparams_/experiment``: every hparam with its domain, the metrics),
  expected in one run anywhere under the logdir; flagrun writes it in the job folder;
* a *session start* (``_hparams_/session_start_info``: the hparam values) in each run
  folder; that folder becomes a session, i.e. a row of the table;
* a *session end* (``_hparams_/session_end_info``: the status) in the same folder.

A session's metric values are the last points of the scalars named by the experiment's
metrics, each a (group, tag) pair: group is the event folder relative to the session
folder, tag the scalar's own tag. Writers put a run's events in folders of their own
choosing, timestamped or versioned (``logs/fit/20261202-055426/validation``,
``lightning_logs/version_0``), which no (group, tag) pair names in every trial. So the
session end also holds flagrun's reading of the run: the last point of every metric under
its name (``flagrun.tags``: ``validation/epoch_accuracy``, ``val_acc``) in the session
folder itself (group ''), and, for a trial, its objective value under the job's metric tag
as the YAML writes it. The experiment names those, so the columns are the same for every
trial and layout, and the objective column is filled once a trial has ended.

A script's own HParams (``add_hparams``, Lightning's ``save_hyperparameters()``) are kept
out of the event files by ``flagrun.capture`` and shown here beside the run's flags.

So ``tensorboard --logdir runs/<job-id>`` shows one row per trial. Layout::

    <job>/events.out.tfevents.0000000000.flagrun-hparams       the experiment
    <run>/events.out.tfevents.0000000000.flagrun-hparams-1     session start
    <run>/events.out.tfevents.0000000000.flagrun-hparams-2     session end and metrics

Each file has a fixed name and is replaced atomically, so writing again never adds a
second session. Start and end are separate files, the end written only once the run has
finished: a TensorBoard already watching the run reads files in name order and picks up
the new end file, whereas it never re-reads a file it has read. ``flagrun.metrics``
skips these files.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from flagrun import jobstore, metrics, store
from flagrun._atomic import write_bytes_atomic
from flagrun._untrusted import read_regular
from flagrun.capture import SCRIPT_HPARAMS_FILE
from flagrun.errors import StoreError
from flagrun.records import RunRecord, RunStatus, TrialState
from flagrun.sources.events import HPARAMS_MARK

_NAME = f"events.out.tfevents.0000000000.{HPARAMS_MARK}"  # sorts before real event files
EXPERIMENT_FILE = _NAME
START_FILE = f"{_NAME}-1"
END_FILE = f"{_NAME}-2"

# Any state word not here (KILLED, PRUNED, INTERRUPTED...) is STATUS_UNKNOWN: TensorBoard's
# Status has no "aborted", and a stopped run neither failed nor succeeded.
_STATUSES: dict[str, int] = {
    RunStatus.COMPLETED: api_pb2.STATUS_SUCCESS,
    TrialState.COMPLETE: api_pb2.STATUS_SUCCESS,
    RunStatus.FAILED: api_pb2.STATUS_FAILURE,
    RunStatus.CRASHED: api_pb2.STATUS_FAILURE,
    RunStatus.RUNNING: api_pb2.STATUS_RUNNING,
}


# -- public API -----------------------------------------------------------------------------


def write_experiment(job_dir: Path, params: list[dict], metric_tag: str, goal: str) -> None:
    """Write the job's hparams experiment: each param's domain and the metrics.

    ``params`` are ``ParamSpec.to_dict()`` dicts (job.json's ``spec.params``);
    ``metric_tag`` is the objective as the YAML names it (``val_acc`` or a tag path), the
    name every trial's session end gives its objective value. The other metrics are
    those the trials wrote so far, by name; the hparams are the params, then the
    scripts' own hparams.
    """
    job_dir = Path(job_dir)
    seen = _Seen.of(_trial_dirs(job_dir), metric_tag)
    objective = api_pb2.MetricInfo(
        name=api_pb2.MetricName(tag=metric_tag),
        display_name=metric_tag,
        description=f"tuning objective ({goal.upper()})",
    )
    infos = [_hparam_info(param) for param in params]
    infos += _script_hparam_infos(seen.script_hparams, {param["name"] for param in params})
    _write_experiment(job_dir, infos, [objective, *_metric_infos(seen.names - {metric_tag})])


def write_runs_experiment(folder: Path, run_dirs: Iterable[Path]) -> None:
    """An experiment over plain runs in ``folder``: their flags, and their metrics by name
    (TensorBoard's own guess would give each timestamped writer folder its columns)."""
    run_dirs = list(run_dirs)
    seen = _Seen.of(run_dirs, None)
    values: dict[str, Any] = {}
    for run_dir in run_dirs:
        for name, value in _session_hparams(run_dir, store.read_run(run_dir)).items():
            values.setdefault(name, value)
    _write_experiment(Path(folder), _script_hparam_infos(values, set()), _metric_infos(seen.names))


def write_session(
    run_dir: Path,
    hparams: Mapping[str, Any],
    status: str,
    *,
    start_time: float | None = None,
    end_time: float | None = None,
    scalars: Mapping[str, tuple[float, int]] | None = None,
) -> None:
    """Make ``run_dir`` an hparams session: its flag values, and its status once finished.

    ``status`` is a run status (COMPLETED, FAILED, CRASHED, KILLED, RUNNING) or an
    Optuna trial state (COMPLETE, PRUNED, FAILED): success, failure, or (KILLED, PRUNED,
    INTERRUPTED, anything else) unknown, TensorBoard having no "aborted"; RUNNING writes
    no end at all. Values that are not bool, number or string (None, lists) are left
    out. Times are seconds since the epoch (default: now). ``scalars`` (name -> (value,
    step)) go into the session end, where the experiment's metrics find them.
    """
    run_dir = Path(run_dir)
    start = plugin_data_pb2.SessionStartInfo(
        start_time_secs=time.time() if start_time is None else start_time
    )  # no group_name: each run is its own row, named by its folder
    for name, value in sorted(hparams.items()):
        if _supported(value):
            _set_value(start.hparams[name], value)
    data = plugin_data_pb2.HParamsPluginData(session_start_info=start)
    _write_events(run_dir / START_FILE, [(metadata.SESSION_START_INFO_TAG, data)])
    code = _STATUSES.get(status.upper(), api_pb2.STATUS_UNKNOWN)
    if code == api_pb2.STATUS_RUNNING:
        (run_dir / END_FILE).unlink(missing_ok=True)
        return
    end = plugin_data_pb2.SessionEndInfo(
        status=code, end_time_secs=time.time() if end_time is None else end_time
    )
    data = plugin_data_pb2.HParamsPluginData(session_end_info=end)
    _write_events(run_dir / END_FILE, [(metadata.SESSION_END_INFO_TAG, data)], scalars or {})


def write_run_session(run_dir: Path) -> None:
    """``write_session`` from the run's own ``run.json`` (flags, status, start/end), its
    scripts' hparams, and its metrics by name (a trial's objective under the job's tag)."""
    run_dir = Path(run_dir)
    record = store.read_run(run_dir)
    write_session(
        run_dir,
        _session_hparams(run_dir, record),
        record.status.value,
        start_time=_timestamp(record.start),
        end_time=_timestamp(record.end),
        scalars=_session_scalars(run_dir, record),
    )


def write_job_hparams(job_dir: Path) -> None:
    """(Re)write a job's experiment and every trial's session from job.json and run.json."""
    job_dir = Path(job_dir)
    spec = jobstore.read_job(job_dir).spec
    for trial in _trial_dirs(job_dir):
        write_run_session(trial)
    write_experiment(
        job_dir, [param.to_dict() for param in spec.params], spec.metric_tag, spec.goal
    )


# -- what the runs hold ---------------------------------------------------------------------


@dataclass
class _Seen:
    """The metric names and the scripts' own hparams of some runs."""

    names: set[str]
    script_hparams: dict[str, Any]

    @classmethod
    def of(cls, run_dirs: Iterable[Path], objective: str | None) -> _Seen:
        seen = cls(set(), {})
        for run_dir in run_dirs:
            scalars = metrics.read_scalars(run_dir)
            shown = metrics.display_names(scalars)
            found = metrics.find_tag(objective, scalars) if objective else None
            seen.names.update(name for tag, name in shown.items() if tag != found)
            for name, value in _script_hparams(run_dir).items():
                seen.script_hparams.setdefault(name, value)
        return seen


def _session_hparams(run_dir: Path, record: RunRecord) -> dict[str, Any]:
    """The run's flags, and beside them the hparams its script logged itself."""
    return {**_script_hparams(run_dir), **record.flags}


def _script_hparams(run_dir: Path) -> dict[str, Any]:
    try:
        values = json.loads(read_regular(run_dir / SCRIPT_HPARAMS_FILE))  # the script's file
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def _session_scalars(run_dir: Path, record: RunRecord) -> dict[str, tuple[float, int]]:
    """Name -> (last value, step) of every metric; for a trial, its objective value too
    (what ``flagrun trials`` shows) under the job's metric tag."""
    scalars = metrics.read_scalars(run_dir)
    out = {}
    for tag, name in metrics.display_names(scalars).items():
        if scalars[tag]:
            out[name] = (scalars[tag][-1].value, scalars[tag][-1].step)
    objective = _objective_tag(run_dir, record)
    if objective is not None:
        found = metrics.find_tag(objective, scalars)
        outcome = record.trial
        if outcome is not None and outcome.objective_value is not None:
            out[objective] = (outcome.objective_value, outcome.training_step or 0)
        elif found is not None and scalars[found]:
            out[objective] = (scalars[found][-1].value, scalars[found][-1].step)
    return out


def _objective_tag(run_dir: Path, record: RunRecord) -> str | None:
    """The metric tag of the job a trial belongs to (``<job>/trials/<n>``), else None."""
    if record.job is None:
        return None
    try:
        return jobstore.read_job(run_dir.parent.parent).spec.metric_tag
    except StoreError:
        return None


def _trial_dirs(job_dir: Path) -> list[Path]:
    trials = job_dir / jobstore.TRIALS_DIR
    if not trials.is_dir():
        return []
    found = [p for p in trials.iterdir() if (p / store.RUN_FILE).is_file()]
    return sorted(found, key=lambda p: (len(p.name), p.name))


# -- experiment pieces ----------------------------------------------------------------------


def _hparam_info(param: Mapping[str, Any]) -> api_pb2.HParamInfo:
    info = api_pb2.HParamInfo(name=param["name"], type=api_pb2.DATA_TYPE_FLOAT64)
    kind = param.get("type")
    if kind == "CATEGORICAL":
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(param.get("categorical_values") or [])
    elif kind == "DISCRETE":
        info.domain_discrete.extend(float(v) for v in param.get("discrete_values") or [])
    elif param.get("min_value") is not None and param.get("max_value") is not None:
        info.domain_interval.min_value = float(param["min_value"])
        info.domain_interval.max_value = float(param["max_value"])
    return info


def _script_hparam_infos(values: Mapping[str, Any], taken: set[str]) -> list[api_pb2.HParamInfo]:
    """Hparams known by an example value only: typed by it, without a domain."""
    infos = []
    for name, value in sorted(values.items()):
        if name in taken or not _supported(value):
            continue
        kind = (
            api_pb2.DATA_TYPE_BOOL
            if isinstance(value, bool)
            else api_pb2.DATA_TYPE_STRING
            if isinstance(value, str)
            else api_pb2.DATA_TYPE_FLOAT64
        )
        infos.append(api_pb2.HParamInfo(name=name, type=kind))
    return infos


def _metric_infos(names: Iterable[str]) -> list[api_pb2.MetricInfo]:
    return [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=name), display_name=name)
        for name in sorted(names)
    ]


def _write_experiment(
    folder: Path, hparams: list[api_pb2.HParamInfo], metric_infos: list[api_pb2.MetricInfo]
) -> None:
    experiment = api_pb2.Experiment(
        hparam_infos=hparams, metric_infos=metric_infos, time_created_secs=time.time()
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    _write_events(folder / EXPERIMENT_FILE, [(metadata.EXPERIMENT_TAG, data)])


# -- sessions -------------------------------------------------------------------------------


def _supported(python: Any) -> bool:
    """bool, str and finite numbers (TensorBoard drops NaN values from the table)."""
    if isinstance(python, (bool, str)):
        return True
    return isinstance(python, (int, float)) and math.isfinite(python)


def _set_value(value: Any, python: Any) -> None:
    """Fill a ``google.protobuf.Value`` from a supported Python value."""
    if isinstance(python, bool):
        value.bool_value = python
    elif isinstance(python, str):
        value.string_value = python
    else:
        value.number_value = python


def _timestamp(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


# -- event files ----------------------------------------------------------------------------


def _write_events(
    path: Path,
    values: list[tuple[str, plugin_data_pb2.HParamsPluginData]],
    scalars: Mapping[str, tuple[float, int]] | None = None,
) -> None:
    """Replace ``path`` atomically with an event file holding one summary per value, then
    one scalar event per entry of ``scalars`` (name -> (value, step))."""
    buffer = io.BytesIO()
    records = RecordWriter(buffer)
    now = time.time()
    records.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
    for tag, data in values:
        summary = summary_pb2.Summary()
        summary.value.add(
            tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
        )
        records.write(event_pb2.Event(wall_time=now, summary=summary).SerializeToString())
    for name, (value, step) in sorted((scalars or {}).items()):
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=name, simple_value=value)]
        )
        event = event_pb2.Event(wall_time=now, step=step, summary=summary)
        records.write(event.SerializeToString())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buffer.getvalue())

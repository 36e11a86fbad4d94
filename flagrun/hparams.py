"""TensorBoard HParams plugin data for runs and tuning jobs, written without TensorFlow.

TensorBoard's hparams dashboard reads three summaries (tensors of plugin ``hparams``):

* the *experiment* (``_hparams_/experiment``: every hparam with its domain, the metrics),
  expected in one run anywhere under the logdir; flagrun writes it in the job folder;
* a *session start* (``_hparams_/session_start_info``: the hparam values) in each run
  folder; that folder becomes a session, i.e. a row of the table;
* a *session end* (``_hparams_/session_end_info``: the status) in the same folder.

A session's metric values are the last points of the scalars named by the experiment's
metrics, each a (group, tag) pair: group is the event folder relative to the session
folder (Keras' ``logs/validation``), tag the scalar's own tag (``epoch_accuracy``). Without
an experiment (a plain ``flagrun train`` run) TensorBoard builds one from the sessions'
values and every scalar below them.

So ``tensorboard --logdir runs/<job-id>`` shows one row per trial. Layout::

    <job>/events.out.tfevents.0000000000.flagrun-hparams       the experiment
    <run>/events.out.tfevents.0000000000.flagrun-hparams-1     session start
    <run>/events.out.tfevents.0000000000.flagrun-hparams-2     session end (a finished run)

Each file has a fixed name and is replaced atomically, so writing again never adds a
second session. Start and end are separate files, the end written only once the run has
finished: a TensorBoard already watching the run reads files in name order and picks up
the new end file, whereas it never re-reads a file it has read. ``flagrun.metrics``
ignores these files' tensors (plugin ``hparams``, not ``scalars``).
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from flagrun import jobstore, metrics, store
from flagrun._atomic import write_bytes_atomic
from flagrun.records import RunStatus, TrialState

_NAME = "events.out.tfevents.0000000000.flagrun-hparams"  # sorts before real event files
EXPERIMENT_FILE = _NAME
START_FILE = f"{_NAME}-1"
END_FILE = f"{_NAME}-2"
LOGS = metrics.LOG_DIR

# Any state word not here (KILLED, PRUNED, INTERRUPTED...) is STATUS_UNKNOWN: TensorBoard's
# Status has no "aborted", and a stopped run neither failed nor succeeded.
_STATUSES: dict[str, int] = {
    RunStatus.COMPLETED: api_pb2.STATUS_SUCCESS,
    TrialState.COMPLETE: api_pb2.STATUS_SUCCESS,
    RunStatus.FAILED: api_pb2.STATUS_FAILURE,
    RunStatus.CRASHED: api_pb2.STATUS_FAILURE,
    RunStatus.RUNNING: api_pb2.STATUS_RUNNING,
}
_KERAS_NAMES = {"acc": "epoch_accuracy", "accuracy": "epoch_accuracy", "loss": "epoch_loss"}


# -- public API -----------------------------------------------------------------------------


def write_experiment(job_dir: Path, params: list[dict], metric_tag: str, goal: str) -> None:
    """Write the job's hparams experiment: each param's domain and the metrics.

    ``params`` are ``ParamSpec.to_dict()`` dicts (job.json's ``spec.params``);
    ``metric_tag`` is the objective as the YAML names it (``val_acc`` or a tag path).
    The metrics are the objective first, then every other scalar the trials wrote so
    far; before any trial has written the objective, its place is guessed from Keras'
    layout (``val_acc`` -> ``logs/validation`` / ``epoch_accuracy``).
    """
    job_dir = Path(job_dir)
    names = _metric_names(_trial_dirs(job_dir))
    objective = _objective_name(metric_tag, names)
    infos = [
        api_pb2.MetricInfo(
            name=api_pb2.MetricName(group=objective[0], tag=objective[1]),
            display_name=metric_tag,
            description=f"tuning objective ({goal.upper()})",
        )
    ]
    for path, (group, tag) in sorted(names.items()):
        if (group, tag) != objective:
            infos.append(
                api_pb2.MetricInfo(name=api_pb2.MetricName(group=group, tag=tag), display_name=path)
            )
    experiment = api_pb2.Experiment(
        hparam_infos=[_hparam_info(param) for param in params],
        metric_infos=infos,
        time_created_secs=time.time(),
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    _write_events(job_dir / EXPERIMENT_FILE, [(metadata.EXPERIMENT_TAG, data)])


def write_session(
    run_dir: Path,
    hparams: Mapping[str, Any],
    status: str,
    *,
    start_time: float | None = None,
    end_time: float | None = None,
) -> None:
    """Make ``run_dir`` an hparams session: its flag values, and its status once finished.

    ``status`` is a run status (COMPLETED, FAILED, CRASHED, KILLED, RUNNING) or an
    Optuna trial state (COMPLETE, PRUNED, FAILED): success, failure, or (KILLED, PRUNED,
    INTERRUPTED, anything else) unknown, TensorBoard having no "aborted"; RUNNING writes
    no end at all. Values that are not bool, number or
    string (None, lists) are left out. Times are seconds since the epoch (default: now).
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
    _write_events(run_dir / END_FILE, [(metadata.SESSION_END_INFO_TAG, data)])


def write_run_session(run_dir: Path) -> None:
    """``write_session`` from the run's own ``run.json`` (flags, status, start/end)."""
    record = store.read_run(run_dir)
    write_session(
        run_dir,
        record.flags,
        record.status.value,
        start_time=_timestamp(record.start),
        end_time=_timestamp(record.end),
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


def _trial_dirs(job_dir: Path) -> list[Path]:
    trials = job_dir / jobstore.TRIALS_DIR
    if not trials.is_dir():
        return []
    found = [p for p in trials.iterdir() if (p / store.RUN_FILE).is_file()]
    return sorted(found, key=lambda p: (len(p.name), p.name))


def _metric_names(run_dirs: Iterable[Path]) -> dict[str, tuple[str, str]]:
    """flagrun tag path (``validation/epoch_accuracy``) -> TensorBoard (group, tag)."""
    names: dict[str, tuple[str, str]] = {}
    for run_dir in run_dirs:
        folders = _event_folders(run_dir)
        for path in metrics.read_scalars(run_dir):
            names.setdefault(path, _split(path, folders))
    return names


def _event_folders(run_dir: Path) -> list[str]:
    """Folders holding event files, relative to ``run_dir`` ('' for the folder itself)."""
    found = []
    for folder, subdirs, files in os.walk(run_dir):
        if Path(folder) == run_dir:
            subdirs[:] = [d for d in subdirs if d not in metrics.SKIP_DIRS]
        if any("tfevents" in name for name in files):
            relative = os.path.relpath(folder, run_dir)
            found.append("" if relative == "." else Path(relative).as_posix())
    return found


def _split(path: str, folders: list[str]) -> tuple[str, str]:
    """Undo flagrun's tag prefixing: the event folder whose prefix is longest wins."""
    best = ("", path)
    best_len = -1
    for folder in folders:
        parts = folder.split("/") if folder else []
        prefix = "/".join(parts[1:] if parts[:1] == [LOGS] else parts)
        if prefix and not path.startswith(prefix + "/"):
            continue
        if len(prefix) > best_len:
            best_len = len(prefix)
            best = (folder, path[len(prefix) + 1 :] if prefix else path)
    return best


def _objective_name(metric_tag: str, names: dict[str, tuple[str, str]]) -> tuple[str, str]:
    found = metrics.find_tag(metric_tag, names)
    if found is not None:
        return names[found]
    # No trial has written it yet: guess Keras' layout, else log_metrics' bare tag.
    side, base = (
        ("validation", metric_tag[4:]) if metric_tag.startswith("val_") else ("train", metric_tag)
    )
    if base in _KERAS_NAMES:
        return f"{LOGS}/{side}", _KERAS_NAMES[base]
    if "/" in metric_tag:
        folder, _, tag = metric_tag.rpartition("/")
        return f"{LOGS}/{folder}", tag
    return LOGS, metric_tag


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


def _write_events(path: Path, values: list[tuple[str, plugin_data_pb2.HParamsPluginData]]) -> None:
    """Replace ``path`` atomically with an event file holding one summary per value."""
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
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buffer.getvalue())

"""Every record flagrun keeps on disk, one typed shape each, and the words for their states.

==================  =============  ==========================================
file                shape          what it is
==================  =============  ==========================================
``run.json``        ``RunRecord``  a ``flagrun train`` run, or one trial's run
``job.json``        ``JobRecord``  a tuning job
``trials.jsonl``    ``TrialRow``   one line per trial state change (the index)
==================  =============  ==========================================

Each shape has one reader (``from_dict``) that accepts every version written so far
and raises ``RecordError`` naming the key that is wrong, and one writer (``to_dict``)
that writes the current version. The keys on disk are the ones flagrun has always
written: snake_case in ``run.json`` and ``job.json``, Cloud ML's camelCase in trial
rows. Keys that this version does not know (written by a newer flagrun) are kept in
``extra`` and written back as they were.

The state words live here and nowhere else: ``RunStatus`` for runs, ``TrialState``
for trials (Cloud ML's words), ``JobState`` for jobs. Stdlib only (plus the spec's
dataclasses): listing commands import this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from flagrun.errors import StoreError
from flagrun.spec import TuningSpec

FORMAT = 1  # the version written; readers accept 1 (files without the key are 1 too)


class RecordError(StoreError):
    """A record on disk does not have the shape it should."""


class Word(str, Enum):
    """A state word: compares and hashes like its text, prints as its text."""

    def __str__(self) -> str:
        return str(self.value)


class RunStatus(Word):
    """Where a run is. ``CRASHED`` is derived (a RUNNING run whose runner is gone), never
    written."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # the script exited 0
    FAILED = "FAILED"  # the script exited non-zero or was killed by a signal it did not ask for
    KILLED = "KILLED"  # stopped on purpose: Ctrl-C, --timeout, the tuner stopping
    PRUNED = "PRUNED"  # stopped by early stopping
    CRASHED = "CRASHED"


class TrialState(Word):
    """A trial's state, as Cloud ML names them (``flagrun trials``, the trials index)."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAILED = "FAILED"


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


class JobState(Word):
    """A tuning job's state. ``CRASHED`` (RUNNING, its tuner gone) and ``STOPPED`` (a shared
    study nobody works on, short of its budget) are derived, never written."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"
    CRASHED = "CRASHED"
    STOPPED = "STOPPED"


# -- small pieces ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as liveness checks know it: pid, start time (clock ticks since boot), host."""

    pid: int
    start_time: int | None
    host: str

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_time": self.start_time, "host": self.host}

    @classmethod
    def from_dict(cls, data: Any, key: str) -> ProcessIdentity | None:
        if data is None:
            return None
        reader = _Reader(data, key)
        return cls(reader.whole("pid"), reader.opt_whole("start_time"), reader.text("host"))


@dataclass(frozen=True)
class Best:
    """A job's best trial so far."""

    trial_id: int
    objective_value: float | None
    hyperparameters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "trialId": self.trial_id,
            "objectiveValue": finite_or_none(self.objective_value),
            "hyperparameters": self.hyperparameters,
        }

    @classmethod
    def from_dict(cls, data: Any, key: str = "best") -> Best | None:
        if data is None:
            return None
        reader = _Reader(data, key)
        return cls(
            reader.whole("trialId"),
            reader.opt_number("objectiveValue"),
            reader.mapping("hyperparameters"),
        )


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended, kept in its own ``run.json`` under ``trial``."""

    state: TrialState
    objective_value: float | None = None
    training_step: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "objectiveValue": finite_or_none(self.objective_value),
            "trainingStep": self.training_step,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Any, key: str = "trial") -> TrialOutcome | None:
        if data is None:
            return None
        reader = _Reader(data, key)
        return cls(
            reader.word("state", TrialState),
            reader.opt_number("objectiveValue"),
            reader.opt_whole("trainingStep"),
            reader.opt_text("reason"),
        )


@dataclass(frozen=True)
class Launch:
    """How a job's trials are started (``flagrun.launch``), kept in ``job.json``."""

    module: str | None = None  # run as `python -m module` from the snapshot's root
    args: tuple[str, ...] = ()  # fixed arguments, before --job-dir and the hyperparameters
    job_dir: str | None = None  # the --job-dir every trial gets (None: its own run folder)
    job_dir_option: str | None = None  # how the trainer spells it; None: not passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "args": list(self.args),
            "job_dir": self.job_dir,
            "job_dir_option": self.job_dir_option,
        }

    @classmethod
    def from_dict(cls, data: Any, key: str = "launch") -> Launch:
        if data is None:  # jobs written before trainers had fixed arguments
            return cls()
        reader = _Reader(data, key)
        return cls(
            reader.opt_text("module"),
            tuple(str(a) for a in reader.items("args")),
            reader.opt_text("job_dir"),
            reader.opt_text("job_dir_option"),
        )


def empty_counts() -> dict[TrialState, int]:
    """Trials per state, every state present."""
    return {state: 0 for state in TrialState}


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a value that is not finite is written as null."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


# -- run.json ----------------------------------------------------------------------------


@dataclass
class RunRecord:
    """``run.json``: one run of a script, written at every state change."""

    id: str
    status: RunStatus
    script: str
    start: str
    flags: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    label: str | None = None
    command: str = ""
    argv: list[str] = field(default_factory=list)
    end: str | None = None
    duration: float | None = None
    exit_code: int | None = None
    signal: str | None = None
    python: str | None = None
    git: dict[str, Any] | None = None
    source_hash: str | None = None
    project_dir: str | None = None
    runner: ProcessIdentity | None = None
    child_pid: int | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics_error: str | None = None
    job: str | None = None  # a trial's job id
    trial_id: int | None = None
    flag_declared: dict[str, Any] | None = None  # what the script declared (from flags.json)
    flag_sources: dict[str, str] | None = None
    trial: TrialOutcome | None = None
    worker: dict[str, Any] | None = None  # a trial run on a cluster worker: where, and what
    # of its folder stayed there
    extra: dict[str, Any] = field(default_factory=dict)

    # Keys written only when set, so a plain run's file holds no trial keys.
    _OPTIONAL = ("metrics_error", "job", "trialId", "flag_declared", "flag_sources", "trial",
                 "worker")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT}
        for item in fields(self):
            if item.name == "extra":
                continue
            key = "trialId" if item.name == "trial_id" else item.name
            value = getattr(self, item.name)
            if value is None and key in self._OPTIONAL:
                continue
            data[key] = _plain(value)
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        reader = _Reader(data, "run.json")
        reader.check_format()
        record = cls(
            id=reader.text("id"),
            status=reader.word("status", RunStatus),
            script=reader.text("script"),
            start=reader.text("start"),
            flags=reader.mapping("flags"),
            reason=reader.opt_text("reason"),
            label=reader.opt_text("label"),
            command=reader.opt_text("command") or "",
            argv=reader.items("argv"),
            end=reader.opt_text("end"),
            duration=reader.opt_number("duration"),
            exit_code=reader.opt_whole("exit_code"),
            signal=reader.opt_text("signal"),
            python=reader.opt_text("python"),
            git=reader.opt_mapping("git"),
            source_hash=reader.opt_text("source_hash"),
            project_dir=reader.opt_text("project_dir"),
            runner=ProcessIdentity.from_dict(reader.raw("runner"), "runner"),
            child_pid=reader.opt_whole("child_pid"),
            metrics=reader.mapping("metrics"),
            metrics_error=reader.opt_text("metrics_error"),
            job=reader.opt_text("job"),
            trial_id=reader.opt_whole("trialId"),
            flag_declared=reader.opt_mapping("flag_declared"),
            flag_sources=reader.opt_mapping("flag_sources"),
            trial=TrialOutcome.from_dict(reader.raw("trial")),
            worker=reader.opt_mapping("worker"),
        )
        record.extra = reader.unread()
        return record

    def metric(self, tag: str) -> Any:
        """The last value of ``tag`` in the run's metrics summary (None when absent)."""
        entry = self.metrics.get(tag)
        return entry.get("value") if isinstance(entry, dict) else entry


# -- job.json ----------------------------------------------------------------------------


@dataclass
class JobRecord:
    """``job.json``: a tuning job's spec, script, state and progress."""

    id: str
    state: JobState
    spec: TuningSpec
    script: str
    created: str
    updated: str
    reason: str | None = None
    script_path: str | None = None
    config: str | None = None
    project_dir: str | None = None
    fixed_flags: dict[str, Any] = field(default_factory=dict)
    launch: Launch = field(default_factory=Launch)
    storage: str | None = None  # the study's storage: the journal file's name, or a masked URL
    study: str | None = None
    shared: bool = False  # the study lives in a database other workers share
    artifacts: str | None = None
    source_hash: str | None = None
    ended: str | None = None
    counts: dict[TrialState, int] = field(default_factory=empty_counts)
    best: Best | None = None
    tuner: ProcessIdentity | None = None
    cluster: str | None = None  # the Dask scheduler the trials last ran on (None: this machine)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT, "kind": "job"}
        for item in fields(self):
            if item.name != "extra":
                data[item.name] = _plain(getattr(self, item.name))
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> JobRecord:
        reader = _Reader(data, "job.json")
        reader.check_format()
        reader.raw("kind")
        record = cls(
            id=reader.text("id"),
            state=reader.word("state", JobState),
            spec=reader.spec("spec"),
            script=reader.text("script"),
            created=reader.text("created"),
            updated=reader.opt_text("updated") or "",
            reason=reader.opt_text("reason"),
            script_path=reader.opt_text("script_path"),
            config=reader.opt_text("config"),
            project_dir=reader.opt_text("project_dir"),
            fixed_flags=reader.mapping("fixed_flags"),
            launch=Launch.from_dict(reader.raw("launch")),
            storage=reader.opt_text("storage"),
            study=reader.opt_text("study"),
            shared=bool(reader.raw("shared")),
            artifacts=reader.opt_text("artifacts"),
            source_hash=reader.opt_text("source_hash"),
            ended=reader.opt_text("ended"),
            counts=reader.counts("counts"),
            best=Best.from_dict(reader.raw("best")),
            tuner=ProcessIdentity.from_dict(reader.raw("tuner"), "tuner"),
            cluster=reader.opt_text("cluster"),
        )
        record.extra = reader.unread()
        return record

    @property
    def finished_trials(self) -> int:
        """Trials done (complete, pruned or failed), as maxTrials counts them."""
        return sum(self.counts.get(state, 0) for state in FINISHED)


# -- trials.jsonl ------------------------------------------------------------------------


@dataclass
class TrialRow:
    """One trial as ``flagrun trials`` shows it: a line of the trials index."""

    trial_id: int
    state: TrialState
    hyperparameters: dict[str, Any]
    run_dir: str  # relative to the job folder
    objective_value: float | None = None
    training_step: int | None = None
    duration: float | None = None
    reason: str | None = None
    time: str | None = None
    host: str | None = None
    artifact: str | None = None  # where a shared study's trial was uploaded
    interrupted: bool = False  # cut short by the tuner; its parameters ran again
    resumed_from: int | None = None  # the interrupted trial whose checkpoint it continued

    def to_dict(self) -> dict[str, Any]:
        data = {
            "trialId": self.trial_id,
            "state": self.state.value,
            "objectiveValue": finite_or_none(self.objective_value),
            "trainingStep": self.training_step,
            "hyperparameters": self.hyperparameters,
            "runDir": self.run_dir,
            "duration": self.duration,
            "reason": self.reason,
            "time": self.time,
            "host": self.host,
        }
        if self.artifact is not None:
            data["artifact"] = self.artifact
        if self.interrupted:
            data["interrupted"] = True
        if self.resumed_from is not None:
            data["resumedFrom"] = self.resumed_from
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TrialRow:
        reader = _Reader(data, "trial row")
        trial_id = reader.whole("trialId")
        return cls(
            trial_id=trial_id,
            state=reader.word("state", TrialState),
            hyperparameters=reader.mapping("hyperparameters"),
            run_dir=reader.opt_text("runDir") or f"trials/{trial_id}",
            objective_value=reader.opt_number("objectiveValue"),
            training_step=reader.opt_whole("trainingStep"),
            duration=reader.opt_number("duration"),
            reason=reader.opt_text("reason"),
            time=reader.opt_text("time"),
            host=reader.opt_text("host"),
            artifact=reader.opt_text("artifact"),
            interrupted=bool(reader.raw("interrupted")),
            resumed_from=reader.opt_whole("resumedFrom"),
        )


# -- reading -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A field's value as JSON: enums as their words, nested records as dicts."""
    if isinstance(value, Word):
        return value.value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, float):
        return finite_or_none(value)
    return value


class _Reader:
    """Takes typed values out of one JSON object, naming the record and key that is wrong."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise RecordError(f"{what} is {type(data).__name__}, not a JSON object")
        self.data = data
        self.what = what
        self.seen = {"format"}

    def _fail(self, key: str, expected: str) -> RecordError:
        value = self.data.get(key)
        shown = repr(value) if len(repr(value)) < 60 else type(value).__name__
        return RecordError(f"{self.what}: {key} is {shown}, not {expected}")

    def raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key)

    def check_format(self) -> None:
        version = self.data.get("format", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self._fail("format", "a version number")
        if version > FORMAT:
            raise RecordError(
                f"{self.what} has format {version}; this flagrun reads up to {FORMAT}",
                hint="upgrade flagrun to read it",
            )

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self._fail(key, "text")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "text")
        return value

    def whole(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "a whole number")
        return value

    def opt_whole(self, key: str) -> int | None:
        return None if self.raw(key) is None else self.whole(key)

    def opt_number(self, key: str) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, str) and value in ("nan", "inf", "-inf"):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        return self.opt_mapping(key) or {}

    def opt_mapping(self, key: str) -> dict[str, Any] | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, dict):
            raise self._fail(key, "a mapping")
        return value

    def items(self, key: str) -> list[Any]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return value

    def word(self, key: str, kind: type[Word]) -> Any:
        value = self.raw(key)
        try:
            return kind(value)
        except ValueError:
            words = ", ".join(member.value for member in kind)
            raise self._fail(key, f"one of {words}") from None

    def counts(self, key: str) -> dict[TrialState, int]:
        counts = empty_counts()
        for state, number in self.mapping(key).items():
            if state in counts and isinstance(number, int) and not isinstance(number, bool):
                counts[TrialState(state)] = number
        return counts

    def spec(self, key: str) -> TuningSpec:
        data = self.opt_mapping(key)
        if data is None:
            raise self._fail(key, "a tuning spec")
        try:
            return TuningSpec.from_dict(data)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RecordError(f"{self.what}: {key} is not a tuning spec ({exc})") from None

    def unread(self) -> dict[str, Any]:
        """The keys nobody asked for: kept so that writing the record back loses nothing."""
        return {k: v for k, v in self.data.items() if k not in self.seen and k != "kind"}

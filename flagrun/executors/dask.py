"""Trials as Dask tasks on a cluster's workers; the job's driver stays on this machine.

Each trial is one task (``_dask_task.run_trial``) that runs the trial's process on a
worker, in a run folder on that worker's disk (or in the driver's own folder when the
worker sees it: a shared filesystem). What crosses the wire, all through Dask:

* driver -> worker: per trial an ``Order`` (the ``RunSpec`` and a few settings) with the
  job's source snapshot as tar.gz bytes (a snapshot over 4 MB is put once in a
  ``distributed.Variable`` instead); each worker unpacks a snapshot once;
* worker -> driver while it runs: the new metric points, as events on a topic of this
  executor's own (``Worker.log_event`` / ``Client.subscribe_topic``);
* driver -> worker to stop it: a ``distributed.Variable`` per trial that a thread of the
  task waits on (``Future.cancel()`` would not stop a running task; Dask only marks it
  cancelled, which the task also watches for: that is how it learns that the driver died);
* worker -> driver at the end: how it ended and its run folder as a tar (up to
  ``FLAGRUN_CLUSTER_RETURN_MB``, default 256 MB; a bigger one through the job's artifact
  store), unpacked into ``runs/<job>/trials/<N>/`` here.

A trial whose worker dies is *lost* (``RunResult.lost``): the scheduler says so on the
worker's event topic, or Dask's rerun of the task finds the trial's started marker and
returns at once, or Dask gives up with ``KilledWorker``. The tuner then fails it as
interrupted and runs its parameters again.

Reaching the cluster (``connect``) is ``_dask_connect``. ``distributed`` is imported by
these two modules only; nothing imports them unless a cluster is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flagrun import runner, store
from flagrun.errors import FlagrunError, RunError
from flagrun.executors import _dask_task as task
from flagrun.executors._dask_connect import Connection, connect, first_line, float_env
from flagrun.executors.base import TrialProcess
from flagrun.records import RunStatus
from flagrun.sources import Scalar

__all__ = ["Connection", "DaskExecutor", "connect"]

try:
    import distributed
except ImportError:  # pragma: no cover (checked in connect, with an install hint)
    distributed = None  # type: ignore[assignment]

RETURN_MB_ENV = "FLAGRUN_CLUSTER_RETURN_MB"  # folders up to this size come back through Dask
SHARED_ENV = "FLAGRUN_CLUSTER_SHARED"  # auto: run in the driver's folder where a worker sees
# it; no: always on the worker's disk, folders sent back
DEFAULT_RETURN_MB = 256
GPU_RECHECK_SECONDS = 5.0  # how often the workers' GPU resources are looked at again
INLINE_SOURCE_BYTES = 4 << 20  # a source snapshot up to this size travels with each task
_SYNC_SECONDS = 2.0  # how long result() waits for metric events still on their way


# -- the executor -----------------------------------------------------------------------------


class DaskExecutor:
    """Runs each trial as a task on a Dask cluster (see the module docstring).

    ``gpus``: True to give every trial one ``GPU`` worker resource (and its own
    ``CUDA_VISIBLE_DEVICES`` on its worker), False never, None when the cluster's
    workers offer ``GPU`` resources at the time the trial starts.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        gpus: bool | None = None,
        artifacts: str | None = None,
        artifact_prefix: str = "",
        return_limit: int | None = None,
        shared: str | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.connection = connection
        self.client = client = connection.client
        self.address = connection.address
        self.gpus = gpus
        self.artifacts = artifacts
        self.artifact_prefix = artifact_prefix
        limit_mb = float_env(RETURN_MB_ENV, DEFAULT_RETURN_MB)
        self.return_limit = return_limit if return_limit is not None else int(limit_mb * 2**20)
        self.probe = (shared or os.environ.get(SHARED_ENV, "auto")).strip().lower() != "no"
        self.notify = notify or (lambda text: None)
        self.session = uuid.uuid4().hex[:10]
        self.topic = f"flagrun-{self.session}"
        self._wake = threading.Event()
        self._trials: dict[str, DaskTrial] = {}  # token -> trial, until its result is taken
        self._watched: set[str] = set()  # worker addresses whose event topic we follow
        self._sources: dict[str, tuple[bytes | None, str | None]] = {}  # see _source
        self._lock = threading.Lock()
        self._gpu_seen: tuple[float, bool] | None = None
        self._broken: str | None = None  # why no trial can start any more (the scheduler is lost)
        self._cleanup = ThreadPoolExecutor(1, thread_name_prefix="flagrun-dask-cleanup")
        client.subscribe_topic(self.topic, self._on_trial_event)

    # -- the Executor protocol --------------------------------------------------------------

    def start(self, spec: runner.RunSpec) -> DaskTrial:
        self._check_client()
        token = uuid.uuid4().hex
        spec.run_dir = Path(spec.run_dir)
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        store.write_run(spec.run_dir, runner.initial_record(spec))
        if self.probe:
            (spec.run_dir / task.PROBE_FILE).write_text(token)
        try:
            digest, source, variable = self._source(spec)
            gpu = self._want_gpu()
        except (OSError, TimeoutError) as exc:  # the scheduler went away (CommClosedError...)
            self._broken = str(exc)
            raise self._lost_scheduler(exc) from None
        key = f"{self.artifact_prefix}/trials/{spec.trial_id}" if self.artifacts else None
        order = task.Order(
            token=token,
            topic=self.topic,
            session=self.session,
            spec=spec,
            source_hash=digest,
            source=source,
            source_variable=variable,
            gpu=gpu,
            return_limit=self.return_limit,
            artifacts=self.artifacts,
            artifact_key=key,
            probe=self.probe,
        )
        trial = DaskTrial(self, spec, token)
        with self._lock:
            self._trials[token] = trial
        try:
            future = self.client.submit(
                task.run_trial,
                order,
                key=task.task_key(token),
                pure=False,
                resources={"GPU": 1} if gpu else None,
            )
        except Exception as exc:
            with self._lock:
                self._trials.pop(token, None)
            raise self._lost_scheduler(exc) from None
        trial.attach(future)
        return trial

    def wait(self, running: Sequence[TrialProcess], timeout: float) -> None:
        if not running:
            time.sleep(timeout)
            return
        if any(trial.poll() for trial in running):
            return
        self._wake.wait(timeout)
        self._wake.clear()

    def later(self, job: Callable[[], None]) -> None:
        """Run ``job`` (a call to the scheduler whose answer no one waits for) off the loop."""
        self._cleanup.submit(job)

    def close(self) -> None:
        self._cleanup.shutdown(wait=True)
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        for address in list(self._watched):
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(address)
        for _, variable in self._sources.values():
            if variable is not None and self.connected():
                with contextlib.suppress(Exception):
                    distributed.Variable(variable, client=self.client).delete()
        self._sources.clear()
        self.connection.close()

    # -- what the trials need -----------------------------------------------------------------

    def _source(self, spec: runner.RunSpec) -> tuple[str, bytes | None, str | None]:
        """The job's source snapshot for the workers: its hash, and its tar.gz bytes to send
        with each task when small, else the name of a Variable holding them on the scheduler.

        Not a future the tasks depend on: Dask would then prefer the workers that hold it
        and queue trials there while other workers idle.
        """
        digest = spec.source_hash or ""
        if digest in self._sources:
            return digest, *self._sources[digest]
        data = task.pack_folder(spec.source_dir)
        digest = digest or hashlib.sha256(data).hexdigest()
        held: tuple[bytes | None, str | None] = (data, None)
        if len(data) > INLINE_SOURCE_BYTES:
            name = f"flagrun-source-{self.session}-{digest[:16]}"
            distributed.Variable(name, client=self.client).set(data)
            held = (None, name)
        self._sources[digest] = held
        return digest, *held

    def _want_gpu(self) -> bool:
        """Whether a trial takes a GPU resource; asks the scheduler at most every few seconds."""
        if self.gpus is not None:
            return self.gpus
        now = time.monotonic()
        if self._gpu_seen is None or now - self._gpu_seen[0] > GPU_RECHECK_SECONDS:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
            offered = any(
                (info.get("resources") or {}).get("GPU", 0) > 0 for info in workers.values()
            )
            self._gpu_seen = (now, offered)
        return self._gpu_seen[1]

    def connected(self) -> bool:
        """Whether the scheduler is there to talk to (calls to it would wait for it else)."""
        return self._broken is None and getattr(self.client, "status", "running") == "running"

    def _check_client(self) -> None:
        if self._broken is not None:
            raise self._lost_scheduler(None)
        if getattr(self.client, "status", "running") != "running":
            self._broken = "the client is " + str(self.client.status)
            raise self._lost_scheduler(None)

    def _lost_scheduler(self, exc: BaseException | None) -> FlagrunError:
        detail = f": {first_line(exc)}" if exc is not None else ""
        return RunError(f"lost the Dask scheduler at {self.address}{detail}",
                        hint="the job stays resumable: start the cluster again and run "
                        "`flagrun tune --resume JOB --cluster ADDRESS`")  # fmt: skip

    # -- events from the cluster (called on the client's event loop thread) -------------------

    def _on_trial_event(self, event: tuple[float, Any]) -> None:
        _, msg = event
        if not isinstance(msg, dict):
            return
        with self._lock:
            trial = self._trials.get(str(msg.get("token")))
        if trial is None:
            return
        kind = msg.get("kind")
        if kind == "points":
            trial.metrics.push(int(msg.get("seq", 0)), msg.get("points") or [])
        elif kind == "started":
            trial.on_started(msg)
            address = str(msg.get("worker"))
            if address not in self._watched:
                # The scheduler logs a worker's removal on a topic named by its address.
                self._watched.add(address)
                self.client.subscribe_topic(
                    address, lambda event: self._on_worker_event(address, event)
                )

    def _on_worker_event(self, address: str, event: tuple[float, Any]) -> None:
        """The scheduler removed a worker: the trials it ran are lost."""
        _, msg = event
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        processing = set(msg.get("processing-tasks") or ())
        with self._lock:
            trials = list(self._trials.values())
        for trial in trials:
            if trial.key in processing or trial.worker == address:
                trial.lose(f"interrupted: Dask worker {address} was lost")

    def _wake_up(self) -> None:
        self._wake.set()

    def _forget(self, trial: DaskTrial) -> None:
        with self._lock:
            self._trials.pop(trial.token, None)


class StreamedMetrics:
    """A trial's metric points as they arrive from its worker (a ``MetricSource``)."""

    def __init__(self) -> None:
        self._scalars: dict[str, list[Scalar]] = {}
        self._inbox: list[list[Any]] = []
        self._lock = threading.Lock()
        self.seq = 0  # the last batch of points received

    def push(self, seq: int, points: list[list[Any]]) -> None:
        with self._lock:
            self._inbox.extend(points)
            self.seq = max(self.seq, seq)

    @property
    def scalars(self) -> dict[str, list[Scalar]]:
        return self._scalars

    def poll(self) -> bool:
        with self._lock:
            points, self._inbox = self._inbox, []
        for tag, step, wall_time, value in points:
            self._scalars.setdefault(str(tag), []).append(
                Scalar(int(step), float(wall_time), float(value))
            )
        return bool(points)

    def tags(self) -> list[str]:
        return sorted(self._scalars)

    def catch_up(self, run_dir: Path) -> None:
        """Take the points a folder holds beyond those received (events that never came)."""
        from flagrun import sources

        reader = sources.for_run(run_dir)
        reader.poll()
        self.poll()
        for tag, series in reader.scalars.items():
            mine = self._scalars.setdefault(tag, [])
            mine.extend(series[len(mine) :])


class DaskTrial:
    """A trial running as a Dask task (a ``TrialProcess``)."""

    def __init__(self, executor: DaskExecutor, spec: runner.RunSpec, token: str) -> None:
        self.executor = executor
        self.spec = spec
        self.token = token
        self.key = task.task_key(token)
        self.run_dir: Path = Path(spec.run_dir)
        self.gpu: str | None = None
        self.metrics = StreamedMetrics()
        self.worker: str | None = None  # the worker's address, once it started
        self.host: str | None = None
        self.future: Any = None
        self._started = time.monotonic()
        self._running = threading.Event()  # the task started the process
        self._done = threading.Event()  # the future finished, or the trial was lost
        self._lost: str | None = None
        self._stop: tuple[RunStatus, str, float] | None = None
        self._stop_at: float | None = None
        self._result: runner.RunResult | None = None

    def attach(self, future: Any) -> None:
        self.future = future
        future.add_done_callback(self._on_done)

    def _on_done(self, _future: Any) -> None:
        self._done.set()
        self.executor._wake_up()

    def on_started(self, msg: dict[str, Any]) -> None:
        self.worker = str(msg.get("worker"))
        self.host = msg.get("host")
        gpu = msg.get("gpu")
        self.gpu = f"{gpu}@{self.host}" if gpu is not None else None
        self._running.set()

    def lose(self, reason: str) -> None:
        if self._lost is None and not self._done.is_set():
            self._lost = reason
            self._done.set()
            self.executor._wake_up()

    # -- the TrialProcess protocol ----------------------------------------------------------

    def poll(self) -> bool:
        return self._done.is_set()

    def stop(self, status: RunStatus, reason: str, grace: float) -> None:
        if self._stop is not None or self._done.is_set():
            return
        self._stop = (status, reason or status.value.lower(), grace)
        self._stop_at = time.monotonic()
        if not self.executor.connected():
            self.lose("interrupted: the Dask scheduler was lost")
            return
        message = {"status": status.value, "reason": self._stop[1], "grace": grace}
        try:
            distributed.Variable(task.stop_name(self.token), client=self.executor.client).set(
                message
            )
        except Exception as exc:  # noqa: BLE001 (the scheduler is gone: the task is gone too)
            self.lose(f"interrupted: lost the Dask scheduler ({first_line(exc)})")

    def result(self) -> runner.RunResult:
        if self._result is not None:
            return self._result
        while not self._done.wait(0.1):
            if self._stop is not None and not self._running.is_set():
                # Stopped before it started (queued for a worker thread): never run it.
                assert self._stop_at is not None
                if time.monotonic() - self._stop_at > 1.0:
                    self.future.cancel()
                    self._result = self._not_run(*self._stop[:2])
                    return self._finish()
        if self._lost is not None:
            with contextlib.suppress(Exception):
                self.future.cancel()
            self._result = self._lost_result(self._lost)
            return self._finish()
        self._result = self._collect()
        return self._finish()

    # -- endings ----------------------------------------------------------------------------

    def _collect(self) -> runner.RunResult:
        future = self.future
        status = future.status
        if status == "finished":
            try:
                payload = future.result()
            except Exception as exc:  # noqa: BLE001 (its worker went away before we got it)
                return self._lost_result(f"interrupted: its result was lost ({first_line(exc)})")
            if payload.get("lost"):
                return self._lost_result(
                    f"interrupted: Dask worker {self.worker or 'running it'} was lost"
                )
            return self._ended(payload)
        if status == "error":
            error = future.exception()
            if type(error).__name__ == "KilledWorker":
                return self._lost_result(f"interrupted: its Dask workers died ({error})")
            where = f" on Dask worker {self.worker}" if self.worker else ""
            return self._failed(
                f"the trial's task failed{where}: {type(error).__name__}: {first_line(error)}"
            )
        if self._stop is not None and not self._running.is_set():
            return self._not_run(*self._stop[:2])
        # Cancelled, and not by us: the client lost the scheduler (Dask cancels every future
        # then). The job stops: the events and variables its trials use are gone with it.
        self.executor._broken = "lost the scheduler"
        return self._lost_result("interrupted: the Dask scheduler was lost")

    def _ended(self, payload: dict[str, Any]) -> runner.RunResult:
        self.worker = payload.get("worker") or self.worker
        if not payload.get("shared"):
            if payload.get("folder") is not None:
                task.unpack(payload["folder"], self.run_dir)
            elif payload.get("artifact"):
                from flagrun.artifacts import open_artifacts

                assert self.executor.artifacts is not None
                open_artifacts(self.executor.artifacts).download(payload["artifact"], self.run_dir)
        with contextlib.suppress(OSError):
            (self.run_dir / task.PROBE_FILE).unlink()
        self._rewrite_record(payload)
        self._sync_metrics(int(payload.get("seq", 0)))
        return runner.RunResult(
            RunStatus(payload["status"]),
            payload.get("exit_code"),
            payload.get("signal"),
            payload.get("reason"),
            float(payload.get("duration", 0.0)),
            self.run_dir,
        )

    def _rewrite_record(self, payload: dict[str, Any]) -> None:
        """run.json as the driver would have written it, plus where the trial ran."""
        try:
            record = store.read_run(self.run_dir)
        except FlagrunError:
            record = runner.initial_record(self.spec)
            record.status, record.reason = RunStatus(payload["status"]), payload.get("reason")
        here = runner.initial_record(self.spec)
        record.script, record.project_dir = here.script, here.project_dir
        record.command, record.argv = here.command, here.argv
        worker: dict[str, Any] = {
            "address": payload.get("worker"),
            "host": payload.get("host"),
            "run_dir": payload.get("run_dir"),
            "scheduler": self.executor.address,
        }
        if payload.get("gpu") is not None:
            worker["gpu"] = payload["gpu"]
        if payload.get("artifact"):
            worker["artifact"] = payload["artifact"]
        left = payload.get("left")
        if left:
            worker["left_on_worker"] = left
            self.executor.notify(
                f"trial {self.spec.trial_id}: {left['files']} files ({left['bytes'] / 2**20:.0f} "
                f"MB) over the {self.executor.return_limit / 2**20:.0f} MB limit stayed on "
                f"{payload.get('host')}:{left['path']}; give the job an artifact store "
                "(--artifacts) to bring whole folders back"
            )
        record.worker = worker
        store.write_run(self.run_dir, record)

    def _sync_metrics(self, seq: int) -> None:
        """Every point the task sent, before the loop reads the final series."""
        deadline = time.monotonic() + _SYNC_SECONDS
        while self.metrics.seq < seq and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.metrics.seq < seq:
            self.metrics.catch_up(self.run_dir)

    def _lost_result(self, reason: str) -> runner.RunResult:
        return self._written(RunStatus.FAILED, reason, lost=True)

    def _failed(self, reason: str) -> runner.RunResult:
        return self._written(RunStatus.FAILED, reason)

    def _not_run(self, status: RunStatus, reason: str) -> runner.RunResult:
        return self._written(status, reason)

    def _written(self, status: RunStatus, reason: str, *, lost: bool = False) -> runner.RunResult:
        """A trial that did not come back: its driver-side run.json says why."""
        try:
            record = store.read_run(self.run_dir)
        except FlagrunError:
            record = runner.initial_record(self.spec)
        record.status, record.reason, record.end = status, reason, _now()
        duration = time.monotonic() - self._started
        record.duration = round(duration, 3)
        if self.worker:
            record.worker = {"address": self.worker, "host": self.host,
                             "scheduler": self.executor.address}  # fmt: skip
        with contextlib.suppress(OSError):
            (self.run_dir / task.PROBE_FILE).unlink()
        store.write_run(self.run_dir, record)
        self.metrics.poll()
        return runner.RunResult(status, None, None, reason, duration, self.run_dir, lost=lost)

    def _let_go(self) -> None:
        """Drop the trial's marker and stop variable on the scheduler."""
        client = self.executor.client
        with contextlib.suppress(Exception):
            distributed.Event(task.started_name(self.token), client=client).clear()
        if self._stop is not None:
            with contextlib.suppress(Exception):
                distributed.Variable(task.stop_name(self.token), client=client).delete()

    def _finish(self) -> runner.RunResult:
        """Let go of what the cluster holds for this trial."""
        with contextlib.suppress(Exception):
            self.future.release()
        if self.executor.connected():  # else these died with the scheduler
            self.executor.later(self._let_go)
        self.executor._forget(self)
        assert self._result is not None
        return self._result


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

"""What runs inside a Dask task on a worker: one trial, from its start to its packed folder.

The driver (``flagrun.executors.dask``) submits ``run_trial(order)`` per trial.
On the worker the task:

1. sets the trial's *started* marker (a ``distributed.Event``); finding it already set
   means Dask is running the task a second time because the worker of the first run was
   lost, so it returns ``{"lost": True}`` at once instead of running the trial twice;
2. picks the run folder: the driver's own folder when this worker sees it (a shared
   filesystem, recognised by a probe file the driver wrote into it), else a folder on
   this worker's disk with the job's source snapshot (sent with the order, or fetched
   from a ``distributed.Variable`` when big) unpacked beside it, once per worker;
3. runs the trial with ``runner.start`` (the same argv, env, process group and run.json
   as a local trial), with its own ``CUDA_VISIBLE_DEVICES`` when it holds a GPU resource;
4. until the process exits: tails its event files and sends the new points to the driver
   as events on the job's topic (``Worker.log_event``), stops it when the driver asks (a
   ``distributed.Variable`` a watcher thread waits on), and kills it when nobody wants the
   task any more (the driver died or cancelled it: the worker marks the task cancelled) or
   the worker is closing;
5. returns how the run ended and, for a folder of its own, the folder itself (a tar) when
   it fits the size limit, else uploads it to the job's artifact store.

Imports nothing heavy at module level: ``distributed`` is there on every worker anyway.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import shutil
import socket
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flagrun import checkpoints, runner, store
from flagrun.gpus import GpuPool
from flagrun.records import RunStatus

POLL_SECONDS = 0.2  # metric tailing and stop/cancel checks on the worker
NO_PIDFD_POLL_SECONDS = 0.05  # how often an exit is looked for where there are no pidfds
WORKER_DIR_ENV = "FLAGRUN_WORKER_DIR"  # where a worker keeps trial folders (default: its
# Dask local directory, which the worker deletes when it closes)
PROBE_FILE = ".flagrun-probe"  # written by the driver into a trial's folder before it starts
MAX_POINTS_PER_EVENT = 20_000
# Files sent back first when a folder does not fit the limit: the records, then the events.
_FIRST = (store.RUN_FILE, store.LOG_FILE, "flags.json")


@dataclass
class Order:
    """What the driver sends with each trial."""

    token: str  # unique per start: names the task, its stop variable and started marker
    topic: str  # the driver's event topic
    session: str  # the driver's executor session (keeps two drivers' folders apart)
    spec: runner.RunSpec  # what the driver would run locally, with the driver's paths
    source_hash: str
    source: bytes | None  # the job's source snapshot as tar.gz bytes, when it is small
    source_variable: str | None  # else the name of the Variable on the scheduler holding it
    gpu: bool  # the task holds one GPU resource: give the trial a device of its own
    return_limit: int  # bytes: a bigger folder goes through the artifact store
    artifacts: str | None = None  # the job's artifact store URL, if it has one
    artifact_key: str | None = None
    probe: bool = True  # whether to look for the driver's folder (a shared filesystem)


def task_key(token: str) -> str:
    return f"flagrun-trial-{token}"


def stop_name(token: str) -> str:
    return f"flagrun-stop-{token}"


def started_name(token: str) -> str:
    return f"flagrun-started-{token}"


def run_trial(order: Order) -> dict[str, Any]:
    """The task: run one trial on this worker (see the module docstring)."""
    from distributed import Event, get_client, get_worker

    worker = get_worker()
    client = get_client()
    started = Event(started_name(order.token), client=client)
    if started.is_set():
        return {"lost": True, "worker": worker.address}
    started.set()
    return _Trial(order, worker, client).run()


class _Trial:
    def __init__(self, order: Order, worker: Any, client: Any) -> None:
        self.order = order
        self.worker = worker
        self.client = client
        self.key = task_key(order.token)
        self.seq = 0
        self.sent: dict[str, int] = {}
        self.gpu: str | None = None
        self.pool: GpuPool | None = None

    def run(self) -> dict[str, Any]:
        spec, shared = self._place()
        if self.order.gpu:
            self.pool = _gpu_pool(self.worker)
            with _LOCK:
                self.gpu = self.pool.acquire()
            spec.env = {**spec.env, **GpuPool.env(self.gpu)}
        watch: _StopWatch | None = None
        try:
            watch = _StopWatch(stop_name(self.order.token), self.client)
            watch.start()
            handle = runner.start(spec)
            self._send("started", pid=handle.pid, host=socket.gethostname(), gpu=self.gpu,
                       worker=self.worker.address, shared=shared)  # fmt: skip
            try:
                result = self._follow(handle, watch)
            finally:
                if handle.poll() is None:  # an error in here: leave no process behind
                    handle.stop(RunStatus.KILLED, "interrupted: the task failed", grace=0)
                    handle.wait()
        finally:
            # The watcher's variable is let go of off the trial's path: the task returns now.
            if watch is not None:
                threading.Thread(target=watch.close, name="flagrun stop-watch close",
                                 daemon=True).start()  # fmt: skip
            if self.pool is not None:
                with _LOCK:
                    self.pool.release(self.gpu)
        payload: dict[str, Any] = {
            "status": result.status.value,
            "exit_code": result.exit_code,
            "signal": result.signal,
            "reason": result.reason,
            "duration": result.duration,
            "seq": self.seq,
            "worker": self.worker.address,
            "host": socket.gethostname(),
            "run_dir": str(spec.run_dir),
            "gpu": self.gpu,
            "shared": shared,
        }
        if not shared:
            payload.update(self._pack(spec.run_dir))
        return payload

    # -- where the trial runs ---------------------------------------------------------

    def _place(self) -> tuple[runner.RunSpec, bool]:
        """The spec to run here, and whether it runs in the driver's own folder."""
        spec = self.order.spec
        probe = Path(spec.run_dir) / PROBE_FILE
        if self.order.probe and _reads(probe) == self.order.token:
            with contextlib.suppress(OSError):
                probe.unlink()
            return replace(spec, env=dict(spec.env)), True
        base = worker_dir(self.worker)
        source = _unpacked_source(base, self.order.source_hash, self._source_bytes)
        job_dir = base / "jobs" / f"{spec.job or 'job'}-{self.order.session}"
        run_dir = job_dir / store.TRIALS_DIR / str(spec.trial_id or self.order.token)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        script = Path(spec.script)
        with contextlib.suppress(ValueError):
            script = source / script.relative_to(spec.source_dir)
        if not script.is_relative_to(source):
            script = source / script.name
        env = {**spec.env}
        if "FLAGRUN_JOB_DIR" in env:
            env["FLAGRUN_JOB_DIR"] = str(job_dir)
        local = replace(spec, script=script, run_dir=run_dir, source_dir=source,
                        project_dir=job_dir, env=env)  # fmt: skip
        return local, False

    def _source_bytes(self) -> bytes:
        if self.order.source is not None:
            return self.order.source
        from distributed import Variable

        assert self.order.source_variable is not None
        data = Variable(self.order.source_variable, client=self.client).get(timeout=60)
        return bytes(data)

    # -- while it runs --------------------------------------------------------------------

    def _follow(self, handle: runner.RunHandle, watch: _StopWatch) -> runner.RunResult:
        from flagrun import sources

        reader = sources.for_run(handle.run_dir)
        exit_fd = _exit_fd(handle.pid)
        stopped = False
        try:
            while handle.poll() is None:
                fds = [watch.wake_r] + ([exit_fd] if exit_fd is not None else [])
                pause = POLL_SECONDS if exit_fd is not None else NO_PIDFD_POLL_SECONDS
                ready, _, _ = select.select(fds, [], [], pause)
                if watch.wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(watch.wake_r, 64)
                message = watch.message
                if isinstance(message, dict) and "status" in message and not stopped:
                    stopped = True
                    handle.stop(RunStatus(message["status"]), str(message.get("reason") or ""),
                                float(message.get("grace", runner.STOP_GRACE_SECONDS)))  # fmt: skip
                abandoned = self._abandoned()
                if abandoned and not stopped:
                    stopped = True
                    handle.stop(RunStatus.KILLED, abandoned, runner.STOP_GRACE_SECONDS)
                self._send_points(reader)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
        result = handle.wait()
        self._send_points(reader)
        return result

    def _abandoned(self) -> str | None:
        """Why the trial must stop although the driver did not say so, or None."""
        state = getattr(self.worker, "state", None)
        tasks = getattr(state, "tasks", None)
        if tasks is not None:
            task = tasks.get(self.key)
            if task is None or task.state in ("cancelled", "released", "forgotten"):
                return "interrupted: the driver let go of the trial (stopped or disconnected)"
        status = str(getattr(self.worker, "status", ""))
        if status.endswith(("closing", "closed", "failed")):
            return "interrupted: its Dask worker is closing"
        return None

    def _send_points(self, reader: Any) -> None:
        if not reader.poll():
            return
        points: list[list[Any]] = []
        for tag, series in reader.scalars.items():
            done = self.sent.get(tag, 0)
            points += [[tag, p.step, p.wall_time, p.value] for p in series[done:]]
            self.sent[tag] = len(series)
        for start in range(0, len(points), MAX_POINTS_PER_EVENT):
            self._send("points", points=points[start : start + MAX_POINTS_PER_EVENT])

    def _send(self, kind: str, **fields: Any) -> None:
        if kind == "points":
            self.seq += 1
            fields["seq"] = self.seq
        self.worker.log_event(self.order.topic, {"token": self.order.token, "kind": kind, **fields})

    # -- bringing the folder back ---------------------------------------------------------

    def _pack(self, run_dir: Path) -> dict[str, Any]:
        """The folder as tar bytes within the size limit; else through the artifact store,
        else the files that fit (the records and event files first). Keras backups are
        removed first: a trial on a cluster does not resume from them
        (flagrun.tuner.resume), and a big model's weighs hundreds of MB."""
        checkpoints.remove_keras_backups(run_dir)
        files = list(_files(run_dir))
        total = sum(size for _, size in files)
        limit = self.order.return_limit
        if total <= limit:
            data = _tar(run_dir, [path for path, _ in files])
            shutil.rmtree(run_dir, ignore_errors=True)
            return {"folder": data, "bytes": total}
        if self.order.artifacts and self.order.artifact_key:
            from flagrun.artifacts import open_artifacts

            open_artifacts(self.order.artifacts).upload(run_dir, self.order.artifact_key)
            shutil.rmtree(run_dir, ignore_errors=True)
            return {"artifact": self.order.artifact_key, "bytes": total}
        chosen, left, budget = [], [], limit
        for path, size in sorted(files, key=lambda item: _send_order(run_dir, *item)):
            if size <= budget:
                chosen.append(path)
                budget -= size
            else:
                left.append((path, size))
        return {
            "folder": _tar(run_dir, chosen),
            "bytes": total,
            "left": {
                "files": len(left),
                "bytes": sum(size for _, size in left),
                "path": str(run_dir),
            },
        }


class _StopWatch(threading.Thread):
    """Waits on the trial's stop variable (set by the driver) and wakes the task loop."""

    def __init__(self, name: str, client: Any) -> None:
        super().__init__(name=f"flagrun {name}", daemon=True)
        from distributed import Variable

        self.variable = Variable(name, client=client)
        self.message: Any = None
        self.wake_r, self._wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)

    def run(self) -> None:
        try:
            self.message = self.variable.get()
        except Exception:  # noqa: BLE001 (the scheduler went away: the worker closes and says so)
            self.message = None
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        if self.is_alive():
            with contextlib.suppress(Exception):
                self.variable.set({"done": True})
            self.join(timeout=5)
        with contextlib.suppress(Exception):
            self.variable.delete()
        for fd in (self.wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


# -- the worker's own folders and GPUs ------------------------------------------------------

_LOCK = threading.Lock()
_GPU_POOLS: dict[str, GpuPool] = {}


def worker_dir(worker: Any) -> Path:
    """Where this worker keeps flagrun's folders."""
    configured = os.environ.get(WORKER_DIR_ENV)
    return Path(configured) if configured else Path(worker.local_directory) / "flagrun"


def _gpu_pool(worker: Any) -> GpuPool:
    """This worker's GPUs: as many as its ``GPU`` resource says, numbered as its own
    ``CUDA_VISIBLE_DEVICES`` lists them (else 0, 1, ...)."""
    with _LOCK:
        pool = _GPU_POOLS.get(worker.address)
        if pool is None:
            count = int(worker.state.total_resources.get("GPU", 0))
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
            listed = [item.strip() for item in visible.split(",") if item.strip()]
            devices = listed[:count] if len(listed) >= count else [str(i) for i in range(count)]
            pool = _GPU_POOLS[worker.address] = GpuPool(devices)
        return pool


def _unpacked_source(base: Path, digest: str, data: Callable[[], bytes]) -> Path:
    """The job's source snapshot on this worker, unpacked once per worker and hash."""
    dest = base / "sources" / digest
    if dest.is_dir():
        return dest
    with _LOCK:
        if dest.is_dir():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = dest.with_name(f".{digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        unpack(data(), staging)
        try:
            os.rename(staging, dest)
        except OSError:  # another worker process on this machine was first
            shutil.rmtree(staging, ignore_errors=True)
    return dest


# -- tar in memory ----------------------------------------------------------------------------


def pack_folder(folder: Path) -> bytes:
    """A folder as gzipped tar bytes, symlinks kept as links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for entry in sorted(Path(folder).iterdir()):
            tar.add(entry, arcname=entry.name)
    return buffer.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Unpack tar bytes into ``dest``; no member may land outside it."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(dest, filter="tar")
        else:  # Python < 3.10.12 / 3.11.4: check the names ourselves
            root = dest.resolve()
            for member in tar.getmembers():
                if not (root / member.name).resolve().is_relative_to(root):
                    raise ValueError(f"refusing to unpack {member.name!r} outside {dest}")
            tar.extractall(dest)  # noqa: S202


def _tar(root: Path, paths: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return buffer.getvalue()


def _files(root: Path) -> Iterator[tuple[Path, int]]:
    """Every file, link and folder below ``root`` (folders and links count 0 bytes)."""
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        for name in sorted(dirs):
            path = base / name
            yield path, 0
        for name in sorted(names):
            path = base / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if path.is_symlink():
                yield path, 0
            elif path.is_file():
                yield path, info.st_size


def _send_order(root: Path, path: Path, size: int) -> tuple[int, int]:
    """Records first, then event files, then the rest smallest first; folders before files."""
    rel = path.relative_to(root).as_posix()
    if size == 0:
        return (0, 0)
    if rel in _FIRST:
        return (1, size)
    if "tfevents" in path.name:
        return (2, size)
    return (3, size)


def _reads(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _exit_fd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None

"""One isolated run: a child process with its own run folder, process group and log.

``start()`` writes run.json (RUNNING) before the child starts, so a run that
never finishes is never mistaken for a finished one; ``RunHandle.wait()``
finalizes it exactly once. The ``flagrun train`` verb over it is ``flagrun.training``;
the tuner's executors start trials through it too. Knows nothing of Optuna.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from flagrun import _leftovers, store
from flagrun._atomic import read_json
from flagrun._untrusted import read_regular
from flagrun.checkpoints import CHECKPOINT_DIR_ENV, CHECKPOINT_SUBDIR
from flagrun.errors import RunError, describe_os_error
from flagrun.objective import STOP_FILE
from flagrun.records import RunRecord, RunStatus
from flagrun.sources import last_points
from flagrun.sources.hypertune import METRIC_FILE, HypertuneReader

STOP_GRACE_SECONDS = 5.0
LEFTOVER_GRACE_SECONDS = 1.0  # what a run left running when it exited gets after SIGTERM
PUMP_DRAIN_SECONDS = 2.0  # how long output is still copied from a pipe a leftover holds
MAX_LOG_LINE_BYTES = 1 << 20  # a longer line goes to the log in pieces
_FAILURE_TAIL_BYTES = 4096


@dataclass
class RunSpec:
    """What to run and where; the tuner builds one per trial."""

    script: Path  # the entry file; of a module, the module's file in the snapshot
    run_dir: Path
    source_dir: Path
    project_dir: Path
    flags: dict[str, Any] = field(default_factory=dict)
    module: str | None = None  # run `python -m module` with source_dir first on sys.path
    args: list[str] = field(default_factory=list)  # given before the flags
    timeout: float | None = None
    label: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    echo: bool = True
    source_hash: str | None = None
    job: str | None = None  # a trial's job id and trial id, kept in its run.json
    trial_id: int | None = None


@dataclass
class RunResult:
    """How a run ended.

    ``lost``: the run was cut short with the machine it ran on (a cluster worker died),
    not by its script or by whoever stopped it; a tuner counts such a trial as interrupted
    and runs its parameters again. A local run is never lost. ``timed_out``: its timeout
    stopped it.
    """

    status: RunStatus
    exit_code: int | None
    signal: str | None
    reason: str | None
    duration: float
    run_dir: Path
    lost: bool = False
    record_error: str | None = None  # why run.json could not be written (a full disk...)
    timed_out: bool = False


def flag_args(flags: dict[str, Any]) -> list[str]:
    """Flags as argv items ``--name=value``, one item each (values may start with ``-``)."""
    return [f"--{name}={_format_value(value)}" for name, value in flags.items()]


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _git_info(project_dir: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the project's git checkout, None when there is none."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    lines = out.stdout.splitlines()
    commit = next((ln.split()[2] for ln in lines if ln.startswith("# branch.oid ")), None)
    dirty = any(not ln.startswith("#") for ln in lines)
    return {"commit": None if commit == "(initial)" else commit, "dirty": dirty}


def _script_in_snapshot(spec: RunSpec) -> Path:
    script, source = Path(spec.script), Path(spec.source_dir)
    if script.is_absolute() and script.is_relative_to(source):
        return script
    if spec.module:  # the module's file, as python -m finds it from the snapshot's root
        stem = source.joinpath(*spec.module.split("."))
        return (
            stem.with_suffix(".py") if stem.with_suffix(".py").is_file() else stem / "__main__.py"
        )
    return source / script.name


def _display_path(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base) if Path(path).is_relative_to(base) else str(path)
    except ValueError:
        return str(path)


def initial_record(spec: RunSpec) -> RunRecord:
    """The RUNNING record a run starts with (an executor running it elsewhere writes it too)."""
    args = [*spec.args, *flag_args(spec.flags)]
    target = ["-m", spec.module] if spec.module else [_display_path(spec.script, spec.project_dir)]
    argv = ["python", *target, *args]
    return RunRecord(
        id=spec.run_dir.name,
        status=RunStatus.RUNNING,
        script=str(spec.script),
        start=_now(),
        flags=dict(spec.flags),
        label=spec.label,
        command=shlex.join(argv),
        argv=argv,
        python=sys.version.split()[0],
        source_hash=spec.source_hash,
        project_dir=str(spec.project_dir),
        runner=store.runner_identity(),
        job=spec.job,
        trial_id=spec.trial_id,
    )


def _child_env(spec: RunSpec) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONUNBUFFERED="1",
        FLAGRUN_RUN_DIR=str(spec.run_dir),
        FLAGRUN_PROJECT_DIR=str(spec.project_dir),
        FLAGRUN_SCRIPT_DIR=str(Path(spec.script).parent),  # a trial's env names the original
    )
    env[CHECKPOINT_DIR_ENV] = str(Path(spec.run_dir) / CHECKPOINT_SUBDIR)
    env.update(spec.env)
    return env


_libc: Any = None


def _die_with_parent_hook() -> Any:
    """A preexec_fn making the child get SIGKILL when its runner dies (Linux only)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    libc = _libc

    def hook() -> None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return hook


def start(spec: RunSpec) -> RunHandle:
    """Start the run without waiting; run.json says RUNNING before the child exists."""
    spec.run_dir = Path(spec.run_dir)
    record = initial_record(spec)
    store.write_run(spec.run_dir, record)
    script = _script_in_snapshot(spec)
    if not script.is_file():
        raise RunError(f"script {script} is missing from the source snapshot")
    target = ["-m", str(spec.source_dir), spec.module] if spec.module else [str(script)]
    args = [*spec.args, *flag_args(spec.flags)]
    cmd = [sys.executable, "-m", "flagrun._bootstrap", *target, *args]
    started = time.monotonic()  # the run's duration covers its whole lifetime from here
    log = open(spec.run_dir / store.LOG_FILE, "ab", buffering=0)  # noqa: SIM115 (closed in wait)
    out = subprocess.PIPE if spec.echo else log
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=spec.run_dir,
            env=_child_env(spec),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 (no threads at fork time matter)
        )
    except OSError as exc:
        log.close()
        record.status, record.reason, record.end = RunStatus.FAILED, f"cannot start: {exc}", _now()
        store.write_run(spec.run_dir, record)
        raise RunError(f"cannot start {script}: {exc}") from None
    handle: RunHandle | None = None
    try:  # from the moment the child exists: a full disk or a Ctrl-C leaves none unrecorded
        handle = RunHandle(spec, proc, record, log, started)
        record.child_pid = proc.pid
        record.git = _git_info(spec.project_dir)  # while the child starts up
        _write_putting_back(spec.run_dir, record)  # the script may have removed it by now
    except BaseException:
        if handle is None:
            _kill_unwatched(proc, log, spec.run_dir)
        else:
            handle.stop(RunStatus.KILLED, "could not record the run", grace=0)
            handle.wait()
        raise
    return handle


def _kill_unwatched(proc: subprocess.Popen[bytes], log: IO[bytes], run_dir: Path) -> None:
    """End a child interrupted before its handle existed: kill its group, close its log."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr, log):
        if pipe is not None:
            pipe.close()
    _leftovers.GUARD.release(str(run_dir))


class RunHandle:
    """A started run: poll it, stop it, wait for it."""

    def __init__(
        self,
        spec: RunSpec,
        proc: subprocess.Popen[bytes],
        record: RunRecord,
        log: IO[bytes],
        started: float,
    ) -> None:
        self.spec = spec
        self.run_dir = spec.run_dir
        self.pid = proc.pid
        self._proc = proc
        self._record = record
        self._log = log
        self._started = started
        # The child's start time (clock ticks since boot) tells its leftovers from strangers.
        self._since = store.process_start_time(proc.pid) or 0
        _leftovers.GUARD.watch(str(spec.run_dir), proc.pid, self._since)
        self._stop: tuple[RunStatus, str] | None = None
        self._timed_out = False
        self._kill_at: float | None = None
        self._result: RunResult | None = None
        self._pumps_stop = threading.Event()
        self._pumps = [] if not spec.echo else self._start_pumps(proc)

    def _start_pumps(self, proc: subprocess.Popen[bytes]) -> list[threading.Thread]:
        lock = threading.Lock()
        pairs = [(proc.stdout, sys.stdout), (proc.stderr, sys.stderr)]
        threads = [
            threading.Thread(
                target=_pump, args=(src, dst, self._log, lock, self._pumps_stop), daemon=True
            )
            for src, dst in pairs
        ]
        for thread in threads:
            thread.start()
        return threads

    def poll(self) -> int | None:
        """The child's return code, or None while it runs; enforces the timeout and stop grace."""
        code = self._proc.poll()
        if code is not None:
            return code
        now = time.monotonic()
        timeout = self.spec.timeout
        if self._stop is None and timeout is not None and now - self._started > timeout:
            self.stop(RunStatus.KILLED, f"timeout after {timeout:g} s")
            self._timed_out = True
        elif self._kill_at is not None and now >= self._kill_at:
            self._signal_group(signal.SIGKILL)
            self._kill_at = None
        return None

    def stop(
        self,
        status: RunStatus = RunStatus.KILLED,
        reason: str = "",
        grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        """SIGTERM the run's process group now; SIGKILL it after ``grace`` s (done by poll/wait).

        Returns at once. The run is recorded with ``status`` and ``reason`` unless
        it had already exited on its own. Before the signal, the stop file appears in
        the run folder, so a script asking ``flagrun.should_stop()`` sees it first.
        """
        if self._proc.poll() is not None:
            return
        if self._stop is None:
            self._stop = (status, reason or status.value.lower())
            with contextlib.suppress(OSError):  # the script may have removed its own folder
                (self.run_dir / STOP_FILE).touch()
        self._signal_group(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        self._kill_at = time.monotonic() + grace if grace > 0 else None

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def wait(self) -> RunResult:
        """Block until the run ends; finalize run.json exactly once and return the result."""
        if self._result is not None:
            return self._result
        while self.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=self._next_wakeup())
        self._end_leftovers()
        self._end_pumps()
        self._log.close()
        self._result = self._finalize(self._proc.returncode)
        return self._result

    def _end_leftovers(self) -> None:
        """Kill what the run left running: a stopped run's at once, others after a grace."""
        grace = 0.0 if self._stop is not None else LEFTOVER_GRACE_SECONDS
        _leftovers.kill(str(self.run_dir), self.pid, grace, self._since)
        _leftovers.GUARD.release(str(self.run_dir))

    def _end_pumps(self) -> None:
        """Wait for the output to be copied; stop copying from a pipe a leftover we could not
        kill still holds open."""
        deadline = time.monotonic() + PUMP_DRAIN_SECONDS
        for thread in self._pumps:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._pumps_stop.set()
        for thread in self._pumps:
            thread.join()

    def _next_wakeup(self) -> float | None:
        deadlines = [self._kill_at]
        if self._stop is None and self.spec.timeout is not None:
            deadlines.append(self._started + self.spec.timeout)
        pending = [d for d in deadlines if d is not None]
        if not pending:
            return None
        return max(0.01, min(pending) - time.monotonic() + 0.01)

    def _finalize(self, code: int) -> RunResult:
        duration = time.monotonic() - self._started
        signame = _signal_name(-code) if code < 0 else None
        status: RunStatus
        reason: str | None
        if self._stop is not None:
            status, reason = self._stop
        elif code == 0:
            status, reason = RunStatus.COMPLETED, None
        else:
            status, reason = RunStatus.FAILED, _failure_reason(code, signame, self.run_dir)
        record = self._record
        record.status, record.reason, record.end = status, reason, _now()
        record.duration = round(duration, 3)
        record.exit_code = code if code >= 0 else None
        record.signal = signame
        _merge_child_flags(record, self.run_dir)
        _add_metrics(record, self.run_dir)
        problem = _write_final(self.run_dir, record)
        return RunResult(
            status,
            record.exit_code,
            signame,
            reason,
            duration,
            self.run_dir,
            record_error=problem,
            timed_out=self._timed_out,
        )


def _write_final(run_dir: Path, record: RunRecord) -> str | None:
    """Write the final record (see ``_write_putting_back``); why it could not be written,
    else None."""
    try:
        _write_putting_back(run_dir, record)
        return None
    except OSError as exc:
        return f"{store.RUN_FILE} not written: {describe_os_error(exc)}"


def _write_putting_back(run_dir: Path, record: RunRecord) -> None:
    """Write the record, putting back the run folder when the script removed it or locked
    itself out of it (OSError when even that fails)."""
    try:
        store.write_run(run_dir, record)
        return
    except OSError:
        pass
    run_dir.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(os.stat(run_dir).st_mode)
    if mode & stat.S_IRWXU != stat.S_IRWXU:
        os.chmod(run_dir, mode | stat.S_IRWXU)
    store.write_run(run_dir, record)


def _pump(
    src: IO[bytes], dst: IO[str], log: IO[bytes], lock: threading.Lock, stop: threading.Event
) -> None:
    """Copy a child's pipe to our own stream as it comes, and to the log line by line.

    Whole lines go to the log so that stdout and stderr do not interleave mid-line.
    Ends at end of file, or once ``stop`` is set and nothing more comes.
    """
    out = getattr(dst, "buffer", None)
    fd = src.fileno()
    lines = _LogLines(log, lock)
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            if stop.is_set():
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        lines.add(chunk)
        _echo(chunk, dst, out)
    lines.flush()
    src.close()


class _LogLines:
    """Writes whole lines to the log; a line longer than MAX_LOG_LINE_BYTES goes in pieces.

    Each byte is looked at once, so a huge line costs what it weighs.
    """

    def __init__(self, log: IO[bytes], lock: threading.Lock) -> None:
        self.log = log
        self.lock = lock
        self.pending = bytearray()
        self.broken = False  # the log cannot be written (disk full): keep echoing anyway

    def add(self, chunk: bytes) -> None:
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
        if cut:
            self._write(bytes(self.pending) + chunk[:cut])
            self.pending = bytearray(chunk[cut:])
        else:
            self.pending += chunk
        if len(self.pending) >= MAX_LOG_LINE_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self._write(bytes(self.pending))
            self.pending = bytearray()

    def _write(self, data: bytes) -> None:
        if self.broken:
            return
        with self.lock:
            try:
                self.log.write(data)
            except (OSError, ValueError):
                self.broken = True


def _echo(chunk: bytes, dst: IO[str], out: IO[bytes] | None) -> None:
    try:
        if out is not None:
            out.write(chunk)
            out.flush()
        else:
            dst.write(chunk.decode(errors="replace"))
            dst.flush()
    except (OSError, ValueError):
        pass  # our terminal went away; keep logging


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _failure_reason(code: int, signame: str | None, run_dir: Path) -> str:
    """``exit code 1: ValueError: boom`` from the last line of the log when it names an error."""
    base = f"killed by {signame}" if signame else f"exit code {code}"
    try:
        log = run_dir / store.LOG_FILE
        start = max(0, log.stat().st_size - _FAILURE_TAIL_BYTES)
        tail = read_regular(log, start).decode(errors="replace")  # the script's to replace
    except OSError:
        return base
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else ""
    head = last.split(":", 1)[0]
    if head.replace(".", "").isidentifier() and head.endswith(("Error", "Exception", "Exit")):
        return f"{base}: {last[:300]}{_missing_file_hint(last)}"
    return base


def _missing_file_hint(error: str) -> str:
    """What to do when a script's relative path misses: it runs in its run folder."""
    if "No such file or directory" not in error and "FileNotFound" not in error:
        return ""
    return (
        " (the script runs in its run folder: for files beside the script write "
        "flagrun.script_dir() / 'PATH', e.g. flagrun.script_dir() / '../data')"
    )


def _merge_child_flags(record: RunRecord, run_dir: Path) -> None:
    """Take the resolved flags the child wrote to ``flags.json`` (when it did)."""
    try:
        data = read_json(run_dir / "flags.json")
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and isinstance(data.get("flags"), dict):
        record.flags = data["flags"]
        if isinstance(data.get("declared"), dict):
            record.flag_declared = data["declared"]
        if isinstance(data.get("sources"), dict):
            record.flag_sources = data["sources"]


def has_event_files(run_dir: Path) -> bool:
    """Whether the run wrote TensorBoard events (outside its source snapshot)."""
    for _, dirs, files in os.walk(run_dir):
        dirs[:] = [d for d in dirs if d != store.SOURCE_DIR and not d.startswith(".")]
        if any("tfevents" in name for name in files):
            return True
    return False


def _add_metrics(record: RunRecord, run_dir: Path) -> None:
    """The last value of every tag the run wrote (event files, then its hypertune file)."""
    # Reading events costs numpy + protobuf imports (~0.2 s): skip them when there are none.
    if has_event_files(run_dir):
        try:
            from flagrun import metrics

            record.metrics = metrics.summarize(run_dir)
        except Exception as exc:  # noqa: BLE001 (a metrics problem must not lose the record)
            record.metrics = {}
            record.metrics_error = f"{type(exc).__name__}: {exc}"
    reader = HypertuneReader(run_dir / METRIC_FILE)  # a file it cannot read reads as empty
    if reader.poll():
        record.metrics.update(last_points(reader.scalars))

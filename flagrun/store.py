"""The runs/ folder: run ids, run.json records, listing, liveness, source snapshots.

A run lives in ``<runs>/<run-id>/``::

    run.json      the record (status, flags, command, timings, metrics...), written atomically
    output.log    everything the script printed
    source/       the source snapshot the script ran from
    logs/ ...     whatever the script wrote (cwd is the run folder)

Stdlib only: the CLI's listing commands must stay fast.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flagrun._atomic import read_json, write_json_atomic
from flagrun.errors import StoreError, UsageError
from flagrun.records import ProcessIdentity, RecordError, RunRecord, RunStatus

RUN_FILE = "run.json"
LOG_FILE = "output.log"
SOURCE_DIR = "source"
JOB_FILE = "job.json"
TRIALS_DIR = "trials"

# Snapshot limits: code and small text files are copied, anything else is linked.
SNAPSHOT_SUFFIXES = frozenset(
    {".py", ".pyi", ".r", ".txt", ".md", ".rst", ".yml", ".yaml", ".json"}
    | {".toml", ".cfg", ".ini", ".sh", ".csv", ".tsv"}
)
MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 32 << 20
MAX_FILES = 2000
SKIP_DIRS = frozenset({"runs", "__pycache__", "node_modules", "venv", "env", "site-packages"})

_ID_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)(?:-(\d+))?$")


# -- ids and records --------------------------------------------------------------------------


def new_run_dir(parent: Path) -> Path:
    """Create ``parent/<id>`` with a UTC timestamp id, suffixed ``-2``, ``-3``... when taken.

    ``mkdir`` is exclusive, so two processes starting in the same second get
    different folders.
    """
    parent = Path(parent)
    check_runs_dir(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    for n in range(1, 10_000):
        path = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise StoreError(f"cannot find a free run id for {stamp} in {parent}")


def check_runs_dir(runs_dir: Path) -> None:
    """A runs folder that exists must be a folder (UsageError otherwise)."""
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UsageError(
            f"runs folder {runs_dir} is not a folder",
            hint="give --runs-dir a folder (it is made when missing)",
        )


def write_run(run_dir: Path, record: RunRecord) -> None:
    """Replace ``run_dir/run.json`` atomically."""
    write_json_atomic(Path(run_dir) / RUN_FILE, record.to_dict())


def read_run(run_dir: Path) -> RunRecord:
    """Read ``run_dir/run.json``; a missing or damaged record is a StoreError naming the file."""
    path = Path(run_dir) / RUN_FILE
    try:
        return RunRecord.from_dict(read_json(path))
    except FileNotFoundError:
        raise StoreError(f"{run_dir} is not a run (no {RUN_FILE})") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}", hint="the record is damaged") from None
    except RecordError as exc:
        raise StoreError(
            f"cannot read {path}: {exc.message}", hint="the record is damaged"
        ) from None


def _id_key(run_id: str) -> tuple[str, int]:
    match = _ID_RE.match(run_id)
    if not match:
        return (run_id, 0)
    return (match.group(1), int(match.group(2) or 1))


@dataclass
class ListedRun:
    """A run found under a runs folder: its id there (``<id>`` or ``<job>/trials/<n>``),
    its folder and its record."""

    id: str
    path: Path
    record: RunRecord

    @property
    def status(self) -> RunStatus:
        return effective_status(self.record)

    def to_dict(self) -> dict[str, object]:
        """The record as ``flagrun runs --format json`` shows it."""
        return {**self.record.to_dict(), "id": self.id, "path": str(self.path),
                "status": self.status.value}  # fmt: skip


def list_runs(
    runs_dir: Path, *, include_trials: bool = False, damaged: list[StoreError] | None = None
) -> list[ListedRun]:
    """Every readable run under ``runs_dir``, newest first.

    Job folders (``job.json``) are skipped; with ``include_trials`` their trial runs
    are listed too, with ids like ``<job-id>/trials/<n>``. A run whose ``run.json``
    cannot be read is left out; its error goes to ``damaged`` when given.
    """
    runs_dir = Path(runs_dir)
    check_runs_dir(runs_dir)
    if not runs_dir.is_dir():
        return []
    found: list[tuple[tuple[str, int, int], ListedRun]] = []
    for entry in runs_dir.iterdir():
        if (entry / RUN_FILE).is_file():
            listed = _try_read(entry.name, entry, damaged)
            if listed is not None:
                found.append(((*_id_key(entry.name), 0), listed))
        elif include_trials and (entry / JOB_FILE).is_file():
            found.extend(_trial_records(entry, damaged))
    found.sort(key=lambda item: item[0], reverse=True)
    return [listed for _, listed in found]


def _trial_records(
    job_dir: Path, damaged: list[StoreError] | None
) -> list[tuple[tuple[str, int, int], ListedRun]]:
    trials = job_dir / TRIALS_DIR
    if not trials.is_dir():
        return []
    out = []
    for entry in trials.iterdir():
        if not entry.name.isdigit():
            continue
        listed = _try_read(f"{job_dir.name}/{TRIALS_DIR}/{entry.name}", entry, damaged)
        if listed is not None:
            out.append(((*_id_key(job_dir.name), int(entry.name)), listed))
    return out


def _try_read(run_id: str, run_dir: Path, damaged: list[StoreError] | None) -> ListedRun | None:
    try:
        return ListedRun(run_id, run_dir, read_run(run_dir))
    except StoreError as exc:
        if damaged is not None and (run_dir / RUN_FILE).exists():
            damaged.append(exc)
        return None


def resolve_run(runs_dir: Path, ref: str) -> Path:
    """The run folder ``ref`` names: ``latest``, an id, a unique id prefix, ``<job>/trials/<n>``,
    or the path of a run folder inside ``runs_dir`` (``runs/<job>/trials/3``, as listed).

    Refuses paths that leave ``runs_dir`` (``..``, absolute paths, symlinks).
    """
    runs_dir = Path(runs_dir)
    if ref == "latest":
        runs = list_runs(runs_dir)
        if not runs:
            raise UsageError(f"no runs in {runs_dir}", hint="start one with `flagrun train`")
        return runs[0].path
    as_path = Path(ref)
    if ref and (as_path / RUN_FILE).is_file():
        if as_path.resolve().is_relative_to(runs_dir.resolve()):
            return as_path
        raise UsageError(
            f"run {ref!r} is not in {runs_dir}", hint=f"give --runs-dir {as_path.parent}"
        )
    if not ref or os.path.isabs(ref) or ".." in Path(ref).parts:
        raise UsageError(f"{ref!r} is not a run id", hint="give an id from `flagrun runs`")
    candidate = runs_dir / ref
    if not (candidate / RUN_FILE).is_file():
        candidate = _by_prefix(runs_dir, ref)
    root = runs_dir.resolve()
    if not candidate.resolve().is_relative_to(root):
        raise UsageError(f"run {ref!r} points outside {runs_dir}", hint="give a run id")
    return candidate


def _by_prefix(runs_dir: Path, ref: str) -> Path:
    runs = list_runs(runs_dir)
    matches = [r for r in runs if r.id.startswith(ref) and "/" not in ref]
    if len(matches) == 1:
        return matches[0].path
    recent = ", ".join(r.id for r in runs[:5]) or "none"
    if len(matches) > 1:
        raise UsageError(f"run id {ref!r} is ambiguous in {runs_dir}", hint="give the full id")
    raise UsageError(f"no run {ref!r} in {runs_dir}", hint=f"most recent runs: {recent}")


# -- liveness ---------------------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):  # zombie or dead: gone for our purposes
        return None
    return int(fields[19]) if len(fields) > 19 else None


def runner_identity(pid: int | None = None) -> ProcessIdentity:
    """A process (default: this one) as liveness checks know it."""
    pid = os.getpid() if pid is None else pid
    return ProcessIdentity(pid, process_start_time(pid), _hostname())


def _hostname() -> str:
    return os.uname().nodename  # what socket.gethostname() returns, without importing socket


def is_alive(identity: ProcessIdentity | None) -> bool:
    """Whether the process ``identity`` describes still runs; True when it is on another host."""
    if identity is None:
        return False
    if identity.host != _hostname():
        return True  # cannot know; do not call a remote run crashed
    if identity.pid <= 0:
        return False
    start = process_start_time(identity.pid)
    if start is None:
        if os.path.isdir("/proc/self"):
            return False
        return _pid_exists(identity.pid)
    return identity.start_time is None or identity.start_time == start


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(record: RunRecord) -> RunStatus:
    """The record's status, except CRASHED for a RUNNING run whose runner is gone."""
    if record.status == RunStatus.RUNNING and not is_alive(record.runner):
        return RunStatus.CRASHED
    return record.status


# -- source snapshots -------------------------------------------------------------------------


def snapshot_source(src_dir: Path, dest: Path, exclude: Iterable[Path] = ()) -> str:
    """Copy the code in ``src_dir`` to ``dest``; link what is not copied; return a content hash.

    A top-level file is copied when it is small code or text, and a top-level
    folder when everything in it is; every other top-level entry (data folders,
    big files) becomes a symlink to the original, so a script that reads files
    next to itself still finds them. Never taken: hidden entries, ``runs``,
    ``__pycache__``, virtual environments, folders holding runs or TensorBoard event
    files (``lightning_logs/`` from a run by hand: outputs, which TensorBoard would show
    as runs of the job), ``exclude`` and ``dest`` itself. The hash is sha256 over
    relative paths and bytes.
    """
    src_dir, dest = Path(src_dir).absolute(), Path(dest).absolute()
    skip = {Path(p).absolute() for p in exclude} | {dest}
    dest.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    budget = [MAX_TOTAL_BYTES, MAX_FILES]
    for entry in sorted(src_dir.iterdir()):
        if _skipped(entry, skip):
            continue
        files = _copyable(entry, budget)
        if files is None:
            os.symlink(entry, dest / entry.name, target_is_directory=entry.is_dir())
            digest.update(f"link {entry.name} -> {entry}\0".encode())
            continue
        for path in files:
            rel = path.relative_to(src_dir)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            digest.update(f"file {rel.as_posix()}\0".encode())
            digest.update(target.read_bytes())
    return digest.hexdigest()


def _skipped(entry: Path, skip: set[Path]) -> bool:
    name = entry.name
    if name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    if any(entry == s or s.is_relative_to(entry) for s in skip):
        return True
    if entry.is_dir() and not entry.is_symlink():
        return (entry / "pyvenv.cfg").exists() or _holds_runs(entry) or _holds_events(entry)
    return False


def _holds_events(folder: Path, budget: int = MAX_FILES) -> bool:
    """Whether a TensorBoard event file lies below ``folder`` (among its first entries)."""
    for _, dirs, names in os.walk(folder):
        if any("tfevents" in name for name in names):
            return True
        budget -= len(dirs) + len(names)
        if budget <= 0:
            return False
    return False


def _holds_runs(folder: Path) -> bool:
    try:
        children = list(os.scandir(folder))
    except OSError:
        return False
    return any(
        c.is_dir()
        and (
            os.path.exists(os.path.join(c.path, RUN_FILE))
            or os.path.exists(os.path.join(c.path, JOB_FILE))
        )
        for c in children[:200]
    )


def _copyable(entry: Path, budget: list[int]) -> list[Path] | None:
    """The files to copy for a top-level entry, or None to link it instead."""
    if entry.is_symlink():
        return None
    if entry.is_file():
        files = [entry]
    elif entry.is_dir():
        files = []
        for root, dirs, names in os.walk(entry):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
            files.extend(Path(root, n) for n in sorted(names) if not n.startswith("."))
            if len(files) > budget[1]:
                return None
    else:
        return None
    sizes = []
    for path in files:
        if path.suffix.lower() not in SNAPSHOT_SUFFIXES or path.is_symlink():
            return None
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None
        sizes.append(size)
    if sum(sizes) > budget[0] or len(files) > budget[1]:
        return None
    budget[0] -= sum(sizes)
    budget[1] -= len(files)
    return files

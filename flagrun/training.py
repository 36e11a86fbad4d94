"""``flagrun train``, the library verb: check the flags, make the run folder, snapshot the
source, run the script once through ``flagrun.runner`` and stop it on Ctrl-C or SIGTERM."""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flagrun import _interrupt, store
from flagrun.errors import UsageError
from flagrun.introspect import check_flags
from flagrun.records import RunStatus
from flagrun.runner import RunHandle, RunResult, RunSpec, has_event_files, start

if TYPE_CHECKING:
    from flagrun.launch import Trainer


def train(
    script: str | os.PathLike[str],
    flags: dict[str, Any] | None = None,
    *,
    flags_file: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    timeout: float | None = None,
    label: str | None = None,
    echo: bool = True,
    args: list[str] | None = None,
) -> RunResult:
    """Run ``script`` once with ``flags``, isolated in a new folder under ``runs_dir``.

    A script inside a package (``trainer/task.py``) runs as ``python -m trainer.task``
    from the package root, as Cloud ML runs it; ``args`` come before the flags. Flags
    and options are checked before anything is created, and a run that cannot start
    leaves no folder behind. On Ctrl-C or SIGTERM the run is stopped (SIGTERM to its
    process group, SIGKILL after a grace) and recorded KILLED, then the
    KeyboardInterrupt is raised again.
    """
    from flagrun.launch import find_trainer

    script_path = Path(script).absolute()
    if not script_path.is_file():
        raise UsageError(f"no such script: {script}", hint="give the path of a Python file")
    trainer = find_trainer(script_path, None, ())
    values = check_flags(trainer.file, _merged_flags(flags, flags_file))
    check_timeout(timeout, "--timeout")
    runs = Path(runs_dir).absolute()
    with _interrupt.sigterm_as_interrupt():
        handle = _start_run(trainer, values, list(args or ()), runs, timeout, label, echo)
        try:
            result = handle.wait()
        except KeyboardInterrupt as exc:
            handle.stop(RunStatus.KILLED, f"interrupted ({_interrupt.what(exc)})")
            _wait_through_interrupts(handle)
            _write_hparams_session(handle.run_dir)
            raise
    if result.record_error is not None:
        print(f"flagrun train: warning: {result.record_error}", file=sys.stderr)
    _write_hparams_session(handle.run_dir)
    return result


def _start_run(
    trainer: Trainer,
    values: dict[str, Any],
    args: list[str],
    runs: Path,
    timeout: float | None,
    label: str | None,
    echo: bool,
) -> RunHandle:
    """Make the run folder, snapshot the source, start the child; on any failure before the
    child runs (a full disk, Ctrl-C during the snapshot), remove the folder again."""
    run_dir = store.new_run_dir(runs)
    try:
        source = run_dir / store.SOURCE_DIR
        source_hash = store.snapshot_source(trainer.root, source, exclude=[runs])
        spec = RunSpec(
            script=trainer.file,
            run_dir=run_dir,
            source_dir=source,
            project_dir=Path.cwd(),
            flags=values,
            module=trainer.module,
            args=args,
            timeout=timeout,
            label=label,
            echo=echo,
            source_hash=source_hash,
        )
        return start(spec)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def check_timeout(timeout: float | None, option: str) -> None:
    """A timeout is a positive, finite number of seconds (or None: no timeout)."""
    if timeout is None:
        return
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if not number or not 0 < timeout < math.inf:
        raise UsageError(
            f"{option} {timeout!r} is not a positive number of seconds",
            hint=f"e.g. {option} 3600, or leave it out for no time limit",
        )


def _write_hparams_session(run_dir: Path) -> None:
    """TensorBoard HParams data for a run that wrote events for TensorBoard to show.

    (Skipped otherwise: it would cost every run the protobuf import.)
    """
    if not has_event_files(run_dir):
        return
    from flagrun import hparams

    try:
        hparams.write_run_session(run_dir)
    except (OSError, ValueError) as exc:
        print(f"flagrun: could not write TensorBoard hparams data: {exc}", file=sys.stderr)


def _wait_through_interrupts(handle: RunHandle) -> RunResult:
    while True:
        try:
            return handle.wait()
        except KeyboardInterrupt:
            handle.stop(RunStatus.KILLED, grace=0)  # a second Ctrl-C or SIGTERM: kill now


def _merged_flags(
    flags: dict[str, Any] | None, flags_file: str | os.PathLike[str] | None
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if flags_file is not None:
        # `from flagrun import flags` would give the flags() function, not the module.
        from flagrun.flags import read_flags_file

        merged.update(read_flags_file(Path(flags_file)))
    merged.update(flags or {})
    return merged

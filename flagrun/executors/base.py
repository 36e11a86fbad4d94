"""The two protocols every executor implements (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from flagrun.sources import MetricSource

if TYPE_CHECKING:
    from flagrun.records import RunStatus
    from flagrun.runner import RunResult, RunSpec


class TrialProcess(Protocol):
    """One started trial."""

    @property
    def run_dir(self) -> Path:
        """The trial's run folder on this machine (complete once the trial has ended)."""
        ...

    @property
    def gpu(self) -> str | None:
        """The GPU it was given, for display."""
        ...

    @property
    def metrics(self) -> MetricSource:
        """Its metric points so far."""
        ...

    def poll(self) -> bool:
        """True once the process has exited. Never blocks; also enforces the trial's timeout
        and the end of a stop's grace period."""
        ...

    def stop(self, status: RunStatus, reason: str, grace: float) -> None:
        """Ask the trial to stop now (SIGTERM), kill it ``grace`` seconds later; returns at
        once. It is recorded with ``status`` and ``reason`` unless it had exited by itself."""
        ...

    def result(self) -> RunResult:
        """Wait for the end; the run folder is then final on this machine and the trial's
        resources (its slot, its GPU) are free again. A trial cut short with the machine it
        ran on says so with ``RunResult.lost`` (the loop runs its parameters again)."""
        ...


class Executor(Protocol):
    """Starts trials somewhere and wakes the loop when one ends."""

    def start(self, spec: RunSpec) -> TrialProcess:
        """Start one trial: ``spec`` says what to run, with which flags, env and run folder."""
        ...

    def wait(self, running: Sequence[TrialProcess], timeout: float) -> None:
        """Sleep until one of ``running`` exits or ``timeout`` seconds pass."""
        ...

    def close(self) -> None:
        """Let go of whatever the executor holds (no trial is running any more)."""
        ...

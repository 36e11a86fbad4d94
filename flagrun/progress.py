"""Live progress of a tuning job: a rich live view on a terminal, plain lines elsewhere.

Presentation only: the tuner calls these hooks and never reads anything back.
"""

from __future__ import annotations

import sys
from typing import Any

from flagrun.display import format_flags, format_value
from flagrun.records import FINISHED


def make_progress(mode: str, job_id: str, spec: Any) -> Progress:
    """``auto`` picks live on a terminal and plain lines otherwise (CI logs)."""
    if mode == "quiet":
        return Progress()
    if mode == "live" or (mode == "auto" and sys.stdout.isatty()):
        return LiveProgress()
    return PlainProgress()


def _headline(summary: dict[str, Any]) -> str:
    counts = summary["counts"]
    done = sum(counts.get(state, 0) for state in FINISHED)
    best = summary.get("best")
    best_text = (
        f"best {summary['metric']} {format_value(best.objective_value)} (trial {best.trial_id})"
        if best
        else "no complete trial yet"
    )
    complete, pruned, failed = (counts.get(state, 0) for state in FINISHED)
    return (
        f"job {summary['job']}: {done}/{summary['maxTrials']} trials done "
        f"({complete} complete, {pruned} pruned, {failed} failed), {best_text}"
    )


class Progress:
    """The hooks the tuner calls; this base prints nothing (``--progress quiet``)."""

    def start(self, summary: dict[str, Any]) -> None: ...
    def update(self, summary: dict[str, Any], running: list[dict[str, Any]]) -> None: ...
    def trial_started(self, trial_id: int, flags: dict[str, Any], gpu: str | None) -> None: ...
    def trial_finished(
        self, trial_id: int, state: str, value: float | None, reason: str | None
    ) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self, summary: dict[str, Any], state: str, reason: str | None) -> None: ...


class PlainProgress(Progress):
    """One line per event, flushed, for logs and pipes."""

    def _print(self, text: str) -> None:
        print(text, flush=True)

    def start(self, summary: dict[str, Any]) -> None:
        self._print(_headline(summary))

    def trial_started(self, trial_id: int, flags: dict[str, Any], gpu: str | None) -> None:
        where = f" on GPU {gpu}" if gpu is not None else ""
        self._print(f"trial {trial_id} started{where}: {format_flags(flags)}")

    def trial_finished(
        self, trial_id: int, state: str, value: float | None, reason: str | None
    ) -> None:
        detail = f" {format_value(value)}" if value is not None else ""
        why = f" ({reason})" if reason else ""
        self._print(f"trial {trial_id} {state}{detail}{why}")

    def message(self, text: str) -> None:
        self._print(text)

    def close(self, summary: dict[str, Any], state: str, reason: str | None) -> None:
        self._print(_headline(summary))
        self._print(f"job {summary['job']} {state}" + (f": {reason}" if reason else ""))


class LiveProgress(PlainProgress):
    """A rich live table of the running trials under a headline; events scroll above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)
        self._summary: dict[str, Any] | None = None
        self._running: list[dict[str, Any]] = []

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(expand=False)
        for column in ("trial", "flags", "step", "latest", "elapsed", "gpu"):
            table.add_column(column)
        for row in self._running:
            table.add_row(
                str(row["trialId"]),
                format_flags(row["flags"]),
                "-" if row["step"] is None else str(row["step"]),
                format_value(row["value"]) or "-",
                f"{row['elapsed']:.0f}s",
                "-" if row["gpu"] is None else str(row["gpu"]),
            )
        headline = Text(_headline(self._summary) if self._summary else "", style="bold")
        return Group(headline, table)

    def start(self, summary: dict[str, Any]) -> None:
        self._summary = summary
        self.live.start()
        self.live.update(self._render())

    def update(self, summary: dict[str, Any], running: list[dict[str, Any]]) -> None:
        self._summary, self._running = summary, running
        self.live.update(self._render())

    def close(self, summary: dict[str, Any], state: str, reason: str | None) -> None:
        self.live.stop()
        super().close(summary, state, reason)

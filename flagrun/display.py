"""Presentation: rich tables and text for runs. No logic about runs lives here.

Rich falls back to plain text when stdout is not a terminal.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from flagrun.pruners import DEFAULT_PRUNER
from flagrun.records import JobState, RunRecord, RunStatus, TrialState
from flagrun.tags import display_names

if TYPE_CHECKING:
    from flagrun.store import ListedRun

# Colours by state word; RUNNING, FAILED, PRUNED... of runs, trials and jobs alike.
STATUS_STYLES: dict[str, str] = {
    **{state: "yellow" for state in (RunStatus.KILLED, RunStatus.PRUNED, JobState.INTERRUPTED)},
    **{state: "green" for state in (RunStatus.COMPLETED, TrialState.COMPLETE)},
    **{state: "red" for state in (RunStatus.FAILED, RunStatus.CRASHED)},
    RunStatus.RUNNING: "cyan",
}
# Metric names shown first in the runs table, in this order.
PREFERRED_METRICS = (
    "val_acc",
    "val_accuracy",
    "val_loss",
    "validation/epoch_accuracy",  # what Keras 3's TensorBoard callback writes
    "validation/epoch_loss",
    "acc",
    "accuracy",
    "loss",
    "train/epoch_accuracy",
    "train/epoch_loss",
)
MAX_METRIC_COLUMNS = 3


def console() -> Console:
    """The console every view prints to: stdout; in a pipe, tables keep their natural
    width instead of wrapping at 80 columns (logs and `grep` read them whole)."""
    if sys.stdout.isatty():
        return Console()
    return Console(soft_wrap=True, width=1000)


def format_duration(seconds: float | None) -> str:
    """``3.2s``, ``4m05s``, ``2h03m``; empty for None."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_value(value: Any) -> str:
    """Numbers compactly (4 significant digits for floats), anything else as str."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def format_flags(flags: Mapping[str, Any]) -> str:
    """``a=1 b=0.3``."""
    return " ".join(f"{name}={format_value(value)}" for name, value in flags.items())


def status_text(status: str) -> Text:
    """The status word, coloured."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


def metrics_by_name(record: RunRecord) -> dict[str, Any]:
    """A run's last metric values by name (``validation/epoch_accuracy``, not the tag path
    under its writer's timestamped folder), so runs of one script share their columns."""
    return {name: record.metric(tag) for tag, name in display_names(record.metrics).items()}


def metric_columns(records: Iterable[RunRecord], limit: int = MAX_METRIC_COLUMNS) -> list[str]:
    """The metric names worth a column: the preferred ones first, then the most common."""
    counts: dict[str, int] = {}
    for record in records:
        for name in display_names(record.metrics).values():
            counts[name] = counts.get(name, 0) + 1
    preferred = [name for name in PREFERRED_METRICS if name in counts]
    rest = sorted((n for n in counts if n not in preferred), key=lambda n: (-counts[n], n))
    return (preferred + rest)[:limit]


def print_runs(runs: list[ListedRun]) -> None:
    """The runs table: id, status, label, script, duration, main metrics, flags."""
    out = console()
    if not runs:
        out.print("no runs yet; start one with `flagrun train SCRIPT`")
        return
    metrics = metric_columns(run.record for run in runs)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "status", "label", "script", "duration", *metrics, "flags"):
        table.add_column(column, overflow="fold")
    for run in runs:
        record = run.record
        values = metrics_by_name(record)
        table.add_row(
            run.id,
            status_text(run.status),
            record.label or "",
            record.script.rsplit("/", 1)[-1],
            format_duration(record.duration),
            *(format_value(values.get(m)) for m in metrics),
            format_flags(record.flags),
        )
    out.print(table)


def print_json(data: Any) -> None:
    """JSON for scripts: compact in a pipe (the fast C encoder), indented on a terminal."""
    indent = 2 if sys.stdout.isatty() else None
    print(json.dumps(data, indent=indent, default=str))


def print_csv(runs: list[ListedRun]) -> None:
    """One CSV row per run: the table's columns, one column per metric and per flag."""
    metrics = metric_columns((run.record for run in runs), limit=1000)
    flag_names = sorted({name for run in runs for name in run.record.flags})
    writer = csv.writer(sys.stdout)
    fixed = ["id", "status", "label", "script", "duration"]
    writer.writerow(fixed + metrics + [f"flag_{n}" for n in flag_names])
    for run in runs:
        record = run.record
        values = metrics_by_name(record)
        writer.writerow(
            [run.id, run.status.value, record.label or "", record.script, _blank(record.duration)]
            + [format_value(values.get(m)) for m in metrics]
            + [format_value(record.flags.get(n)) for n in flag_names]
        )


def _blank(value: Any) -> Any:
    return "" if value is None else value


def print_run(run: ListedRun, output_tail: list[str]) -> None:
    """One run: summary, flags, metrics, and the last lines of its output."""
    out = console()
    record = run.record
    summary = Table.grid(padding=(0, 2))
    summary.add_row("id", run.id)
    summary.add_row("status", status_text(run.status))
    for key in ("reason", "label", "script", "command", "start", "end"):
        if getattr(record, key):
            summary.add_row(key, str(getattr(record, key)))
    summary.add_row("duration", format_duration(record.duration))
    if record.exit_code is not None or record.signal:
        summary.add_row("exit", str(record.signal or record.exit_code))
    git = record.git or {}
    if git.get("commit"):
        summary.add_row("git", git["commit"][:12] + (" (dirty)" if git.get("dirty") else ""))
    out.print(summary)
    _print_mapping(out, "flags", record.flags)
    _print_mapping(out, "metrics", metrics_by_name(record))
    if record.metrics_error:
        out.print(f"metrics error: {record.metrics_error}")
    if output_tail:
        out.print(Text("\noutput (last lines)", style="bold"))
        out.print(Text("\n".join(output_tail)))


def _print_mapping(out: Console, title: str, values: Mapping[str, Any]) -> None:
    if not values:
        return
    table = Table(title=title, title_justify="left", box=None, show_header=False)
    table.add_column("name", style="bold")
    table.add_column("value")
    for name, value in values.items():
        table.add_row(name, format_value(value))
    out.print(table)


def print_tags(scalars: Mapping[str, Any]) -> None:
    """Every scalar tag with its number of points and last value."""
    out = console()
    if not scalars:
        out.print("no scalar tags in this run's event files")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("tag", "points", "last step", "last value"):
        table.add_column(column)
    for tag in sorted(scalars):
        series = list(scalars[tag])
        last = series[-1] if series else None
        step = getattr(last, "step", None) if last is not None else None
        value = getattr(last, "value", None) if last is not None else None
        table.add_row(tag, str(len(series)), format_value(step), format_value(value))
    out.print(table)


def print_records(
    columns: list[str], rows: list[list[Any]], *, fmt: str = "table", title: str | None = None
) -> None:
    """A listing that may be long (trials, jobs) as an aligned plain table or as CSV.

    Plain text rather than a rich table: rich needs ~1 ms a row, and a job
    may have 10,000 trials.
    """
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return
    cells = [[format_value(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    lines = [title] if title else []
    for row in [columns, *cells]:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    sys.stdout.write("\n".join(lines) + "\n")


# -- flagrun check ---------------------------------------------------------------------------


def plan_text(plan: Any, commands: list[list[str]]) -> str:
    """What ``flagrun check`` prints: the job a tuning file makes, and that nothing ran."""
    import shlex

    spec, trainer, declared = plan.spec, plan.trainer, plan.declared
    how = f"python -m {trainer.module}" if trainer.module else "python SCRIPT"
    arguments = (
        f"{declared.parser}, {len(declared)} arguments"
        if declared.complete
        else (f"{declared.parser}, arguments not all known")
    )
    stopping = "off"
    if spec.early_stopping:
        config = spec.early_stopping_config
        over = ", over elapsed time" if config.get("resource") == "time" else ""
        stopping = f"on ({config.get('pruner', DEFAULT_PRUNER)} pruner{over})"
    lines = [
        f"{spec.path}: valid",
        f"trainer:     {trainer.name} in {trainer.root} ({how}; {arguments})",
        f"objective:   {spec.goal} {spec.metric_tag} ({spec.metric_aggregation} value)",
        f"budget:      {spec.max_trials} trials, {spec.max_parallel_trials} at a time, "
        f"algorithm {spec.algorithm}, early stopping {stopping}",
        "search space:",
        *(f"  {_param_text(p)}" for p in spec.params),
    ]
    if spec.ignored_fields:
        lines.append("ignored locally (cloud only): " + ", ".join(spec.ignored_fields))
    lines += [f"note: {note}" for note in plan.notes if not note.startswith("ignored locally")]
    lines.append(
        "each trial's environment: TF_CONFIG (task.trial = its number), CLOUD_ML_TRIAL_ID, "
        f"CLOUD_ML_HP_METRIC_TAG={spec.metric_tag}, CLOUD_ML_HP_METRIC_FILE in its run folder"
    )
    lines.append(f"first {len(commands)} trials:")
    lines += [f"  {i}: {shlex.join(argv)}" for i, argv in enumerate(commands, 1)]
    lines.append("nothing was started (run it with flagrun tune)")
    return "\n".join(lines)


def _param_text(p: Any) -> str:
    if p.type == "CATEGORICAL":
        values = ", ".join(p.categorical_values)
    elif p.type == "DISCRETE":
        values = ", ".join(str(v) for v in p.discrete_values)
    else:
        values = f"{p.min_value} .. {p.max_value}"
    scale = ""
    if p.type != "CATEGORICAL":
        scale = " " + p.scale.removeprefix("UNIT_").removesuffix("_SCALE").lower()
    when = f"  when {p.parent} in {list(p.parent_values)}" if p.parent else ""
    return f"{p.name:<20} {p.type:<11} {values}{scale}{when}"

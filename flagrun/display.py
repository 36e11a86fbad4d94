"""Presentation: rich tables and text for runs. No logic about runs lives here.

Rich falls back to plain text when stdout is not a terminal.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "COMPLETED": "green",
    "COMPLETE": "green",
    "INTERRUPTED": "yellow",
    "RUNNING": "cyan",
    "FAILED": "red",
    "CRASHED": "red",
    "KILLED": "yellow",
    "PRUNED": "yellow",
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


def metric_value(record: Mapping[str, Any], name: str) -> Any:
    """A run's last value of metric ``name`` (None when it has none)."""
    entry = (record.get("metrics") or {}).get(name)
    return entry.get("value") if isinstance(entry, Mapping) else entry


def metric_columns(
    records: Iterable[Mapping[str, Any]], limit: int = MAX_METRIC_COLUMNS
) -> list[str]:
    """The metric names worth a column: the preferred ones first, then the most common."""
    counts: dict[str, int] = {}
    for record in records:
        for name in record.get("metrics") or {}:
            counts[name] = counts.get(name, 0) + 1
    preferred = [name for name in PREFERRED_METRICS if name in counts]
    rest = sorted((n for n in counts if n not in preferred), key=lambda n: (-counts[n], n))
    return (preferred + rest)[:limit]


def print_runs(records: list[dict[str, Any]]) -> None:
    """The runs table: id, status, label, script, duration, main metrics, flags."""
    out = console()
    if not records:
        out.print("no runs yet; start one with `flagrun train SCRIPT`")
        return
    metrics = metric_columns(records)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "status", "label", "script", "duration", *metrics, "flags"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record.get("id", ""),
            status_text(record.get("status", "")),
            record.get("label") or "",
            _script_name(record),
            format_duration(record.get("duration")),
            *(format_value(metric_value(record, m)) for m in metrics),
            format_flags(record.get("flags") or {}),
        )
    out.print(table)


def _script_name(record: Mapping[str, Any]) -> str:
    script = str(record.get("script") or "")
    return script.rsplit("/", 1)[-1]


def print_json(data: Any) -> None:
    """JSON for scripts: compact in a pipe (the fast C encoder), indented on a terminal."""
    indent = 2 if sys.stdout.isatty() else None
    print(json.dumps(data, indent=indent, default=str))


def print_csv(records: list[dict[str, Any]]) -> None:
    """One CSV row per run: the table's columns, one column per metric and per flag."""
    metrics = metric_columns(records, limit=1000)
    flag_names = sorted({name for r in records for name in r.get("flags") or {}})
    writer = csv.writer(sys.stdout)
    fixed = ["id", "status", "label", "script", "duration"]
    writer.writerow(fixed + metrics + [f"flag_{n}" for n in flag_names])
    for r in records:
        flags = r.get("flags") or {}
        writer.writerow(
            [r.get(k) if r.get(k) is not None else "" for k in fixed]
            + [format_value(metric_value(r, m)) for m in metrics]
            + [format_value(flags.get(n)) for n in flag_names]
        )


def print_run(record: Mapping[str, Any], output_tail: list[str]) -> None:
    """One run: summary, flags, metrics, and the last lines of its output."""
    out = console()
    summary = Table.grid(padding=(0, 2))
    summary.add_row("id", record.get("id", ""))
    summary.add_row("status", status_text(record.get("status", "")))
    for key in ("reason", "label", "script", "command", "start", "end"):
        if record.get(key):
            summary.add_row(key, str(record[key]))
    summary.add_row("duration", format_duration(record.get("duration")))
    if record.get("exit_code") is not None or record.get("signal"):
        summary.add_row("exit", str(record.get("signal") or record.get("exit_code")))
    git = record.get("git") or {}
    if git.get("commit"):
        summary.add_row("git", git["commit"][:12] + (" (dirty)" if git.get("dirty") else ""))
    out.print(summary)
    _print_mapping(out, "flags", record.get("flags") or {})
    metrics = {name: metric_value(record, name) for name in record.get("metrics") or {}}
    _print_mapping(out, "metrics", metrics)
    if record.get("metrics_error"):
        out.print(f"metrics error: {record['metrics_error']}")
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

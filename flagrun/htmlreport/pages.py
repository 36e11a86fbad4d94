"""The report's pages: a job's summary, charts and trials table, or one run's record,
curves, output and source, laid out as one self-contained HTML page."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flagrun import jobstore, store
from flagrun._untrusted import read_regular
from flagrun.htmlreport._text import _duration, _is_number, _num, _seconds_between, _text
from flagrun.htmlreport.charts import (
    STATE_COLORS,
    Curve,
    _curves_legend,
    _curves_svg,
    _figure,
    _history_legend,
    _history_svg,
    _importance_svg,
    _parallel_svg,
    _thin,
    _trial_curves,
)
from flagrun.htmlreport.data import Trial, best_trial, param_importances, read_trials, trial_flags
from flagrun.records import JobRecord, RunRecord, TrialState

MAX_TAGS = 60  # metric charts on a run's page
MAX_LOG_BYTES = 256 << 10  # the tail of output.log shown
MAX_SOURCE_BYTES = 512 << 10  # source snapshot shown, all files together


def job_html(job_dir: Path) -> str:
    """The report page of a tuning job."""
    record = jobstore.read_job(job_dir)
    spec = record.spec
    maximize = spec.maximize
    params = [param.name for param in spec.params]
    trials = read_trials(job_dir, spec.metric_tag)
    best = best_trial(trials, maximize)
    log_params = {p.name for p in spec.params if p.scale == "UNIT_LOG_SCALE"}
    importances = param_importances(trials, params)
    title = f"flagrun report: job {record.id}"
    metric = html.escape(spec.metric_tag)
    curves = _trial_curves(trials, best)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _job_summary(record, trials, best, job_dir),
        "<h2>Optimization history</h2>",
        _figure("history", _history_svg(trials, maximize, spec.metric_tag), _history_legend()),
        "<h2>Parallel coordinates</h2>",
        _figure(
            "parallel",
            _parallel_svg(trials, params, log_params, maximize, spec.metric_tag),
            f"<p class='note'>Complete trials; color: {metric}, brightest is best.</p>",
        ),
        "<h2>Parameter importances</h2>",
        _figure("importances", _importance_svg(importances), _IMPORTANCE_NOTE),
        "<h2>Learning curves</h2>",
        _figure("curves", _curves_svg(curves, "step", spec.metric_tag), _curves_legend()),
        "<h2>Trials</h2>",
        _trials_table(trials, params, spec.metric_tag),
    ]
    return _page(title, body)


def _job_summary(record: JobRecord, trials: list[Trial], best: Trial | None, job_dir: Path) -> str:
    spec = record.spec
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    durations = [t.duration for t in trials if isinstance(t.duration, int | float)]
    rows = [
        ("job", record.id),
        ("script", record.script),
        ("state", jobstore.job_state(record)),
        ("goal", f"{spec.goal} {spec.metric_tag} ({spec.metric_aggregation})"),
        ("algorithm", spec.algorithm),
        ("trials", f"{len(trials)} of {spec.max_trials}: " + _counts_text(counts)),
        ("early stopping", "on" if spec.early_stopping else "off"),
        ("created", record.created),
        ("ended", record.ended or "-"),
        ("wall time", _duration(_seconds_between(record.created, record.ended))),
        ("trial time", _trial_time(durations)),
    ]
    if best is not None:
        rows.append(("best trial", f"#{best.id}: {spec.metric_tag} = {_num(best.value)}"))
    out = [_key_values(rows, "summary")]
    if best is not None:
        flags = trial_flags(jobstore.trial_dir(job_dir, best.id), best)
        out.append("<h3>Best trial's flags</h3>")
        out.append(_key_values(list(flags.items()), "best-flags", css="flags"))
    return "\n".join(out)


def _trial_time(durations: list[float]) -> str:
    if not durations:
        return "-"
    total = sum(durations)
    return f"{_duration(total)} in all, {_duration(total / len(durations))} per trial"


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items())) or "none yet"


_IMPORTANCE_NOTE = (
    "<p class='note'>Share of the objective's variance each parameter explains on its own "
    "(epsilon-squared over the complete trials, grouped by the parameter's value or "
    "quantile bin). Interactions are not split up; the shares need not add up to 100%.</p>"
)


# -- tables -----------------------------------------------------------------------------------


def _trials_table(trials: Sequence[Trial], params: Sequence[str], metric: str) -> str:
    head = ["trial", "state", metric, "step", *params, "duration (s)", "reason"]
    rows = []
    for trial in trials:
        cells = [
            _cell(trial.id),
            _cell(trial.state),
            _cell(trial.value),
            _cell(trial.step),
            *(_cell(trial.params.get(name)) for name in params),
            _cell(None if trial.duration is None else round(trial.duration, 2)),
            _cell(trial.reason),
        ]
        rows.append(f'<tr class="{html.escape(trial.state.lower())}">{"".join(cells)}</tr>')
    header = "".join(f'<th title="click to sort">{html.escape(h)}</th>' for h in head)
    return (
        f'<table class="sortable" id="trials"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _cell(value: Any) -> str:
    if value is None:
        return "<td></td>"
    if _is_number(value):
        return f'<td class="num" data-v="{value!r}">{_num(value)}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _key_values(rows: list[tuple[str, Any]], table_id: str, css: str = "summary") -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>" for k, v in rows
    )
    return f'<table class="{css}" id="{table_id}">{body}</table>'


# -- a single run -----------------------------------------------------------------------------


def run_html(run_dir: Path) -> str:
    """The report page of one run (``flagrun train`` or a trial)."""
    from flagrun import metrics

    record = store.read_run(run_dir)
    scalars = metrics.read_scalars(run_dir)
    name = _run_name(run_dir, record)
    title = f"flagrun report: run {name}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _run_summary(record, name),
        "<h2>Flags</h2>",
        _flags_table(record),
        f"<h2>Metrics ({len(scalars)} tags)</h2>",
        _metric_charts(scalars),
        "<h2>Output</h2>",
        _output_log(run_dir / store.LOG_FILE),
        "<h2>Source</h2>",
        _sources(_source_dir(run_dir)),
    ]
    return _page(title, body)


def _run_name(run_dir: Path, record: RunRecord) -> str:
    if record.job and record.trial_id is not None:
        return f"{record.job}/{jobstore.TRIALS_DIR}/{record.trial_id}"
    return run_dir.name


def _run_summary(record: RunRecord, name: str) -> str:
    ended = record.exit_code if record.signal is None else record.signal
    rows = [
        ("run", name),
        ("status", store.effective_status(record)),
        ("reason", record.reason),
        ("script", record.script),
        ("label", record.label),
        ("command", record.command),
        ("start", record.start),
        ("end", record.end),
        ("duration", _duration(record.duration)),
        ("exit code / signal", ended),
        ("python", record.python),
        ("git", _git_text(record.git)),
        ("source hash", record.source_hash),
    ]
    trial = record.trial
    if trial is not None:
        value, step = _num(trial.objective_value), trial.training_step
        rows.append(("trial", f"{trial.state}: objective {value} at step {step}"))
    return _key_values([(k, v) for k, v in rows if v not in (None, "")], "summary")


def _git_text(git: Any) -> str | None:
    if not isinstance(git, dict):
        return None if git is None else str(git)
    dirty = " (dirty)" if git.get("dirty") else ""
    return f"{git.get('commit', '?')}{dirty}"


def _flags_table(record: RunRecord) -> str:
    flags = record.flags
    if not flags:
        return "<p>no flags</p>"
    declared = record.flag_declared or {}
    sources = record.flag_sources or {}
    rows = []
    for flag, value in flags.items():
        default = (declared.get(flag) or {}).get("default")
        rows.append(
            f"<tr><td>{html.escape(flag)}</td><td>{html.escape(_text(value))}</td>"
            f"<td>{html.escape(_text(default))}</td>"
            f"<td>{html.escape(_text(sources.get(flag)))}</td></tr>"
        )
    return (
        '<table class="sortable" id="flags"><thead><tr><th>flag</th><th>value</th>'
        f"<th>default</th><th>from</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _metric_charts(scalars: dict[str, list[Any]]) -> str:
    if not scalars:
        return "<p>no scalars logged</p>"
    figures = []
    for i, tag in enumerate(sorted(scalars)[:MAX_TAGS]):
        series = scalars[tag]
        points = _thin([(float(p.step), p.value) for p in series if math.isfinite(p.value)])
        color = STATE_COLORS[TrialState.COMPLETE]
        curve = Curve(tag, points, color, attrs=f'data-points="{len(series)}"')
        last = series[-1].value if series else None
        step = series[-1].step if series else "-"
        caption = (
            f"<figcaption>{html.escape(tag)}: last {_num(last)} at step {step} "
            f"({len(series)} points)</figcaption>"
        )
        figures.append(
            _figure(f"metric-{i}", _curves_svg([curve], "step", tag, height=240), caption)
        )
    if len(scalars) > MAX_TAGS:
        figures.append(f"<p class='note'>{len(scalars) - MAX_TAGS} more tags not drawn.</p>")
    return "".join(figures)


def _output_log(path: Path) -> str:
    try:
        size = path.stat().st_size
        data = read_regular(path, max(0, size - MAX_LOG_BYTES))  # the script's to replace
    except OSError:
        return "<p>no output.log</p>"
    note = ""
    if size > MAX_LOG_BYTES:
        note = f"<p class='note'>the last {MAX_LOG_BYTES >> 10} KiB of {size} bytes</p>"
        data = data[data.find(b"\n") + 1 :]
    text = data.decode("utf-8", errors="replace")
    return f'{note}<pre class="log">{html.escape(text) or "(empty)"}</pre>'


def _source_dir(run_dir: Path) -> Path:
    """A run's snapshot: its own source/, or its job's for a trial."""
    own = run_dir / store.SOURCE_DIR
    return own if own.is_dir() else run_dir.parent.parent / store.SOURCE_DIR


def _sources(folder: Path) -> str:
    if not folder.is_dir():
        return "<p>no source snapshot</p>"
    parts, budget = [], MAX_SOURCE_BYTES
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(p.is_symlink() for p in (path, *path.parents)):
            continue  # linked entries are data, not code
        rel = html.escape(str(path.relative_to(folder)))
        size = path.stat().st_size
        if size > budget:
            parts.append(f"<details><summary>{rel} ({size} bytes, not shown)</summary></details>")
            continue
        budget -= size
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(
            f"<details open><summary>{rel} ({size} bytes)</summary>"
            f'<pre class="source">{html.escape(text)}</pre></details>'
        )
    return "".join(parts) or "<p>the snapshot is empty</p>"


# -- the page ---------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
td.num { font-family: monospace; text-align: right; }
table.summary th, table.flags th { background: #f4f4f4; }
table.sortable th { cursor: pointer; background: #eef; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable th[data-dir="desc"]::after { content: " \\25BC"; }
tr.pruned td { color: #a65f00; } tr.failed td { color: #b00; }
figure.plot { margin: 0.5em 0 1.5em 0; }
svg text { font-size: 11px; fill: #333; } svg .label { font-size: 12px; }
svg .halo { paint-order: stroke; stroke: white; stroke-width: 3px; }
svg .mid { text-anchor: middle; } svg .end { text-anchor: end; } svg .empty { fill: #888; }
svg .frame { fill: none; stroke: #bbb; } svg .grid { stroke: #eee; }
svg .axis { stroke: #666; } svg .curve, svg .pc { fill: none; stroke-linecap: round; }
svg .pc { stroke-width: 1.5; opacity: 0.8; } svg .cut { stroke-width: 2; fill: none; }
svg .best { fill: none; stroke: #2ca02c; stroke-width: 2; } svg .bar { fill: #1f77b4; }
.legend .key { margin-right: 1.5em; } .legend svg { margin-right: 4px; vertical-align: middle; }
.note { color: #666; font-size: 0.9em; }
pre { background: #f8f8f8; border: 1px solid #ddd; padding: 0.5em; overflow: auto;
      max-height: 30em; font-size: 12px; }
"""

# Sorts a table by the clicked column: numbers (data-v) numerically, then text; blanks last.
_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.dataset.dir !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? "asc" : "desc";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col];
        if (cell.dataset.v !== undefined) return [0, parseFloat(cell.dataset.v), ""];
        var text = cell.textContent;
        return text === "" ? [2, 0, ""] : [1, 0, text];
      }
      rows.sort(function (a, b) {
        var ka = key(a), kb = key(b);
        if (ka[0] !== kb[0]) return ka[0] - kb[0];
        if (ka[0] === 2) return 0;
        var order = ka[0] === 0 ? ka[1] - kb[1] : ka[2].localeCompare(kb[2]);
        return asc ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _page(title: str, body: list[str]) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + f"\n<script>{_JS}</script></body></html>\n"
    )

"""``flagrun report``: one self-contained HTML page for a tuning job or a single run.

The page works offline: inline CSS, inline SVG drawn here in Python, and a few lines of
inline JavaScript that only sort the trials table. Nothing is fetched from the network.

A job's page is built from its folder (``job.json``, ``trials.jsonl``, each trial's
``run.json`` and event files), never from the Optuna study, which is slower to open.

Parameter importances: fANOVA (Optuna's default) needs scikit-learn and a random forest,
too slow for a report that must appear in well under two seconds. Instead each
parameter gets the share of the objective's variance that its values alone explain
(epsilon-squared of a one-way analysis of variance): the complete trials are grouped by
the parameter (a categorical value, or a quantile bin of a numeric one, at most
sqrt(n) bins), and ``(SS_between - (k - 1) * MS_within) / SS_total``, floored at 0, is
reported. Unlike the plain correlation ratio it does not grow just because a parameter
has many distinct values. It sees each parameter alone: interactions are not split up,
and the shares need not add up to 1.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagrun import jobstore, store
from flagrun.collect import job_state
from flagrun.errors import StoreError, UsageError

REPORT_FILE = "report.html"
MAX_POINTS = 200  # points per curve drawn; longer curves are thinned evenly
MAX_CURVE_POINTS = 20_000  # all learning curves of a job together (keeps big jobs' pages small)
MAX_TAGS = 60  # metric charts on a run's page
MAX_LOG_BYTES = 256 << 10  # the tail of output.log shown
MAX_SOURCE_BYTES = 512 << 10  # source snapshot shown, all files together

STATE_COLORS = {
    "COMPLETE": "#1f77b4",
    "PRUNED": "#ff7f0e",
    "FAILED": "#d62728",
    "RUNNING": "#7f7f7f",
}
BEST_COLOR = "#2ca02c"

# Chart geometry (SVG user units).
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 44


# -- public API -------------------------------------------------------------------------------


def write_report(
    ref: str | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    output: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML report of a job (default: the latest) or a run; return its path.

    ``ref`` is a job id, a run id, ``JOB/trials/N``, or a path to either folder. The page
    goes to ``output``, by default ``report.html`` inside that folder.
    """
    from flagrun._atomic import write_text_atomic

    kind, folder = resolve(Path(runs_dir), ref)
    page = job_html(folder) if kind == "job" else run_html(folder)
    target = Path(output) if output is not None else folder / REPORT_FILE
    try:
        write_text_atomic(target, page)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def resolve(runs_dir: Path, ref: str | None) -> tuple[str, Path]:
    """``("job", folder)`` or ``("run", folder)`` for what ``ref`` names."""
    if ref in (None, "", "latest"):
        return "job", jobstore.resolve_job(runs_dir, None)
    as_path = Path(ref)
    if jobstore.is_job_dir(as_path):
        return "job", as_path
    if (as_path / store.RUN_FILE).is_file():
        return "run", as_path
    try:
        return "job", jobstore.resolve_job(runs_dir, ref)
    except UsageError:
        pass
    try:
        return "run", store.resolve_run(runs_dir, ref)
    except UsageError:
        jobs = ", ".join(p.name for p in jobstore.list_jobs(runs_dir)[:3]) or "none"
        runs = ", ".join(r["id"] for r in store.list_runs(runs_dir)[:3]) or "none"
        raise UsageError(
            f"no job or run {ref!r} in {runs_dir}",
            hint=f"recent jobs: {jobs}; recent runs: {runs} (a trial is JOB/trials/N)",
        ) from None


# -- a job ------------------------------------------------------------------------------------


@dataclass
class Trial:
    """One trial as the report shows it."""

    id: int
    state: str
    value: float | None
    step: int | None
    params: dict[str, Any]
    duration: float | None
    reason: str | None
    curve: list[tuple[int, float]] = field(default_factory=list)


def job_html(job_dir: Path) -> str:
    """The report page of a tuning job."""
    record = jobstore.read_job(job_dir)
    spec = record["spec"]
    maximize = spec["goal"] == "MAXIMIZE"
    params = [param["name"] for param in spec["params"]]
    trials = _read_trials(job_dir, spec["metric_tag"])
    best = _best(trials, maximize)
    log_params = {p["name"] for p in spec["params"] if p.get("scale") == "UNIT_LOG_SCALE"}
    importances = param_importances(trials, params)
    title = f"flagrun report: job {record.get('id', job_dir.name)}"
    metric = html.escape(spec["metric_tag"])
    curves = _trial_curves(trials, best)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _job_summary(record, trials, best, job_dir),
        "<h2>Optimization history</h2>",
        _figure("history", _history_svg(trials, maximize, spec["metric_tag"]), _history_legend()),
        "<h2>Parallel coordinates</h2>",
        _figure(
            "parallel",
            _parallel_svg(trials, params, log_params, maximize, spec["metric_tag"]),
            f"<p class='note'>Complete trials; color: {metric}, brightest is best.</p>",
        ),
        "<h2>Parameter importances</h2>",
        _figure("importances", _importance_svg(importances), _IMPORTANCE_NOTE),
        "<h2>Learning curves</h2>",
        _figure("curves", _curves_svg(curves, "step", spec["metric_tag"]), _curves_legend()),
        "<h2>Trials</h2>",
        _trials_table(trials, params, spec["metric_tag"]),
    ]
    return _page(title, body)


def _read_trials(job_dir: Path, metric_tag: str) -> list[Trial]:
    from flagrun import metrics

    trials = []
    for row in jobstore.read_trials(job_dir):
        run_dir = job_dir / str(row.get("runDir") or f"{jobstore.TRIALS_DIR}/{row['trialId']}")
        scalars = metrics.read_scalars(run_dir) if run_dir.is_dir() else {}
        tag = metrics.find_tag(metric_tag, scalars)
        curve = [(p.step, p.value) for p in scalars[tag]] if tag else []
        trials.append(
            Trial(
                id=int(row["trialId"]),
                state=str(row.get("state", "UNKNOWN")),
                value=_finite(row.get("objectiveValue")),
                step=row.get("trainingStep"),
                params=dict(row.get("hyperparameters") or {}),
                duration=row.get("duration"),
                reason=row.get("reason"),
                curve=curve,
            )
        )
    return trials


def _best(trials: Sequence[Trial], maximize: bool) -> Trial | None:
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    if not done:
        return None
    return (max if maximize else min)(done, key=lambda t: t.value)


def _job_summary(
    record: dict[str, Any], trials: list[Trial], best: Trial | None, job_dir: Path
) -> str:
    spec = record["spec"]
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    durations = [t.duration for t in trials if isinstance(t.duration, int | float)]
    rows = [
        ("job", record.get("id", job_dir.name)),
        ("script", record.get("script")),
        ("state", job_state(record)),
        ("goal", f"{spec['goal']} {spec['metric_tag']} ({spec.get('metric_aggregation', 'last')})"),
        ("algorithm", spec.get("algorithm")),
        ("trials", f"{len(trials)} of {spec['max_trials']}: " + _counts_text(counts)),
        ("early stopping", "on" if spec.get("early_stopping") else "off"),
        ("created", record.get("created")),
        ("ended", record.get("ended") or "-"),
        ("wall time", _duration(_seconds_between(record.get("created"), record.get("ended")))),
        ("trial time", _trial_time(durations)),
    ]
    if best is not None:
        rows.append(("best trial", f"#{best.id}: {spec['metric_tag']} = {_num(best.value)}"))
    out = [_key_values(rows, "summary")]
    if best is not None:
        flags = _trial_flags(job_dir / jobstore.TRIALS_DIR / str(best.id), best)
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


def _trial_flags(run_dir: Path, trial: Trial) -> dict[str, Any]:
    """Every flag the trial ran with (defaults included), else its hyperparameters."""
    try:
        flags = store.read_run(run_dir).get("flags")
    except StoreError:
        flags = None
    return flags if isinstance(flags, dict) and flags else trial.params


# -- parameter importances ----------------------------------------------------------------


def param_importances(trials: Sequence[Trial], params: Sequence[str]) -> dict[str, float]:
    """Each parameter's share of the objective's variance (epsilon-squared; module doc).

    Empty when fewer than 3 complete trials have a finite objective.
    """
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    if len(done) < 3:
        return {}
    values = [t.value for t in done]
    mean = sum(values) / len(values)
    total = sum((v - mean) ** 2 for v in values)
    shares = {}
    for name in params:
        groups = _groups([t.params.get(name) for t in done], values)
        shares[name] = _epsilon_squared(groups, mean, total)
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def _groups(settings: list[Any], values: list[float]) -> list[list[float]]:
    """The objective values grouped by the parameter's value (numbers in quantile bins)."""
    numeric = all(_is_number(s) for s in settings if s is not None)
    present = [(s, v) for s, v in zip(settings, values, strict=True) if s is not None]
    unset = [v for s, v in zip(settings, values, strict=True) if s is None]
    by_key: dict[Any, list[float]] = {}
    if numeric and len({s for s, _ in present}) > _max_bins(len(values)):
        present.sort(key=lambda pair: pair[0])
        bins = _max_bins(len(values))
        first_rank: dict[Any, int] = {}
        for rank, (setting, _) in enumerate(present):
            first_rank.setdefault(setting, rank)
        for setting, value in present:
            by_key.setdefault(first_rank[setting] * bins // len(present), []).append(value)
    else:
        for setting, value in present:
            by_key.setdefault(repr(setting), []).append(value)
    groups = list(by_key.values())
    return groups + [unset] if unset else groups


def _max_bins(count: int) -> int:
    return max(2, math.isqrt(count))


def _epsilon_squared(groups: list[list[float]], mean: float, total: float) -> float:
    count, k = sum(len(g) for g in groups), len(groups)
    if total <= 0 or k < 2 or count <= k:
        return 0.0
    between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups)
    within = max(total - between, 0.0)
    return max(0.0, (between - (k - 1) * within / (count - k)) / total)


_IMPORTANCE_NOTE = (
    "<p class='note'>Share of the objective's variance each parameter explains on its own "
    "(epsilon-squared over the complete trials, grouped by the parameter's value or "
    "quantile bin). Interactions are not split up; the shares need not add up to 100%.</p>"
)


# -- charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Maps data values onto pixels, linearly or in log10."""

    lo: float  # in log10 when ``log``
    hi: float
    start: float
    end: float
    log: bool = False

    @classmethod
    def fit(cls, values: Iterable[float], start: float, end: float, log: bool = False) -> Scale:
        """A scale spanning the finite ``values`` (positive ones for a log scale)."""
        usable = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if log and usable:
            usable = [math.log10(v) for v in usable]
        lo, hi = (min(usable), max(usable)) if usable else (0.0, 1.0)
        if lo == hi:
            pad = abs(lo) * 0.05 or 0.5
            lo, hi = lo - pad, hi + pad
        return cls(lo, hi, start, end, log)

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.start + (v - self.lo) / (self.hi - self.lo) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        """Round values inside the domain, about ``count`` of them."""
        if self.log and self.hi - self.lo >= 1:
            return [10.0**d for d in range(math.ceil(self.lo), math.floor(self.hi) + 1)]
        lo, hi = (10**self.lo, 10**self.hi) if self.log else (self.lo, self.hi)
        raw = (hi - lo) / count
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
        first = math.ceil(lo / step - 1e-9)
        return [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _svg(parts: Iterable[str], label: str, height: int = HEIGHT) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{html.escape(label)}">' + "".join(parts) + "</svg>"
    )


def _axes(x: Scale, y: Scale, xlabel: str, ylabel: str, height: int = HEIGHT) -> list[str]:
    bottom = height - BOTTOM
    size = f'width="{WIDTH - LEFT - RIGHT}" height="{bottom - TOP}"'
    parts = [f'<rect class="frame" x="{LEFT}" y="{TOP}" {size}/>']
    for tick in x.ticks():
        px = x(tick)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{bottom}"/>')
        parts.append(f'<text x="{px:.1f}" y="{bottom + 14}" class="tick mid">{_num(tick)}</text>')
    for tick in y.ticks():
        py = y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}"/>'
        )
        parts.append(f'<text x="{LEFT - 4}" y="{py + 4:.1f}" class="tick end">{_num(tick)}</text>')
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{height - 8}" class="label mid">'
        f"{html.escape(xlabel)}</text>"
    )
    parts.append(
        f'<text transform="translate(12 {(TOP + bottom) / 2}) rotate(-90)" class="label mid">'
        f"{html.escape(ylabel)}</text>"
    )
    return parts


def _empty(label: str, why: str) -> str:
    text = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" class="label mid empty">'
    return _svg([text, html.escape(why), "</text>"], label)


def _history_svg(trials: Sequence[Trial], maximize: bool, metric: str) -> str:
    scored = [t for t in trials if t.value is not None and t.state in ("COMPLETE", "PRUNED")]
    if not scored:
        return _empty("optimization history", "no trial has an objective value yet")
    x = Scale.fit([t.id for t in trials], LEFT + 8, WIDTH - RIGHT - 8)
    y = Scale.fit([t.value for t in scored], HEIGHT - BOTTOM - 8, TOP + 8)
    parts = _axes(x, y, "trial", metric)
    corners, best = [], None
    for trial in sorted(scored, key=lambda t: t.id):
        if trial.state != "COMPLETE":
            continue
        if best is None or (trial.value > best if maximize else trial.value < best):
            best = trial.value
        corners.append((x(trial.id), y(best)))
    if corners:
        (x0, y0), rest = corners[0], corners[1:]
        path = f"M{x0:.1f},{y0:.1f}" + "".join(f"H{px:.1f}V{py:.1f}" for px, py in rest)
        parts.append(f'<path class="best" d="{path}H{x.end:.1f}"><title>best so far</title></path>')
    for trial in scored:
        color = STATE_COLORS.get(trial.state, "#7f7f7f")
        fill = color if trial.state == "COMPLETE" else "white"
        parts.append(
            f'<circle cx="{x(trial.id):.1f}" cy="{y(trial.value):.1f}" r="4" fill="{fill}" '
            f'stroke="{color}" data-trial="{trial.id}" data-value="{trial.value!r}">'
            f"<title>trial {trial.id} ({trial.state.lower()}): {_num(trial.value)}</title>"
            "</circle>"
        )
    return _svg(parts, "optimization history")


def _history_legend() -> str:
    return _legend(
        [
            (STATE_COLORS["COMPLETE"], "complete trial", "dot"),
            (STATE_COLORS["PRUNED"], "pruned trial (its last value)", "ring"),
            (BEST_COLOR, "best so far", "line"),
        ]
    )


@dataclass
class Curve:
    """One line of a line chart."""

    label: str
    points: list[tuple[float, float]]
    color: str
    dashed: bool = False
    cut: bool = False  # mark the end: the run was stopped early
    width: float = 1.5
    attrs: str = ""


def _curves_svg(curves: Sequence[Curve], xlabel: str, ylabel: str, height: int = HEIGHT) -> str:
    curves = [c for c in curves if c.points]
    if not curves:
        return _empty(ylabel, "no values logged")
    x = Scale.fit([p[0] for c in curves for p in c.points], LEFT + 4, WIDTH - RIGHT - 4)
    y = Scale.fit([p[1] for c in curves for p in c.points], height - BOTTOM - 6, TOP + 6)
    parts = _axes(x, y, xlabel, ylabel, height)
    for curve in curves:
        d = "".join(
            f"{'L' if i else 'M'}{x(px):.1f},{y(py):.1f}" for i, (px, py) in enumerate(curve.points)
        )
        if len(curve.points) == 1:
            d += "h0.01"  # a lone point still shows (with round caps)
        dash = ' stroke-dasharray="5 3"' if curve.dashed else ""
        parts.append(
            f'<path class="curve" d="{d}" stroke="{curve.color}" stroke-width="{curve.width}"'
            f"{dash} {curve.attrs}><title>{html.escape(curve.label)}</title></path>"
        )
        if curve.cut:
            ex, ey = x(curve.points[-1][0]), y(curve.points[-1][1])
            parts.append(
                f'<path class="cut" d="M{ex - 4:.1f},{ey - 4:.1f}l8,8m0,-8l-8,8" '
                f'stroke="{curve.color}"><title>{html.escape(curve.label)}: stopped here'
                "</title></path>"
            )
    return _svg(parts, ylabel, height)


def _trial_curves(trials: Sequence[Trial], best: Trial | None) -> list[Curve]:
    limit = max(20, min(MAX_POINTS, MAX_CURVE_POINTS // max(len(trials), 1)))
    curves = []
    # Drawn in this order, so the stopped trials and then the best one stay visible on top.
    for trial in sorted(trials, key=lambda t: (t is best, t.state != "COMPLETE", t.id)):
        points = _thin([(float(s), v) for s, v in trial.curve if math.isfinite(v)], limit)
        is_best = trial is best
        curves.append(
            Curve(
                label=f"trial {trial.id} ({trial.state.lower()})",
                points=points,
                color=BEST_COLOR if is_best else STATE_COLORS.get(trial.state, "#7f7f7f"),
                dashed=trial.state in ("PRUNED", "FAILED"),
                cut=trial.state == "PRUNED",
                width=2.5 if is_best else 1.2,
                attrs=f'data-trial="{trial.id}" data-points="{len(trial.curve)}"',
            )
        )
    return curves


def _curves_legend() -> str:
    return _legend(
        [
            (BEST_COLOR, "best trial", "line"),
            (STATE_COLORS["COMPLETE"], "complete", "line"),
            (STATE_COLORS["PRUNED"], "pruned: dashed, × where it was stopped", "dash"),
            (STATE_COLORS["FAILED"], "failed", "dash"),
        ]
    )


def _thin(points: list[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most ``limit`` evenly spaced points, the first and the last always kept."""
    if len(points) <= limit:
        return points
    last = len(points) - 1
    return [points[round(i * last / (limit - 1))] for i in range(limit)]


def _parallel_svg(
    trials: Sequence[Trial],
    params: Sequence[str],
    log_params: set[str],
    maximize: bool,
    metric: str,
) -> str:
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    if not done or not params:
        return _empty("parallel coordinates", "no complete trial yet")
    names = [*params, metric]
    columns = [[t.params.get(name) for t in done] for name in params]
    columns.append([t.value for t in done])
    gap = (WIDTH - 2 * LEFT) / max(len(names) - 1, 1)
    axes = [
        _Axis(name, column, LEFT + i * gap, name in log_params)
        for i, (name, column) in enumerate(zip(names, columns, strict=True))
    ]
    objective = axes[-1].scale
    parts = []
    for trial in sorted(done, key=lambda t: t.value if maximize else -t.value):  # best on top
        d, pen = [], "M"
        settings = [*(trial.params.get(n) for n in params), trial.value]
        for axis, value in zip(axes, settings, strict=True):
            py = axis.y(value)
            if py is None:
                pen = "M"
                continue
            d.append(f"{pen}{axis.x:.1f},{py:.1f}")
            pen = "L"
        height = (objective(trial.value) - objective.start) / (objective.end - objective.start)
        color = _viridis(height if maximize else 1 - height)  # 1, bright: the best
        parts.append(
            f'<path class="pc" d="{"".join(d)}" stroke="{color}" data-trial="{trial.id}">'
            f"<title>trial {trial.id}: {_num(trial.value)}</title></path>"
        )
    for axis in axes:
        parts += axis.draw()
    return _svg(parts, "parallel coordinates")


class _Axis:
    """One vertical axis of the parallel coordinates: numeric (lin/log) or categorical."""

    def __init__(self, name: str, values: list[Any], x: float, log: bool) -> None:
        self.name, self.x = name, x
        present = [v for v in values if v is not None]
        self.numeric = all(_is_number(v) for v in present)
        top, bottom = TOP + 18, HEIGHT - BOTTOM
        if self.numeric:
            self.scale = Scale.fit([float(v) for v in present], bottom, top, log)
            self.categories: list[str] = []
        else:
            self.categories = sorted({str(v) for v in present})
            self.scale = Scale(-0.5, len(self.categories) - 0.5, bottom, top)

    def y(self, value: Any) -> float | None:
        if value is None:
            return None
        if self.numeric:
            if not _is_number(value) or (self.scale.log and value <= 0):
                return None
            return self.scale(float(value))
        return self.scale(self.categories.index(str(value)))

    def draw(self) -> list[str]:
        x, scale = self.x, self.scale
        parts = [
            f'<line class="axis" x1="{x:.1f}" y1="{scale.end}" x2="{x:.1f}" y2="{scale.start}"/>',
            f'<text x="{x:.1f}" y="{TOP + 6}" class="label mid">{html.escape(self.name)}</text>',
        ]
        if self.numeric:
            labels = [(scale(t), _num(t)) for t in scale.ticks(4)]
        else:
            labels = [(scale(i), c) for i, c in enumerate(self.categories)]
        for py, text in labels:
            parts.append(
                f'<text x="{x + 4:.1f}" y="{py + 4:.1f}" class="tick halo">'
                f"{html.escape(text)}</text>"
            )
        return parts


def _viridis(t: float) -> str:
    """A color from dark purple (0) through teal to yellow (1)."""
    stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    a, b, f = stops[i], stops[i + 1], t - i
    return "#" + "".join(f"{round(a[k] + (b[k] - a[k]) * f):02x}" for k in range(3))


def _importance_svg(importances: dict[str, float]) -> str:
    if not importances:
        return _empty("parameter importances", "needs at least 3 complete trials")
    row = 24
    height = TOP + row * len(importances) + 20
    label_width = 160
    scale = Scale(0.0, 1.0, label_width, WIDTH - 70)
    parts = []
    for i, (name, share) in enumerate(importances.items()):
        top = TOP + i * row
        parts.append(
            f'<text x="{label_width - 6}" y="{top + 15}" class="label end">'
            f"{html.escape(name)}</text>"
            f'<rect class="bar" x="{label_width}" y="{top + 3}" height="{row - 6}" '
            f'width="{max(scale(share) - label_width, 1):.1f}" data-param="{html.escape(name)}" '
            f'data-importance="{share:.6f}"><title>{html.escape(name)}: {share:.1%}</title></rect>'
            f'<text x="{scale(share) + 6:.1f}" y="{top + 15}" class="tick">{share:.1%}</text>'
        )
    return _svg(parts, "parameter importances", height)


def _legend(entries: list[tuple[str, str, str]]) -> str:
    items = []
    for color, text, kind in entries:
        if kind == "dot":
            mark = f'<circle cx="8" cy="6" r="4" fill="{color}" stroke="{color}"/>'
        elif kind == "ring":
            mark = f'<circle cx="8" cy="6" r="4" fill="white" stroke="{color}"/>'
        else:
            dash = ' stroke-dasharray="4 2"' if kind == "dash" else ""
            mark = f'<path d="M0,6H16" stroke="{color}" stroke-width="2"{dash}/>'
        items.append(
            f'<span class="key"><svg width="16" height="12">{mark}</svg>{html.escape(text)}</span>'
        )
    return f"<p class='legend'>{''.join(items)}</p>"


def _figure(name: str, svg: str, caption: str = "") -> str:
    return f'<figure class="plot" id="{name}">{svg}{caption}</figure>'


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


def _run_name(run_dir: Path, record: dict[str, Any]) -> str:
    if record.get("job") and record.get("trialId") is not None:
        return f"{record['job']}/{jobstore.TRIALS_DIR}/{record['trialId']}"
    return run_dir.name


def _run_summary(record: dict[str, Any], name: str) -> str:
    ended = record.get("exit_code") if record.get("signal") is None else record.get("signal")
    rows = [
        ("run", name),
        ("status", store.effective_status(record)),
        ("reason", record.get("reason")),
        ("script", record.get("script")),
        ("label", record.get("label")),
        ("command", record.get("command")),
        ("start", record.get("start")),
        ("end", record.get("end")),
        ("duration", _duration(record.get("duration"))),
        ("exit code / signal", ended),
        ("python", record.get("python")),
        ("git", _git_text(record.get("git"))),
        ("source hash", record.get("source_hash")),
    ]
    trial = record.get("trial")
    if isinstance(trial, dict):
        value, step = _num(trial.get("objectiveValue")), trial.get("trainingStep")
        rows.append(("trial", f"{trial.get('state')}: objective {value} at step {step}"))
    return _key_values([(k, v) for k, v in rows if v not in (None, "")], "summary")


def _git_text(git: Any) -> str | None:
    if not isinstance(git, dict):
        return None if git is None else str(git)
    dirty = " (dirty)" if git.get("dirty") else ""
    return f"{git.get('commit', '?')}{dirty}"


def _flags_table(record: dict[str, Any]) -> str:
    flags = record.get("flags") or {}
    if not flags:
        return "<p>no flags</p>"
    declared = record.get("flag_declared") or {}
    sources = record.get("flag_sources") or {}
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
        curve = Curve(tag, points, STATE_COLORS["COMPLETE"], attrs=f'data-points="{len(series)}"')
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
        with open(path, "rb") as handle:
            handle.seek(max(0, size - MAX_LOG_BYTES))
            data = handle.read()
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


# -- small helpers ----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _text(value: Any) -> str:
    return _num(value) if value is None or _is_number(value) else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _seconds_between(start: Any, end: Any) -> float | None:
    from datetime import datetime

    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None

"""The report's charts as inline SVG, drawn in Python from the report's data."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flagrun.htmlreport._text import _is_number, _num
from flagrun.htmlreport.data import Trial, scored
from flagrun.records import TrialState

MAX_POINTS = 200  # points per curve drawn; longer curves are thinned evenly
MAX_CURVE_POINTS = 20_000  # all learning curves of a job together (keeps big jobs' pages small)

STATE_COLORS = {
    TrialState.COMPLETE: "#1f77b4",
    TrialState.PRUNED: "#ff7f0e",
    TrialState.FAILED: "#d62728",
    TrialState.RUNNING: "#7f7f7f",
}
BEST_COLOR = "#2ca02c"

# Chart geometry (SVG user units).
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 44


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
    points = scored(trials, (TrialState.COMPLETE, TrialState.PRUNED))
    if not points:
        return _empty("optimization history", "no trial has an objective value yet")
    x = Scale.fit([t.id for t in trials], LEFT + 8, WIDTH - RIGHT - 8)
    y = Scale.fit([value for _, value in points], HEIGHT - BOTTOM - 8, TOP + 8)
    parts = _axes(x, y, "trial", metric)
    corners: list[tuple[float, float]] = []
    best: float | None = None
    for trial, value in sorted(points, key=lambda pair: pair[0].id):
        if trial.state != TrialState.COMPLETE:
            continue
        if best is None or (value > best if maximize else value < best):
            best = value
        corners.append((x(trial.id), y(best)))
    if corners:
        (x0, y0), rest = corners[0], corners[1:]
        path = f"M{x0:.1f},{y0:.1f}" + "".join(f"H{px:.1f}V{py:.1f}" for px, py in rest)
        parts.append(f'<path class="best" d="{path}H{x.end:.1f}"><title>best so far</title></path>')
    for trial, value in points:
        color = STATE_COLORS.get(trial.state, "#7f7f7f")
        fill = color if trial.state == TrialState.COMPLETE else "white"
        parts.append(
            f'<circle cx="{x(trial.id):.1f}" cy="{y(value):.1f}" r="4" fill="{fill}" '
            f'stroke="{color}" data-trial="{trial.id}" data-value="{trial.value!r}">'
            f"<title>trial {trial.id} ({trial.state.lower()}): {_num(trial.value)}</title>"
            "</circle>"
        )
    return _svg(parts, "optimization history")


def _history_legend() -> str:
    return _legend(
        [
            (STATE_COLORS[TrialState.COMPLETE], "complete trial", "dot"),
            (STATE_COLORS[TrialState.PRUNED], "pruned trial (its last value)", "ring"),
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
    for trial in sorted(trials, key=lambda t: (t is best, t.state != TrialState.COMPLETE, t.id)):
        points = _thin([(float(s), v) for s, v in trial.curve if math.isfinite(v)], limit)
        is_best = trial is best
        curves.append(
            Curve(
                label=f"trial {trial.id} ({trial.state.lower()})",
                points=points,
                color=BEST_COLOR if is_best else STATE_COLORS.get(trial.state, "#7f7f7f"),
                dashed=trial.state in (TrialState.PRUNED, TrialState.FAILED),
                cut=trial.state == TrialState.PRUNED,
                width=2.5 if is_best else 1.2,
                attrs=f'data-trial="{trial.id}" data-points="{len(trial.curve)}"',
            )
        )
    return curves


def _curves_legend() -> str:
    return _legend(
        [
            (BEST_COLOR, "best trial", "line"),
            (STATE_COLORS[TrialState.COMPLETE], "complete", "line"),
            (STATE_COLORS[TrialState.PRUNED], "pruned: dashed, × where it was stopped", "dash"),
            (STATE_COLORS[TrialState.FAILED], "failed", "dash"),
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
    done = scored(trials)
    if not done or not params:
        return _empty("parallel coordinates", "no complete trial yet")
    names = [*params, metric]
    columns = [[t.params.get(name) for t, _ in done] for name in params]
    columns.append([value for _, value in done])
    gap = (WIDTH - 2 * LEFT) / max(len(names) - 1, 1)
    axes = [
        _Axis(name, column, LEFT + i * gap, name in log_params)
        for i, (name, column) in enumerate(zip(names, columns, strict=True))
    ]
    objective = axes[-1].scale
    parts = []
    for trial, value in sorted(done, key=lambda pair: pair[1] if maximize else -pair[1]):
        d, pen = [], "M"  # drawn worst first, so the best lie on top
        settings = [*(trial.params.get(n) for n in params), value]
        for axis, setting in zip(axes, settings, strict=True):
            py = axis.y(setting)
            if py is None:
                pen = "M"
                continue
            d.append(f"{pen}{axis.x:.1f},{py:.1f}")
            pen = "L"
        height = (objective(value) - objective.start) / (objective.end - objective.start)
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

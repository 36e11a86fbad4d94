"""Two runs side by side (tfruns' compare_runs): flags, metrics and source that differ."""

from __future__ import annotations

import difflib
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flagrun import store
from flagrun.records import RunRecord
from flagrun.tags import display_names

# Source files larger than this are compared by size only.
MAX_DIFF_BYTES = 1 << 20


@dataclass
class Comparison:
    """What differs between run ``a`` and run ``b``."""

    a: RunRecord
    b: RunRecord
    flags: list[tuple[str, Any, Any]]  # (name, value in a, value in b), differing only
    metrics: list[tuple[str, Any, Any, float | None]]  # (name, a, b, b - a), every metric
    source: dict[str, tuple[list[str], list[str]]]  # path -> (lines in a, in b), differing only

    def unified_diff(self, rel: str) -> list[str]:
        """The unified diff of one differing source file."""
        lines_a, lines_b = self.source[rel]
        a, b = self.a.id, self.b.id
        return list(difflib.unified_diff(lines_a, lines_b, f"{a}/{rel}", f"{b}/{rel}", lineterm=""))


def compare(runs_dir: str | Path, ref_a: str, ref_b: str) -> Comparison:
    """Compare two runs (ids, ``latest``, or ``JOB/trials/N``)."""
    runs = Path(runs_dir)
    dir_a, dir_b = store.resolve_run(runs, ref_a), store.resolve_run(runs, ref_b)
    a, b = store.read_run(dir_a), store.read_run(dir_b)
    return Comparison(
        a=a,
        b=b,
        flags=_flag_changes(a.flags, b.flags),
        metrics=_metric_changes(a.metrics, b.metrics),
        source=_source_changes(_source_of(dir_a), _source_of(dir_b)),
    )


def _flag_changes(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    names = [*a, *(name for name in b if name not in a)]
    return [(name, a.get(name), b.get(name)) for name in names if a.get(name) != b.get(name)]


def _metric_changes(
    a: dict[str, Any], b: dict[str, Any]
) -> list[tuple[str, Any, Any, float | None]]:
    """Each metric by name in both runs (their writers' timestamped folders differ)."""
    a, b = _by_name(a), _by_name(b)
    rows = []
    for tag in sorted({*a, *b}):
        value_a, value_b = _value(a.get(tag)), _value(b.get(tag))
        both = isinstance(value_a, float) and isinstance(value_b, float)
        delta = value_b - value_a if both and math.isfinite(value_b - value_a) else None
        rows.append((tag, value_a, value_b, delta))
    return rows


def _by_name(summary: dict[str, Any]) -> dict[str, Any]:
    return {name: summary[tag] for tag, name in display_names(summary).items()}


def _value(entry: Any) -> Any:
    value = entry.get("value") if isinstance(entry, dict) else entry
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _source_of(run_dir: Path) -> Path:
    """A run's snapshot: its own source/, or its job's for a trial."""
    own = run_dir / store.SOURCE_DIR
    if own.is_dir():
        return own
    return run_dir.parent.parent / store.SOURCE_DIR  # <job>/trials/<n> -> <job>/source


def _source_changes(dir_a: Path, dir_b: Path) -> dict[str, tuple[list[str], list[str]]]:
    files_a, files_b = _code_files(dir_a), _code_files(dir_b)
    changes = {}
    for rel in sorted(files_a.keys() | files_b.keys()):
        lines_a, lines_b = _lines(files_a.get(rel)), _lines(files_b.get(rel))
        if lines_a != lines_b:
            changes[rel] = (lines_a, lines_b)
    return changes


def _code_files(folder: Path) -> dict[str, Path]:
    """Files copied into a snapshot (the symlinked data entries are not code)."""
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): path
        for path in folder.rglob("*")
        if path.is_file() and not any(p.is_symlink() for p in (path, *path.parents))
    }


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    if path.stat().st_size > MAX_DIFF_BYTES:
        return [f"<{path.stat().st_size} bytes>"]
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def to_text(comparison: Comparison) -> str:
    """The comparison as plain text for the terminal."""
    a, b = comparison.a.id, comparison.b.id
    out = [f"comparing {a} (a) with {b} (b)", "", "flags that differ:"]
    out += [f"  {name}: {va!r} -> {vb!r}" for name, va, vb in comparison.flags] or ["  none"]
    out += ["", "metrics (last value):"]
    for tag, va, vb, delta in comparison.metrics:
        change = "" if delta is None else f"  ({delta:+.4g})"
        out.append(f"  {tag}: {_show(va)} -> {_show(vb)}{change}")
    if not comparison.metrics:
        out.append("  none")
    out += ["", "source:"]
    if not comparison.source:
        out.append("  identical")
    for rel in comparison.source:
        out += comparison.unified_diff(rel)
    return "\n".join(out) + "\n"


def to_html(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page (no external resources)."""
    a, b = (html.escape(str(comparison.a.id)), html.escape(str(comparison.b.id)))
    flags = "".join(
        f"<tr><td>{_esc(n)}</td><td>{_esc(va)}</td><td>{_esc(vb)}</td></tr>"
        for n, va, vb in comparison.flags
    )
    metrics = "".join(
        f"<tr><td>{_esc(t)}</td><td>{_show(va)}</td><td>{_show(vb)}</td>"
        f"<td>{'' if d is None else f'{d:+.4g}'}</td></tr>"
        for t, va, vb, d in comparison.metrics
    )
    differ = difflib.HtmlDiff(wrapcolumn=100)
    sources = "".join(
        f"<h3>{_esc(rel)}</h3>"
        + differ.make_table(lines_a, lines_b, f"{a} (a)", f"{b} (b)", context=True)
        for rel, (lines_a, lines_b) in comparison.source.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>flagrun compare {a} {b}</title><style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; font-family: monospace; }}
.diff_add {{ background: #dfd; }} .diff_chg {{ background: #ffa; }}
.diff_sub {{ background: #fdd; }}
</style></head><body>
<h1>{a} (a) vs {b} (b)</h1>
<h2>Flags that differ</h2><table><tr><th>flag</th><th>a</th><th>b</th></tr>{flags}</table>
<h2>Metrics</h2><table><tr><th>tag</th><th>a</th><th>b</th><th>b - a</th></tr>{metrics}</table>
<h2>Source</h2>{sources or "<p>identical</p>"}
</body></html>
"""


def _show(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _esc(value: Any) -> str:
    return html.escape("-" if value is None else str(value))

"""The metric file of Google's ``cloudml-hypertune`` reporter -> scalar series.

A trainer outside TensorFlow reports its objective to Cloud ML (and Vertex AI) with::

    hypertune.HyperTune().report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag="accuracy", metric_value=0.91, global_step=3)

which writes JSON lines to the file named by ``CLOUD_ML_HP_METRIC_FILE`` (default
``/tmp/hypertune/output.metrics``), one object per report::

    {"accuracy": "0.91", "checkpoint_path": "", "global_step": "3", "timestamp": 1700000000.1,
     "trial": "2"}

Every key other than ``timestamp``, ``trial``, ``global_step`` and ``checkpoint_path`` is a
metric tag whose value is the number as text. The library rewrites the whole file at every
report (keeping the last 100 reports), so the file is read again whenever it changed and
a report is new when its timestamp is later than the last one taken; a file that only
grows (the common case, and writers that append) is read from where the last read ended.
A last line without its newline is still being written and is left for the next poll.
The library writes ``global_step`` "0" when a report names no step: such a report after
earlier ones of its tag takes the next step, so the series still advances.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from flagrun._untrusted import read_regular
from flagrun.sources import Scalar

METRIC_FILE = "hypertune/output.metrics"  # inside a trial's run folder
_NOT_TAGS = frozenset({"timestamp", "trial", "global_step", "checkpoint_path"})
_HEAD = 256  # bytes compared to tell a file that grew from one rewritten from scratch


class HypertuneReader:
    """Incremental reader of one hypertune metric file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._scalars: dict[str, list[Scalar]] = {}
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last read
        self._offset = 0  # bytes taken so far (whole lines)
        self._head = b""  # the file's first bytes as last read
        self._last_time = -math.inf

    @property
    def scalars(self) -> dict[str, list[Scalar]]:
        """Everything read so far: tag -> points in order of arrival."""
        return self._scalars

    def tags(self) -> list[str]:
        """The tags read so far, sorted."""
        return sorted(self._scalars)

    def poll(self) -> bool:
        """Take in the reports written since the last call; True if any is new."""
        try:
            stat = os.stat(self.path)
            seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if seen == self._seen:
                return False
            data = read_regular(self.path)
        except OSError:
            return False
        self._seen = seen
        grew = len(data) >= self._offset and data[: len(self._head)] == self._head
        start = self._offset if grew else 0
        end = data.rfind(b"\n") + 1
        if end <= start:
            return False
        self._offset, self._head = end, data[: min(end, _HEAD)]
        added = False
        for line in data[start:end].splitlines():
            added |= self._take(line, dedupe=not grew)
        return added

    def _take(self, line: bytes, *, dedupe: bool) -> bool:
        try:
            report = json.loads(line)
        except ValueError:
            return False
        if not isinstance(report, dict):
            return False
        wall = _number(report.get("timestamp"))
        if wall is None:
            wall = math.nan
        elif dedupe and wall <= self._last_time:
            return False  # taken before the file was rewritten
        else:
            self._last_time = max(self._last_time, wall)
        step = _number(report.get("global_step"))
        added = False
        for tag, text in report.items():
            value = _number(text)
            if tag in _NOT_TAGS or value is None:
                continue
            series = self._scalars.setdefault(str(tag), [])
            at = int(step) if step is not None and step.is_integer() else 0
            if at == 0 and series:
                at = series[-1].step + 1  # a report without a step comes after the last
            series.append(Scalar(at, wall, value))
            added = True
        return added


def _number(value: object) -> float | None:
    """A float from a number or its text ("0.91", "nan"); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None

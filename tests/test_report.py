"""`flagrun report`: HTML pages of a real tuning job (real `flagrun tune`, real trial
processes, real event files, a trial really pruned) and of real single runs."""

from __future__ import annotations

import json
import os
import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flagrun.htmlreport import Trial, param_importances
from flagrun.records import ProcessIdentity
from tests.factories import job_record, run_record, spec_of, trial_row
from tests.helpers import (
    HOPELESS_LAST_TRAIN,
    flagrun,
    hopeless_last_grid_yaml,
    make_project,
    only_job,
    only_run,
)

LONG = textwrap.dedent(
    """
    from flagrun import flags, flag_string, log_metrics

    FLAGS = flags(flag_string("note", "plain"))
    print("note is", FLAGS.note)
    for step in range(1500):
        log_metrics({"loss": 1.0 / (step + 1), "lr": 0.01}, step=step)
    """
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding one finished tuning job (4 complete trials, 1 pruned) and one run."""
    root = tmp_path_factory.mktemp("report")
    act = {"parameterName": "act", "type": "CATEGORICAL", "categoricalValues": ["relu"]}
    make_project(root, HOPELESS_LAST_TRAIN, hopeless_last_grid_yaml(act))
    (root / "long.py").write_text(LONG)
    done = flagrun(root, "tune", "train.py", "--config", "tuning.yml", "--progress", "quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    done = flagrun(root, "train", "long.py", "note=<b>bold</b> & co")
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def index_rows(job: Path) -> dict[int, dict]:
    rows = {}
    for line in (job / "trials.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["trialId"]] = row
    return rows


class Elements(HTMLParser):
    """Every element as (tag, attrs, id of the enclosing figure), and table rows' cells."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], str | None]] = []
        self.figure: str | None = None
        self.rows: dict[str, list[list[str]]] = {}  # table id -> rows of cell texts
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "figure":
            self.figure = values.get("id")
        if tag == "table":
            self._table = values.get("id")
        if tag == "tr" and self._table:
            self.rows.setdefault(self._table, []).append([])
        if tag in ("td", "th") and self._table:
            self._cell = []
        self.elements.append((tag, values, self.figure))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.figure = None
        if tag == "table":
            self._table = None
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.rows[self._table][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def data(self, figure: str, key: str, tag: str | None = None) -> list[dict[str, str]]:
        """The elements in a figure that carry the data attribute ``key`` (not the legend's)."""
        return [
            a for t, a, f in self.elements if f == figure and key in a and (tag is None or t == tag)
        ]

    def in_figure(self, figure: str, tag: str) -> list[dict[str, str]]:
        return [a for t, a, f in self.elements if f == figure and t == tag]


NETWORK_LINK = re.compile(r"""(?:src|href|action|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def assert_offline(page: str) -> None:
    assert not NETWORK_LINK.search(page)
    assert "<link" not in page.lower()
    assert not re.search(r"<script[^>]*\bsrc=", page, re.I)
    assert "@import" not in page and "url(" not in page


def test_job_report_shows_every_trial_and_the_plots_data(project: Path) -> None:
    job = only_job(project)
    done = flagrun(project, "report")  # the latest job by default
    assert done.returncode == 0, done.stderr
    target = job / "report.html"
    assert done.stdout.strip() == str(Path("runs") / job.name / "report.html")
    page = target.read_text()
    assert_offline(page)
    assert len(page) < 2_000_000
    rows = index_rows(job)
    assert [row["state"] for row in rows.values()] == ["COMPLETE"] * 4 + ["PRUNED"]
    doc = Elements(page)

    # the trials table: one row per trial, with its state and objective
    header, *body = doc.rows["trials"]
    assert header[:4] == ["trial", "state", "val_acc", "step"] and "x" in header
    assert [int(cells[0]) for cells in body] == [1, 2, 3, 4, 5]
    for cells in body:
        row = rows[int(cells[0])]
        assert cells[1] == row["state"]
        assert float(cells[2]) == pytest.approx(row["objectiveValue"], abs=1e-4)

    # optimization history: one point per trial holding its objective value
    points = {
        int(a["data-trial"]): float(a["data-value"])
        for a in doc.data("history", "data-trial", "circle")
    }
    assert points == {i: row["objectiveValue"] for i, row in rows.items()}
    assert any("best" in a.get("class", "") for a in doc.in_figure("history", "path"))

    # learning curves: every trial, all 40 epochs of the complete ones, the pruned one
    # dashed, shorter, and marked where it was stopped
    curves = {int(a["data-trial"]): a for a in doc.data("curves", "data-trial", "path")}
    assert set(curves) == set(rows)
    assert all(int(curves[i]["data-points"]) == 40 for i in range(1, 5))
    assert int(curves[5]["data-points"]) == rows[5]["trainingStep"] + 1 < 40
    assert "stroke-dasharray" in curves[5] and "stroke-dasharray" not in curves[1]
    assert curves[1]["d"].count("L") == 39
    assert [a for a in doc.in_figure("curves", "path") if a.get("class") == "cut"]

    # parallel coordinates: the complete trials, one line each, across x, act and val_acc
    lines = doc.data("parallel", "data-trial", "path")
    assert sorted(int(a["data-trial"]) for a in lines) == [1, 2, 3, 4]
    assert all(a["d"].count("L") == 2 for a in lines)

    # importances: x matters, act (one value only) explains nothing
    bars = {
        a["data-param"]: float(a["data-importance"]) for a in doc.data("importances", "data-param")
    }
    assert set(bars) == {"x", "act"}
    assert bars["x"] > 0.5 and bars["act"] == 0.0


def test_job_summary_names_the_job_the_best_trial_and_its_flags(project: Path) -> None:
    job = only_job(project)
    output = project / "elsewhere" / "page.html"
    output.parent.mkdir()
    done = flagrun(project, "report", job.name, "-o", str(output))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(output)
    doc = Elements(output.read_text())
    summary = dict(doc.rows["summary"])
    assert summary["job"] == job.name
    assert summary["script"] == "train.py"
    assert summary["state"] == "COMPLETED"
    assert summary["goal"] == "MAXIMIZE val_acc (last)"
    assert summary["trials"] == "5 of 5: 4 complete, 1 pruned"
    assert summary["best trial"] == "#1: val_acc = 0.9975"
    assert summary["wall time"].endswith(" s") and "per trial" in summary["trial time"]
    assert dict(doc.rows["best-flags"]) == {"x": "0.3", "act": "relu"}


def test_single_run_report_has_flags_every_tag_the_log_and_the_source(project: Path) -> None:
    run = only_run(project)
    done = flagrun(project, "report", run.name)
    assert done.returncode == 0, done.stderr
    page = (run / "report.html").read_text()
    assert_offline(page)
    doc = Elements(page)
    flags = {row[0]: row[1] for row in doc.rows["flags"][1:]}
    assert flags == {"note": "<b>bold</b> & co"}  # shown as text, escaped in the page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page and "<b>bold</b>" not in page
    figures = {f for _, _, f in doc.elements if f}
    assert figures == {"metric-0", "metric-1"}  # loss and lr
    loss = doc.data("metric-0", "data-points", "path")
    assert int(loss[0]["data-points"]) == 1500
    assert loss[0]["d"].count("L") < 200  # thinned for display
    assert "note is &lt;b&gt;bold" in page  # output.log
    assert "for step in range(1500):" in page  # the source snapshot


def test_a_trial_is_a_run_too(project: Path) -> None:
    job = only_job(project)
    done = flagrun(project, "report", f"{job.name}/trials/5")
    assert done.returncode == 0, done.stderr
    page = (job / "trials" / "5" / "report.html").read_text()
    assert f"run {job.name}/trials/5" in page
    assert "PRUNED" in page and "training with x=0.9" in page
    assert "hopeless = FLAGS.x &gt; 0.5" in page  # the job's source snapshot
    doc = Elements(page)
    tags = [a["aria-label"] for t, a, f in doc.elements if t == "svg" and "aria-label" in a]
    assert tags == ["loss", "val_acc"]


def test_unknown_job_or_run_is_a_clear_usage_error(project: Path, tmp_path: Path) -> None:
    done = flagrun(project, "report", "no-such-thing")
    assert done.returncode == 2
    assert "no job or run 'no-such-thing' in runs" in done.stderr
    assert only_job(project).name in done.stderr  # the hint lists recent jobs
    assert "Traceback" not in done.stderr
    empty = flagrun(tmp_path, "report")
    assert empty.returncode == 2 and "no tuning job in runs" in empty.stderr
    outside = flagrun(project, "report", "../x")
    assert outside.returncode == 2 and "Traceback" not in outside.stderr


def test_an_unwritable_output_is_reported(project: Path) -> None:
    done = flagrun(project, "report", "-o", str(project / "missing" / "dir" / "r.html"))
    assert done.returncode == 1
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr


def trial(i: int, value: float | None, state: str = "COMPLETE", **params: object) -> Trial:
    return Trial(i, state, value, 0, dict(params), 1.0, None)


def test_importances_credit_the_parameter_that_drives_the_objective() -> None:
    import random

    rng = random.Random(0)
    trials = []
    for i in range(60):
        a, b = rng.uniform(0, 1), rng.uniform(0, 1)
        opt = rng.choice(["adam", "sgd"])
        trials.append(trial(i, 3 * a + 0.05 * rng.gauss(0, 1), a=a, b=b, opt=opt))
    shares = param_importances(trials, ["a", "b", "opt"])
    assert list(shares)[0] == "a"  # most important first
    assert shares["a"] > 0.8
    assert shares["b"] < 0.1 and shares["opt"] < 0.1


def test_importances_need_complete_trials_and_ignore_the_rest() -> None:
    assert param_importances([trial(1, 1.0, a=1), trial(2, 2.0, a=2)], ["a"]) == {}
    trials = [trial(i, float(i % 2), opt="x" if i % 2 else "y") for i in range(10)]
    trials.append(trial(11, 100.0, "PRUNED", opt="x"))
    trials.append(trial(12, None, "FAILED", opt="y"))
    assert param_importances(trials, ["opt"]) == {"opt": pytest.approx(1.0)}
    flat = [trial(i, 1.0, a=i) for i in range(5)]
    assert param_importances(flat, ["a"]) == {"a": 0.0}


def make_job(root: Path, goal: str, trials: list[tuple[str, float | None, float]]) -> Path:
    """A job folder written directly: (state, objective, x) per trial, 5-step curves."""
    from flagrun import jobstore, store
    from flagrun.writer import MetricsWriter

    job = root / "runs" / "2026-01-01T00-00-00Z"
    for trial_id, (state, value, x) in enumerate(trials, start=1):
        run_dir = jobstore.trial_dir(job, trial_id)
        run_dir.mkdir(parents=True)
        if value is not None:
            writer = MetricsWriter(run_dir / "logs")
            for step in range(5):
                writer.log({"loss": value + (4 - step) * 0.1}, step=step)
            writer.close()
        run_status = {"COMPLETE": "COMPLETED", "PRUNED": "PRUNED"}.get(state, state)
        store.write_run(run_dir, run_record(str(trial_id), run_status, flags={"x": x}))
        row = trial_row(
            trial_id, state, objective_value=value, training_step=4, hyperparameters={"x": x}
        )
        jobstore.append_trial(job, row)
    params = [{"name": "x", "type": "DOUBLE", "scale": "UNIT_LOG_SCALE"}]
    spec = spec_of(params, goal=goal, metric_tag="loss", max_trials=10)
    gone = ProcessIdentity(-1, None, os.uname().nodename)  # a tuner that is no longer running
    record = job_record(job.name, "RUNNING", spec, script="t.py", tuner=gone)
    jobstore.write_job(job, record)
    return job


def test_minimizing_job_colors_and_ranks_the_lowest_value_best(tmp_path: Path) -> None:
    from flagrun.htmlreport import job_html

    job = make_job(
        tmp_path,
        "MINIMIZE",
        [("COMPLETE", 0.5, 0.1), ("COMPLETE", 0.2, 1.0), ("COMPLETE", 0.9, 10.0)],
    )
    doc = Elements(job_html(job))
    assert dict(doc.rows["summary"])["best trial"] == "#2: loss = 0.2"
    assert dict(doc.rows["summary"])["state"] == "CRASHED"  # RUNNING, but no tuner alive
    colors = {int(a["data-trial"]): a["stroke"] for a in doc.data("parallel", "data-trial")}
    assert colors[2] == "#fde725" and colors[3] == "#440154"  # brightest is best
    best = [a for a in doc.data("curves", "data-trial") if a["data-trial"] == "2"]
    assert best[0]["stroke"] == "#2ca02c"


def test_a_job_without_results_still_gives_a_page(tmp_path: Path) -> None:
    from flagrun.htmlreport import job_html

    job = make_job(tmp_path, "MAXIMIZE", [("FAILED", None, 1.0), ("RUNNING", None, 2.0)])
    page = job_html(job)
    doc = Elements(page)
    assert [row[0] for row in doc.rows["trials"][1:]] == ["1", "2"]
    assert "no trial has an objective value yet" in page
    assert "needs at least 3 complete trials" in page
    assert "no values logged" in page
    assert "best-flags" not in page

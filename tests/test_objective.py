"""flagrun.report / flagrun.should_stop inside a real script process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from flagrun import metrics

SCRIPT = textwrap.dedent(
    """
    import flagrun
    for step in range(3):
        flagrun.report(0.5 + step / 10, step=step)
    print("stop" if flagrun.should_stop() else "go")
    """
)


def run_script(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    script = tmp_path / "s.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_report_writes_the_jobs_metric_tag_and_should_stop_is_false_by_default(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {"FLAGRUN_RUN_DIR": str(run_dir), "FLAGRUN_METRIC_TAG": "val_acc"}
    done = run_script(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "go"
    series = metrics.read_scalars(run_dir)["val_acc"]
    assert [(p.step, round(p.value, 2)) for p in series] == [(0, 0.5), (1, 0.6), (2, 0.7)]


def test_should_stop_is_true_once_the_tuner_wrote_the_stop_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".flagrun-stop").touch()
    done = run_script(tmp_path, {"FLAGRUN_RUN_DIR": str(run_dir)})
    assert done.stdout.strip() == "stop"
    assert "objective" in metrics.read_scalars(run_dir)  # no job: the tag is "objective"


def test_by_hand_report_writes_to_logs_and_never_stops(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGRUN_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "go"
    assert "objective" in metrics.read_scalars(tmp_path)

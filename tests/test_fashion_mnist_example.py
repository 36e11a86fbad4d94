"""The Fashion-MNIST example (scripts/fashion_mnist): its tuning YAML, training and evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flagrun import introspect
from flagrun.spec import check_against_flags, load_spec
from tests.helpers import load_module

EXAMPLE = Path(__file__).resolve().parent.parent / "scripts" / "fashion_mnist"
TRAIN, EVALUATE = EXAMPLE / "train.py", EXAMPLE / "evaluate.py"


def run(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A real subprocess, without the caller's flagrun and dataset settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGRUN_", "FASHION_"))}
    base.update(TF_CPP_MIN_LOG_LEVEL="3", **env)
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=base, capture_output=True, text=True, timeout=300
    )


def require_dataset() -> None:
    data = load_module(EXAMPLE / "data.py")
    try:
        data.load_fashion_mnist()
    except data.DatasetNotFound as error:
        pytest.skip(f"no local Fashion-MNIST (apt-get install dataset-fashion-mnist): {error}")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real `flagrun train` of a tiny model on 1,000 images for one epoch: its run dir."""
    require_dataset()
    cwd = tmp_path_factory.mktemp("fashion")
    args = ["samples=1000", "epochs=1", "num_layers=1", "layer_size=64"]
    proc = run(cwd, "-m", "flagrun", "train", str(TRAIN), *args, "--runs-dir", "runs")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (record,) = (cwd / "runs").glob("*/run.json")
    return record.parent


def test_tuning_yml_matches_train_py_flags() -> None:
    spec = load_spec(EXAMPLE / "tuning.yml")

    check_against_flags(spec, introspect.declared_flags(TRAIN))
    assert spec.script == "train.py"
    assert (spec.goal, spec.metric_tag, spec.max_trials, spec.max_parallel_trials) == (
        "MAXIMIZE",
        "val_acc",
        100,
        2,
    )
    assert spec.early_stopping
    assert [p.name for p in spec.params] == [
        "batch_size",
        "learning_rate",
        "dropout_rate",
        "activation",
        "num_layers",
        "layer_size",
        "optimizer",
    ]


@pytest.mark.keras
def test_train_records_val_accuracy_and_saves_the_model(trained_run: Path) -> None:
    record = json.loads((trained_run / "run.json").read_text())

    assert record["status"] == "COMPLETED", record
    assert 0.0 <= record["metrics"]["validation/epoch_accuracy"]["value"] <= 1.0
    assert (trained_run / "model.keras").is_file()


@pytest.mark.keras
def test_evaluate_prints_and_writes_a_ten_class_report(trained_run: Path) -> None:
    proc = run(trained_run, str(EVALUATE), str(trained_run))

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Test accuracy: 0." in proc.stdout
    report = (trained_run / "classification_report.txt").read_text()
    assert report in proc.stdout
    rows = report.splitlines()
    assert len(rows) == 1 + 10 + 3  # header, classes, accuracy, macro avg, weighted avg
    assert rows[1].split()[0] == "t-shirt/top" and rows[10].split()[:2] == ["ankle", "boot"]
    assert rows[11].split()[-1] == "10000"


def test_classification_report_exact_numbers() -> None:
    evaluate = load_module(EVALUATE)
    y_true = np.array([0, 0, 0, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 0])

    report = evaluate.classification_report(y_true, y_pred, ["a", "b", "c"])

    assert report.splitlines() == [
        "             precision    recall  f1-score   support",
        "           a     0.667     0.667     0.667         3",
        "           b     0.500     1.000     0.667         1",
        "           c     1.000     0.500     0.667         2",
        "    accuracy                         0.667         6",
        "   macro avg     0.722     0.722     0.667         6",
        "weighted avg     0.750     0.667     0.667         6",
    ]


def test_class_scores_are_zero_for_a_class_never_seen_nor_predicted() -> None:
    evaluate = load_module(EVALUATE)
    matrix = evaluate.confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 3)

    precision, recall, f1, support = evaluate.class_scores(matrix)

    assert matrix.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert precision.tolist() == [0.5, 1.0, 0.0]
    assert recall.tolist() == [1.0, 0.5, 0.0]
    assert f1 == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert support.tolist() == [1, 2, 0]


def test_missing_dataset_says_what_to_install(tmp_path: Path) -> None:
    proc = run(
        tmp_path, str(TRAIN), FASHION_MNIST_DIR=str(tmp_path), FLAGRUN_DATASET_SEARCH_DEFAULTS="0"
    )

    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "apt-get install dataset-fashion-mnist" in line and str(tmp_path) in line


def test_unknown_optimizer_is_one_line(tmp_path: Path) -> None:
    proc = run(tmp_path, str(TRAIN), "--optimizer", "rms-prop")

    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "train.py: --optimizer 'rms-prop' is not one of adam, adamax, nadam, rmsprop, sgd"
    )


def test_evaluate_without_a_model_says_so(tmp_path: Path) -> None:
    proc = run(tmp_path, str(EVALUATE), str(tmp_path))

    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"evaluate.py: no model.keras in {tmp_path}: train it with train.py first"
    )

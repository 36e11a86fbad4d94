"""Presentation helpers: which metrics get a column, how long listings print."""

from __future__ import annotations

from flagrun import display
from tests.factories import run_record


def test_runs_table_shows_validation_metrics_of_keras3_runs_first() -> None:
    record = run_record(
        metrics={
            tag: {"value": 0.5, "step": 1}
            for tag in (
                "train/epoch_accuracy",
                "train/epoch_learning_rate",
                "train/epoch_loss",
                "validation/epoch_accuracy",
                "validation/epoch_loss",
                "validation/evaluation_loss_vs_iterations",
            )
        }
    )
    assert display.metric_columns([record]) == [
        "validation/epoch_accuracy",
        "validation/epoch_loss",
        "train/epoch_accuracy",
    ]


def test_runs_table_prefers_keras1_names_when_a_script_logged_them() -> None:
    record = run_record(
        metrics={"zeta": {"value": 1.0, "step": 0}, "val_acc": {"value": 0.9, "step": 0}}
    )
    assert display.metric_columns([record])[0] == "val_acc"


def test_print_records_aligns_columns(capsys) -> None:
    display.print_records(["a", "long name"], [[1, None], [0.123456, "x"]], title="t")
    assert capsys.readouterr().out.splitlines() == ["t", "a       long name", "1", "0.1235  x"]

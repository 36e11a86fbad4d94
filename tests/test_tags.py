"""Tag names and resolution (flagrun.tags) over the folder layouts real writers leave.

The layouts are the ones the writers write (checked against the real writers in
test_writers.py): Keras/TF2 tutorials ``logs/fit/<%Y%m%d-%H%M%S>/validation``, torch,
tensorboardX and Hugging Face ``runs/<%b%d_%H-%M-%S>_<host>``, Lightning
``lightning_logs/version_N``; flagrun drops a leading ``logs/``.
"""

from __future__ import annotations

import pytest

from flagrun import metrics, tags
from flagrun.errors import MetricsError


def keras_tutorial(stamp: str) -> list[str]:
    return [f"fit/{stamp}/{side}/epoch_{m}" for side in ("train", "validation")
            for m in ("accuracy", "loss")]  # fmt: skip


def gradient_tape(stamp: str) -> list[str]:
    return [f"gradient_tape/{stamp}/{side}/{m}" for side in ("train", "test")
            for m in ("accuracy", "loss")]  # fmt: skip


def torch_example(stamp: str) -> list[str]:
    return [f"runs/{stamp}_host/{tag}" for tag in ("Loss/train", "Accuracy/test")]


def hugging_face(stamp: str) -> list[str]:
    names = ("train/loss", "eval/loss", "eval/accuracy", "train/learning_rate")
    return [f"out/runs/{stamp}_host/{tag}" for tag in names]


def lightning(version: int) -> list[str]:
    return [f"lightning_logs/version_{version}/{tag}"
            for tag in ("val_acc", "train_loss", "epoch", "hp_metric")]  # fmt: skip


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("fit/20261202-055426", "validation/epoch_accuracy"),
        ("runs/Dec02_05-54-26_host", "Accuracy/test"),
        ("lightning_logs/version_0", "val_acc"),
        ("runs/Dec02_05-54-26_host/1764654866.123", "hp_metric"),  # torch's add_hparams
        ("", "validation/epoch_accuracy"),
        ("", "exp1/Accuracy/test"),
        ("", "val_acc"),
        ("", "loss/step_1000000"),  # the writer's own tag is never cut
    ],
)
def test_split_cuts_at_the_writers_run_folder(folder: str, name: str) -> None:
    path = f"{folder}/{name}" if folder else name
    assert tags.split(path) == (folder, name)


# (alias or name, layout of trial 1, of trial 2, expected name)
CASES = [
    ("val_acc", keras_tutorial, "validation/epoch_accuracy"),
    ("acc", keras_tutorial, "train/epoch_accuracy"),
    ("epoch_acc", keras_tutorial, "train/epoch_accuracy"),
    ("validation/epoch_accuracy", keras_tutorial, "validation/epoch_accuracy"),
    ("fit/20261202-055426/validation/epoch_accuracy", keras_tutorial, "validation/epoch_accuracy"),
    ("accuracy", gradient_tape, "train/accuracy"),
    ("test/accuracy", gradient_tape, "test/accuracy"),
    ("Accuracy/test", torch_example, "Accuracy/test"),
    ("eval_accuracy", hugging_face, "eval/accuracy"),
    ("eval/accuracy", hugging_face, "eval/accuracy"),
    ("learning_rate", hugging_face, "train/learning_rate"),
    ("loss", hugging_face, "train/loss"),
    ("val_acc", lightning, "val_acc"),
]
STAMPS = {
    keras_tutorial: ("20261202-055426", "20261202-061803"),
    gradient_tape: ("20261202-055609", "20261202-062011"),
    torch_example: ("Dec02_05-54-26", "Dec02_06-20-11"),
    hugging_face: ("Dec02_05-54-26", "Dec02_06-20-11"),
    lightning: (0, 1),
}


@pytest.mark.parametrize(("tag", "layout", "name"), CASES)
def test_a_tag_names_the_same_metric_in_every_trial(tag, layout, name) -> None:
    for stamp in STAMPS[layout]:
        available = layout(stamp)
        found = metrics.resolve_tag(tag, available)
        assert found in available and tags.metric_name(found) == name
        assert metrics.find_tag(tag, available) == found


def test_keras2_epoch_acc_tags_answer_to_acc_and_accuracy() -> None:
    keras2 = [
        "train/epoch_acc",
        "train/epoch_loss",
        "validation/epoch_acc",
        "validation/epoch_loss",
    ]
    assert metrics.resolve_tag("acc", keras2) == "train/epoch_acc"
    assert metrics.resolve_tag("epoch_accuracy", keras2) == "train/epoch_acc"
    assert metrics.resolve_tag("val_accuracy", keras2) == "validation/epoch_acc"
    assert metrics.resolve_tag("val_epoch_acc", keras2) == "validation/epoch_acc"


def test_a_wrong_tag_is_hinted_by_a_name_every_trial_has() -> None:
    with pytest.raises(MetricsError) as info:
        metrics.resolve_tag("val_acuracy", keras_tutorial("20261202-055426"))
    assert info.value.hint == "did you mean 'validation/epoch_accuracy'? use one of the tags above"
    assert "20261202" not in str(info.value) + (info.value.hint or "")


def test_an_ambiguous_tag_offers_names_not_timestamped_paths() -> None:
    available = ["eval/20261202-055609/left/score", "eval/20261202-055609/right/score"]
    with pytest.raises(MetricsError, match="ambiguous: it matches left/score, right/score"):
        metrics.resolve_tag("score", available)
    with pytest.raises(MetricsError) as info:
        metrics.resolve_tag("val_accuracy", gradient_tape("20261202-055609"))
    assert "test/accuracy" in str(info.value) and "20261202" not in str(info.value)


def test_two_writer_folders_with_one_metric_are_ambiguous_and_shown_whole() -> None:
    twice = keras_tutorial("20261202-055426") + keras_tutorial("20261202-061803")
    assert metrics.find_tag("val_acc", twice) is None
    with pytest.raises(MetricsError, match="ambiguous"):
        metrics.resolve_tag("val_acc", twice)
    shown = tags.display_names(twice)
    assert shown["fit/20261202-055426/validation/epoch_accuracy"] == (
        "fit/20261202-055426/validation/epoch_accuracy"
    )
    assert (
        tags.display_names(keras_tutorial("20261202-055426"))[
            "fit/20261202-055426/validation/epoch_accuracy"
        ]
        == "validation/epoch_accuracy"
    )


def test_no_tags_at_all_says_where_flagrun_reads_events() -> None:
    with pytest.raises(MetricsError, match="wrote no scalar tags") as info:
        metrics.resolve_tag("val_acc", [])
    assert "below the run folder" in (info.value.hint or "")
    assert "absolute" in (info.value.hint or "")

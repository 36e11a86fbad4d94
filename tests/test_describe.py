"""Describe mode: the arguments of trainers that do not use flagrun's flags(), found by
running each real trainer (real argparse, absl, click, typer, fire) only up to its
argument parsing, never its training."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flagrun.introspect import declared_arguments
from flagrun.launch import find_trainer

TRAINERS = Path(__file__).parent / "data" / "trainers"


@pytest.fixture(autouse=True)
def marker_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKER_DIR", str(tmp_path))
    return tmp_path


def describe(name: str):
    return declared_arguments(find_trainer(TRAINERS / name, None, ()))


def test_argparse_arguments_without_training(marker_dir):
    declared = describe("argparse_task.py")
    assert (declared.parser, declared.complete, declared.loose) == ("argparse", True, False)
    assert set(declared) == {
        "job-dir", "train-files", "first-layer-size", "learning-rate", "lr", "optimizer",
        "verbose",
    }  # fmt: skip
    assert declared["first-layer-size"].type == "integer"
    assert declared["learning-rate"].type == declared["lr"].type == "numeric"
    assert declared["train-files"].type == "string"
    assert declared.switches == {"verbose"}
    assert declared.required == {"job-dir", "train-files"}
    assert declared.choices["optimizer"] == ("adam", "sgd")
    assert declared.find("first_layer_size") is None  # argparse takes one spelling only
    assert declared.other_spelling("first_layer_size") == "first-layer-size"
    assert not (marker_dir / "trained").exists()


def test_subcommands_make_the_arguments_incomplete():
    declared = describe("subcommands.py")
    assert not declared.complete
    assert {"seed", "epochs"} <= set(declared)


def test_absl_flags():
    declared = describe("absl_task.py")
    assert declared.parser == "absl" and declared.complete
    assert {n: f.type for n, f in declared.items()} == {
        "hidden_units": "integer",
        "learning_rate": "numeric",
        "activation": "string",
        "batch_norm": "boolean",
    }
    assert declared.choices["activation"] == ("relu", "tanh")


def test_click_options():
    declared = describe("click_task.py")
    assert declared.parser == "click"
    assert declared["hidden-units"].type == "integer"
    assert declared["dropout"].type == "numeric"
    assert declared.choices["activation"] == ("relu", "tanh")
    assert "shuffle" in declared.switches


def test_typer_options():
    declared = describe("typer_task.py")
    assert declared.parser == "click"  # typer builds a click command
    assert declared["learning-rate"].type == "numeric"
    assert declared["epochs"].type == "integer"


def test_fire_takes_both_spellings():
    declared = describe("fire_task.py")
    assert declared.parser == "fire" and declared.loose
    assert declared.find("learning-rate") is not None
    assert declared.find("learning_rate").type == "numeric"


def test_a_sys_argv_trainer_is_never_run(marker_dir):
    declared = describe("argv_task.py")
    assert not declared.complete and len(declared) == 0
    assert "no argument parser flagrun knows" in declared.note
    assert not (marker_dir / "trained").exists()


def test_a_trainer_that_does_not_reach_its_parser_in_time_is_stopped(monkeypatch):
    monkeypatch.setenv("FLAGRUN_DESCRIBE_TIMEOUT", "1.5")
    started = time.monotonic()
    declared = describe("slow_to_parse.py")
    assert time.monotonic() - started < 10
    assert not declared.complete
    assert "did not reach its argument parsing in 1.5 s" in declared.note


def test_a_trainer_that_fails_on_import_is_said_once():
    declared = describe("crashes_on_import.py")
    assert not declared.complete
    assert "a_module_that_is_not_installed" in declared.note


@pytest.mark.slow
def test_tf_compat_v1_flags():
    pytest.importorskip("tensorflow")
    declared = describe("tf_flags_task.py")
    assert declared.parser == "absl"
    assert declared["batch_size"].type == "integer"
    assert declared["data_dir"].type == "string"

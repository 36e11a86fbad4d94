"""Automatic Keras capture: real tiny trainings in real child processes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flagrun.metrics import read_scalars
from flagrun.pace import read_pace

TRAIN = """\
import os

import numpy as np
{imports}


class Peek(keras.callbacks.Callback):
    # How many epochs of validation accuracy are on disk while fit still runs.
    def on_epoch_begin(self, epoch, logs=None):
        from flagrun.metrics import read_scalars

        scalars = read_scalars(os.environ["FLAGRUN_RUN_DIR"])
        print("on disk:", len(scalars.get("validation/epoch_accuracy", [])))


x = np.random.rand(200, 4).astype("float32")
y = np.random.randint(0, 2, 200)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=2, batch_size=50, verbose=0, {fit_args})
"""


def child_env(run_dir: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGRUN_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if run_dir is not None:
        env["FLAGRUN_RUN_DIR"] = str(run_dir)
    env.update(extra)
    return env


def run_script(tmp_path: Path, source: str, env: dict[str, str]) -> tuple[Path, str]:
    """Run ``source`` through the child entry point with cwd = a fresh run dir."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    script = tmp_path / "train.py"
    script.write_text(source)
    proc = subprocess.run(
        [sys.executable, "-m", "flagrun._bootstrap", str(script)],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc.stdout


def last_values(run_dir: Path) -> dict[str, float]:
    """Each scalar tag's last value, as flagrun.metrics reads the run folder."""
    return {tag: series[-1].value for tag, series in read_scalars(run_dir).items()}


def python(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


INSTALL_THEN_REPORT = """
import sys
from flagrun import capture
capture.install()
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("keras", "tensorflow", "torch", "tensorboardX"))
hooks = sum(isinstance(f, capture._Finder) for f in sys.meta_path)
capture.install()
print(heavy, hooks, sum(isinstance(f, capture._Finder) for f in sys.meta_path))
"""


def test_install_imports_no_keras_and_hooks_once(tmp_path: Path) -> None:
    assert python(INSTALL_THEN_REPORT, child_env(tmp_path)) == "[] 1 1"


@pytest.mark.parametrize(
    "env",
    [{}, {"FLAGRUN_CAPTURE": "0"}],
    ids=["no-run-dir", "opted-out"],
)
def test_install_is_a_no_op_outside_flagrun_or_when_opted_out(
    tmp_path: Path, env: dict[str, str]
) -> None:
    run_dir = tmp_path if env else None
    assert python(INSTALL_THEN_REPORT, child_env(run_dir, **env)) == "[] 0 0"


# Keras on another backend where TensorFlow is not installed: Keras' own TensorBoard
# callback would fail the first epoch (it writes through tf.summary). The script marks
# TensorFlow missing as Python does for a package that cannot be imported.
KERAS_ON_TORCH_WITHOUT_TF = """\
import sys
sys.modules["tensorflow"] = None
os.environ["KERAS_BACKEND"] = "torch"
import keras
assert keras.backend.backend() == "torch"
"""


@pytest.mark.keras
@pytest.mark.parametrize(
    ("imports", "fit_args"),
    [
        ("import keras", "validation_data=(x, y), callbacks=[Peek()]"),
        ("from tensorflow import keras", "validation_split=0.25, callbacks=[]"),
        (KERAS_ON_TORCH_WITHOUT_TF, "validation_data=(x, y), callbacks=[Peek()]"),
        pytest.param(
            'os.environ["KERAS_BACKEND"] = "jax"\nimport keras',
            "validation_data=(x, y), callbacks=[Peek()]",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("tensorflow") is not None
                or importlib.util.find_spec("jax") is None
                or importlib.util.find_spec("keras") is None,
                reason="needs Keras on JAX where TensorFlow is not installed (as on a GPU image)",
            ),
        ),
    ],
    ids=[
        "keras-validation-data",
        "tf-keras-validation-split",
        "keras-on-torch-without-tf",
        "keras-on-jax-without-tf",
    ],
)
def test_fit_without_tensorboard_writes_run_logs(
    tmp_path: Path, imports: str, fit_args: str
) -> None:
    source = TRAIN.format(imports=imports, fit_args=fit_args)
    run_dir, stdout = run_script(tmp_path, source, child_env(tmp_path / "run"))

    values = last_values(run_dir)
    assert 0.0 <= values["validation/epoch_accuracy"] <= 1.0
    assert "train/epoch_loss" in values
    assert {p.name for p in (run_dir / "logs").iterdir()} == {"train", "validation"}
    if "Peek" in fit_args:  # epoch 0 is readable before epoch 1 starts
        assert stdout.split() == ["on", "disk:", "0", "on", "disk:", "1"]


@pytest.mark.keras
def test_script_own_tensorboard_callback_is_left_alone(tmp_path: Path) -> None:
    source = TRAIN.format(
        imports="import tensorflow as tf\nkeras = tf.keras",
        fit_args="validation_split=0.25, callbacks=[tf.keras.callbacks.TensorBoard('mine')]",
    )
    run_dir, _ = run_script(tmp_path, source, child_env(tmp_path / "run"))

    assert not (run_dir / "logs").exists()
    assert len(list((run_dir / "mine" / "validation").glob("events.out.tfevents.*"))) == 1
    tags = last_values(run_dir)
    assert [tag for tag in tags if tag.endswith("validation/epoch_accuracy")] != []


@pytest.mark.keras
def test_nothing_is_written_without_run_dir(tmp_path: Path) -> None:
    source = TRAIN.format(imports="import keras", fit_args="validation_split=0.25")
    run_dir, _ = run_script(tmp_path, source, child_env(None))

    assert list(run_dir.iterdir()) == []


@pytest.mark.keras
def test_install_after_keras_was_imported_still_captures(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    script = tmp_path / "train.py"
    script.write_text(TRAIN.format(imports="import keras", fit_args="validation_split=0.25"))
    late_install = f"""
        import runpy
        import keras
        from flagrun import capture
        capture.install()
        runpy.run_path({str(script)!r}, run_name="__main__")
    """
    python(late_install, child_env(run_dir))

    assert "validation/epoch_accuracy" in last_values(run_dir)


SLOW_BATCHES = """\
import time

import keras


class SlowBatches(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.4)
"""


@pytest.mark.keras
def test_fit_says_how_far_it_is_through_each_epoch(tmp_path: Path) -> None:
    # 150 training samples in batches of 50: 3 batches an epoch, 2 epochs, 0.4 s a batch.
    source = TRAIN.format(
        imports=SLOW_BATCHES, fit_args="validation_split=0.25, callbacks=[SlowBatches()]"
    )
    run_dir, _ = run_script(tmp_path, source, child_env(tmp_path / "run"))
    reading = read_pace(run_dir)
    assert reading is not None
    assert (reading.steps, reading.epochs) == (3, 2)
    assert reading.epoch in (0, 1) and 1 <= reading.done <= 3

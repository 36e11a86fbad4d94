"""Every common writer under `flagrun tune`: live points reach the pruner, the tag resolves
across trials whose writers chose different timestamped folders, and TensorBoard's
hparams plugin reads back flagrun's experiment with the objective filled.

Each script writes as its framework's public example does (default folders, default
flush settings); only the numbers are made up: x=0.3 is good, x=0.9 hopeless and slow
(10 s an epoch), so only a live point lets the pruner stop it before its end.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flagrun import metrics
from tests.tbview import metric, sessions_by_name, tensorboard_view

pytestmark = pytest.mark.slow

EPOCHS = 6
COMMON = """
import time
from flagrun import flags, flag_numeric
FLAGS = flags(flag_numeric("x", 0.3))
hopeless = FLAGS.x > 0.5


def value(epoch):
    return 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)


def slow_if_hopeless():
    if hopeless:
        time.sleep(10)
"""

TORCH = """
from torch.utils.tensorboard import SummaryWriter
writer = SummaryWriter()  # runs/<Mon DD_HH-MM-SS>_<host>
for epoch in range(EPOCHS):
    writer.add_scalar("Loss/train", 1 - value(epoch), epoch)
    writer.add_scalar("Accuracy/test", value(epoch), epoch)
    slow_if_hopeless()
writer.close()
"""

TENSORBOARDX = """
from tensorboardX import SummaryWriter
writer = SummaryWriter()
writer.add_hparams({"lr": 0.01, "optimizer": "sgd"}, {"hparam/accuracy": 0.5})
for epoch in range(EPOCHS):
    writer.add_scalar("Accuracy/test", value(epoch), epoch)
    slow_if_hopeless()
writer.close()
"""

TF1 = """
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
writer = tf.compat.v1.summary.FileWriter("logs")
for epoch in range(EPOCHS):
    summary = tf.compat.v1.Summary(
        value=[tf.compat.v1.Summary.Value(tag="accuracy", simple_value=value(epoch))])
    writer.add_summary(summary, epoch)
    slow_if_hopeless()
writer.close()
"""

TF2 = """
import datetime
import tensorflow as tf
stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
train_writer = tf.summary.create_file_writer("logs/gradient_tape/" + stamp + "/train")
test_writer = tf.summary.create_file_writer("logs/gradient_tape/" + stamp + "/test")
for epoch in range(EPOCHS):
    with train_writer.as_default():
        tf.summary.scalar("accuracy", value(epoch), step=epoch)
    with test_writer.as_default():
        tf.summary.scalar("accuracy", value(epoch) - 0.05, step=epoch)
    slow_if_hopeless()
"""

KERAS = """
import datetime
import numpy as np
import keras
stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


class Made(keras.callbacks.Callback):  # the made-up numbers in place of the real ones
    def on_epoch_end(self, epoch, logs=None):
        logs["val_accuracy"] = value(epoch)


class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        slow_if_hopeless()


x = np.random.rand(64, 4).astype("float32")
y = np.random.randint(0, 2, 64)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
board = keras.callbacks.TensorBoard(log_dir="logs/fit/" + stamp)
model.fit(x, y, epochs=EPOCHS, validation_data=(x, y), verbose=0,
          callbacks=[Made(), board, Slow()])
"""

LIGHTNING = """
import torch
import lightning as L


class Model(L.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, index):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, index):
        self.log("val_acc", value(self.current_epoch))

    def on_train_epoch_start(self):
        if self.current_epoch > 0:
            slow_if_hopeless()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


x = torch.randn(32, 4)
data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()),
                                   batch_size=16)
trainer = L.Trainer(max_epochs=EPOCHS, enable_progress_bar=False, enable_checkpointing=False,
                    enable_model_summary=False, log_every_n_steps=1, num_sanity_val_steps=0)
trainer.fit(Model(), data, data)
"""

HUGGING_FACE = """
import torch
from transformers import (BertConfig, BertForSequenceClassification, Trainer,
                          TrainerCallback, TrainingArguments)

config = BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=8, num_labels=2)


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"input_ids": torch.tensor([1 + i % 7] * 4), "labels": torch.tensor(i % 2)}


evaluations = []


def compute_metrics(prediction):
    evaluations.append(1)
    return {"accuracy": value(min(len(evaluations), EPOCHS) - 1)}


class Slow(TrainerCallback):
    def on_evaluate(self, args, state, control, **kwargs):
        slow_if_hopeless()


args = TrainingArguments(output_dir="out", num_train_epochs=EPOCHS, per_device_train_batch_size=8,
                         eval_strategy="epoch", logging_strategy="epoch", save_strategy="no",
                         report_to="tensorboard", use_cpu=True, disable_tqdm=True)
trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=Data(),
                  eval_dataset=Data(), compute_metrics=compute_metrics, callbacks=[Slow()])
trainer.train()
print(trainer.evaluate())  # the final evaluate lands on the last epoch's step
"""

# name -> (script body, hyperparameterMetricTag, the metric's name, modules it needs)
WRITERS = {
    "torch": (TORCH, "Accuracy/test", "Accuracy/test", ("torch",)),
    "tensorboardX": (TENSORBOARDX, "Accuracy/test", "Accuracy/test", ("tensorboardX",)),
    "tf1_filewriter": (TF1, "accuracy", "accuracy", ("tensorflow",)),
    "tf2_gradient_tape": (TF2, "accuracy", "train/accuracy", ("tensorflow",)),
    "keras_tutorial": (KERAS, "val_acc", "validation/epoch_accuracy", ("keras",)),
    "lightning": (LIGHTNING, "val_acc", "val_acc", ("lightning",)),
    "hugging_face": (HUGGING_FACE, "eval_accuracy", "eval/accuracy", ("transformers",)),
}


def tuning_yaml(metric_tag: str) -> str:
    """Two trials in a row: x=0.3 fills the pruner's history, then x=0.9 is hopeless."""
    hyper = {
        "goal": "MAXIMIZE",
        "hyperparameterMetricTag": metric_tag,
        "maxTrials": 2,
        "maxParallelTrials": 1,
        "algorithm": "GRID_SEARCH",
        "enableTrialEarlyStopping": True,
        "earlyStopping": {"pruner": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "params": [{"parameterName": "x", "type": "DISCRETE", "discreteValues": [0.3, 0.9]}],
    }
    return json.dumps({"trainingInput": {"hyperparameters": hyper}})


def flagrun(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "flagrun", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_writer_is_pruned_live_and_its_tag_resolves_in_every_trial(
    tmp_path: Path, writer: str
) -> None:
    body, metric_tag, name, modules = WRITERS[writer]
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    script = f"EPOCHS = {EPOCHS}\n" + textwrap.dedent(COMMON) + textwrap.dedent(body)
    (tmp_path / "train.py").write_text(script + '\nprint("finished")\n')
    (tmp_path / "tuning.yml").write_text(tuning_yaml(metric_tag))

    done = flagrun(tmp_path, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already reported" not in done.stderr  # no step reaches Optuna twice
    trials = json.loads(flagrun(tmp_path, "trials", "--format", "json").stdout)["trials"]
    good, hopeless = sorted(trials, key=lambda t: t["hyperparameters"]["x"])

    # The good trial: its objective is the metric's last point, read by name.
    assert good["state"] == "COMPLETE", good
    good_dir = Path(good["runDir"])
    scalars = metrics.read_scalars(good_dir)
    tag = metrics.resolve_tag(metric_tag, scalars)
    assert metrics.metric_name(tag) == name
    assert good["objectiveValue"] == pytest.approx(scalars[tag][-1].value)
    assert (
        good["objectiveValue"] == pytest.approx(1.0 - 0.1 / EPOCHS, abs=1e-6)
        or writer == "tf2_gradient_tape"
    )  # its train/ side: the same curve

    # The hopeless one: pruned on a live point, long before its 60 s of epochs.
    assert hopeless["state"] == "PRUNED", hopeless
    hopeless_dir = Path(hopeless["runDir"])
    assert "finished" not in (hopeless_dir / "output.log").read_text()
    assert hopeless["duration"] < 30, "the prune waited for the writer to close"
    hopeless_scalars = metrics.read_scalars(hopeless_dir)
    hopeless_tag = metrics.resolve_tag(metric_tag, hopeless_scalars)
    assert len(hopeless_scalars[hopeless_tag]) <= 2  # its first epoch or two
    assert hopeless["trainingStep"] == hopeless_scalars[hopeless_tag][-1].step
    assert metrics.metric_name(hopeless_tag) == name
    if writer not in ("tf1_filewriter", "lightning"):  # each run's writer chose its own stamp
        assert hopeless_tag != tag

    # TensorBoard's hparams plugin: flagrun's experiment, one row per trial, objective filled.
    view = tensorboard_view(Path(good["runDir"]).parent.parent)
    infos = {info["name"]: info for info in view["experiment"]["hparamInfos"]}
    assert infos["x"]["domainDiscrete"] == [0.3, 0.9]
    objective = view["experiment"]["metricInfos"][0]
    assert objective["name"] == {"tag": metric_tag} and "MAXIMIZE" in objective["description"]
    names = [info["name"]["tag"] for info in view["experiment"]["metricInfos"]]
    assert not [n for n in names if "20" in n.split("/")[0]]  # no timestamped columns
    sessions = sessions_by_name(view)
    assert set(sessions) == {"trials/1", "trials/2"}
    assert metric(sessions["trials/1"], "", metric_tag) == pytest.approx(good["objectiveValue"])
    assert metric(sessions["trials/2"], "", metric_tag) == pytest.approx(hopeless["objectiveValue"])
    if writer in ("tensorboardX", "lightning"):  # the script's own hparams, beside the flags
        own = {"tensorboardX": {"lr": 0.01, "optimizer": "sgd"}, "lightning": {"lr": 0.05}}
        assert sessions["trials/1"]["hparams"] == {"x": 0.3, **own[writer]}
        assert set(own[writer]) <= set(infos)


def test_a_writer_told_to_write_elsewhere_is_named_with_what_to_do(tmp_path: Path) -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    elsewhere = tmp_path / "tmp" / "mnist"  # as pytorch's examples write to /tmp/mnist
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            f"""
            from flagrun import flags, flag_numeric
            from torch.utils.tensorboard import SummaryWriter
            FLAGS = flags(flag_numeric("x", 0.3))
            writer = SummaryWriter({str(elsewhere)!r})
            writer.add_scalar("Accuracy/test", 0.5, 0)
            writer.close()
            """
        )
    )
    done = flagrun(tmp_path, "train", "train.py")
    assert done.returncode == 0, done.stderr
    assert f"torch's SummaryWriter writes to {elsewhere}, outside the run folder" in done.stderr
    assert "relative log dir" in done.stderr
    assert list(elsewhere.glob("*tfevents*"))  # the script's own wish is kept

    (tmp_path / "tuning.yml").write_text(tuning_yaml("Accuracy/test"))
    done = flagrun(tmp_path, "tune", "train.py", "--config", "tuning.yml")
    assert done.returncode != 0
    assert "the run wrote no scalar tags" in done.stderr
    assert "below the run folder" in done.stderr and "absolute" in done.stderr

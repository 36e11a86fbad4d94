"""The example scripts: mnist_mlp.py trained for real, its datasets, its tuning YAML."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from flagrun import introspect
from flagrun.metrics import read_scalars, resolve_tag
from flagrun.spec import check_against_flags, load_spec
from tests.helpers import load_module

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
MNIST_MLP = SCRIPTS / "mnist_mlp.py"


def load_datasets() -> ModuleType:
    """scripts/datasets.py as a module, without touching sys.path."""
    return load_module(SCRIPTS / "datasets.py")


def run_example(run_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run mnist_mlp.py through the child entry point, as flagrun runs it."""
    run_dir.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGRUN_", "FASHION_"))}
    base.update(TF_CPP_MIN_LOG_LEVEL="3", FLAGRUN_RUN_DIR=str(run_dir), **env)
    return subprocess.run(
        [sys.executable, "-m", "flagrun._bootstrap", str(MNIST_MLP), *args],
        cwd=run_dir,
        env=base,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.keras
def test_mnist_mlp_trains_on_fashion_mnist_and_writes_accuracy(tmp_path: Path) -> None:
    datasets = load_datasets()
    try:
        datasets.load_fashion_mnist()
    except datasets.DatasetNotFound as error:
        pytest.skip(f"no local Fashion-MNIST: {error}")

    run_dir = tmp_path / "run"
    proc = run_example(run_dir, "--dataset", "fashion_mnist", "--samples", "600", "--epochs", "1")

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Test accuracy:" in proc.stdout
    scalars = read_scalars(run_dir)
    accuracy = scalars[resolve_tag("val_acc", scalars)][-1].value
    assert 0.0 <= accuracy <= 1.0
    assert len(scalars[resolve_tag("acc", scalars)]) == 1  # one epoch


def test_missing_fashion_mnist_says_what_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_example(
        tmp_path / "run",
        "--dataset",
        "fashion_mnist",
        FASHION_MNIST_DIR=str(empty),
        FLAGRUN_DATASET_SEARCH_DEFAULTS="0",
    )

    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "apt-get install dataset-fashion-mnist" in last
    assert str(empty) in last and "FASHION_MNIST_DIR" in last


def test_unknown_dataset_is_one_line(tmp_path: Path) -> None:
    proc = run_example(tmp_path / "run", "--dataset", "cifar")

    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "mnist_mlp.py: --dataset 'cifar' is not one of mnist, fashion_mnist"
    )


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(">u1").tobytes())


def test_fashion_mnist_dir_from_env_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 7], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))

    (x_train, y_train), (x_test, y_test) = load_datasets().load_fashion_mnist()

    assert x_train.shape == (2, 28, 28) and (x_train == images).all()
    assert y_test.tolist() == [3, 7]


def test_read_idx_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "not-idx"
    path.write_bytes(b"hello world")

    with pytest.raises(ValueError, match="not an idx file"):
        load_datasets().read_idx(path)


def test_tuning_yml_matches_the_script_flags() -> None:
    spec = load_spec(SCRIPTS / "tuning.yml")

    check_against_flags(spec, introspect.declared_flags(MNIST_MLP))
    assert [p.name for p in spec.params] == ["dropout1", "dropout2"]

"""Fashion-MNIST for this example, read from local idx files with numpy and gzip.

A copy of the search in ``scripts/datasets.py`` (flagrun runs a script from a
snapshot of its own folder, where ``scripts/`` is out of reach). Looked for, in
order: ``$FASHION_MNIST_DIR``, the Debian package ``dataset-fashion-mnist``
(/usr/share/datasets/fashion-mnist), Keras' cache (~/.keras/datasets/fashion-mnist).
``FLAGRUN_DATASET_SEARCH_DEFAULTS=0`` keeps only ``$FASHION_MNIST_DIR``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

FASHION_MNIST_ENV = "FASHION_MNIST_DIR"
SEARCH_DEFAULTS_ENV = "FLAGRUN_DATASET_SEARCH_DEFAULTS"
DEFAULT_DIRS = (
    Path("/usr/share/datasets/fashion-mnist"),
    Path.home() / ".keras" / "datasets" / "fashion-mnist",
)
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CLASS_NAMES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
VALIDATION_SIZE = 10_000  # held out of the 60,000 training images; the test set stays unseen

Split = tuple[np.ndarray, np.ndarray]


class DatasetNotFound(Exception):
    """Fashion-MNIST is in none of the folders looked at; the message says what to install."""


def load_fashion_mnist() -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))`` as uint8 arrays, like keras.datasets."""
    dirs = search_dirs()
    for folder in dirs:
        files = [_idx_path(folder, name) for name in IDX_FILES]
        if all(files):
            x_train, y_train, x_test, y_test = (read_idx(path) for path in files)
            return (x_train, y_train), (x_test, y_test)
    looked = ", ".join(str(d) for d in dirs) or "nowhere"
    raise DatasetNotFound(
        f"Fashion-MNIST not found (looked in {looked}): run `apt-get install "
        f"dataset-fashion-mnist`, or set {FASHION_MNIST_ENV} to a folder holding "
        f"{', '.join(name + '.gz' for name in IDX_FILES)}"
    )


def train_validation_split(x: np.ndarray, y: np.ndarray) -> tuple[Split, Split]:
    """The training images minus the last VALIDATION_SIZE, and those last ones."""
    cut = len(x) - VALIDATION_SIZE
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def scaled(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) as float32 vectors (N, 784) in [0, 1]."""
    return images.reshape(len(images), -1).astype("float32") / 255


def search_dirs() -> list[Path]:
    """The folders to look in, in order."""
    dirs = [Path(os.environ[FASHION_MNIST_ENV])] if os.environ.get(FASHION_MNIST_ENV) else []
    if os.environ.get(SEARCH_DEFAULTS_ENV, "1") == "0":
        return dirs
    return [*dirs, *DEFAULT_DIRS]


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file of unsigned bytes (gzip-compressed when named .gz) into an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[:3] != b"\0\0\x08":
        raise ValueError(f"{path}: not an idx file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None

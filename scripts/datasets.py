"""Local datasets for the example scripts: idx files read with numpy and gzip, no TensorFlow.

Fashion-MNIST is looked for, in order, in ``$FASHION_MNIST_DIR``, in the
Debian package ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist)
and in Keras' cache (~/.keras/datasets/fashion-mnist). Setting
``FLAGRUN_DATASET_SEARCH_DEFAULTS=0`` keeps only ``$FASHION_MNIST_DIR`` (tests
use it to hide the machine's copies).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

FASHION_MNIST_ENV = "FASHION_MNIST_DIR"
SEARCH_DEFAULTS_ENV = "FLAGRUN_DATASET_SEARCH_DEFAULTS"
FASHION_MNIST_DEFAULT_DIRS = (
    Path("/usr/share/datasets/fashion-mnist"),
    Path.home() / ".keras" / "datasets" / "fashion-mnist",
)
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The idx type byte -> numpy dtype (big-endian, as the format stores it).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

Split = tuple[np.ndarray, np.ndarray]


class DatasetNotFound(Exception):
    """A dataset is in none of the places looked at; the message says what to install."""


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (gzip-compressed when its name ends in .gz) into an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an idx file")
    ndim = data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    array = np.frombuffer(data, _IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    return array.reshape(shape)


def fashion_mnist_dirs(search_defaults: bool | None = None) -> list[Path]:
    """The folders to look in for Fashion-MNIST, in order."""
    if search_defaults is None:
        search_defaults = os.environ.get(SEARCH_DEFAULTS_ENV, "1") != "0"
    dirs = [Path(os.environ[FASHION_MNIST_ENV])] if os.environ.get(FASHION_MNIST_ENV) else []
    return [*dirs, *FASHION_MNIST_DEFAULT_DIRS] if search_defaults else dirs


def load_fashion_mnist(search_defaults: bool | None = None) -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))`` as uint8 arrays, like keras.datasets."""
    dirs = fashion_mnist_dirs(search_defaults)
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


def load_mnist() -> tuple[Split, Split]:
    """MNIST through ``keras.datasets.mnist`` (downloaded once into Keras' cache)."""
    from keras.datasets import mnist

    try:
        return mnist.load_data()
    except Exception as error:  # Keras wraps every download failure differently
        raise DatasetNotFound(
            f"MNIST could not be downloaded ({_first_line(error)}): connect to the "
            "internet once so Keras caches ~/.keras/datasets/mnist.npz, or use "
            "--dataset fashion_mnist"
        ) from None


def _idx_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

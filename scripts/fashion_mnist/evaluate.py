"""Evaluate a trained run's model on the 10,000 Fashion-MNIST test images.

    python scripts/fashion_mnist/evaluate.py RUN_DIR

After ``flagrun tune``: ``flagrun collect``, then
``python scripts/fashion_mnist/evaluate.py collected/<job>/trial-N``.
Prints the test accuracy and a per-class precision/recall/f1 report and writes
the report to ``RUN_DIR/classification_report.txt``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPORT_FILE = "classification_report.txt"
MODEL_FILE = "model.keras"


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def class_scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, f1 and support from a confusion matrix (0 where undefined)."""
    hits = np.diag(matrix).astype(float)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> str:
    """A table like scikit-learn's: one row per class, then accuracy, macro and weighted avg."""
    matrix = confusion_matrix(y_true, y_pred, len(class_names))
    precision, recall, f1, support = class_scores(matrix)
    total = int(support.sum())
    width = max(len("weighted avg"), *(len(name) for name in class_names))
    lines = [f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"]
    for i, name in enumerate(class_names):
        lines.append(_row(name, width, precision[i], recall[i], f1[i], support[i]))
    accuracy = np.trace(matrix) / total if total else 0.0
    lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {accuracy:9.3f} {total:9d}")
    scores = (precision, recall, f1)
    macro = [float(np.mean(s)) for s in scores]
    weighted = [float(np.sum(s * support)) / total if total else 0.0 for s in scores]
    lines.append(_row("macro avg", width, *macro, total))
    lines.append(_row("weighted avg", width, *weighted, total))
    return "\n".join(lines) + "\n"


def _row(label: str, width: int, p: float, r: float, f: float, n: int) -> str:
    return f"{label:>{width}} {p:9.3f} {r:9.3f} {f:9.3f} {int(n):9d}"


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    bottom = np.asarray(bottom, dtype=float)
    return np.divide(top, bottom, out=np.zeros_like(bottom), where=bottom > 0)


def main(argv: list[str]) -> int:
    """Evaluate ``argv[0]``'s model.keras; print and save the report."""
    if len(argv) != 1:
        sys.exit("usage: evaluate.py RUN_DIR  (a run folder holding model.keras)")
    run_dir = Path(argv[0])
    model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        sys.exit(f"evaluate.py: no {MODEL_FILE} in {run_dir}: train it with train.py first")

    from data import CLASS_NAMES, DatasetNotFound, load_fashion_mnist, scaled

    try:
        _, (x_test, y_test) = load_fashion_mnist()
    except DatasetNotFound as error:
        sys.exit(f"evaluate.py: {error}")

    import keras  # only now: usage mistakes and a missing dataset answer fast

    model = keras.saving.load_model(model_path)
    y_pred = model.predict(scaled(x_test), batch_size=1024, verbose=0).argmax(axis=1)
    report = classification_report(y_test, y_pred, CLASS_NAMES)
    accuracy = float(np.mean(y_pred == y_test))
    print(f"Test accuracy: {accuracy:.4f}\n")
    print(report, end="")
    (run_dir / REPORT_FILE).write_text(report)
    print(f"\nWritten to {run_dir / REPORT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

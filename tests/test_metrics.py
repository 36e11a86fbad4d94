"""Tests for flagrun.metrics: event files from real writers, damage, tailing, tags."""

from __future__ import annotations

import json
import logging
import math
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from flagrun import metrics
from flagrun.errors import MetricsError
from flagrun.metrics import EventReader, Scalar

# -- helpers: events framed by tensorboard's own RecordWriter --------------------------------


def simple_event(step: int, **values: float) -> bytes:
    summary = summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values.items()]
    )
    return event_pb2.Event(wall_time=100.0 + step, step=step, summary=summary).SerializeToString()


def tensor_event(step: int, tag: str, tensor: tensor_pb2.TensorProto, plugin: str = "") -> bytes:
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if plugin:
        value.metadata.plugin_data.plugin_name = plugin
    summary = summary_pb2.Summary(value=[value])
    return event_pb2.Event(wall_time=1.0, step=step, summary=summary).SerializeToString()


def scalar_tensor(dtype: int, **fields: object) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(), **fields
    )


def framed(payloads: list[bytes]) -> bytes:
    class Sink:
        def __init__(self) -> None:
            self.data = b""

        def write(self, data: bytes) -> None:
            self.data += data

    sink = Sink()
    writer = RecordWriter(sink)
    for payload in payloads:
        writer.write(payload)
    return sink.data


def write_events(path: Path, payloads: list[bytes], mode: str = "wb") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as handle:
        handle.write(framed(payloads))
    return path


def values(series: list[Scalar]) -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in series]


VERSION = event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString()


# -- CRC -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 8, 57, 1024, 1025, 5000])
def test_crc_matches_tensorboards(size: int) -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    buf = np.frombuffer(b"xyz" + data, dtype=np.uint8)
    many = metrics.masked_crc32c_many(buf, np.array([3]), np.array([size]))
    assert int(many[0]) == metrics.masked_crc32c(data) == masked_crc32c(data)


# -- reading -----------------------------------------------------------------------------------


def test_reads_simple_values_with_folder_prefixes(tmp_path: Path) -> None:
    write_events(tmp_path / "logs/events.out.tfevents.1.a", [VERSION, simple_event(0, acc=0.5)])
    write_events(tmp_path / "logs/validation/events.out.tfevents.1.b", [simple_event(1, acc=0.25)])
    write_events(tmp_path / "events.out.tfevents.1.c", [simple_event(2, loss=2.0)])
    write_events(tmp_path / "other/run/events.out.tfevents.1.d", [simple_event(3, x=1.0)])
    scalars = metrics.read_scalars(tmp_path)
    assert values(scalars["acc"]) == [(0, 0.5)]
    assert values(scalars["validation/acc"]) == [(1, 0.25)]
    assert values(scalars["loss"]) == [(2, 2.0)]
    assert values(scalars["other/run/x"]) == [(3, 1.0)]
    assert scalars["acc"][0].wall_time == 100.0


def test_skips_source_snapshot_and_non_event_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flagrun.metrics")
    write_events(tmp_path / "source/logs/events.out.tfevents.old", [simple_event(0, acc=0.1)])
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/events.out.tfevents.empty").write_bytes(b"")
    (tmp_path / "logs/events.out.tfevents.text").write_text("not an event file at all\n" * 5)
    (tmp_path / "logs/notes.txt").write_text("hello")
    assert metrics.read_scalars(tmp_path) == {}
    assert metrics.summarize(tmp_path) == {}
    assert not caplog.records


def test_rank0_tensors_of_every_dtype(tmp_path: Path) -> None:
    half = struct.unpack("<H", struct.pack("<e", 0.5))[0]
    bf16 = struct.unpack("<I", struct.pack("<f", 2.5))[0] >> 16
    payloads = [
        tensor_event(0, "f", scalar_tensor(1, float_val=[0.75]), "scalars"),
        tensor_event(0, "d", scalar_tensor(2, double_val=[0.125]), "scalars"),
        tensor_event(0, "h", scalar_tensor(19, half_val=[half]), "scalars"),
        tensor_event(0, "b", scalar_tensor(14, half_val=[bf16]), "scalars"),
        tensor_event(0, "i", scalar_tensor(3, int_val=[7]), "scalars"),
        tensor_event(0, "q", scalar_tensor(9, int64_val=[1 << 40]), "scalars"),
        tensor_event(0, "c", scalar_tensor(2, tensor_content=struct.pack("<d", 3.5)), "scalars"),
        # later events of a tag carry no metadata (tf.summary v2 writes it once)
        tensor_event(1, "f", scalar_tensor(1, tensor_content=struct.pack("<f", 0.25))),
    ]
    write_events(tmp_path / "logs/train/events.out.tfevents.1", payloads)
    scalars = metrics.read_scalars(tmp_path)
    got = {tag: [p.value for p in series] for tag, series in scalars.items()}
    assert got == {
        "train/f": [0.75, 0.25],
        "train/d": [0.125],
        "train/h": [0.5],
        "train/b": [2.5],
        "train/i": [7.0],
        "train/q": [float(1 << 40)],
        "train/c": [3.5],
    }


def test_ignores_non_scalar_tensors(tmp_path: Path) -> None:
    image = scalar_tensor(7, string_val=[b"png"])  # DT_STRING
    vector = tensor_pb2.TensorProto(
        dtype=1,
        float_val=[1.0, 2.0],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)]
        ),
    )
    payloads = [
        tensor_event(0, "img", image, "images"),
        tensor_event(0, "vec", vector, "scalars"),
        tensor_event(0, "hist", scalar_tensor(1, float_val=[1.0]), "histograms"),
        tensor_event(1, "hist", scalar_tensor(1, float_val=[2.0])),  # plugin remembered
    ]
    write_events(tmp_path / "events.out.tfevents.1", payloads)
    assert metrics.read_scalars(tmp_path) == {}


# -- damage --------------------------------------------------------------------------------


def test_truncated_last_record_is_read_once_complete(tmp_path: Path) -> None:
    data = framed([VERSION, simple_event(0, acc=0.5), simple_event(1, acc=0.6)])
    path = tmp_path / "logs/events.out.tfevents.1"
    path.parent.mkdir()
    cut = len(data) - 7
    path.write_bytes(data[:cut])
    reader = EventReader(tmp_path)
    assert reader.poll()
    assert values(reader.scalars["acc"]) == [(0, 0.5)]
    with open(path, "ab") as handle:
        handle.write(data[cut:])
    assert reader.poll()
    assert values(reader.scalars["acc"]) == [(0, 0.5), (1, pytest.approx(0.6))]


def test_truncated_inside_header(tmp_path: Path) -> None:
    data = framed([simple_event(0, acc=0.5), simple_event(1, acc=0.25)])
    first = len(framed([simple_event(0, acc=0.5)]))
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(data[: first + 5])
    reader = EventReader(tmp_path)
    reader.poll()
    path.write_bytes(data)
    reader.poll()
    assert values(reader.scalars["acc"]) == [(0, 0.5), (1, 0.25)]


def test_bad_data_crc_skips_one_record_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [framed([simple_event(i, acc=i / 10)]) for i in range(5)]
    middle = bytearray(records[2])
    middle[-6] ^= 0xFF  # a data byte
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(b"".join([*records[:2], bytes(middle), *records[3:]]))
    caplog.set_level(logging.WARNING, logger="flagrun.metrics")
    reader = EventReader(tmp_path)
    reader.poll()
    assert [p.step for p in reader.scalars["acc"]] == [0, 1, 3, 4]
    assert len(caplog.records) == 1
    assert "data CRC" in caplog.records[0].getMessage()
    assert str(path) in caplog.records[0].getMessage()


def test_bad_length_crc_resyncs_at_next_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [framed([simple_event(i, acc=i / 10)]) for i in range(5)]
    middle = bytearray(records[2])
    middle[0] ^= 0x40  # the length: now wrong, and its CRC no longer matches
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(b"".join([*records[:2], bytes(middle), *records[3:]]))
    caplog.set_level(logging.WARNING, logger="flagrun.metrics")
    reader = EventReader(tmp_path)
    reader.poll()
    assert [p.step for p in reader.scalars["acc"]] == [0, 1, 3, 4]
    assert len(caplog.records) == 1
    assert "length CRC" in caplog.records[0].getMessage()


def test_huge_corrupt_length_at_the_end_is_not_waited_for(tmp_path: Path) -> None:
    good = framed([simple_event(0, acc=0.5)])
    garbage = struct.pack("<Q", 1 << 40) + b"\0" * 20
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(good + garbage + framed([simple_event(1, acc=0.25)]))
    assert values(metrics.read_scalars(tmp_path)["acc"]) == [(0, 0.5), (1, 0.25)]


# -- incremental ---------------------------------------------------------------------------


def test_appended_file_is_tailed_and_new_files_found(tmp_path: Path) -> None:
    path = write_events(
        tmp_path / "logs/train/events.out.tfevents.1", [VERSION, simple_event(0, loss=1.0)]
    )
    reader = EventReader(tmp_path)
    assert reader.poll()
    assert not reader.poll()  # nothing new
    write_events(path, [simple_event(1, loss=0.5)], mode="ab")
    write_events(tmp_path / "logs/validation/events.out.tfevents.2", [simple_event(1, loss=0.75)])
    assert reader.poll()
    assert reader.tags() == ["train/loss", "validation/loss"]
    assert values(reader.scalars["train/loss"]) == [(0, 1.0), (1, 0.5)]
    assert values(reader.scalars["validation/loss"]) == [(1, 0.75)]
    assert not reader.poll()


# -- summarize and aggregate -----------------------------------------------------------------


def test_summarize_keeps_json_valid(tmp_path: Path) -> None:
    payloads = [
        simple_event(0, a=1.0, b=1.0, c=1.0),
        simple_event(4, a=math.nan, b=math.inf, c=-math.inf),
    ]
    write_events(tmp_path / "logs/events.out.tfevents.1", payloads)
    write_events(tmp_path / "logs/events.out.tfevents.2", [simple_event(2, d=0.5)])
    summary = metrics.summarize(tmp_path)
    assert summary == {
        "a": {"value": "nan", "step": 4},
        "b": {"value": "inf", "step": 4},
        "c": {"value": "-inf", "step": 4},
        "d": {"value": 0.5, "step": 2},
    }
    json.dumps(summary, allow_nan=False)


def series(*points: float) -> list[Scalar]:
    return [Scalar(step * 10, 0.0, v) for step, v in enumerate(points)]


@pytest.mark.parametrize(
    ("points", "how", "expected"),
    [
        ((0.1, 0.9, 0.5), "last", (0.5, 20)),
        ((0.1, 0.9, 0.5), "max", (0.9, 10)),
        ((0.1, 0.9, 0.5), "min", (0.1, 0)),
        ((0.3, 0.9, 0.9), "max", (0.9, 10)),  # first best wins a tie
        ((0.1, math.nan, 0.05), "min", (0.05, 20)),
        ((0.1, math.inf, 0.5), "max", (0.5, 20)),
        ((0.1, -math.inf, 0.5), "min", (0.1, 0)),
    ],
)
def test_aggregate(points: tuple[float, ...], how: str, expected: tuple[float, int]) -> None:
    assert metrics.aggregate(series(*points), how) == expected


def test_aggregate_non_finite_is_reported_not_hidden() -> None:
    value, step = metrics.aggregate(series(0.5, math.nan), "last")
    assert math.isnan(value) and step == 10
    value, step = metrics.aggregate(series(math.nan, math.nan), "max")
    assert math.isnan(value) and step == 10


def test_aggregate_errors() -> None:
    with pytest.raises(MetricsError, match="no values"):
        metrics.aggregate([], "last")
    with pytest.raises(MetricsError, match="aggregation 'mean'") as info:
        metrics.aggregate(series(1.0), "mean")
    assert "last, max, min" in (info.value.hint or "")


# -- tag resolution --------------------------------------------------------------------------

KERAS3 = [
    "train/epoch_accuracy",
    "train/epoch_loss",
    "train/epoch_learning_rate",
    "validation/epoch_accuracy",
    "validation/epoch_loss",
    "validation/evaluation_accuracy_vs_iterations",
]
OLD_KERAS = ["acc", "loss", "val_acc", "val_loss"]
NO_EPOCH = ["train/accuracy", "train/loss", "validation/accuracy", "validation/loss"]


@pytest.mark.parametrize(
    ("tag", "available", "expected"),
    [
        ("acc", KERAS3, "train/epoch_accuracy"),
        ("accuracy", KERAS3, "train/epoch_accuracy"),
        ("val_acc", KERAS3, "validation/epoch_accuracy"),
        ("val_accuracy", KERAS3, "validation/epoch_accuracy"),
        ("loss", KERAS3, "train/epoch_loss"),
        ("val_loss", KERAS3, "validation/epoch_loss"),
        ("learning_rate", KERAS3, "train/epoch_learning_rate"),
        ("epoch_loss", KERAS3, "train/epoch_loss"),
        ("validation/epoch_accuracy", KERAS3, "validation/epoch_accuracy"),
        (
            "evaluation_accuracy_vs_iterations",
            KERAS3,
            "validation/evaluation_accuracy_vs_iterations",
        ),
        ("val_acc", OLD_KERAS, "val_acc"),
        ("val_accuracy", OLD_KERAS, "val_acc"),
        ("accuracy", OLD_KERAS, "acc"),
        ("val_acc", NO_EPOCH, "validation/accuracy"),
        ("loss", NO_EPOCH, "train/loss"),
        (
            "val_acc",
            ["mnist/validation/epoch_accuracy", "mnist/train/epoch_accuracy"],
            "mnist/validation/epoch_accuracy",
        ),
        # an exact tag always wins over an alias
        ("val_acc", [*KERAS3, "val_acc"], "val_acc"),
        ("acc", ["acc", "train/epoch_accuracy"], "acc"),
    ],
)
def test_resolve_tag(tag: str, available: list[str], expected: str) -> None:
    assert metrics.resolve_tag(tag, available) == expected
    assert metrics.find_tag(tag, iter(available)) == expected


def test_unknown_tag_lists_tags_and_closest() -> None:
    with pytest.raises(MetricsError) as info:
        metrics.resolve_tag("val_acuracy_top5", KERAS3)
    message = info.value.message
    assert "'val_acuracy_top5' not found" in message
    assert all(tag in message for tag in KERAS3)
    assert "did you mean" in (info.value.hint or "")
    assert metrics.find_tag("val_acuracy_top5", KERAS3) is None


def test_no_tags_yet() -> None:
    assert metrics.find_tag("val_acc", []) is None
    with pytest.raises(MetricsError, match="no scalar tags") as info:
        metrics.resolve_tag("val_acc", [])
    assert "log_metrics" in (info.value.hint or "")


def test_ambiguous_suffix() -> None:
    available = ["a/score", "b/score"]
    assert metrics.find_tag("score", available) is None
    with pytest.raises(MetricsError, match="ambiguous") as info:
        metrics.resolve_tag("score", available)
    assert "a/score" in (info.value.hint or "")


# -- no TensorFlow ---------------------------------------------------------------------------


def test_reading_never_imports_tensorflow(tmp_path: Path) -> None:
    write_events(tmp_path / "logs/events.out.tfevents.1", [VERSION, simple_event(0, acc=0.5)])
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from flagrun import metrics
        reader = metrics.EventReader(Path({str(tmp_path)!r}))
        reader.poll()
        assert reader.tags() == ["acc"], reader.tags()
        metrics.summarize(Path({str(tmp_path)!r}))
        roots = ("tensorflow", "keras", "optuna", "rich")
        heavy = [m for m in sys.modules if m.split(".")[0] in roots]
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- real TensorFlow / Keras files -------------------------------------------------------------

REAL_WRITERS = """
import sys
from pathlib import Path
import numpy as np
import tensorflow as tf
import keras
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

run = Path(sys.argv[1])
with tf.summary.create_file_writer(str(run / "logs" / "v2")).as_default():
    for step in range(3):
        tf.summary.scalar("score", 0.5 + step, step=step)
        tf.summary.scalar("score64", tf.constant(0.25 * step, tf.float64), step=step)
writer = EventFileWriter(str(run / "logs"))
for step in range(2):
    value = summary_pb2.Summary.Value(tag="v1_acc", simple_value=0.1 * step)
    event = event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value]))
    writer.add_event(event)
writer.close()
x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=2, validation_data=(x, y), verbose=0,
          callbacks=[keras.callbacks.TensorBoard(str(run / "logs"))])
"""


@pytest.mark.keras
def test_reads_real_tf_summary_and_keras_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", REAL_WRITERS, str(tmp_path)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    scalars = metrics.read_scalars(tmp_path)
    assert values(scalars["v2/score"]) == [(0, 0.5), (1, 1.5), (2, 2.5)]
    assert values(scalars["v2/score64"]) == [(0, 0.0), (1, 0.25), (2, 0.5)]
    assert values(scalars["v1_acc"]) == [(0, 0.0), (1, pytest.approx(0.1))]
    assert [p.step for p in scalars["validation/epoch_accuracy"]] == [0, 1]
    assert [p.step for p in scalars["train/epoch_loss"]] == [0, 1]
    tags = list(scalars)
    assert metrics.resolve_tag("val_acc", tags) == "validation/epoch_accuracy"
    assert metrics.resolve_tag("acc", tags) == "train/epoch_accuracy"
    assert metrics.resolve_tag("val_loss", tags) == "validation/epoch_loss"


def test_fast_and_protobuf_decoded_events_keep_their_order(tmp_path: Path) -> None:
    long_tag = "t" * 200  # too long for the fast path
    payloads = [
        simple_event(1, acc=0.1),
        simple_event(2, acc=0.2, loss=1.0),  # two values: decoded by protobuf
        simple_event(3, acc=0.3),
        event_pb2.Event(
            step=4,
            summary=summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag="acc", simple_value=0.4)]
            ),
        ).SerializeToString(),  # wall_time 0 is left out of the wire format
        simple_event(5, **{long_tag: 5.0}),
        simple_event(6, acc=0.6),
    ]
    write_events(tmp_path / "events.out.tfevents.1", payloads)
    scalars = metrics.read_scalars(tmp_path)
    assert [p.step for p in scalars["acc"]] == [1, 2, 3, 4, 6]
    assert values(scalars[long_tag]) == [(5, 5.0)]
    assert values(scalars["loss"]) == [(2, 1.0)]


def test_large_and_negative_steps(tmp_path: Path) -> None:
    steps = [1, 127, 128, 300, 1 << 35, -5]
    write_events(tmp_path / "events.out.tfevents.1", [simple_event(s, x=0.5) for s in steps])
    assert [p.step for p in metrics.read_scalars(tmp_path)["x"]] == steps


def test_bytes_that_are_no_float_raise_no_numpy_warning(tmp_path):
    # A real trial's events (flagrun's writer) where the bytes of a non-scalar record,
    # read as float32 by the vectorised path, form a signalling NaN: numpy warned
    # "invalid value encountered in cast" into the user's terminal.
    import shutil
    import warnings

    shutil.copytree(
        Path(__file__).parent / "data" / "events" / "sigfpe_bytes_logs", tmp_path / "logs"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scalars = metrics.read_scalars(tmp_path)
    assert [point.step for point in scalars["val_acc"]] == [0, 1, 2]

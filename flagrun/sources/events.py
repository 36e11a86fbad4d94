"""TensorBoard event files -> scalar series, without importing TensorFlow.

A run's event files (``*tfevents*`` anywhere below its folder, except the source
snapshot) are TFRecord files: each record is a little-endian uint64 length, the masked
CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data. The data is an
``Event`` protobuf, decoded with the protos bundled in tensorboard (which, unlike
tensorboard's own loaders, never import TensorFlow).

Scalars come in two shapes: ``simple_value`` (tf.summary v1, tensorboardX, torch,
``flagrun.log_metrics``) and rank-0 tensors of the ``scalars`` plugin (tf.summary v2 and
Keras 3's TensorBoard callback, which names the plugin only on a tag's first event).

A tag is prefixed with its event file's folder relative to the run folder, minus a
leading ``logs/`` (flagrun's default log folder): Keras' ``logs/validation/...`` gives
``validation/epoch_accuracy``; files in ``logs/`` or the run folder give bare tags.
flagrun's own HParams files (``*flagrun-hparams*``) are not read.

Damage is tolerated: a truncated last record (still being written) is left for the next
poll; a record whose CRC is wrong is skipped with one warning (per file and offset) and
reading resumes at the next intact record; a file whose first record is not a TFRecord
(empty, text...) is ignored. ``EventReader`` tails every file incrementally, so polling an
unchanged run costs a few ``stat`` calls (microseconds).

Speed without TensorFlow or C extensions: the records of a read are framed in one Python
loop, CRC-checked with numpy for all records at once, and events holding one
``simple_value`` (as torch, tensorboardX and ``log_metrics`` write them) decoded straight
from the wire format with numpy; any other event goes through protobuf
(scripts/bench_events.py measures this).
"""

from __future__ import annotations

import gc
import logging
import os
import struct
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2

from flagrun._crc32c import masked_crc32c, masked_crc32c_many
from flagrun._untrusted import read_regular
from flagrun.sources import Scalar

log = logging.getLogger(__name__)

LOG_DIR = "logs"  # flagrun's default TensorBoard folder inside a run; dropped from tag prefixes
SKIP_DIRS = frozenset({"source", "__pycache__"})  # source/ is the run's code snapshot
# In the names of flagrun's own HParams files (flagrun.hparams): skipped, since their
# scalars repeat the run's metrics under their names.
HPARAMS_MARK = "flagrun-hparams"


# -- CRC-32C -------------------------------------------------------------------------------
# Pure Python for one small record; numpy, one vectorised step per byte position, for the
# many records of a read, so 200,000 scalar events cost a few dozen numpy operations per
# distinct record length. Long records are cut into chunks checksummed in parallel and then
# combined, using the fact that a CRC without its initial and final inversion is linear.


_HEADER = 12  # uint64 length + uint32 masked CRC of the length
_FOOTER = 4
_FRAME = struct.Struct("<QI")
_LENGTH_CRCS: dict[int, int] = {}  # record length -> masked CRC of its 8 bytes


@dataclass(frozen=True, slots=True)
class _Records:
    """Intact records of one read: payload ``i`` is ``data[starts[i]:starts[i]+lengths[i]]``."""

    data: bytes
    buf: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    def payload(self, i: int) -> bytes:
        start = int(self.starts[i])
        return self.data[start : start + int(self.lengths[i])]


class _FileTail:
    """Where reading one event file got to; hands out the complete, intact records."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix
        self.offset = 0
        self.seen: tuple[int, int] | None = None  # (size, mtime_ns) at the last read
        self.warned: set[int] = set()
        self.ignored = False  # not an event file after all

    def read_new(self) -> _Records | None:
        """The records written since the last call (None when there are none)."""
        if self.ignored:
            return None
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        seen = (stat.st_size, stat.st_mtime_ns)
        if seen == self.seen:
            return None
        self.seen = seen
        if stat.st_size < self.offset:  # rewritten from scratch: start over
            self.offset = 0
        if stat.st_size - self.offset < _HEADER + _FOOTER:
            return None
        try:
            data = read_regular(self.path, self.offset)
        except OSError:
            return None
        records, consumed = self._split(data)
        self.offset += consumed
        return records if len(records.starts) else None

    def _split(self, data: bytes) -> tuple[_Records, int]:
        """The complete intact records in ``data`` and how many bytes were settled."""
        buf = np.frombuffer(data, dtype=np.uint8)
        starts: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        pos = 0
        while True:
            found, sizes, end, bad_header = _walk(data, pos)
            intact = self._intact(buf, found, sizes)
            starts.append(found[intact] + _HEADER)
            lengths.append(sizes[intact])
            if not bad_header:
                break
            if self.offset == end == 0:  # no record at all: some other file named *tfevents*
                log.debug("%s is not a TFRecord event file; ignored", self.path)
                self.ignored = True
                break
            pos = end = self._resync(data, end)
            if pos + _HEADER > len(data):
                break
        return _Records(data, buf, np.concatenate(starts), np.concatenate(lengths)), end

    def _intact(self, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Which records' data CRC matches; warns about the others."""
        if not len(starts):
            return np.ones(0, dtype=bool)
        crcs = masked_crc32c_many(buf, starts + _HEADER, lengths)
        stored = buf[(starts + _HEADER + lengths)[:, None] + np.arange(4)].view("<u4").ravel()
        ok = crcs == stored
        for bad in np.flatnonzero(~ok).tolist():
            self._warn(int(starts[bad]), "its data CRC does not match; record skipped")
        return ok

    def _resync(self, data: bytes, pos: int) -> int:
        """After a bad header at ``pos``: the next offset where a valid header starts."""
        self._warn(pos, "its length CRC does not match; skipping to the next intact record")
        for candidate in range(pos + 1, len(data) - _HEADER + 1):
            if _header_ok(data, candidate):
                return candidate
        return max(pos + 1, len(data) - _HEADER + 1)

    def _warn(self, pos: int, what: str) -> None:
        offset = self.offset + pos
        if offset not in self.warned:
            self.warned.add(offset)
            log.warning("event file %s: bad record at byte %d: %s", self.path, offset, what)


def _length_crc(length: int) -> int:
    crc = _LENGTH_CRCS.get(length)
    if crc is None:
        if len(_LENGTH_CRCS) > 100_000:
            _LENGTH_CRCS.clear()
        crc = _LENGTH_CRCS[length] = masked_crc32c(length.to_bytes(8, "little"))
    return crc


def _walk(data: bytes, pos: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Complete records from ``pos`` with a valid length CRC.

    Returns their starts and lengths, where the walk stopped, and whether it stopped at a
    bad header (else at the end of the data or at an incomplete record). The lengths are
    trusted while walking and their CRCs checked afterwards, all at once.
    """
    starts: list[int] = []
    push, unpack, size = starts.append, _FRAME.unpack_from, len(data)  # locals: a hot loop
    while pos + _HEADER <= size:
        end = pos + _HEADER + _FOOTER + unpack(data, pos)[0]
        if end > size:
            break
        push(pos)
        pos = end
    found = np.array(starts, dtype=np.int64)
    lengths = np.diff(found, append=pos) - (_HEADER + _FOOTER)
    bad = _bad_headers(data, found, lengths)
    if len(bad):
        first = int(bad[0])
        return found[:first], lengths[:first], int(found[first]), True
    if pos + _HEADER <= size and not _header_ok(data, pos):
        return found, lengths, pos, True  # a corrupt length pointing past the end
    return found, lengths, pos, False


def _bad_headers(data: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indices of the records whose stored length CRC is wrong."""
    if not len(starts):
        return starts
    unique, inverse = np.unique(lengths, return_inverse=True)
    expected = np.array([_length_crc(n) for n in unique.tolist()], dtype=np.uint32)
    buf = np.frombuffer(data, dtype=np.uint8)
    stored = buf[(starts + 8)[:, None] + np.arange(4)].view("<u4").ravel()
    return np.flatnonzero(expected[inverse.ravel()] != stored)


def _header_ok(data: bytes, pos: int) -> bool:
    length, stored = _FRAME.unpack_from(data, pos)
    return _length_crc(length) == stored


# -- Event decoding ------------------------------------------------------------------------

# TensorProto dtype -> (struct format of one element in tensor_content, repeated field)
_DTYPES = {
    1: ("<f", "float_val"),  # DT_FLOAT
    2: ("<d", "double_val"),  # DT_DOUBLE
    19: ("<e", "half_val"),  # DT_HALF (half_val holds the bit patterns)
    14: ("<H", "half_val"),  # DT_BFLOAT16 (bit patterns too)
    3: ("<i", "int_val"),  # DT_INT32
    4: ("<B", "int_val"),  # DT_UINT8
    5: ("<h", "int_val"),  # DT_INT16
    6: ("<b", "int_val"),  # DT_INT8
    9: ("<q", "int64_val"),  # DT_INT64
    17: ("<H", "int_val"),  # DT_UINT16
    22: ("<I", "uint32_val"),  # DT_UINT32
    23: ("<Q", "uint64_val"),  # DT_UINT64
}
_HALF, _BFLOAT16 = 19, 14


def _tensor_value(tensor: Any) -> float | None:
    """The number in a rank-0 numeric TensorProto, or None."""
    kind = _DTYPES.get(tensor.dtype)
    if kind is None or tensor.tensor_shape.dim:
        return None
    fmt, field = kind
    if tensor.tensor_content:
        if len(tensor.tensor_content) != struct.calcsize(fmt):
            return None
        (raw,) = struct.unpack(fmt, tensor.tensor_content)
    else:
        values = getattr(tensor, field)
        if len(values) != 1:
            return None
        raw = values[0]
        if tensor.dtype == _HALF:
            raw = struct.unpack("<e", struct.pack("<H", raw & 0xFFFF))[0]
    if tensor.dtype == _BFLOAT16:
        raw = struct.unpack("<f", struct.pack("<I", (int(raw) & 0xFFFF) << 16))[0]
    return float(raw)


# -- Fast path: one simple_value per event, decoded for a whole read at once --------------
# Wire layout (fields in number order, as every protobuf serializer writes them):
#   09 <wall_time f64>  10 <step varint>  2a <len> [ 0a <len> [ 0a <len> <tag>  15 <value f32> ] ]
# Any event that differs (step 0 or wall_time 0 omitted, tensors, several values, extra
# fields, long tags) is decoded by protobuf instead.


@dataclass(frozen=True, slots=True)
class _Simple:
    """Events of a read that decoded on the fast path."""

    ok: np.ndarray  # per record: decoded here
    groups: list[tuple[bytes, np.ndarray]]  # tag -> indices of its records, ascending
    steps: np.ndarray
    walls: np.ndarray
    values: np.ndarray


def _simple_values(records: _Records) -> _Simple:
    buf, starts, lengths = records.buf, records.starts, records.lengths
    head = _rows(buf, starts, 20)  # wall_time and the step varint: fixed offsets
    ok = (lengths >= 22) & (head[:, 0] == 0x09) & (head[:, 9] == 0x10)
    step = np.zeros(len(starts), dtype=np.uint64)
    size = np.zeros(len(starts), dtype=np.int64)
    more = ok.copy()
    for k in range(10):
        byte = head[:, 10 + k]
        step |= np.where(more, (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k), 0)
        size += more
        more &= byte >= 0x80
        if not more.any():
            break
    ok &= ~more
    q = starts + 10 + size
    mid = _rows(buf, q, 6).astype(np.int64)  # summary and value headers, the tag length
    tag_len = mid[:, 5]
    ok &= (mid[:, 0] == 0x2A) & (mid[:, 2] == 0x0A) & (mid[:, 4] == 0x0A)
    ok &= (tag_len > 0) & (tag_len <= 118) & (mid[:, 3] == tag_len + 7) & (mid[:, 1] == tag_len + 9)
    ok &= q + 11 + tag_len == starts + lengths
    tail = _rows(buf, q + 6 + tag_len, 5)  # 0x15 and the float
    ok &= tail[:, 0] == 0x15
    walls = np.ascontiguousarray(head[:, 1:9]).view("<f8").ravel()
    with np.errstate(invalid="ignore"):  # rows that are not scalars hold arbitrary bytes
        values = np.ascontiguousarray(tail[:, 1:5]).view("<f4").ravel().astype(np.float64)
    return _Simple(ok, _tag_groups(buf, ok, q + 6, tag_len), step.view(np.int64), walls, values)


def _rows(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``buf[s:s+width]`` for each start, as rows; starts too near the end are moved back
    (their rows are then wrong, but no record that fits the fast layout is that near)."""
    return buf[np.minimum(starts, len(buf) - width)[:, None] + np.arange(width)]


def _tag_groups(
    buf: np.ndarray, ok: np.ndarray, tag_starts: np.ndarray, tag_lens: np.ndarray
) -> list[tuple[bytes, np.ndarray]]:
    """Records grouped by tag bytes; a tag with a trailing NUL is left to protobuf."""
    groups = []
    decoded = np.flatnonzero(ok)
    for length in np.unique(tag_lens[decoded]).tolist():
        members = decoded[tag_lens[decoded] == length]
        names = buf[tag_starts[members][:, None] + np.arange(length)].view(f"S{length}").ravel()
        unique, inverse = np.unique(names, return_inverse=True)
        for k, name in enumerate(unique.tolist()):
            chosen = members[inverse.ravel() == k]
            if len(name) == length:
                groups.append((name, chosen))
            else:
                ok[chosen] = False
    return groups


# -- Reading a run -------------------------------------------------------------------------


class EventReader:
    """Incremental reader of every event file below one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._files: dict[Path, _FileTail] = {}
        self._dirs: dict[Path, tuple[int, list[Path], list[Path]]] = {}
        self._scalars: dict[str, list[Scalar]] = {}
        self._plugins: dict[str, str] = {}  # tag -> plugin name, from its first metadata

    def poll(self) -> bool:
        """Read whatever is new in any event file; True if any new scalar was read."""
        added = False
        for path in self._event_files():
            tail = self._files.get(path)
            if tail is None:
                tail = self._files[path] = _FileTail(path, self._prefix(path))
            with _gc_paused():
                records = tail.read_new()
                if records is not None:
                    added |= self._add_records(records, tail.prefix)
        return added

    @property
    def scalars(self) -> dict[str, list[Scalar]]:
        """Everything read so far: tag -> points in order of arrival."""
        return self._scalars

    def tags(self) -> list[str]:
        """The scalar tags read so far, sorted."""
        return sorted(self._scalars)

    def _prefix(self, path: Path) -> str:
        parts = path.parent.relative_to(self.run_dir).parts
        if parts[:1] == (LOG_DIR,):
            parts = parts[1:]
        return "/".join(parts)

    def _event_files(self) -> list[Path]:
        """Event files below the run folder; a folder is re-listed only when it changed."""
        found: list[Path] = []
        pending = [self.run_dir]
        while pending:
            folder = pending.pop()
            files, subdirs = self._listing(folder)
            found += files
            pending += subdirs
        return sorted(found)

    def _listing(self, folder: Path) -> tuple[list[Path], list[Path]]:
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            return [], []
        cached = self._dirs.get(folder)
        if cached is not None and cached[0] == mtime:
            return cached[1], cached[2]
        files, subdirs = [], []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if not _skipped(folder, entry.name, self.run_dir):
                            subdirs.append(Path(entry.path))
                    elif _is_event_file(entry.name) and entry.is_file():
                        files.append(Path(entry.path))
        except OSError:
            return [], []
        self._dirs[folder] = (mtime, files, subdirs)
        return files, subdirs

    def _add_records(self, records: _Records, prefix: str) -> bool:
        """Decode a read's records, fast path first, keeping each tag's arrival order."""
        simple = _simple_values(records)
        found: dict[str, tuple[list[int], list[Scalar]]] = {}
        for i in np.flatnonzero(~simple.ok).tolist():
            for tag, point in self._decode_event(records.payload(i), prefix):
                indices, points = found.setdefault(tag, ([], []))
                indices.append(i)
                points.append(point)
        for name, members in simple.groups:
            tag = _prefixed(prefix, name.decode("utf-8", "replace"))
            points = _make_scalars(
                simple.steps[members].tolist(),
                simple.walls[members].tolist(),
                simple.values[members].tolist(),
            )
            slow = found.pop(tag, None)
            if slow is not None:
                points = _merged(members, points, *slow)
            self._scalars.setdefault(tag, []).extend(points)
        for tag, (_, points) in found.items():
            self._scalars.setdefault(tag, []).extend(points)
        return bool(simple.groups or found)

    def _decode_event(self, payload: bytes, prefix: str) -> list[tuple[str, Scalar]]:
        """The scalars in one event, decoded by protobuf."""
        try:
            event = event_pb2.Event.FromString(payload)
        except Exception:  # noqa: BLE001 (protobuf's DecodeError; an intact CRC makes it rare)
            return []
        if not event.HasField("summary"):
            return []
        out = []
        for value in event.summary.value:
            tag = _prefixed(prefix, value.tag)
            number = self._number(tag, value)
            if number is not None:
                out.append((tag, Scalar(event.step, event.wall_time, number)))
        return out

    def _number(self, tag: str, value: Any) -> float | None:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            return value.simple_value
        if kind != "tensor":
            return None
        plugin = value.metadata.plugin_data.plugin_name
        if plugin:
            self._plugins.setdefault(tag, plugin)
        # tf.summary v2 names the plugin on a tag's first event only; a tag never named
        # is taken as a scalar when its tensor is a rank-0 number.
        if self._plugins.get(tag, "scalars") != "scalars":
            return None
        return _tensor_value(value.tensor)


def _make_scalars(steps: list[int], walls: list[float], values: list[float]) -> list[Scalar]:
    """``[Scalar(*p) for p in zip(steps, walls, values)]``, three times faster.

    Reading a long run makes hundreds of thousands of points, and the frozen dataclass's
    ``__init__`` is the biggest cost left. So the objects are allocated and their slots
    filled by C loops (``map`` over the slot descriptors, which ``frozen`` does not guard).
    """
    points = list(map(object.__new__, repeat(Scalar, len(steps))))
    slots: Any = Scalar  # its slot descriptors, which type checkers take for instance fields
    columns = ((slots.step, steps), (slots.wall_time, walls), (slots.value, values))
    for field, column in columns:
        deque(map(field.__set__, points, column), maxlen=0)
    return points


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: a big read allocates many objects but makes no cycles, and in a
    process holding TensorFlow each collection walks millions of objects (2x slower read)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _prefixed(prefix: str, tag: str) -> str:
    return f"{prefix}/{tag}" if prefix else tag


def _merged(
    fast: np.ndarray, fast_points: list[Scalar], slow: list[int], slow_points: list[Scalar]
) -> list[Scalar]:
    """Both decoders' points of one tag, back in record order (few come from protobuf)."""
    out: list[Scalar] = []
    done = 0
    for at, point in zip(np.searchsorted(fast, slow).tolist(), slow_points, strict=True):
        out += fast_points[done:at]
        out.append(point)
        done = at
    out += fast_points[done:]
    return out


def _is_event_file(name: str) -> bool:
    return "tfevents" in name and HPARAMS_MARK not in name


def _skipped(parent: Path, name: str, run_dir: Path) -> bool:
    if name.startswith(".") or name == "__pycache__":
        return True
    return name in SKIP_DIRS and parent == run_dir

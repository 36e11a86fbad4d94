"""The one way flagrun writes a record: temp file in the same folder, fsync, rename.

A reader never sees a half-written file, and a crash (even kill -9 or power
loss after the rename) leaves either the old or the new content.

Records (``run.json``, ``job.json``...) replace their own path: a symlink a script
planted in its run folder is replaced, never followed, so a trial cannot make the
tuner overwrite a file elsewhere. A file the *user* names (``report -o``,
``compare --html``, ``collect --dest``) is written the way the shell's ``>`` writes:
through a symlink to its target, and into a FIFO or a device (``/dev/stdout``)
rather than over it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically.

    The temp file's name never contains the target's name, so a reader that
    scans a folder by name (TensorBoard looks for "tfevents") never picks up
    a half-written file.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".flagrun-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise named(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; records are meant to be shared
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise named(exc, path) from None
        raise


def named(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` naming ``path``: the file we were asked to write, not a temp file or nothing
    (a write that fills the disk raises an OSError without a file name)."""
    return type(exc)(exc.errno, exc.strerror, os.fspath(path))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_output(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to a file the user named, as the shell's ``>`` would.

    A symlink is followed (its target is replaced atomically); a FIFO or a device is
    written into; a folder is refused (IsADirectoryError naming it).
    """
    data = text.encode("utf-8")
    try:
        mode: int | None = os.stat(path).st_mode  # through symlinks
    except FileNotFoundError:
        mode = None
    if mode is None or stat.S_ISREG(mode):
        write_bytes_atomic(os.path.realpath(path), data)  # a link's target; a new file
    elif stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    else:
        with open(path, "wb") as handle:
            handle.write(data)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Replace ``path`` with ``data`` as indented JSON, atomically.

    JSON has no NaN or infinity: such floats are written as the strings ``"nan"``,
    ``"inf"`` and ``"-inf"``, so that every reader can parse the file.
    """
    text = json.dumps(_finite(data), indent=2, allow_nan=False, default=str)
    write_text_atomic(path, text + "\n")


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return "nan" if math.isnan(data) else ("inf" if data > 0 else "-inf")
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return data


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json_atomic`."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)

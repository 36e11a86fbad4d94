"""Reading a file in a run folder: the training script's, so possibly anything.

A script may leave a link out of its folder, a FIFO (opening one for reading blocks until
someone writes to it: the tuner would hang) or a device (``/dev/zero`` never ends) where
flagrun expects a file it reads. ``read_regular`` reads only a regular file, not through
a link, and never blocks on opening it.

Stdlib only: ``flagrun.pace`` uses it, which runs inside every training process.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular(path: Path, offset: int = 0, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` from ``offset`` (all of them, or at most
    ``limit``); OSError when it is missing, a link, or not a regular file, or when it holds
    more than ``limit`` bytes from ``offset``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if limit is not None and info.st_size - offset > limit:
            raise OSError(f"{path} holds more than {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as handle:
            handle.seek(offset)
            return handle.read() if limit is None else handle.read(limit)
    finally:
        os.close(fd)

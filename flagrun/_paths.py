"""Paths read from storage stay inside their folder.

A trial's ``runDir`` comes from the trials index or from a shared study's trial
attribute, a job's script name from ``job.json``: whoever can write those files (or
the study's database) could point them anywhere, say at ``../../.ssh``. Every such
path goes through ``inside`` before anything is read from it or copied.
"""

from __future__ import annotations

from pathlib import Path

from flagrun.errors import StoreError


def is_plain_relative(text: object) -> bool:
    """Whether ``text`` is a relative path that does not climb out (``..``) of where it starts."""
    if not isinstance(text, str) or not text or "\0" in text or text.startswith("/"):
        return False
    return ".." not in text.split("/")  # (plain string work: it runs once per index line)


def inside(base: Path, relative: str, what: str) -> Path:
    """``base / relative``, refused with a StoreError when it leads out of ``base``: an
    absolute path, ``..``, or a symlink to elsewhere."""
    path = Path(base) / relative
    if not is_plain_relative(relative) or not path.resolve().is_relative_to(Path(base).resolve()):
        raise StoreError(
            f"{what} {relative!r} leads outside {base}",
            hint="the record was damaged or tampered with; nothing was read from there",
        )
    return path

"""The user-facing error tree.

Every error a user can act on is a ``FlagrunError``: one line saying what is
wrong (naming the file, line, field or flag) and an optional hint saying how
to fix it. The CLI prints it without a traceback and exits with ``exit_code``.
"""

from __future__ import annotations

import errno
import os


class FlagrunError(Exception):
    """Base of every error flagrun reports to a user."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class FlagError(FlagrunError):
    """A flag declaration or value is wrong (bad value, unknown flag, duplicate)."""

    exit_code = 2


class SpecError(FlagrunError):
    """The tuning YAML is wrong; the message names file:line and the field."""

    exit_code = 2


class UsageError(FlagrunError):
    """The command line is wrong (bad run id, unknown job, conflicting options)."""

    exit_code = 2


class RunError(FlagrunError):
    """A run could not be started or finished as asked."""


class StoreError(FlagrunError):
    """The runs/ folder holds something unreadable or missing."""


class MetricsError(FlagrunError):
    """A metric tag is missing or the event files cannot be read."""


# What to do about the operating system errors a user meets: a full disk, a folder
# that is read-only or not ours, a path that is not what it should be.
_OS_HINTS = {
    errno.ENOSPC: "free some space and run it again (`flagrun tune --resume` continues a job)",
    errno.EDQUOT: "free some space and run it again (`flagrun tune --resume` continues a job)",
    errno.EROFS: "choose a folder on a writable filesystem (e.g. --runs-dir, --dest, -o)",
    errno.EACCES: "choose a folder you may write to, or fix its permissions",
    errno.EPERM: "choose a folder you may write to, or fix its permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "give a file name, not a folder",
    errno.EEXIST: "something else already has that name: choose another path",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: the path (or paths) it concerns, then why it failed."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [os.fsdecode(p) for p in (exc.filename, exc.filename2) if isinstance(p, str | bytes)]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def from_os_error(exc: OSError) -> StoreError:
    """The ``OSError`` as a user-facing error: the path, why, and what to do about it."""
    return StoreError(describe_os_error(exc), hint=_OS_HINTS.get(exc.errno or 0))

"""The user-facing error tree.

Every error a user can act on is a ``FlagrunError``: one line saying what is
wrong (naming the file, line, field or flag) and an optional hint saying how
to fix it. The CLI prints it without a traceback and exits with ``exit_code``.
"""

from __future__ import annotations


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

"""Failing with file:line, the field and a hint: the one way a format reports a mistake.

Every format reads its file through a ``Source``; ``Source.fail`` raises the ``SpecError``
whose first line is ``FILE:LINE: FIELD what is wrong`` (``FIELD`` as the user wrote it,
e.g. ``params[1] (dropout2).minValue``) and whose hint says how to fix it.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import NoReturn

from flagrun.errors import SpecError
from flagrun.formats._yaml import Map
from flagrun.spec import closest


class Source:
    """The tuning file being read, for the errors about it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int, field: str, what: str, hint: str | None = None) -> NoReturn:
        """Raise ``SpecError("FILE:LINE: FIELD what", hint)``."""
        raise SpecError(f"{self.path}:{line}: {field} {what}".replace("  ", " "), hint=hint)

    def reject_unknown_keys(
        self,
        mapping: Map,
        allowed: Collection[str],
        where: str,
        what: str,
        fallback: str | None = None,
    ) -> None:
        """Fail on the first key of ``mapping`` not in ``allowed``, naming the closest one."""
        for key, line in mapping.lines.items():
            if key not in allowed:
                near = closest(key, allowed)
                hint = f"did you mean {near}?" if near else fallback
                self.fail(line, f"{where}.{key}", f"is not {what}", hint=hint)

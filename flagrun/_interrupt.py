"""SIGTERM handled the way Ctrl-C is.

``kill PID``, a scheduler's time limit or a container's stop send SIGTERM; Python's
default is to die on the spot, which leaves a run recorded as RUNNING (then shown
CRASHED) and its script SIGKILLed with no grace. Inside ``sigterm_as_interrupt()``,
SIGTERM raises ``Terminated``, a ``KeyboardInterrupt``, so the one path that stops a
run cleanly on Ctrl-C serves both.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (raised only inside ``sigterm_as_interrupt``)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated``; outside the main thread, nothing
    changes (Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def what(exc: BaseException) -> str:
    """How the user stopped us, for a run's reason: ``SIGTERM`` or ``Ctrl-C``."""
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


def exit_status(exc: BaseException) -> int:
    """The shell's status for it: 143 (128 + SIGTERM) or 130 (128 + SIGINT)."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)

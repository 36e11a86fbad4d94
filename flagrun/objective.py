"""The callback style, for scripts that report their objective and check for pruning.

``report(value, step)`` writes the tuning job's objective (the tag named by
``hyperparameterMetricTag``, passed to each trial as ``FLAGRUN_METRIC_TAG``)
like Cloud ML's ``hypertune`` reporter does. ``should_stop()`` says whether
the tuner has pruned this trial, so a script can save its state and exit
cleanly instead of being killed:

    for epoch in range(epochs):
        ...
        flagrun.report(val_acc, step=epoch)
        if flagrun.should_stop():
            break

The tuner prunes a trial by writing ``STOP_FILE`` in its run folder and then
sending SIGTERM to its process group (SIGKILL after a grace period). The first
``should_stop()`` call makes SIGTERM set the flag instead of ending the
process, so a script that asks is given the grace period to finish its step.
Run by hand, ``should_stop()`` is always False. Stdlib only: this runs inside
every trial.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

METRIC_TAG_ENV = "FLAGRUN_METRIC_TAG"
STOP_FILE = ".flagrun-stop"
DEFAULT_TAG = "objective"

_stop_requested = threading.Event()
_handler_installed = False


def report(value: float, step: int | None = None) -> int:
    """Record the objective's value at ``step``; the tuner reads it live for pruning.

    The tag is the tuning job's ``hyperparameterMetricTag``, else ``objective``
    (``flagrun train``, or by hand). Returns the step written.
    """
    from flagrun.writer import log_metrics

    tag = os.environ.get(METRIC_TAG_ENV) or DEFAULT_TAG
    return log_metrics({tag: value}, step=step)


def should_stop() -> bool:
    """True once the tuner has pruned this trial: stop training and exit."""
    _take_over_sigterm()
    if _stop_requested.is_set():
        return True
    run_dir = os.environ.get("FLAGRUN_RUN_DIR")
    if run_dir and (Path(run_dir) / STOP_FILE).exists():
        _stop_requested.set()
    return _stop_requested.is_set()


def _take_over_sigterm() -> None:
    """A script that asks should_stop() gets SIGTERM as a request, not a kill."""
    global _handler_installed
    if _handler_installed or threading.current_thread() is not threading.main_thread():
        return
    if os.environ.get("FLAGRUN_RUN_DIR"):
        signal.signal(signal.SIGTERM, lambda signum, frame: _stop_requested.set())
    _handler_installed = True

"""flagrun: flags for training scripts, isolated recorded runs, and Cloud ML style tuning.

Only the script-side API (``flags`` and friends) is imported eagerly, because
this package is imported inside every training process. Everything else is
loaded on first use.
"""

from __future__ import annotations

from importlib import import_module

from flagrun.errors import FlagrunError
from flagrun.flags import (
    flag_boolean,
    flag_integer,
    flag_numeric,
    flag_string,
    flags,
    run_dir,
    script_dir,
)

__all__ = [
    "FlagrunError",
    "checkpoint_dir",
    "collect",
    "flag_boolean",
    "flag_integer",
    "flag_numeric",
    "flag_string",
    "flags",
    "log_metrics",
    "record_progress",
    "report",
    "run_dir",
    "script_dir",
    "should_stop",
    "train",
    "trials",
    "tune",
    "write_report",
]

# name -> module that defines it; imported on first access (PEP 562).
_LAZY = {
    "checkpoint_dir": "flagrun.checkpoints",
    "log_metrics": "flagrun.writer",
    "record_progress": "flagrun.pace",
    "report": "flagrun.objective",
    "should_stop": "flagrun.objective",
    "train": "flagrun.training",
    "tune": "flagrun.tuner",
    "trials": "flagrun.collect",
    "collect": "flagrun.collect",
    "write_report": "flagrun.htmlreport",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flagrun' has no attribute {name!r}")
    return getattr(import_module(module), name)

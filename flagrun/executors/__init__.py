"""Where a trial's process runs: the seam between the tuning loop and the machines.

The loop starts each trial through an ``Executor`` and then only talks to the
``TrialProcess`` it got back: has it exited, what new metric points did it write,
stop it, how did it end. ``LocalExecutor`` runs trials as child processes of this
one; ``DaskExecutor`` (``executors.dask``) runs them as tasks on a Dask cluster's workers
behind the same two protocols.
"""

from typing import Any

from flagrun.executors.base import Executor, TrialProcess
from flagrun.executors.local import LocalExecutor
from flagrun.sources import MetricSource

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "MetricSource", "TrialProcess"]


def __getattr__(name: str) -> Any:
    # DaskExecutor imports distributed: only when asked for.
    if name == "DaskExecutor":
        from flagrun.executors.dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

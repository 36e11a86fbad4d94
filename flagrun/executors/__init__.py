"""Where a trial's process runs: the seam between the tuning loop and the machines.

The loop starts each trial through an ``Executor`` and then only talks to the
``TrialProcess`` it got back: has it exited, what new metric points did it write,
stop it, how did it end. ``LocalExecutor`` runs trials as child processes of this
one; a cluster executor runs them on other machines behind the same two protocols.
"""

from flagrun.executors.base import Executor, TrialProcess
from flagrun.executors.local import LocalExecutor
from flagrun.sources import MetricSource

__all__ = ["Executor", "LocalExecutor", "MetricSource", "TrialProcess"]

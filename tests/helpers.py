"""What many test modules do the same way: run ``flagrun`` as a real process, write a
project to tune, read back its trials, wait for something to happen.

Plain functions and constants, imported as ``from tests.helpers import ...``; the
fixtures and the marker rules live in ``conftest.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TypeVar

T = TypeVar("T")

PG_URL = os.environ.get("FLAGRUN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

Env = Mapping[str, str | None]


# ---------------------------------------------------------------- processes


def child_env(env: Env | None = None) -> dict[str, str]:
    """This process's environment with ``env`` laid over it; a None value removes a variable."""
    merged = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def flagrun(
    cwd: Path, *args: str, env: Env | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m flagrun ARGS`` in ``cwd``, run to its end; stdout and stderr captured as text.

    ``env`` is laid over this process's environment (a None value removes a variable).
    """
    return subprocess.run(
        [sys.executable, "-m", "flagrun", *args],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_flagrun(
    cwd: Path, *args: str, env: Env | None = None, stderr: int | None = subprocess.STDOUT
) -> subprocess.Popen[str]:
    """``python -m flagrun ARGS`` started in the background in ``cwd``.

    Its stdout is a text pipe; its stderr joins stdout unless ``stderr`` says otherwise
    (None: the test's own stderr).
    """
    return subprocess.Popen(
        [sys.executable, "-m", "flagrun", *args],
        cwd=cwd,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def wait_for(condition: Callable[[], T], timeout: float = 60.0, what: str = "the condition") -> T:
    """Poll ``condition`` until it returns something true, and return that (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- projects and what they hold


def make_project(folder: Path, train: str, tuning: str | None = None) -> Path:
    """``folder`` (made when missing) holding ``train.py`` and, when given, ``tuning.yml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(train)
    if tuning is not None:
        (folder / "tuning.yml").write_text(tuning)
    return folder


def tuning_yaml(**hyperparameters: object) -> str:
    """A Cloud ML tuning YAML (written as JSON, which is YAML) over ``hyperparameters``.

    By default it maximizes ``val_acc`` over one param ``x`` in [0, 1], 8 trials, 2 at a
    time; the keyword arguments replace or add hyperparameters fields. It carries one
    cloud-only field, ``scaleTier``, that flagrun reports as ignored.
    """
    hyper: dict[str, object] = {
        "goal": "MAXIMIZE",
        "hyperparameterMetricTag": "val_acc",
        "maxTrials": 8,
        "maxParallelTrials": 2,
        "params": [
            {
                "parameterName": "x",
                "type": "DOUBLE",
                "minValue": 0.0,
                "maxValue": 1.0,
                "scaleType": "UNIT_LINEAR_SCALE",
            }
        ],
    }
    hyper.update(hyperparameters)
    return json.dumps({"trainingInput": {"scaleTier": "BASIC", "hyperparameters": hyper}})


# A job where early stopping must act: the grid runs in ascending order, so four good
# quick trials fill the median pruner's history, then x=0.9, hopeless from its first
# epoch and slow, is cut short. Each trial writes its pid to the project's pids.txt.
HOPELESS_LAST_TRAIN = textwrap.dedent(
    """
    import os, time
    from flagrun import flags, flag_numeric, flag_string, log_metrics

    FLAGS = flags(flag_numeric("x", 0.3), flag_string("act", "relu"))
    print(f"training with x={FLAGS.x} act={FLAGS.act}")
    with open(os.path.join(os.environ["FLAGRUN_PROJECT_DIR"], "pids.txt"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    hopeless = FLAGS.x > 0.5
    for epoch in range(40):
        acc = 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)
        log_metrics({"val_acc": acc, "loss": 1.0 - acc}, step=epoch)
        if hopeless:
            time.sleep(0.25)
    print("done")
    """
)


def hopeless_last_grid_yaml(*more_params: dict[str, object]) -> str:
    """The tuning YAML of that job: 5 grid trials one at a time, the median pruner on.

    ``more_params`` are searched too; give each one value only, to keep the grid at 5.
    """
    return tuning_yaml(
        maxTrials=5,
        maxParallelTrials=1,
        algorithm="GRID_SEARCH",
        enableTrialEarlyStopping=True,
        earlyStopping={"pruner": "median", "n_startup_trials": 4, "n_warmup_steps": 0},
        params=[
            {
                "parameterName": "x",
                "type": "DISCRETE",
                "discreteValues": [0.3, 0.31, 0.32, 0.33, 0.9],
            },
            *more_params,
        ],
    )


def trials_json(cwd: Path, *which: str, env: Env | None = None) -> dict:
    """``flagrun trials WHICH --format json`` (WHICH: ``latest`` unless given), parsed."""
    done = flagrun(cwd, "trials", *(which or ("latest",)), "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def only_job(project: Path) -> Path:
    """The one tuning job folder in ``project/runs``."""
    jobs = [path for path in (project / "runs").iterdir() if (path / "job.json").is_file()]
    assert len(jobs) == 1, jobs
    return jobs[0]


def only_run(project: Path) -> Path:
    """The one plain run folder (not a job) in ``project/runs``."""
    runs = [path for path in (project / "runs").iterdir() if (path / "run.json").is_file()]
    assert len(runs) == 1, runs
    return runs[0]


# ---------------------------------------------------------------- example scripts


def load_module(path: Path) -> ModuleType:
    """The Python file ``path`` (an example script's) as a module, without touching sys.path."""
    spec = importlib.util.spec_from_file_location(f"flagrun_example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

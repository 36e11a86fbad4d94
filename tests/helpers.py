"""What many test modules do the same way: run ``flagrun`` as a real process.

Plain functions, imported as ``from tests.helpers import ...``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

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

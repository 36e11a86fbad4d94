"""A run's leftover processes: finding them, killing them, and a guard that does it when
the runner itself is killed.

A run's process is the leader of its own session and process group, and every process
it starts inherits ``FLAGRUN_RUN_DIR``. A process belongs to the run when it is in
that group, or when its environment carries that run folder: the second catches the
children that left the group (``setsid``, ``start_new_session``, daemons). Only a
process that both leaves the group and drops the variable escapes (a cgroup per run
would be needed for those).

The runner kills a run's leftovers when its process exits. When the runner dies
first (kill -9), the kernel kills the run's own process (``PR_SET_PDEATHSIG``) but
not what that process started: the guard, a small process of its own session that
the runner feeds the runs it has started, sees its input close and kills their
leftovers. It is this file run as a script (``python -I -S _leftovers.py``): stdlib
only, no flagrun import, so it starts in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

RUN_DIR_ENV = "FLAGRUN_RUN_DIR"
_POLL_SECONDS = 0.02


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of ``pid``; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # zombies are dead for our purposes
        return None
    return fields[0], int(fields[2]), int(fields[19])


def _has_run_dir(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return marker in handle.read().split(b"\0")
    except OSError:
        return False


def find(run_dir: str, pgid: int, since: int = 0) -> list[int]:
    """The live processes of the run in ``run_dir`` whose group leader was ``pgid``.

    ``since``: the run's start time (clock ticks since boot); older processes are not
    looked at, which keeps the scan cheap. Linux only (``/proc``); elsewhere, nothing.
    """
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    marker = f"{RUN_DIR_ENV}={run_dir}".encode()
    me = os.getpid()
    found = []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        stat = _stat(pid)
        if stat is None or stat[2] < since:
            continue
        if stat[1] == pgid or _has_run_dir(pid, marker):
            found.append(pid)
    return found


def kill(run_dir: str, pgid: int, grace: float, since: int = 0) -> list[int]:
    """SIGTERM the run's leftover processes, SIGKILL those still there after ``grace`` s.

    Returns the pids found. Looks again every few milliseconds, so that children forked
    in the meantime get the same treatment. Gives up on processes that outlive SIGKILL
    for a second (another user's, or stuck in the kernel).
    """
    seen: set[int] = set()
    deadline = time.monotonic() + grace
    while True:
        pids = find(run_dir, pgid, since)
        if not pids:
            return sorted(seen)
        late = time.monotonic() - deadline
        for pid in pids:
            if late >= 0 or pid not in seen:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL if late >= 0 else signal.SIGTERM)
        seen.update(pids)
        if late > 1.0:
            return sorted(seen)
        time.sleep(_POLL_SECONDS)


# -- the guard, from the runner's side -----------------------------------------------------


class Guard:
    """The runner's end of the guard process: tell it which runs are live."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def watch(self, run_dir: str, pgid: int, since: int) -> None:
        """The run in ``run_dir`` (group ``pgid``) is live: kill its leftovers if we die."""
        self._send(f"+{pgid}\t{since}\t{run_dir}\n")

    def release(self, run_dir: str) -> None:
        """The run ended and its leftovers are dealt with."""
        self._send(f"-0\t0\t{run_dir}\n")

    def _send(self, line: str) -> None:
        if not sys.platform.startswith("linux") or "\n" in line[:-1]:
            return
        with self._lock:
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._proc = _start_guard()
                assert self._proc.stdin is not None
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except OSError:  # cannot start one, or it was killed: carry on unguarded
                self._proc = None


def _start_guard() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # out of the runner's group: a Ctrl-C or killpg spares it
        close_fds=True,
    )


GUARD = Guard()


# -- the guard itself --------------------------------------------------------------------


def main() -> None:
    """Read ``+pgid<TAB>since<TAB>run_dir`` / ``-0<TAB>0<TAB>run_dir`` lines until the runner
    is gone, then kill the leftovers of the runs it had not released."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    live: dict[str, tuple[int, int]] = {}
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
        head, _, rest = line.partition("\t")
        since, _, run_dir = rest.partition("\t")
        if head.startswith("+") and head[1:].isdigit() and since.isdigit():
            live[run_dir] = (int(head[1:]), int(since))
        elif head.startswith("-"):
            live.pop(run_dir, None)
    for run_dir, (pgid, since) in live.items():
        kill(run_dir, pgid, grace=0, since=since)


if __name__ == "__main__":
    main()

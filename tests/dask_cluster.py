"""A real Dask cluster on this machine for the tests: `dask scheduler` and `dask worker`
processes on 127.0.0.1, each worker in a folder of its own (no shared runs folder)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

START_SECONDS = 30.0


@dataclass
class Worker:
    name: str
    folder: Path
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    scheduler: subprocess.Popen | None = None
    address: str = ""
    workers: dict[str, Worker] = field(default_factory=dict)
    host: str = "127.0.0.1"  # the scheduler's address
    netns: str | None = None  # the network namespace the scheduler runs in

    def start(self, workers: dict[str, dict]) -> Cluster:
        """``workers``: name -> {"nthreads": N, "resources": "GPU=2", "env": {...}}."""
        self.root.mkdir(parents=True, exist_ok=True)
        scheduler_file = self.root / "scheduler.json"
        args = ["--host", self.host, "--port", "0", "--no-dashboard"]
        self.scheduler = self._spawn(
            "scheduler",
            ["distributed.cli.dask_scheduler", *args, "--scheduler-file", str(scheduler_file)],
            self.env,
            netns=self.netns,
        )
        deadline = time.monotonic() + START_SECONDS
        while not _readable_json(scheduler_file):
            assert self.scheduler.poll() is None, (self.root / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.05)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for name, options in workers.items():
            self.add_worker(name, **options)
        if workers:
            self.wait_for(len(workers))
        return self

    def add_worker(
        self,
        name: str,
        nthreads: int = 1,
        resources: str | None = None,
        env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
        host: str = "127.0.0.1",
        netns: str | None = None,
    ) -> Worker:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        args = [self.address, "--name", name, "--nthreads", str(nthreads), "--no-nanny"]
        args += ["--no-dashboard", "--host", host, "--local-directory", str(folder)]
        if resources:
            args += ["--resources", resources]
        proc = self._spawn(
            name,
            [*(launcher or ["distributed.cli.dask_worker"]), *args],
            {**self.env, **(env or {})},
            cwd=folder,
            netns=netns,
        )
        worker = self.workers[name] = Worker(name, folder, proc)
        return worker

    def wait_for(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=START_SECONDS, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=START_SECONDS)

    def kill_worker(self, name: str) -> None:
        worker = self.workers[name]
        os.kill(worker.pid, signal.SIGKILL)
        worker.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM the workers, then the scheduler (a worker whose scheduler went first can
        hang in its goodbye); SIGKILL whatever still runs 10 s later."""
        groups = [[w.proc for w in self.workers.values()]]
        if self.scheduler is not None:
            groups.append([self.scheduler])
        for procs in groups:
            for proc in procs:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _spawn(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        cwd: Path | None = None,
        netns: str | None = None,
    ) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (the child holds it)
        python = [sys.executable] if args[0].endswith(".py") else [sys.executable, "-m"]
        inside = ["ip", "netns", "exec", netns] if netns else []  # `ip` execs: same pid
        try:
            return subprocess.Popen(
                [*inside, *python, *args],
                cwd=cwd or self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )  # fmt: skip
        finally:
            log.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.root.glob("*.log"))
        )


def cluster_env(**extra: str) -> dict[str, str]:
    """The environment of the cluster's processes: this checkout of flagrun importable."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}
    env.pop("FLAGRUN_CLUSTER", None)
    env.update(extra)
    return env


def _readable_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class Netns:
    """Network namespaces on one bridge: each one a "machine" with its own address.

    ``Netns(3)`` makes namespaces ``<prefix>-1..3`` at 10.77.N.2..4/24 on a bridge at
    10.77.N.1 in this namespace (the driver's). Needs root and ``ip``; ``available()``
    says whether this machine allows it.
    """

    def __init__(self, count: int) -> None:
        tag = f"{os.getpid() % 10000:04d}"
        self.prefix = f"fr{tag}"
        self.subnet = f"10.77.{os.getpid() % 200 + 20}"
        self.bridge = f"{self.prefix}br"
        self.names = [f"{self.prefix}-{n}" for n in range(1, count + 1)]

    def address(self, n: int) -> str:
        """The address of namespace ``n`` (1-based)."""
        return f"{self.subnet}.{n + 1}"

    @staticmethod
    def available() -> bool:
        if os.geteuid() != 0 or not shutil.which("ip"):
            return False
        probe = f"frprobe{os.getpid() % 10000}"
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode
        if made != 0:
            return False
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
        return True

    def __enter__(self) -> Netns:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for n, name in enumerate(self.names, start=1):
                veth = f"{self.prefix}v{n}"
                _ip("netns", "add", name)
                _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
                _ip("link", "set", veth, "master", self.bridge, "up")
                inside = ["netns", "exec", name, "ip"]
                _ip(*inside, "addr", "add", f"{self.address(n)}/24", "dev", "eth0")
                _ip(*inside, "link", "set", "eth0", "up")
                _ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)

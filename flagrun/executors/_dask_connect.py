"""Reaching a Dask cluster for ``DaskExecutor``: a client, its workers checked for flagrun.

``distributed`` is imported by the executors' Dask modules only; nothing imports them
unless a cluster is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flagrun.errors import RunError, UsageError

try:
    import distributed
except ImportError:  # pragma: no cover (checked in connect, with an install hint)
    distributed = None  # type: ignore[assignment]

TIMEOUT_ENV = "FLAGRUN_CLUSTER_TIMEOUT"  # seconds to reach the scheduler (default 10)
DEFAULT_TIMEOUT = 10.0
INSTALL_HINT = 'install it: pip install "flagrun[dask]"'


@dataclass
class Connection:
    """A client of a Dask cluster, checked for flagrun on its workers."""

    client: Any
    owned: bool  # flagrun made the client, so flagrun closes it
    address: str
    notes: list[str] = field(default_factory=list)  # said when the job starts

    def close(self) -> None:
        if not self.owned:
            return
        # A client still trying to reach a lost scheduler logs the cancelled attempt with a
        # traceback when closed: the user has been told in one line already.
        quiet = getattr(self.client, "status", "running") != "running"
        with (
            silenced("distributed.client", "distributed.utils", enabled=quiet),
            contextlib.suppress(Exception),
        ):
            self.client.close(timeout=5)


def connect(cluster: Any, timeout: float | None = None) -> Connection:
    """A ``distributed.Client`` for ``cluster``, its workers checked.

    ``cluster``: a scheduler address (``tcp://HOST:8786``, ``HOST:8786``), a ``Client``,
    or a cluster object (``LocalCluster``, ``SSHCluster``, dask-jobqueue's ``SLURMCluster``).
    An unreachable scheduler is a ``RunError`` of one line; so is a worker without flagrun.
    """
    if distributed is None:
        raise UsageError("--cluster needs Dask distributed, which is not installed",
                         hint=INSTALL_HINT)  # fmt: skip
    if timeout is None:
        timeout = float_env(TIMEOUT_ENV, DEFAULT_TIMEOUT)
    if isinstance(cluster, distributed.Client):
        client, owned = cluster, False
    elif isinstance(cluster, str):
        address = cluster.strip()
        if not address:
            raise UsageError("--cluster is empty", hint="give the scheduler's address, e.g. "
                             "tcp://HOST:8786")  # fmt: skip
        try:
            client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise RunError(
                f"cannot reach the Dask scheduler at {address}: {first_line(exc)}",
                hint="start one with `dask scheduler` and workers with `dask worker ADDRESS`, "
                "or fix --cluster / FLAGRUN_CLUSTER",
            ) from None
        except ValueError as exc:  # a malformed address
            raise UsageError(f"--cluster {address!r}: {first_line(exc)}",
                             hint="write it like tcp://HOST:8786") from None  # fmt: skip
        owned = True
    elif hasattr(cluster, "scheduler_address"):
        client, owned = distributed.Client(cluster, set_as_default=False), True
    else:
        raise UsageError(f"cluster={cluster!r} is neither an address nor a Dask client",
                         hint="pass 'tcp://HOST:8786', a distributed.Client or a cluster "
                         "object")  # fmt: skip
    try:
        notes = check_workers(client)
    except (OSError, TimeoutError) as exc:
        if owned:
            client.close()
        raise RunError(f"lost the Dask scheduler at {address_of(client)}: {first_line(exc)}",
                       hint="check that it still runs") from None  # fmt: skip
    except BaseException:
        if owned:
            client.close()
        raise
    return Connection(client, owned, address_of(client), notes)


def check_workers(client: Any) -> list[str]:
    """Fail when a worker cannot run flagrun; notes for workers of another flagrun version."""
    versions = client.get_versions(packages=["flagrun"])
    ours = versions["client"]["packages"].get("flagrun")
    missing, notes = [], []
    for address, info in sorted(versions.get("workers", {}).items()):
        theirs = (info or {}).get("packages", {}).get("flagrun")
        if theirs is None:
            missing.append(address)
        elif ours and theirs != ours:
            notes.append(f"Dask worker {address} has flagrun {theirs}, this driver {ours}")
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if missing[3:] else "")
        raise RunError(f"flagrun is not installed on Dask worker {shown}",
                       hint=f"every worker runs trials with flagrun: {INSTALL_HINT} "
                       "in the workers' environment")  # fmt: skip
    return notes


def address_of(client: Any) -> str:
    return str(client.scheduler.address)


@contextlib.contextmanager
def silenced(*names: str, enabled: bool = True) -> Iterator[None]:
    """Within the block, the named loggers say nothing (when ``enabled``)."""
    loggers = [logging.getLogger(name) for name in names] if enabled else []
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def first_line(exc: BaseException | None) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def float_env(name: str, default: float) -> float:
    """A number from the environment, ``default`` when unset; one line when it is not one."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None

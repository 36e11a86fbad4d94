"""A database storage that rides out dropped connections.

A worker of a shared study talks to PostgreSQL for its whole life. Connections get
dropped under it: the server restarts, a proxy or firewall cuts idle sockets, an
administrator runs ``pg_terminate_backend``. SQLAlchemy's ``pool_pre_ping`` replaces
a connection that died while idle in the pool, but one that dies during an operation
fails that operation, which Optuna raises as ``StorageInternalError`` -- and the
worker would die with a trial RUNNING. ``ReconnectingStorage`` runs each storage
operation again on a fresh connection when the one it used was lost, for up to
``RETRY_SECONDS``, then gives up with one line.

Retrying is safe for reads and for the writes flagrun makes: setting an attribute
again is harmless, and finishing a trial twice is refused by Optuna (the loop treats
that as "already closed").
"""

from __future__ import annotations

import abc
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import optuna

from flagrun.errors import StoreError

RETRY_SECONDS = 30.0
_FIRST_PAUSE = 0.1
_MAX_PAUSE = 2.0

F = TypeVar("F", bound=Callable[..., Any])


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database connection was lost."""
    from sqlalchemy import exc as sa_exc

    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, sa_exc.DBAPIError) and (
            current.connection_invalidated or isinstance(current, sa_exc.OperationalError)
        ):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _retrying(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + RETRY_SECONDS
        pause = _FIRST_PAUSE
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # SQLAlchemy's or Optuna's wrapper of them
                if not connection_lost(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise StoreError(
                        f"lost the connection to the study's database and could not get it "
                        f"back in {RETRY_SECONDS:g} s",
                        hint="check that the database server is up; `flagrun tune --resume` "
                        "(or the same command again) rejoins the study",
                    ) from None
            time.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

    return wrapper  # type: ignore[return-value]


class ReconnectingStorage(optuna.storages.BaseStorage):
    """A storage whose every operation is run again when its connection was lost.

    It wraps the storage Optuna itself would use for a database (``RDBStorage`` behind
    its cache), operation by operation of the storage interface.
    """

    def __init__(self, inner: optuna.storages.BaseStorage) -> None:
        self._inner = inner


def _delegate(name: str) -> Callable[..., Any]:
    def operation(self: ReconnectingStorage, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._inner, name)(*args, **kwargs)

    operation.__name__ = operation.__qualname__ = name
    return _retrying(operation)


def _define_operations() -> None:
    for name, value in vars(optuna.storages.BaseStorage).items():
        if callable(value) and not name.startswith("_"):
            setattr(ReconnectingStorage, name, _delegate(name))
    # Every abstract operation is defined now (mypy cannot see setattr).
    abc.update_abstractmethods(ReconnectingStorage)  # type: ignore[type-abstract]


_define_operations()

"""Where a job's Optuna study lives: the embedded journal file, or a shared database.

One machine needs nothing: the study is ``study.journal`` inside the job folder.
Several workers share one study through a database URL (``--storage`` or
``FLAGRUN_STORAGE``), PostgreSQL being the one to use. A URL may carry a
password (``user:pw@host`` or ``?password=pw``): it is used to connect and
nowhere else. Everything that is shown or stored goes through ``mask``.
"""

from __future__ import annotations

import importlib.util
import re
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import optuna

from flagrun.errors import StoreError, UsageError

ENV_VAR = "FLAGRUN_STORAGE"
MASK = "***"
META_KEY = "flagrun"  # the study user attribute holding the job's spec and settings
CONNECT_TIMEOUT_SECONDS = 10

_SECRET_QUERY_KEYS = {"password", "pass", "pwd", "passwd", "sslpassword"}


def mask(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print or store).

    A URL too malformed to take apart is masked whole but for its scheme.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is what rejects some malformed URLs)
    except ValueError:
        return f"{url.partition('://')[0]}://{MASK}"
    masked = url
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
            masked = masked.replace(f"//{parts.netloc}", f"//{netloc}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
        pairs = [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs]
        masked = masked.replace(f"?{parts.query}", f"?{urlencode(pairs, safe='*')}", 1)
    return masked


def has_secret(url: str) -> bool:
    """True when ``mask`` would hide something in ``url``."""
    return mask(url) != url


def scrub(text: str, url: str) -> str:
    """``text`` with every secret of ``url`` (and the URL itself) replaced by its masked form."""
    text = text.replace(url, mask(url))
    for secret in _secrets(url):
        text = text.replace(secret, MASK)
    return text


def _secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = []
    if parts.password:
        found.append(parts.password)
    for key, value in parse_qsl(parts.query):
        if key.lower() in _SECRET_QUERY_KEYS and value:
            found.append(value)
    return [secret for secret in found if len(secret) >= 2]


def resolve_url(given: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The storage URL from ``--storage``, else ``FLAGRUN_STORAGE``, else None (embedded)."""
    import os

    env = os.environ if environ is None else environ
    url = given or env.get(ENV_VAR) or None
    if url is None:
        return None
    hint = (
        "give one like postgresql://USER@HOST:5432/DB (password in FLAGRUN_STORAGE "
        "or ~/.pgpass, not on the command line)"
    )
    if "://" not in url:
        raise UsageError(f"storage {mask(url)!r} is not a database URL", hint=hint)
    try:
        urlsplit(url).port  # noqa: B018 (raises on a malformed host or port)
    except ValueError as exc:  # the URL itself is not shown: it may hold a password
        raise UsageError(f"storage URL {mask(url)} is malformed: {exc}", hint=hint) from None
    return url


# --------------------------------------------------------------------------- opening


def open_journal(path: Path) -> optuna.storages.BaseStorage:
    """The embedded storage of a one-machine job."""
    _quiet_optuna()
    from optuna.storages.journal import JournalFileBackend

    backend = JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend)


def open_database(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage shared by workers; one clear line when it cannot be reached."""
    _quiet_optuna()
    shown = mask(url)
    driver_url = _with_installed_driver(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if driver_url.startswith("postgresql"):
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": application_name(),  # which backends are this worker's
        }
    try:
        return _rdb_storage(driver_url, kwargs)
    except ImportError:
        raise UsageError(
            f"no database driver for {shown}",
            hint="pip install 'flagrun[postgres]' (psycopg) for postgresql:// URLs",
        ) from None
    except Exception as exc:  # SQLAlchemy's errors, whose text may hold the URL
        raise _storage_error(exc, url) from None


def application_name() -> str:
    """How this worker's connections show in PostgreSQL's ``pg_stat_activity``."""
    import os

    return f"flagrun-{os.getpid()}"


def _rdb_storage(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    """The database storage, run again over a fresh connection when one is lost
    (``flagrun.reconnect``).

    Workers starting together on an empty database race to create Optuna's tables:
    the loser's CREATE fails on the winner's, and a second try finds them made."""
    from sqlalchemy import exc as sa_exc

    from flagrun import _optuna
    from flagrun.reconnect import ReconnectingStorage

    try:
        rdb = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (sa_exc.IntegrityError, sa_exc.ProgrammingError):
        time.sleep(0.5)
        rdb = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    # Its operations are defined when its module loads (mypy cannot see that).
    return ReconnectingStorage(_optuna.cached(rdb))  # type: ignore[abstract]


def _with_installed_driver(url: str) -> str:
    """Plain ``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; fall back to psycopg2."""
    if not url.startswith("postgresql://"):
        return url
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def _storage_error(exc: Exception, url: str) -> StoreError | UsageError:
    from sqlalchemy import exc as sa_exc

    shown = mask(url)
    if isinstance(exc, sa_exc.ArgumentError):
        return UsageError(
            f"storage URL {shown} is not one SQLAlchemy understands ({_first_line(exc, url)})",
            hint="give one like postgresql://USER@HOST:5432/DB",
        )
    return StoreError(
        f"cannot open the study storage {shown}: {_first_line(exc, url)}",
        hint="check that the server runs and the host, port, user and database are right",
    )


def _first_line(exc: Exception, url: str) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    text = re.sub(r"^connection failed:\s*", "", text.strip())
    return scrub(text.splitlines()[0] if text else type(exc).__name__, url)


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


# --------------------------------------------------------------------------- a shared study


def study_meta(study: optuna.Study) -> dict[str, Any] | None:
    """What flagrun stored on a study when it created it (spec, script, artifacts...)."""
    return study.user_attrs.get(META_KEY)


def load_shared_study(url: str, name: str) -> optuna.Study:
    """An existing shared study, for looking at it; a clear error when there is none."""
    storage = open_database(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
        raise UsageError(
            f"no study {name!r} in {mask(url)}",
            hint=f"studies there: {', '.join(names) or 'none'}",
        ) from None
    if study_meta(study) is None:
        raise UsageError(
            f"study {name!r} in {mask(url)} was not made by flagrun tune",
            hint="open it with optuna or optuna-dashboard instead",
        )
    return study

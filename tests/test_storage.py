"""Storage URLs: masking secrets, clear errors, and opening a fresh shared database."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from flagrun import storage
from flagrun.errors import StoreError, UsageError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql://u@h/db?password=pw&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_mask_hides_passwords_in_both_forms(url: str, shown: str) -> None:
    assert storage.mask(url) == shown
    assert storage.has_secret(url) == (url != shown)


def test_scrub_removes_the_password_from_any_text() -> None:
    url = "postgresql://u:hunter22@h/db?password=hunter33"
    text = f"could not connect to {url}: password hunter22 / hunter33 rejected"
    cleaned = storage.scrub(text, url)
    assert "hunter22" not in cleaned and "hunter33" not in cleaned


def test_resolve_url_prefers_the_option_then_the_environment() -> None:
    env = {storage.ENV_VAR: "postgresql://e@h/db"}
    assert storage.resolve_url("postgresql://o@h/db", env) == "postgresql://o@h/db"
    assert storage.resolve_url(None, env) == "postgresql://e@h/db"
    assert storage.resolve_url(None, {}) is None
    with pytest.raises(UsageError, match="is not a database URL"):
        storage.resolve_url("db.example.org", {})


@pytest.mark.parametrize(
    "url", ["postgresql://u:hunter22@[::1/test", "postgresql://u:hunter22@h:99999/db"]
)
def test_a_malformed_url_is_one_line_that_keeps_the_password_hidden(url: str) -> None:
    assert storage.mask(url) == "postgresql://***"
    with pytest.raises(UsageError, match="is malformed") as caught:
        storage.resolve_url(url, {})
    assert "hunter22" not in str(caught.value)
    done = subprocess.run(
        [sys.executable, "-m", "flagrun", "trials", "--storage", url, "--study", "s"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "hunter22" not in done.stderr


def test_unreachable_server_is_one_masked_line() -> None:
    with pytest.raises(StoreError) as caught:
        storage.open_database("postgresql://u:hunter22@127.0.0.1:5999/db")
    message = str(caught.value)
    assert "postgresql://u:***@127.0.0.1:5999/db" in message
    assert "hunter22" not in message
    assert "\n" not in caught.value.message


FRESH_OPEN = """
import sys
from flagrun import storage
storage.open_database(sys.argv[1])
print("ok")
"""


def test_workers_opening_an_empty_database_together_all_succeed(pg: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    admin = psycopg.connect(pg, autocommit=True, connect_timeout=5)
    name = f"flagrun_fresh_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = pg.rsplit("/", 1)[0] + f"/{name}"
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", FRESH_OPEN, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            assert out.strip() == "ok"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()

"""Fixtures shared by several test modules, and the two rules that set markers.

The markers (registered in pyproject.toml):

* ``keras``, ``chromium``, ``benchmark``, ``cluster``: written on the tests that need them;
* ``postgres``: set here on every test that uses the ``pg`` fixture;
* ``slow``: set here on every test carrying one of those five, and written by hand on
  the tests that run for several seconds (whole jobs killed and resumed, say). Every
  other test is in the fast loop; none of them takes more than about 3 s.

``pytest -n 2 -m "not slow"`` is the fast loop: under a minute on two cores.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.helpers import PG_URL

# Started in the background of a shell without job control (`cmd &`), this process has
# SIGINT ignored, and every process it starts inherits that: the Ctrl-C tests' flagrun
# would not see their SIGINT. Restore the default, as a terminal would have it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SLOW_KINDS = ("keras", "postgres", "chromium", "benchmark", "cluster")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "pg" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pg() -> str:
    """The URL of the PostgreSQL server the distributed tests share.

    Skips the test when the server does not answer, or fails it under
    FLAGRUN_REQUIRE_POSTGRES=1 (CI).
    """
    from flagrun import storage

    try:
        storage.open_database(PG_URL)
    except Exception as exc:  # the reason is shown in the skip message
        if os.environ.get("FLAGRUN_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_URL}: {exc}")
    return PG_URL

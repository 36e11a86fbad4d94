"""`flagrun compare`: two real runs of an edited script."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flagrun.compare import compare, to_html, to_text
from tests.helpers import flagrun

SCRIPT = textwrap.dedent(
    """
    from flagrun import flags, flag_integer, flag_numeric, log_metrics
    FLAGS = flags(flag_numeric("lr", 0.1), flag_integer("units", 8))
    log_metrics({"val_acc": FLAGS.lr * 2}, step=0)
    """
)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of one script, the second with an edited source (tests only read them)."""
    tmp_path = tmp_path_factory.mktemp("compare")

    def train(*values: str) -> None:
        done = flagrun(tmp_path, "train", "train.py", *values)
        assert done.returncode == 0, done.stderr

    (tmp_path / "train.py").write_text(SCRIPT)
    train("lr=0.1")
    (tmp_path / "train.py").write_text(SCRIPT + "print('edited')\n")
    train("lr=0.25")
    return tmp_path


def test_compare_shows_flags_metrics_and_source_that_differ(two_runs: Path) -> None:
    runs = sorted(p.name for p in (two_runs / "runs").iterdir())
    comparison = compare(two_runs / "runs", runs[0], runs[1])
    assert comparison.flags == [("lr", 0.1, 0.25)]  # units is the same: not listed
    [(tag, a, b, delta)] = comparison.metrics
    assert (tag, a, b) == ("val_acc", pytest.approx(0.2), pytest.approx(0.5))
    assert delta == pytest.approx(0.3)
    assert list(comparison.source) == ["train.py"]
    assert "+print('edited')" in comparison.unified_diff("train.py")

    text = to_text(comparison)
    assert "lr: 0.1 -> 0.25" in text and "(+0.3)" in text and "+print('edited')" in text
    page = to_html(comparison)
    assert "print(&#x27;edited&#x27;)" in page or "print('edited')" in page
    assert "http" not in page  # self-contained: nothing to fetch


def test_compare_cli_writes_html(two_runs: Path) -> None:
    runs = sorted(p.name for p in (two_runs / "runs").iterdir())
    done = flagrun(two_runs, "compare", runs[0], runs[1], "--html", "cmp.html")
    assert done.returncode == 0, done.stderr
    assert "flags that differ" in done.stdout
    assert (two_runs / "cmp.html").read_text().startswith("<!doctype html>")


def test_compare_an_unknown_run_is_a_usage_error(two_runs: Path) -> None:
    done = flagrun(two_runs, "compare", "latest", "nope")
    assert done.returncode == 2 and "Traceback" not in done.stderr

"""The report rendered by a real headless Chromium, driven through chromedriver with the
W3C WebDriver HTTP protocol (urllib, no selenium): the plots draw, the table sorts, the
console stays clean and nothing is fetched from the network.

Skipped when Chromium or chromedriver is missing, unless FLAGRUN_REQUIRE_CHROMIUM=1
(CI sets it and installs both)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import flagrun, free_port, make_project, tuning_yaml

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    reason = "needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
    if os.environ.get("FLAGRUN_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"FLAGRUN_REQUIRE_CHROMIUM=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

pytestmark = pytest.mark.chromium

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference

TRAIN = textwrap.dedent(
    """
    from flagrun import flags, flag_integer, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("lr", 0.01), flag_integer("units", 32))
    for epoch in range(12):
        acc = 0.9 - (FLAGS.lr - 0.05) ** 2 * 100 - 1 / (FLAGS.units + epoch + 1)
        log_metrics({"val_acc": acc, "loss": 1 - acc}, step=epoch)
    """
)

TUNING = tuning_yaml(
    maxTrials=6,
    maxParallelTrials=2,
    algorithm="RANDOM_SEARCH",
    seed=3,
    params=[
        {
            "parameterName": "lr",
            "type": "DOUBLE",
            "minValue": 0.001,
            "maxValue": 0.1,
            "scaleType": "UNIT_LOG_SCALE",
        },
        {"parameterName": "units", "type": "INTEGER", "minValue": 8, "maxValue": 64},
    ],
)


class WebDriver:
    """A W3C WebDriver session over plain HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1200,1000",
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }
        reply = self.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"/session/{reply['sessionId']}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None

    def session_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call(method, self.session + path, body)

    def open(self, url: str) -> None:
        self.session_call("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        return self.session_call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> str:
        found = self.session_call("POST", "/element", {"using": "css selector", "value": css})
        return found[ELEMENT]

    def click(self, css: str) -> None:
        self.session_call("POST", f"/element/{self.find(css)}/click", {})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.session_call("GET", "/screenshot"))

    def logs(self, kind: str) -> list[dict[str, Any]]:
        return self.session_call("POST", "/se/log", {"type": kind})

    def quit(self) -> None:
        self.session_call("DELETE", "")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    port = free_port()
    driver = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/status", timeout=5) as response:
                    if json.load(response)["value"]["ready"]:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "chromedriver did not start"
            time.sleep(0.1)
        session = WebDriver(base)
        try:
            yield session
        finally:
            session.quit()
    finally:
        driver.terminate()
        driver.wait(timeout=10)


@pytest.fixture(scope="module")
def job_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("browser"), TRAIN, TUNING)
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    done = flagrun(project, "report")
    assert done.returncode == 0, done.stderr
    return project / done.stdout.strip()


# What each figure drew: its SVG marks that carry data, and the size of the SVG on screen.
DRAWN = """
return Array.from(document.querySelectorAll("figure.plot")).map(function (figure) {
  var svg = figure.querySelector("svg");
  var box = svg.getBoundingClientRect();
  var marks = Array.from(svg.querySelectorAll("path, circle, rect, polyline"));
  return {
    id: figure.id,
    width: box.width,
    height: box.height,
    data: marks.filter(function (m) {
      return m.hasAttribute("data-trial") || m.hasAttribute("data-param")
        || m.hasAttribute("data-points");
    }).length,
    painted: marks.filter(function (m) {
      var b = m.getBBox();
      return b.width > 0 || b.height > 0;
    }).length
  };
});
"""


def assert_clean_and_offline(browser: WebDriver) -> None:
    errors = [entry for entry in browser.logs("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert browser.run("return performance.getEntriesByType('resource').length") == 0
    requested = []
    for entry in browser.logs("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    assert all(url.startswith("file://") for url in requested), requested


def test_job_report_draws_every_plot_without_errors_or_network(
    browser: WebDriver, job_report: Path
) -> None:
    browser.logs("browser")  # start from empty logs
    browser.logs("performance")
    browser.open(job_report.resolve().as_uri())
    assert browser.run("return document.title").startswith("flagrun report: job ")
    figures = {f["id"]: f for f in browser.run(DRAWN)}
    assert set(figures) == {"history", "parallel", "importances", "curves"}
    expected = {"history": 6, "parallel": 6, "importances": 2, "curves": 6}
    for name, count in expected.items():
        assert figures[name]["data"] == count, figures[name]
        assert figures[name]["painted"] >= count, figures[name]
        assert figures[name]["width"] > 600 and figures[name]["height"] > 50
    png = browser.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert_clean_and_offline(browser)


# The texts of one column of the trials table, top to bottom.
COLUMN = """
var col = arguments[0];
return Array.from(document.querySelectorAll("#trials tbody tr")).map(function (row) {
  return row.cells[col].textContent;
});
"""


def test_clicking_a_header_sorts_the_trials_table(browser: WebDriver, job_report: Path) -> None:
    browser.open(job_report.resolve().as_uri())
    ids = [int(v) for v in browser.run(COLUMN, 0)]
    assert ids == sorted(ids)
    values = [float(v) for v in browser.run(COLUMN, 2)]  # val_acc
    browser.click("#trials th:nth-child(3)")
    assert [float(v) for v in browser.run(COLUMN, 2)] == sorted(values)
    browser.click("#trials th:nth-child(3)")
    assert [float(v) for v in browser.run(COLUMN, 2)] == sorted(values, reverse=True)
    browser.click("#trials th:nth-child(2)")  # text column: state
    states = browser.run(COLUMN, 1)
    assert states == sorted(states)
    assert_clean_and_offline(browser)


def test_run_report_draws_a_chart_per_tag(
    browser: WebDriver, job_report: Path, tmp_path: Path
) -> None:
    project = job_report.parent.parent.parent
    job = job_report.parent.name
    output = tmp_path / "trial.html"
    done = flagrun(project, "report", f"{job}/trials/1", "-o", str(output))
    assert done.returncode == 0, done.stderr
    browser.open(output.resolve().as_uri())
    figures = browser.run(DRAWN)
    assert [f["id"] for f in figures] == ["metric-0", "metric-1"]
    assert all(f["data"] == 1 and f["painted"] >= 1 for f in figures)
    assert browser.run("return document.querySelectorAll('pre.source').length") >= 1
    assert_clean_and_offline(browser)

"""The report as people read it: the figures' labels and axes, the Server curve drawn from the
stored search trials, and `snakemake --report`'s HTML opened in headless Chromium (Debian's
`chromium`, driven by Playwright) on the study with every scenario (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, sync_playwright

from reproscope.report.plots import (
    CONFIG_KEYS,
    config_labels,
    log_if_decades,
    server_trials,
)
from reproscope.runtime import layout
from tests.test_workflow import snakemake

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_DIR = "REPROSCOPE_SCREENSHOT_DIR"
IMAGE = re.compile(r"\.(png|svg|jpe?g)$")

# --------------------------------------------------------------------------- figures


def _configs(*rows: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=CONFIG_KEYS)


def test_labels_name_only_what_differs_and_no_framework_twice() -> None:
    frame = _configs(
        ("effnet", "pytorch", "torch-2.13", "cpu", "local"),
        ("effnet", "onnxruntime", "onnxruntime-1.30", "cpu", "local"),
        ("effnet", "onnxruntime", "onnxruntime-1.23", "cpu", "local"),
    )
    labels, common = config_labels(frame, CONFIG_KEYS)
    assert sorted(labels.values()) == ["onnxruntime-1.23", "onnxruntime-1.30", "torch-2.13"]
    assert common == "effnet / cpu / local"


def test_labels_keep_a_framework_the_environment_does_not_name() -> None:
    frame = _configs(
        ("tiny", "pytorch", "host", "cpu", "a"),
        ("tiny", "onnxruntime", "host", "cpu", "b"),
    )
    labels, common = config_labels(frame, CONFIG_KEYS)
    assert labels == {
        ("tiny", "pytorch", "host", "cpu", "a"): "pytorch / a",
        ("tiny", "onnxruntime", "host", "cpu", "b"): "onnxruntime / b",
    }
    assert common == "tiny / host / cpu"
    alone, nothing = config_labels(frame.iloc[:1], CONFIG_KEYS)
    assert list(alone.values()) == ["tiny / pytorch / host / cpu / a"] and nothing == ""


def test_log_axis_only_where_values_span_a_decade() -> None:
    fig, (wide, narrow) = plt.subplots(1, 2)
    wide.plot([1, 2], [0.5, 20.0])
    narrow.plot([1, 2], [5.0, 20.0])
    for ax in (wide, narrow):
        log_if_decades(ax)
    assert (wide.get_yscale(), narrow.get_yscale()) == ("log", "linear")
    plt.close(fig)


def _points(root: Path) -> list[dict]:
    timing = root / "results" / "timing"
    records = [json.loads(p.read_text()) for p in sorted(timing.rglob("*_r[0-9]*.json"))]
    return [r for r in records if "scenario" in r.get("job", {})]


def test_server_curve_is_drawn_from_the_stored_trials(performance_study: Path) -> None:
    records = _points(performance_study)
    servers = [r for r in records if r["job"]["scenario"] == "Server"]
    assert len(servers) == 4  # 2 manifests x 2 rounds
    trials = server_trials(records)
    assert len(trials) == sum(len(r["metrics"]["server_trials"]) for r in servers)
    assert set(trials["framework"]) == {"pytorch", "onnxruntime"}
    assert set(trials["repeat"]) == {0, 1}
    assert (trials["target_qps"] > 0).all() and trials["p99_ms"].notna().all()
    assert set(trials["validity"]) <= {"VALID", "INVALID"} and "VALID" in set(trials["validity"])
    assert set(trials["latency_bound_ms"]) == {20.0}
    assert set(trials["latency_percentile"]) == {0.9}
    plot = performance_study / layout.server_latency_plot()
    assert plot.stat().st_size > 10_000


# --------------------------------------------------------------------------- the report


@pytest.fixture(scope="module")
def report(performance_study: Path) -> Path:
    path = performance_study / "report.html"
    result = snakemake(performance_study, "--report", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    return path


def _problems_of(page: Page, problems: list[str]) -> None:
    """Console errors, uncaught exceptions and any request leaving the report's file."""

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def outside(route: Route) -> None:
        problems.append(f"request outside the report: {route.request.url}")
        route.abort()

    page.on("console", console)
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.route(re.compile(r"^(?!(file|data|blob):)"), outside)


# The image a result's eye button shows, once decoded: [complete, naturalWidth]. (The report's
# logo is an image too: the one shown is found by its data.)
SHOWN_IMAGE = """(path) => {
    const img = [...document.images].find((i) => i.getAttribute("src") === results[path].data_uri);
    return img && img.complete ? [img.complete, img.naturalWidth] : null;
}"""
# Every image of the page that finished loading without pixels: the start of its source.
BROKEN_IMAGES = """() => [...document.images]
    .filter((i) => i.complete && i.naturalWidth === 0)
    .map((i) => (i.getAttribute("src") || "").slice(0, 80))"""


def _show_image(page: Page, path: str) -> tuple[bool, int]:
    """Click the eye of an image result in the open category; (loaded, natural width)."""
    page.locator("tr", has_text=path).locator("a[iconname=eye]").click()
    complete, width = page.wait_for_function(SHOWN_IMAGE, arg=path).json_value()
    return complete, width


def test_report_opens_in_a_browser(report: Path, tmp_path: Path) -> None:
    assert CHROMIUM.is_file(), f"{CHROMIUM} missing: apt-get install -y chromium (.ci/run does)"
    problems: list[str] = []
    seen_images: dict[str, str] = {}  # image result -> its category
    screenshot = tmp_path / "report_comparisons.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        _problems_of(page, problems)
        page.goto(report.as_uri())
        categories = page.evaluate("Object.keys(categories)")
        results = page.evaluate("Object.keys(results)")
        assert {"Performance", "Accuracy", "Tables"} <= set(categories)
        assert layout.server_latency_plot() in results
        for category in categories:
            page.goto(report.as_uri())
            page.get_by_text(category, exact=True).click()
            tables = page.locator("table")
            assert tables.count() >= 1, category
            for i in range(tables.count()):
                if not tables.nth(i).locator("tbody tr").count():
                    problems.append(f"empty table in {category}")
            listed = [p for p in results if page.locator("tr", has_text=p).count()]
            for path in filter(IMAGE.search, listed):
                complete, width = _show_image(page, path)
                if not (complete and width > 0):
                    problems.append(f"image not loaded: {path} (naturalWidth {width})")
                seen_images[path] = category
            problems += [f"image not loaded: {src}" for src in page.evaluate(BROKEN_IMAGES)]
        assert set(seen_images) == set(filter(IMAGE.search, results))
        # The comparisons page: the forest plot of every comparison, as a reader opens it.
        comparisons = [p for p in seen_images if Path(p).name.startswith("comparisons")]
        assert comparisons, sorted(seen_images)
        page.goto(report.as_uri())
        page.get_by_text(seen_images[comparisons[0]], exact=True).click()
        _show_image(page, comparisons[0])
        page.screenshot(path=screenshot)
        browser.close()
    assert not problems, "\n".join(problems)
    assert screenshot.stat().st_size > 20_000
    if os.environ.get(SCREENSHOT_DIR):
        target = Path(os.environ[SCREENSHOT_DIR])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / screenshot.name)

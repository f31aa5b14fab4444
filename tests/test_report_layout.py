"""The HTML report's layout, measured in headless Chromium: at 1280 px the page does not
overflow sideways and the results table's last column ("Error / note") is fully visible.

Chromium runs as a subprocess on a copy of each report into which a small script is
injected; on ``load`` the script measures the layout and writes the measurements as JSON
into an element, which the test reads back from the DOM that ``--dump-dom`` prints. No
Python dependency is needed beyond the browser binary.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from splitlab import Analyzer, Metric
from splitlab.analyzer.demo import generate_demo_data
from splitlab.analyzer.readout import Readout
from splitlab.analyzer.report import write_report
from splitlab.errors import DegenerateDataWarning

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTHS = (1280, 1400)
TIMEOUT_SECONDS = 60
MEASUREMENTS_ID = "splitlab-layout-measurements"
# a cell edge may sit a fraction of a pixel past the viewport through rounding
TOLERANCE_PX = 1.0
DEMO_METRICS = [
    Metric("converted", kind="proportion"),
    Metric("revenue", covariate="pre_revenue"),
    Metric("clicks_per_session", kind="ratio", numerator="clicks", denominator="sessions"),
]
# a quantile metric is not post-stratified: under strata= every row of it errors out
FAILING_METRIC = Metric("p90 revenue", kind="quantile", quantile=0.9, column="revenue")
LONG_ERROR = (
    "InvalidArgumentError: metric 'revenue_per_active_subscriber_after_trial': the column "
    "'warehouse.analytics.subscriptions_daily_snapshot_with_trial_conversions_v3' has no "
    "non-missing values in variant 'v2-personalized-with-a-rather-long-label'; check the "
    "join of the exposure log with the metric table and the date filter of the source query"
)

MEASURE = """
<script>
window.addEventListener("load", () => {
  const viewport = document.documentElement.clientWidth;
  const box = (element) => element.getBoundingClientRect();
  const describe = (cell) => ({
    text: cell.textContent.trim().slice(0, 60), left: box(cell).left, right: box(cell).right,
  });
  const cells = [...document.querySelectorAll("th, td")];
  const lastColumn = [...document.querySelectorAll("table.results tr > :last-child")];
  // a number is one text node of a number cell: count the lines its boxes sit on
  const wrappedNumbers = [];
  for (const cell of document.querySelectorAll("td.num")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
      if (tops.size > 1) wrappedNumbers.push(node.textContent.trim());
    }
  }
  const measurements = {
    innerWidth: window.innerWidth,
    clientWidth: viewport,
    scrollWidth: document.documentElement.scrollWidth,
    resultsTables: document.querySelectorAll("table.results").length,
    tables: [...document.querySelectorAll("table")].map((table) => box(table).right),
    cellsPastViewport: cells.filter((cell) => box(cell).right > viewport).map(describe),
    lastColumn: lastColumn.map((cell) => ({
      ...describe(cell), clipped: cell.scrollWidth > cell.clientWidth + 1,
    })),
    wrappedNumbers: wrappedNumbers,
  };
  const output = document.createElement("pre");
  output.id = "MEASUREMENTS_ID";
  output.textContent = JSON.stringify(measurements);
  document.body.appendChild(output);
});
</script>
""".replace("MEASUREMENTS_ID", MEASUREMENTS_ID)


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    found = find_browser()
    if found is None:
        message = f"Chromium not installed ({' / '.join(BROWSERS)}): apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI installs it in .ci/run, so it must be there")
        pytest.skip(message)
    return found


def measure(browser: str, report: Path, width: int, workspace: Path) -> dict:
    """Lay ``report`` out in a ``width`` px wide window and return the measurements."""
    workspace.mkdir()
    copy = workspace / "measured.html"
    text = report.read_text(encoding="utf-8")
    copy.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # Debian's chromium refuses to run as root otherwise
        "--disable-gpu",
        # without these it keeps trying to reach the network, which CI has not
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={workspace / 'profile'}",
        f"--window-size={width},900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        copy.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    found = re.search(f'<pre id="{MEASUREMENTS_ID}">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no measurements from {browser} (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """The demo report and the widest realistic results tables: Bayesian columns, adjusted
    p-values, metrics whose rows all error out, long notes and a lower-is-better hint."""
    folder = tmp_path_factory.mktemp("layout")
    paths = generate_demo_data(folder / "data", units=20_000, seed=3)
    written = {}
    demo = Analyzer(paths, unit=None, date="exposed_at")
    written["demo"] = demo.report(
        folder / "demo.html", DEMO_METRICS, title="splitlab demo: four experiments"
    )
    analyzer = Analyzer(paths, unit=None)
    worst = [*DEMO_METRICS, FAILING_METRIC]
    with pytest.warns(DegenerateDataWarning, match="have no result"):
        bayes = analyzer.readout(worst, method="bayes", strata="country")
    written["bayes"] = write_report(bayes, folder / "bayes.html")
    with pytest.warns(DegenerateDataWarning, match="have no result"):
        adjusted = analyzer.readout(worst, correction="holm", strata="country")
    written["adjusted"] = write_report(adjusted, folder / "adjusted.html")
    results = bayes.results.copy()
    failing = results["metric"] == FAILING_METRIC.name
    results.loc[failing, "error"] = LONG_ERROR
    results["lower_is_better"] = results["metric"] == "clicks_per_session"
    long_notes = Readout(results, bayes.srm, controls=bayes.controls)
    written["long notes"] = write_report(long_notes, folder / "long-notes.html")
    return written


@pytest.fixture(scope="module")
def layouts(browser, reports, tmp_path_factory) -> dict[tuple[str, int], dict]:
    """Every report at every width, measured in parallel: one browser per layout."""
    root = tmp_path_factory.mktemp("browser")
    jobs = {
        (name, width): (path, width, root / f"{index}-{width}")
        for index, (name, path) in enumerate(reports.items())
        for width in WIDTHS
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            key: pool.submit(measure, browser, path, width, workspace)
            for key, (path, width, workspace) in jobs.items()
        }
        return {key: future.result() for key, future in futures.items()}


CASES = [(name, width) for name in ("demo", "bayes", "adjusted", "long notes") for width in WIDTHS]


@pytest.mark.parametrize(("name", "width"), CASES)
def test_page_does_not_overflow_the_window_sideways(layouts, name, width):
    layout = layouts[name, width]
    assert layout["innerWidth"] == width and layout["resultsTables"] == 1
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
    assert max(layout["tables"]) <= layout["clientWidth"] + TOLERANCE_PX
    assert layout["cellsPastViewport"] == []


@pytest.mark.parametrize(("name", "width"), CASES)
def test_error_column_is_fully_visible_without_scrolling(layouts, name, width):
    layout = layouts[name, width]
    last = layout["lastColumn"]
    assert last and last[0]["text"] == "Error / note"
    for cell in last:
        assert cell["left"] >= 0 and cell["right"] <= layout["clientWidth"] + TOLERANCE_PX, cell
        assert not cell["clipped"], cell


@pytest.mark.parametrize(("name", "width"), CASES)
def test_every_number_stays_on_one_line(layouts, name, width):
    assert layouts[name, width]["wrappedNumbers"] == []

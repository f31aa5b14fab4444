"""The HTML report: one self-contained, escaped file, written atomically."""

from __future__ import annotations

import base64
import dataclasses
import os
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import splitlab.analyzer.report as report
from splitlab import Analyzer, Metric
from splitlab.errors import InvalidArgumentError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID_ELEMENTS = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}
BALANCED = "checkout"
MISMATCHED = "search & $pricing$ <b>v2</b>"  # hostile: HTML and matplotlib mathtext
HOSTILE_METRIC = "<script>alert(1)</script>"
METRICS = [
    Metric("revenue", covariate="pre_revenue"),
    Metric("converted", kind="proportion"),
    Metric("ctr", kind="ratio", numerator="clicks", denominator="sessions"),
    Metric(HOSTILE_METRIC, column="revenue"),
]


class DocumentParser(HTMLParser):
    """Collects tags, checks they nest, keeps the text and the images' sources."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.seen: list[str] = []
        self.unbalanced: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self.alerts: list[str] = []
        self._alert_depth: int | None = None

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes.get("src", ""))
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)
            if "alert" in (attributes.get("class") or "").split() and self._alert_depth is None:
                self._alert_depth = len(self.open)
                self.alerts.append("")

    def handle_endtag(self, tag):
        if tag in VOID_ELEMENTS:
            return
        if not self.open or self.open[-1] != tag:
            self.unbalanced.append(tag)
            return
        if self._alert_depth == len(self.open):
            self._alert_depth = None
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._alert_depth is not None:
            self.alerts[-1] += data


def parse(text: str) -> DocumentParser:
    parser = DocumentParser()
    parser.feed(text)
    parser.close()
    return parser


def outcomes(seed: int = 7, units: int = 1500) -> pd.DataFrame:
    """Two experiments with three variants over a week; MISMATCHED has a 55/45 split
    between control and the two treatments (a planted SRM)."""
    rng = np.random.default_rng(seed)
    frames = []
    for experiment, control_share in ((BALANCED, 1 / 3), (MISMATCHED, 0.55)):
        treatment_share = (1 - control_share) / 2
        variant = rng.choice(
            ["control", "b", "c"], size=units, p=[control_share, treatment_share, treatment_share]
        )
        pre_revenue = rng.gamma(2.0, 5.0, units)
        lift = np.select([variant == "b", variant == "c"], [1.0, -0.5], 0.0)
        sessions = rng.integers(1, 6, units)
        frames.append(
            pd.DataFrame(
                {
                    "experiment": experiment,
                    "variant": variant,
                    "revenue": 0.8 * pre_revenue + rng.normal(0.0, 3.0, units) + lift,
                    "pre_revenue": pre_revenue,
                    "converted": (rng.random(units) < 0.1 + 0.03 * (variant == "b")).astype(int),
                    "sessions": sessions,
                    "clicks": rng.binomial(sessions, 0.3),
                    "ts": pd.Timestamp("2024-03-01")
                    + pd.to_timedelta(rng.integers(0, 7 * 86400, units), unit="s"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return outcomes()


@pytest.fixture(scope="module")
def written(data, tmp_path_factory) -> tuple[str, DocumentParser]:
    path = tmp_path_factory.mktemp("report") / "r.html"
    returned = Analyzer(data, date="ts").report(path, metrics=METRICS, title="Weekly <readout>")
    assert returned == path
    text = path.read_text(encoding="utf-8")
    return text, parse(text)


def test_report_is_one_balanced_document_with_embedded_pngs(written):
    text, parser = written
    assert text.startswith("<!DOCTYPE html>")
    assert parser.seen[0] == "html" and "body" in parser.seen
    assert parser.unbalanced == [] and parser.open == []
    # a forest plot plus one timeline per metric
    assert len(parser.images) == 1 + len(METRICS)
    for source in parser.images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        assert base64.b64decode(source[len(prefix) :], validate=True).startswith(PNG_SIGNATURE)


def test_report_is_self_contained(written):
    text, parser = written
    assert "script" not in parser.seen and "link" not in parser.seen
    assert "http://" not in text and "https://" not in text


def test_report_names_every_metric_and_experiment(written):
    _, parser = written
    content = "".join(parser.text)
    for name in [BALANCED, MISMATCHED, "Weekly <readout>", *(m.name for m in METRICS)]:
        assert name in content


def test_report_flags_the_experiment_with_a_sample_ratio_mismatch(written):
    _, parser = written
    assert parser.alerts, "no SRM warning in the report"
    assert any(MISMATCHED in alert and "not be trusted" in alert for alert in parser.alerts)
    assert not any(BALANCED in alert for alert in parser.alerts)


def test_user_strings_are_html_escaped(written):
    text, _ = written
    assert "<script" not in text.lower()
    assert "<b>v2</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "search &amp; $pricing$ &lt;b&gt;v2&lt;/b&gt;" in text


def test_analyze_options_reach_the_table(data, tmp_path):
    path = Analyzer(data).report(
        tmp_path / "r.html", metrics=METRICS[:2], relative=True, correction="holm"
    )
    text = path.read_text(encoding="utf-8")
    assert "Adjusted p" in text and "relative (lift over the control mean)" in text
    # no date column: no timeline, only the forest plot
    assert len(parse(text).images) == 1 and "Over time" not in text


def test_failed_plot_leaves_existing_report_untouched(data, tmp_path, monkeypatch):
    target = tmp_path / "r.html"
    target.write_text("previous report", encoding="utf-8")

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(report, "_forest_figure", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        Analyzer(data).report(target, metrics=["revenue"])
    assert target.read_text(encoding="utf-8") == "previous report"
    assert os.listdir(tmp_path) == ["r.html"]


def test_failed_rename_removes_the_temporary_file(data, tmp_path, monkeypatch):
    target = tmp_path / "r.html"
    target.write_text("previous report", encoding="utf-8")

    def broken(source, destination):
        assert os.path.exists(source) and os.path.dirname(source) == str(tmp_path)
        raise OSError("disk full")

    monkeypatch.setattr(report.os, "replace", broken)
    with pytest.raises(InvalidArgumentError, match="disk full") as raised:
        Analyzer(data).report(target, metrics=["revenue"])
    assert raised.value.argument == "path" and isinstance(raised.value.__cause__, OSError)
    assert target.read_text(encoding="utf-8") == "previous report"
    assert os.listdir(tmp_path) == ["r.html"]


def test_missing_directory_is_rejected_naming_path(data, tmp_path):
    with pytest.raises(InvalidArgumentError) as raised:
        Analyzer(data).report(tmp_path / "missing" / "r.html", metrics=["revenue"])
    assert raised.value.argument == "path"
    assert not (tmp_path / "missing").exists()


def test_directory_as_target_is_rejected_naming_path(data, tmp_path):
    with pytest.raises(InvalidArgumentError) as raised:
        Analyzer(data).report(tmp_path, metrics=["revenue"])
    assert raised.value.argument == "path"


def over_time(text: str) -> str:
    """The text of the report's "Over time" section, tags stripped."""
    start = text.index("<h2>Over time</h2>")
    section = text[start : text.index("</section>", start)]
    return "".join(parse(section).text)


def band_report(data, tmp_path, **options) -> tuple[report.Readout, str]:
    readout = Analyzer(data, date="ts").readout(["revenue"], **options)
    return readout, over_time(report.write_report(readout, tmp_path / "r.html").read_text())


ALWAYS_VALID = {
    "cs": ({}, "95% confidence sequence: it stays valid however often you look"),
    "msprt": (
        {"method": "msprt", "method_options": {"n_plan": 2000}},
        "mixture sequential probability ratio test (mSPRT) interval: always valid",
    ),
    "gst": (
        {"method": "gst", "method_options": {"planned_n": 2000}},
        "repeated confidence interval of the group-sequential design: always valid",
    ),
}


@pytest.mark.parametrize("method", sorted(ALWAYS_VALID))
def test_always_valid_bands_are_named_as_always_valid(data, tmp_path, method):
    options, sentence = ALWAYS_VALID[method]
    readout, text = band_report(data, tmp_path, **options)
    assert readout.bands == method
    assert sentence in text
    assert "always-valid 95%" in text  # the figure caption
    assert "fixed-horizon" not in text and "overstates certainty" not in text


@pytest.mark.parametrize(
    ("method", "name"),
    [("ttest", "t-test confidence interval"), ("bayes", "Bayesian credible interval")],
)
def test_fixed_horizon_bands_warn_and_say_how_to_get_always_valid_ones(
    data, tmp_path, method, name
):
    readout, text = band_report(data, tmp_path, method=method, bands="fixed")
    assert readout.bands == method
    assert f"95% fixed-horizon {name}" in text
    assert "reading it repeatedly overstates certainty" in text
    assert 'bands="always-valid"' in text and "(the default)" in text
    assert f"fixed-horizon 95% {name.split(' ', 1)[-1]}" in text  # the figure caption
    assert "stays valid however often you look" not in text


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "confidence sequence: it stays valid however often you look"),
        ({"bands": "fixed"}, "fixed-horizon t-test confidence interval"),
        ({"method": "bayes", "bands": "fixed"}, "fixed-horizon Bayesian credible interval"),
        ({"method": "gst", "method_options": {"planned_n": 2000}}, "repeated confidence"),
    ],
)
def test_unknown_bands_are_inferred_from_the_timeline_frames(data, tmp_path, options, expected):
    readout = Analyzer(data, date="ts").readout(["revenue"], **options)
    by_hand = dataclasses.replace(readout, bands=None)
    text = over_time(report.write_report(by_hand, tmp_path / "r.html").read_text())
    assert expected in text


def test_bands_of_unknown_method_say_so(data, tmp_path):
    readout = Analyzer(data, date="ts").readout(["revenue"])
    timelines = {name: frame.drop(columns="method") for name, frame in readout.timelines.items()}
    by_hand = dataclasses.replace(readout, bands=None, timelines=timelines)
    text = over_time(report.write_report(by_hand, tmp_path / "r.html").read_text())
    assert "The method of the bands is unknown" in text
    assert "interval of unknown method" in text
    assert "stays valid however often you look" not in text


def test_confidence_sequence_band_is_wider_than_the_fixed_one_at_an_early_look(data):
    analyzer = Analyzer(data, date="ts")
    always_valid = analyzer.readout(["revenue"]).timelines["revenue"]
    fixed = analyzer.readout(["revenue"], bands="fixed").timelines["revenue"]
    keys = ["experiment", "variant", "period"]
    first = always_valid["period"].min()
    early = always_valid[always_valid["period"] == first].merge(
        fixed[fixed["period"] == first], on=keys, suffixes=("_cs", "_fixed")
    )
    assert len(early) == 4  # two experiments, two treatments each
    width_cs = early["ci_high_cs"] - early["ci_low_cs"]
    width_fixed = early["ci_high_fixed"] - early["ci_low_fixed"]
    assert (width_cs > width_fixed).all()
    # the same point estimate: only the band differs
    np.testing.assert_allclose(early["effect_cs"], early["effect_fixed"])


def lower_is_better_results(data) -> pd.DataFrame:
    results = Analyzer(data).analyze(["revenue", Metric("converted", kind="proportion")])
    return results.drop(columns="lower_is_better", errors="ignore")


def results_rows(text: str) -> list[str]:
    table = text[text.index('<table class="results">') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return body.split("<tr")[1:]


def test_lower_is_better_metrics_are_marked_and_explained(data, tmp_path):
    results = lower_is_better_results(data)
    results["lower_is_better"] = results["metric"] == "converted"
    readout = report.Readout(results, Analyzer(data).srm())
    text = report.write_report(readout, tmp_path / "r.html").read_text()
    rows = results_rows(text)
    assert len(rows) == len(results)
    for row in rows:
        marked = "↓ lower is better" in row
        assert marked == (">converted" in row)
        if marked:
            assert 'title="Lower is better: a decrease of this metric is an improvement' in row
    assert "for them a win is a decrease" in text


def test_results_without_a_lower_is_better_column_mark_no_metric(data, tmp_path):
    results = lower_is_better_results(data)
    readout = report.Readout(results, Analyzer(data).srm())
    text = report.write_report(readout, tmp_path / "r.html").read_text()
    assert "lower is better" not in text and "a win is a decrease" not in text


@pytest.mark.parametrize(("alternative", "open_side"), [("better", ", inf)"), ("worse", "(-inf, ")])
def test_one_sided_intervals_show_their_open_side(data, tmp_path, alternative, open_side):
    path = Analyzer(data).report(tmp_path / "r.html", metrics=["revenue"], alternative=alternative)
    rows = results_rows(path.read_text(encoding="utf-8"))
    assert rows and all(open_side in row for row in rows)
    text = path.read_text(encoding="utf-8")
    assert f"with 95% one-sided ({alternative}) intervals" in text
    assert "An arrow marks the open side of a one-sided interval" in text


def test_quality_rows_without_a_variant_or_column_show_a_dash_not_nan(written):
    text, _ = written
    assert "Data quality" in text and "Exposures per day" in text
    assert "<td>nan</td>" not in text

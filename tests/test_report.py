"""The HTML report: one self-contained, escaped file, written atomically."""

from __future__ import annotations

import base64
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

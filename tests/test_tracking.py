"""Experiment tracking (splitlab.tracking) against a real local MLflow file store in
tmp_path: everything logged is read back with MLflow's own client. mlflow-skinny is a test
dependency: without it these tests fail (they do not skip)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import splitlab
from splitlab.errors import InvalidArgumentError, SplitlabError
from splitlab.tracking import (
    MissingDependencyError,
    log_analysis,
    log_benchmark,
    log_rollout_check,
    resolve_tracking_uri,
    tracking_client,
)

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_FILE = ROOT / "benchmarks" / "results" / "analyzer_methods.md"


@pytest.fixture(scope="module")
def mlflow():
    try:
        import mlflow
        import mlflow.tracking
    except ImportError as exc:
        pytest.fail(
            f"mlflow is a test dependency of splitlab ({exc}): "
            'pip install -e ".[test]" (or pip install "mlflow-skinny>=2.10")',
            pytrace=False,
        )
    return mlflow


@pytest.fixture
def store(tmp_path, monkeypatch, mlflow):
    """A fresh file store's URI; no tracking URI or file-store opt-in in the environment."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    return (tmp_path / "mlruns").as_uri()


def _client(mlflow, uri, monkeypatch):
    """MLflow's own client; MLflow 3 opens a file store only with this opt-in."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow.tracking.MlflowClient(uri)


def _artifact_text(client, run_id, path, tmp_path) -> str:
    destination = tmp_path / "download"
    destination.mkdir(exist_ok=True)  # MLflow 2 does not create it
    local = client.download_artifacts(run_id, path, str(destination))
    return Path(local).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    """Results of a small generated experiment with segments, and its HTML report."""
    rng = np.random.default_rng(7)
    n = 600
    frame = pd.DataFrame(
        {
            "experiment": "checkout",
            "variant": rng.choice(["control", "new-flow"], n),
            "revenue": rng.normal(10.0, 2.0, n),
            "converted": rng.integers(0, 2, n),
            "country": rng.choice(["us", "de"], n),
        }
    )
    analyzer = splitlab.Analyzer(frame)
    results = analyzer.analyze(["revenue", "converted"], segments="country")
    report = analyzer.report(
        tmp_path_factory.mktemp("report") / "checkout.html", ["revenue", "converted"]
    )
    return results, Path(report)


def test_an_analysis_is_logged_and_reads_back(analysis, store, mlflow, monkeypatch, tmp_path):
    results, report = analysis
    run_id = log_analysis(results, report=report, tracking_uri=store, tags={"owner": "growth"})
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # the opt-in was restored
    client = _client(mlflow, store, monkeypatch)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "analyze checkout"
    assert client.get_experiment(run.info.experiment_id).name == "splitlab"

    tags = run.data.tags
    assert tags["splitlab.input_fingerprint"] == results.attrs["input_fingerprint"]
    assert tags["splitlab.version"] == splitlab.__version__
    assert tags["splitlab.call"] == "analyze"
    assert tags["splitlab.engine"] == results.attrs["source"]["engine"] == "duckdb"
    assert tags["splitlab.kind"] == "analysis"
    assert tags["owner"] == "growth"

    params = run.data.params
    assert params["method"] == "ttest"
    assert params["alpha"] == "0.05"
    assert params["relative"] == "False"
    assert params["segments"] == '["country"]'
    assert params["metrics.revenue.kind"] == "mean"
    assert params["metrics.converted.name"] == "converted"
    assert params["columns.variant"] == "variant"
    assert params["columns.control"] == "control"

    metrics = run.data.metrics
    assert len(results) == 6  # 2 metrics x (overall, de, us)
    for row in results.itertuples():
        segment = "" if row.segment == "all" else row.segment.replace("=", "_") + "."
        label = f"checkout.{segment}{row.metric}.new-flow"
        for statistic in ("effect", "p_value", "ci_low", "ci_high", "se", "n_control"):
            assert metrics[f"{statistic}.{label}"] == float(getattr(row, statistic)), label
    assert metrics["srm_p_value.checkout"] == float(results["srm_p_value"].iloc[0])

    names = {f.path for f in client.list_artifacts(run_id)}
    assert names == {"results.csv", "provenance.json", "report"}
    assert [f.path for f in client.list_artifacts(run_id, "report")] == ["report/checkout.html"]
    local = client.download_artifacts(run_id, "report/checkout.html", str(tmp_path))
    assert Path(local).read_bytes() == report.read_bytes()

    table = pd.read_csv(client.download_artifacts(run_id, "results.csv", str(tmp_path)))
    assert list(table.columns) == list(results.columns)
    np.testing.assert_array_equal(table["effect"], results["effect"])
    np.testing.assert_array_equal(table["p_value"], results["p_value"])
    provenance = json.loads(_artifact_text(client, run_id, "provenance.json", tmp_path))
    assert provenance["input_fingerprint"] == results.attrs["input_fingerprint"]
    assert provenance["parameters"]["metrics"][0]["name"] == "revenue"
    assert provenance["columns"] == results.attrs["columns"]


def test_names_are_sanitized_values_cut_and_nan_left_out(analysis, store, mlflow, monkeypatch):
    results = analysis[0].copy()
    results["experiment"] = "check/out: v2!"
    results.loc[0, "effect"] = np.nan
    results.loc[1, "p_value"] = np.inf
    results.attrs = {**results.attrs, "parameters": {"note": "x" * 1000, "nested": {"a": 1}}}
    run_id = log_analysis(results, tracking_uri=store, experiment="sanitize", run_name="mine")
    run = _client(mlflow, store, monkeypatch).get_run(run_id)
    metrics, params = run.data.metrics, run.data.params
    assert run.info.run_name == "mine"
    assert "effect.check_out_ v2_.revenue.new-flow" not in metrics  # NaN: not logged
    assert metrics["p_value.check_out_ v2_.revenue.new-flow"] == results.loc[0, "p_value"]
    assert "p_value.check_out_ v2_.country_de.revenue.new-flow" not in metrics  # inf
    assert metrics["effect.check_out_ v2_.country_de.revenue.new-flow"] == results.loc[1, "effect"]
    assert len(params["note"]) == 500 and params["note"].endswith("...")
    assert params["nested.a"] == "1"


def test_a_rollout_decision_is_logged(store, mlflow, monkeypatch, tmp_path):
    decision = {
        "action": "rollback",
        "stage": 2,
        "traffic": 0.25,
        "reason": "guardrail latency_p90 failed: +12.5 ms, p = 0.001",
        "input_fingerprint": "0123456789abcdef",
        "guardrails": [
            {"metric": "latency_p90", "effect": 12.5, "p_value": 0.001, "passed": False},
            {"metric": "errors", "effect": -0.002, "p_value": float("nan"), "passed": True},
        ],
    }
    run_id = log_rollout_check(decision, tracking_uri=store, tags={"service": "checkout"})
    client = _client(mlflow, store, monkeypatch)
    run = client.get_run(run_id)
    assert run.info.run_name == "rollout rollback"
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["splitlab.kind"] == "rollout"
    assert tags["splitlab.rollout.action"] == "rollback"
    assert tags["splitlab.rollout.stage"] == "2"
    assert tags["splitlab.input_fingerprint"] == "0123456789abcdef"
    assert tags["service"] == "checkout"
    assert params["action"] == "rollback"
    assert params["reason"] == decision["reason"]
    assert params["guardrails.latency_p90.passed"] == "False"
    assert metrics["stage"] == 2.0 and metrics["traffic"] == 0.25
    assert metrics["guardrails.latency_p90.effect"] == 12.5
    assert metrics["guardrails.latency_p90.p_value"] == 0.001
    assert metrics["guardrails.errors.effect"] == -0.002
    assert "guardrails.errors.p_value" not in metrics
    logged = _artifact_text(client, run_id, "decision.json", tmp_path)
    assert json.loads(logged.replace("NaN", "null"))["guardrails"][0] == decision["guardrails"][0]


def test_a_rollout_decision_object_is_turned_into_plain_data(store, mlflow, monkeypatch):
    @dataclasses.dataclass
    class Decision:
        action: str
        stage: int

    class WithToDict:
        def to_dict(self):
            return {"action": "advance", "stage": 3}

    first = log_rollout_check(Decision("hold", 1), tracking_uri=store)
    second = log_rollout_check(WithToDict(), tracking_uri=store)
    client = _client(mlflow, store, monkeypatch)
    assert client.get_run(first).data.params["action"] == "hold"
    assert client.get_run(second).data.metrics["stage"] == 3.0
    with pytest.raises(InvalidArgumentError, match="decision: must be a mapping"):
        log_rollout_check(["hold"], tracking_uri=store)


def test_a_benchmark_results_file_is_logged(store, mlflow, monkeypatch, tmp_path):
    text = BENCHMARK_FILE.read_text(encoding="utf-8")
    run_id = log_benchmark(BENCHMARK_FILE, tracking_uri=store)
    client = _client(mlflow, store, monkeypatch)
    run = client.get_run(run_id)
    assert run.info.run_name == "bench analyzer_methods"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    command = re.search(r"^- command: `(.*)`$", text, re.M)[1]
    commit = re.search(r"^- git commit: (.*)$", text, re.M)[1]
    assert params["command"] == command
    assert params["git_commit"] == commit
    assert params["parameters.rows"] == re.search(r"rows=(\d+)", text)[1]
    headline = re.search(r"Measured \(wall-time ratios\): (.*)$", text, re.M)[1]
    ratios = dict(re.findall(r"(\w+) (\d+\.\d+)x", headline))
    assert set(ratios) >= {"regression", "quantile", "cluster", "ratio_cuped"}
    for name, value in ratios.items():
        assert metrics[f"ratio.{name}"] == float(value)
    assert metrics["wall_time_s"] == float(re.search(r"wall time ([\d.]+) s", text)[1])
    assert tags["splitlab.kind"] == "benchmark"
    assert tags["splitlab.benchmark"] == "analyzer_methods"
    assert tags["splitlab.benchmark.title"].startswith("Analysis methods")
    assert tags["splitlab.benchmark.verdict"] == ("FAIL" if metrics["budget.fail"] else "PASS")
    local = client.download_artifacts(run_id, "analyzer_methods.md", str(tmp_path))
    assert Path(local).read_bytes() == BENCHMARK_FILE.read_bytes()


def test_a_failing_benchmark_row_sets_the_verdict(store, mlflow, monkeypatch, tmp_path):
    path = tmp_path / "tiny.md"
    path.write_text(
        "# Tiny\n\n| route | ratio | budget |\n| --- | ---: | :---: |\n"
        "| a | 1.1x | PASS |\n| b | 9.0x | FAIL (> 2x) |\n\n"
        "- seed: —\n- parameters: repeats=3, sizes=[1, 2], path=/tmp/x\n"
    )
    run = _client(mlflow, store, monkeypatch).get_run(log_benchmark(path, tracking_uri=store))
    assert run.data.tags["splitlab.benchmark.verdict"] == "FAIL"
    assert run.data.metrics["budget.pass"] == 1.0 and run.data.metrics["budget.fail"] == 1.0
    assert run.data.params["parameters.sizes"] == "[1, 2]"
    assert run.data.params["parameters.path"] == "/tmp/x"
    assert "command" not in run.data.params


def test_the_tracking_uri_comes_from_the_environment(store, mlflow, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    assert resolve_tracking_uri() == store
    run_id = log_rollout_check({"action": "hold"})
    run = _client(mlflow, store, monkeypatch).get_run(run_id)
    assert run.data.params["action"] == "hold"
    other = Path(store.removeprefix("file://")).parent / "other"
    assert resolve_tracking_uri(other) == other.as_uri()  # the argument wins


def test_the_default_store_is_mlruns_in_the_working_directory(store, mlflow, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri() == (tmp_path / "mlruns").as_uri() == store
    run_id = log_rollout_check({"action": "advance"})
    assert (tmp_path / "mlruns").is_dir()
    assert not (tmp_path / "mlflow.db").exists()
    assert tracking_client().get_run(run_id).data.params["action"] == "advance"


def test_bad_arguments_are_refused_before_a_run_starts(analysis, store, mlflow, monkeypatch):
    results, _ = analysis
    with pytest.raises(InvalidArgumentError, match="report: no such file"):
        log_analysis(results, report="missing.html", tracking_uri=store)
    with pytest.raises(InvalidArgumentError, match="results: must be a pandas DataFrame"):
        log_analysis(results.to_dict(), tracking_uri=store)
    with pytest.raises(InvalidArgumentError, match="results_file: no such file"):
        log_benchmark("missing.md", tracking_uri=store)
    with pytest.raises(InvalidArgumentError, match="tags: must be a mapping"):
        log_rollout_check({"action": "hold"}, tracking_uri=store, tags=["a"])
    with pytest.raises(InvalidArgumentError, match="experiment"):
        log_rollout_check({"action": "hold"}, tracking_uri=store, experiment="")
    assert _client(mlflow, store, monkeypatch).get_experiment_by_name("splitlab") is None


def test_a_missing_mlflow_is_a_clear_error(analysis, store, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    message = re.escape('pip install "splitlab[mlflow]"')
    with pytest.raises(MissingDependencyError, match=message) as caught:
        log_analysis(analysis[0], tracking_uri=store)
    assert isinstance(caught.value, SplitlabError) and isinstance(caught.value, ImportError)
    with pytest.raises(MissingDependencyError, match=message):
        log_rollout_check({"action": "hold"}, tracking_uri=store)
    with pytest.raises(MissingDependencyError, match=message):
        log_benchmark(BENCHMARK_FILE, tracking_uri=store)
    with pytest.raises(MissingDependencyError, match=message):
        tracking_client(store)
    assert not (tmp_path / "mlruns").exists()


def test_importing_the_module_imports_neither_mlflow_nor_pandas():
    script = (
        "import json, sys, splitlab.tracking; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mlflow', 'pandas', 'numpy'))))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


def test_metric_values_round_trip_exactly(store, mlflow, monkeypatch):
    values = {"a": 0.1 + 0.2, "b": 1e-300, "c": -123456789.123456789, "d": math.pi}
    run_id = log_rollout_check({"action": "hold", **values}, tracking_uri=store)
    metrics = _client(mlflow, store, monkeypatch).get_run(run_id).data.metrics
    assert {k: metrics[k] for k in values} == values


def test_a_rollout_decision_tags_the_stage_it_leaves_the_rollout_at(tmp_path):
    from splitlab.rollout import Guardrail, Rollout

    rollout = Rollout(guardrails=[Guardrail("conversion")], salt="t", clock=lambda: 0.0)
    decision = rollout.check()
    run = log_rollout_check(decision, tracking_uri=tmp_path / "mlruns")
    tags = tracking_client(tmp_path / "mlruns").get_run(run).data.tags
    assert float(tags["splitlab.rollout.stage"]) == decision.stage_after

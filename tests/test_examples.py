"""The worked examples in examples/ run, and do what their narratives say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def safe_rollout(tmp_path_factory):
    pytest.importorskip("mlflow")
    out = tmp_path_factory.mktemp("safe_rollout")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "safe_rollout.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=out,
    )
    assert completed.returncode == 0, completed.stderr
    return out, completed.stdout, json.loads((out / "summary.json").read_text())


def test_safe_rollout_rolls_back_on_the_planted_latency_regression(safe_rollout):
    out, _, summary = safe_rollout
    lines = (out / "rollout.decisions.jsonl").read_text().splitlines()
    decisions = [json.loads(line) for line in lines]
    assert [d["seq"] for d in decisions] == list(range(len(decisions)))
    actions = [d["action"] for d in decisions]
    # one rollback, last, after advancing through every stage before the regression
    assert actions.count("rollback") == 1 and actions[-1] == "rollback"
    assert "complete" not in actions
    planted = summary["regression_stage"]
    advances = [d for d in decisions if d["action"] == "advance"]
    assert [d["stage_before"] for d in advances] == [s for s in summary["stages"] if s < planted]
    rollback = decisions[-1]
    assert rollback["stage_before"] >= planted and rollback["stage_after"] == 0.0
    # rolled back for latency (harmed beyond its tolerance), not for conversion or an SRM
    latency, conversion = rollback["guardrails"]["latency_ms"], rollback["guardrails"]["conversion"]
    assert latency["harmed"] and not conversion["harmed"]
    assert latency["ci_low"] > 1.0 and latency["p_value"] <= 0.025
    assert rollback["reason"].startswith("rollback: latency_ms harmed")
    assert "sample-ratio" not in rollback["reason"]
    # no rollback check was harmed before the regression was served
    for decision in decisions:
        if decision["stage_before"] < planted:
            assert not any(g["harmed"] for g in decision["guardrails"].values())
    assert summary["final_action"] == "rollback" and summary["final_stage"] == planted


def test_safe_rollout_state_reloads_as_rolled_back(safe_rollout):
    from splitlab.rollout import Rollout

    out, stdout, _ = safe_rollout
    loaded = Rollout.load(out / "rollout.json")
    status = loaded.status()
    assert status["finished"] == "rollback" and status["weights"] == [1.0, 0.0]
    assert loaded.decisions()["action"].iloc[-1] == "rollback"
    assert loaded.choose("someone").arm == "control"
    assert "finished='rollback'" in stdout


def test_safe_rollout_drift_alarm_follows_the_planted_change(safe_rollout):
    out, _, summary = safe_rollout
    drift = summary["drift"]
    # the planted step is where the new model's latency stream enters the regressed stage
    units = pd.read_parquet(out / "units.parquet")
    treated = units[units["arm"] == "ranker-v2"].reset_index(drop=True)
    first_regressed = int((treated["weight"] >= summary["regression_stage"]).idxmax())
    assert drift["planted_step"] == first_regressed > 0
    assert drift["alarm_step"] is not None
    assert (
        drift["planted_step"] <= drift["alarm_step"] <= drift["planted_step"] + drift["max_delay"]
    )
    assert drift["max_delay"] == 1000
    # the change-point estimate dates the change near the start of the regressed stage
    assert abs(drift["changepoint_estimate"] - drift["planted_step"]) <= 250


def test_safe_rollout_runs_are_in_mlflow(safe_rollout):
    from splitlab.tracking import tracking_client

    out, _, summary = safe_rollout
    tracking = summary["mlflow"]
    assert tracking["tracking_uri"] == (out / "mlruns").resolve().as_uri()
    client = tracking_client(out / "mlruns")
    experiment = client.get_experiment_by_name(tracking["experiment"])
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    decisions = (out / "rollout.decisions.jsonl").read_text().splitlines()
    assert {run.info.run_id for run in runs} == {*tracking["check_runs"], tracking["analysis_run"]}
    assert len(tracking["check_runs"]) == len(decisions)

    rollback = client.get_run(tracking["check_runs"][-1])
    logged = json.loads(decisions[-1])
    assert rollback.data.tags["splitlab.kind"] == "rollout"
    assert rollback.data.tags["splitlab.rollout.action"] == "rollback"
    assert rollback.data.params["reason"] == logged["reason"]
    effect = rollback.data.metrics["guardrails.latency_ms.effect"]
    assert effect == pytest.approx(logged["guardrails"]["latency_ms"]["effect"])

    analysis = client.get_run(tracking["analysis_run"])
    assert analysis.data.tags["splitlab.kind"] == "analysis"
    # the per-stage readout shows the regression in the 25% stage and none before it
    regressed = analysis.data.metrics["effect.stage3-25pct.latency_ms.ranker-v2"]
    assert regressed == pytest.approx(summary["regression_ms"], abs=3.0)
    assert abs(analysis.data.metrics["effect.stage2-5pct.latency_ms.ranker-v2"]) < 3.0
    artifacts = {a.path for a in client.list_artifacts(tracking["analysis_run"])}
    assert {"results.csv", "provenance.json", "report"} <= artifacts
    assert (out / "report.html").stat().st_size > 0

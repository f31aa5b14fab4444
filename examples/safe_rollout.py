"""A worked example of a safe rollout: a ramp, a planted regression, a rollback, a drift alarm.

    python examples/safe_rollout.py [--out DIR]      # default: a temporary directory

The story, simulated with a seeded generator so that every run prints the same numbers:

1. A new ranking model ``ranker-v2`` is ramped against ``control`` through the stages
   1% → 5% → 25% → 50% → 100% by :class:`splitlab.rollout.Rollout`, with two guardrails:
   ``latency_ms`` (lower is better, 1 ms tolerance) and ``conversion``. Traffic arrives in
   batches of 2,000 requests, ten simulated minutes each, and the rollout is checked after
   every batch. A stage advances once it has 100 new-model units and has lasted an hour.
2. The new model converts as well as control (5.1% vs 5.0%), but from the 25% stage on its
   latency is 8 ms worse: a cache that stops working at higher load. The rollout advances
   through 1% and 5% and rolls back at 25% when the always-valid test of the latency
   guardrail shows harm beyond the tolerance.
3. The rollout's state is saved, loaded back and its status shown (it is finished, and every
   unit is served control).
4. A drift monitor — an :class:`~splitlab.sequential.EDetector` (ARL >= 10,000 units)
   whose pre-change mean comes from yesterday's control latencies — watches the new
   model's latency stream unit by unit and alarms a few hundred units after the planted
   change; its change-point estimate dates the change to the start of the 25% stage.
5. Every check is logged to MLflow (``DIR/mlruns``) with :func:`splitlab.tracking.
   log_rollout_check`, as is a final per-stage analysis of the logged units
   (:class:`splitlab.Analyzer`, with its HTML report attached); the runs are read back with
   :func:`splitlab.tracking.tracking_client`. Browse them with
   ``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri DIR/mlruns`` (the variable
   is needed by MLflow 3 only).

Files written to DIR: ``rollout.json`` (the saved state), ``rollout.decisions.jsonl`` (the
decision log, one JSON line per check), ``units.parquet`` (the logged units),
``report.html``, ``mlruns/`` and ``summary.json`` (the numbers the narrative quotes, read
by ``tests/test_examples.py``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import splitlab as sl
from splitlab.rollout import Guardrail, Rollout
from splitlab.sequential import EDetector
from splitlab.tracking import log_analysis, log_rollout_check, tracking_client

SEED = 20240607
ARMS = ("control", "ranker-v2")
STAGES = (0.01, 0.05, 0.25, 0.5, 1.0)
BATCH_UNITS = 2_000  # requests per batch
BATCH_SECONDS = 600.0  # simulated time per batch
MAX_BATCHES = 60
LATENCY_MS = 120.0  # mean latency of both models while the cache works
LATENCY_SD = 25.0
CONVERSION = {"control": 0.050, "ranker-v2": 0.051}
REGRESSION_MS = 8.0  # the planted latency regression of ranker-v2 ...
REGRESSION_STAGE = 0.25  # ... from this stage on (the cache stops working at higher load)
DRIFT_ALPHA = 1e-4  # the drift monitor's false-alarm level: ARL >= 1 / alpha
DRIFT_DELTA = 4.0  # the smallest latency shift (ms) the monitor is tuned for
BASELINE_UNITS = 20_000  # yesterday's control requests, to set the monitor's pre-change mean
MAX_ALARM_DELAY = 1_000  # new-model units after the change within which the alarm must come
EXPERIMENT = "ranker-v2-rollout"


def make_rollout(out: Path, clock) -> Rollout:
    """The rollout of ranker-v2: two guardrails, checked with the confidence sequence."""
    return Rollout(
        arms=ARMS,
        stages=STAGES,
        guardrails=[
            Guardrail("latency_ms", higher_is_better=False, tolerance=1.0),
            Guardrail("conversion", higher_is_better=True),
        ],
        min_units=100,
        min_duration=3600.0,
        alpha=0.05,
        method="cs",
        salt="ranker-v2-rollout",
        log=out / "rollout.decisions.jsonl",
        clock=clock,
    )


def stage_label(index: int, weight: float) -> str:
    """The experiment label of a stage in the analysis: "stage3-25pct"."""
    return f"stage{index + 1}-{weight * 100:g}pct"


def serve_batch(rollout: Rollout, rng: np.random.Generator, batch: int) -> pd.DataFrame:
    """Serve one batch of requests, simulate their outcomes and record them."""
    assignments = [rollout.choose(f"user-{batch * BATCH_UNITS + k}") for k in range(BATCH_UNITS)]
    arms = np.array([a.arm for a in assignments])
    treated = arms == ARMS[1]
    latency = rng.normal(LATENCY_MS, LATENCY_SD, BATCH_UNITS)
    if rollout.stage >= REGRESSION_STAGE:
        latency[treated] += REGRESSION_MS  # the planted regression
    rates = np.where(treated, CONVERSION[ARMS[1]], CONVERSION[ARMS[0]])
    conversion = (rng.random(BATCH_UNITS) < rates).astype(float)
    for assignment, ms, converted in zip(assignments, latency, conversion, strict=True):
        rollout.record(assignment, {"latency_ms": float(ms), "conversion": float(converted)})
    return pd.DataFrame(
        {
            "unit": [a.unit for a in assignments],
            "arm": arms,
            "stage": stage_label(rollout.stage_index, rollout.stage),
            "weight": rollout.stage,
            "batch": batch,
            "latency_ms": latency,
            "conversion": conversion,
        }
    )


def describe(decision) -> str:
    """One decision in two lines: action, stage, the guardrails' always-valid bounds."""
    latency, conversion = decision.guardrails["latency_ms"], decision.guardrails["conversion"]
    if np.isfinite(latency["effect"]):
        bounds = (
            f"latency {latency['effect']:+.2f} ms (always-valid: >= {latency['ci_low']:+.2f}), "
            f"conversion {conversion['effect']:+.4f} (<= {conversion['ci_high']:+.4f})"
        )
    else:
        bounds = "too few units in the stage to test yet"
    stage = f"{decision.stage_before:.0%}"
    if decision.stage_after != decision.stage_before:
        stage += f" -> {decision.stage_after:.0%}"
    return f"  #{decision.seq:<2} {decision.action:8} {stage:11} {bounds}\n      {decision.reason}"


def run(out: Path) -> dict:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    store = out / "mlruns"
    rng = np.random.default_rng(SEED)
    now = [0.0]

    def clock() -> float:
        return now[0]

    rollout = make_rollout(out, clock)
    # the drift monitor: its pre-change mean is a Hoeffding interval around the mean
    # latency of yesterday's control traffic, so it needs no data from the rollout itself
    yesterday = rng.normal(LATENCY_MS, LATENCY_SD, BASELINE_UNITS)
    monitor = EDetector.from_baseline(
        yesterday, DRIFT_DELTA, sigma=LATENCY_SD, alpha=DRIFT_ALPHA, alternative="greater"
    )
    alarm_check = None  # the check after the batch in which the monitor alarmed
    treated_seen = 0  # new-model latencies fed to the monitor
    planted_step = None  # index in that stream of the first regressed unit
    batches, check_runs = [], []

    print(f"(a) Ramping {ARMS[1]} through {', '.join(f'{s:.0%}' for s in STAGES)}")
    print(
        f"    planted: +{REGRESSION_MS:g} ms latency from the {REGRESSION_STAGE:.0%} stage on; "
        f"conversion {CONVERSION[ARMS[1]]:.1%} vs {CONVERSION[ARMS[0]]:.1%}"
    )
    for batch in range(MAX_BATCHES):
        units = serve_batch(rollout, rng, batch)
        batches.append(units)
        now[0] += BATCH_SECONDS
        treated = units.loc[units["arm"] == ARMS[1], "latency_ms"].to_numpy()
        if planted_step is None and units["weight"].iloc[0] >= REGRESSION_STAGE:
            planted_step = treated_seen
        if not monitor.alarm:
            monitor.update_many(treated)
        treated_seen += treated.size

        decision = rollout.check()
        if monitor.alarm and alarm_check is None:
            alarm_check = decision.seq
            print(
                f"  drift monitor alarm in the batch checked at #{decision.seq} "
                f"(new-model unit {monitor.alarm_index})"
            )
        check_runs.append(
            log_rollout_check(
                decision,
                tracking_uri=store,
                experiment=EXPERIMENT,
                run_name=f"check {decision.seq} {decision.action}",
                tags={"batch": batch, "stage_before": decision.stage_before},
            )
        )
        print(describe(decision))
        if rollout.finished:
            break
    decisions = rollout.decisions()
    final = decisions.iloc[-1]
    reached = [float(s) for s in decisions["stage_before"].unique()]

    # (b) save and load
    saved = rollout.save(out / "rollout.json")
    loaded = Rollout.load(saved, clock=clock)
    status = loaded.status()
    print(f"\n(b) Saved to {saved.name} and loaded back:")
    print(
        f"    finished={status['finished']!r} stage={status['stage']:.0%} "
        f"weights={status['weights']} total units={status['total_exposures']}"
    )
    print(f"    a new user is now served: {loaded.choose('user-new').arm}")

    # (c) the drift monitor
    alarm_step = monitor.alarm_index
    print(f"\n(c) Drift monitor on {ARMS[1]}'s latency stream ({treated_seen} units seen)")
    if alarm_step is None:
        print("    no alarm")
    else:
        print(
            f"    planted change at unit {planted_step}, alarm at unit {alarm_step} "
            f"(delay {alarm_step - planted_step}); change-point estimate "
            f"{monitor.changepoint_estimate}; null interval for the mean "
            f"[{monitor.mu0[0]:.2f}, {monitor.mu0[1]:.2f}] ms"
        )
        print(
            f"    it alarmed before check #{alarm_check}, the rollback came at check "
            f"#{int(final['seq'])}"
        )

    # (d) the analysis and MLflow
    frame = pd.concat(batches, ignore_index=True)
    frame.to_parquet(out / "units.parquet", index=False)
    weights = {
        label: {ARMS[0]: 1.0 - w, ARMS[1]: w}
        for label, w in frame[["stage", "weight"]].drop_duplicates().itertuples(index=False)
    }
    metrics = [
        sl.Metric("latency_ms", higher_is_better=False, guardrail=True),
        sl.Metric("conversion", kind="proportion"),
    ]
    analyzer = sl.Analyzer(
        frame, experiment="stage", variant="arm", control=ARMS[0], unit="unit", weights=weights
    )
    results = analyzer.analyze(metrics, quality=True)
    report = analyzer.report(out / "report.html", metrics, title="ranker-v2 rollout")
    analysis_run = log_analysis(
        results, report=report, tracking_uri=store, experiment=EXPERIMENT, run_name="analysis"
    )
    print("\n(d) Per-stage analysis of the logged units (Welch):")
    shown = results[["experiment", "metric", "n_variant", "effect", "ci_low", "ci_high"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"    quality flags: {len(results.attrs['quality'])}")

    client = tracking_client(store)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    rollback_run = client.get_run(check_runs[-1])
    analysis = client.get_run(analysis_run)
    print(f"    MLflow store {store}: {len(runs)} runs in experiment {EXPERIMENT!r}")
    print(
        f"    last check run {rollback_run.info.run_id}: "
        f"action={rollback_run.data.tags['splitlab.rollout.action']}, "
        f"latency effect={rollback_run.data.metrics['guardrails.latency_ms.effect']:.2f} ms"
    )
    print(f"      reason: {rollback_run.data.params['reason']}")
    regressed = stage_label(STAGES.index(REGRESSION_STAGE), REGRESSION_STAGE)
    latency_key = f"effect.{regressed}.latency_ms.{ARMS[1]}"
    print(
        f"    analysis run {analysis.info.run_id}: {latency_key} = "
        f"{analysis.data.metrics.get(latency_key, float('nan')):.2f}; "
        f"artifacts {[a.path for a in client.list_artifacts(analysis_run)]}"
    )

    summary = {
        "seed": SEED,
        "stages": list(STAGES),
        "regression_ms": REGRESSION_MS,
        "regression_stage": REGRESSION_STAGE,
        "stages_reached": reached,
        "final_action": str(final["action"]),
        "final_stage": float(final["stage_before"]),
        "final_reason": str(final["reason"]),
        "checks": len(decisions),
        "units": len(frame),
        "drift": {
            "planted_step": planted_step,
            "alarm_step": alarm_step,
            "alarm_check": alarm_check,
            "changepoint_estimate": monitor.changepoint_estimate,
            "max_delay": MAX_ALARM_DELAY,
            "alpha": DRIFT_ALPHA,
            "null_interval": list(monitor.mu0),
        },
        "mlflow": {
            "tracking_uri": store.resolve().as_uri(),
            "experiment": EXPERIMENT,
            "check_runs": check_runs,
            "analysis_run": analysis_run,
        },
        "files": {
            "state": saved.name,
            "decisions": rollout.log_path.name,
            "units": "units.parquet",
            "report": Path(report).name,
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nDone in {time.perf_counter() - started:.1f} s; files in {out}")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory (default: a temporary one)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="safe-rollout-"))
    run(out)


if __name__ == "__main__":
    main()

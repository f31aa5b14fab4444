"""Off-policy evaluation speed: 10^6 logged rounds, 80 actions, 24 context features.

Budgets (issues 7 and 18): every estimator (IPS, SNIPS, DM, DR, SNDR, Switch-DR) with
closed-form intervals in under 1 s; with 1,000 bootstrap resamples in under 10 s on 2 cores.

Workload: contexts x ~ N(0, I₂₄); a softmax logging policy and a different softmax target
policy over linear scores; Bernoulli rewards with a logistic link. ``evaluate`` gets the log
as a validated ``BanditLog`` (in memory) and the target as an (n, K) matrix; the times
include the cross-fitted ridge reward model (5 folds), every pseudo-outcome, the intervals
and the diagnostics. Each timing is the best of ``--repeats`` calls after one warm-up call;
the first call in a fresh interpreter (numba compilation or cache load) is timed separately,
as is loading the same log from a pandas DataFrame through the sources layer (DuckDB), the
shared ridge model on an (80, 8) matrix of action features, and the logistic reward model.
The target matrix is float64 (640 MB at 10⁶ × 80, the caller's); ``evaluate`` itself forms
no other (n, K) matrix for the model-based estimators.

Peer: when Open Bandit Pipeline (``obp``) is importable, the same estimators run on it in
the same process (its bootstrap is ``estimate_interval`` with n_bootstrap_samples) and the
ratio obp / splitlab is printed; otherwise the report says it was not importable.

    python benchmarks/ope.py [--rows 1000000] [--repeats 3] [--out benchmarks/results/ope.md]

(the suite lives in this module so that ``splitlab bench`` can run it; the script calls it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from splitlab.bench.markdown import results_dir, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, script_command
from splitlab.ope import BanditLog, evaluate

QUICK = ("--rows", "100000", "--repeats", "1")
N_ACTIONS, N_FEATURES, N_ACTION_FEATURES, N_BOOT = 80, 24, 8, 1000
ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr", "switch_dr")
# The same workload at 10⁶ rows before issue 18's reward-model work (commit 3da7dbe, one
# (n, K) q matrix, logistic fitted fold by fold and action by action), measured on this
# 2-core machine under a load average of ~2 (other jobs running): seconds.
BEFORE = {"closed form": 1.64, "bootstrap": 8.02, "logistic cross-fit alone": 9.99}


def softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=1, keepdims=True)


def make_workload(rows: int, seed: int):
    rng = np.random.default_rng(seed)
    contexts = rng.normal(size=(rows, N_FEATURES))
    theta = rng.normal(size=(N_FEATURES, N_ACTIONS)) / np.sqrt(N_FEATURES)
    logging = softmax(contexts @ rng.normal(size=(N_FEATURES, N_ACTIONS)) * 0.5)
    target = softmax(contexts @ theta * 2.0)
    cumulative = logging.cumsum(axis=1)
    actions = np.minimum((cumulative < rng.random(rows)[:, None]).sum(axis=1), N_ACTIONS - 1)
    eta = (contexts @ theta)[np.arange(rows), actions] - 1.0
    rewards = (rng.random(rows) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    propensities = logging[np.arange(rows), actions]
    return contexts, actions, rewards, propensities, logging, target


def best_of(repeats: int, call) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


FIRST_CALL = """
import time, numpy as np
from splitlab.ope import evaluate
rng = np.random.default_rng(0)
log = {"action": rng.integers(3, size=1000), "reward": rng.random(1000),
       "propensity": np.full(1000, 1 / 3), "contexts": rng.normal(size=(1000, 2))}
started = time.perf_counter()
evaluate(log, np.full(1000, 1), ci="bootstrap", n_boot=10)
print(time.perf_counter() - started)
"""


def first_call_seconds() -> float:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def obp_timings(workload, repeats: int):
    """The same estimators on Open Bandit Pipeline, or None when it is not importable."""
    try:
        import obp.ope as obp_ope
    except ImportError:
        return None
    contexts, actions, rewards, propensities, _, target = workload
    feedback = {
        "n_rounds": actions.size, "n_actions": N_ACTIONS, "action": actions,
        "reward": rewards, "pscore": propensities, "position": None, "context": contexts,
    }  # fmt: skip
    from sklearn.linear_model import Ridge

    model = obp_ope.RegressionModel(
        n_actions=N_ACTIONS, base_model=Ridge(alpha=1.0), fitting_method="normal"
    )
    q = model.fit_predict(context=contexts, action=actions, reward=rewards, n_folds=5)
    estimators = [
        obp_ope.InverseProbabilityWeighting(),
        obp_ope.SelfNormalizedInverseProbabilityWeighting(),
        obp_ope.DirectMethod(),
        obp_ope.DoublyRobust(),
        obp_ope.SelfNormalizedDoublyRobust(),
        obp_ope.SwitchDoublyRobust(lambda_=100.0),
    ]
    meta = obp_ope.OffPolicyEvaluation(bandit_feedback=feedback, ope_estimators=estimators)
    action_dist = target[:, :, None]
    closed = best_of(repeats, lambda: meta.estimate_policy_values(action_dist, q))
    boot = best_of(
        1,
        lambda: meta.estimate_intervals(action_dist, q, n_bootstrap_samples=N_BOOT, random_state=0),
    )
    return closed, boot


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=results_dir() / "ope.md")
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    args = build_parser().parse_args(argv)
    progress = progress or Progress()
    progress.start("ope", total=3)
    run = Provenance.start(
        command=command or script_command(argv, "benchmarks/ope.py"),
        seed=args.seed,
        parameters={
            "rows": args.rows,
            "actions": N_ACTIONS,
            "features": N_FEATURES,
            "action_features": N_ACTION_FEATURES,
            "n_boot": N_BOOT,
            "repeats": args.repeats,
        },
    )
    first = first_call_seconds()
    progress.step("first call")
    workload = make_workload(args.rows, args.seed)
    contexts, actions, rewards, propensities, logging, target = workload
    log = BanditLog.from_arrays(actions, rewards, propensities, contexts, logging)
    warnings.simplefilter("ignore")
    evaluate(log, target, ESTIMATORS)  # warm-up: numba from the cache
    closed = best_of(args.repeats, lambda: evaluate(log, target, ESTIMATORS))
    ips_only = best_of(args.repeats, lambda: evaluate(log, target, ("ips", "snips")))
    boot = best_of(
        max(1, args.repeats - 1),
        lambda: evaluate(log, target, ESTIMATORS, ci="bootstrap", n_boot=N_BOOT, seed=1),
    )
    features = np.random.default_rng(args.seed + 1).normal(size=(N_ACTIONS, N_ACTION_FEATURES))
    shared = best_of(
        args.repeats, lambda: evaluate(log, target, ESTIMATORS, action_features=features)
    )
    logistic = best_of(
        max(1, args.repeats - 2),
        lambda: evaluate(log, target, ESTIMATORS, reward_model="logistic"),
    )
    frame = pd.DataFrame(
        {"action": actions, "reward": rewards, "propensity": propensities,
         **{f"x_{j}": contexts[:, j] for j in range(N_FEATURES)},
         **{f"prob_{k}": logging[:, k] for k in range(N_ACTIONS)}}
    )  # fmt: skip
    from_pandas = best_of(args.repeats, lambda: evaluate(frame, target, ESTIMATORS))
    progress.step("estimators timed")
    table = evaluate(log, target, ESTIMATORS, ci="bootstrap", n_boot=N_BOOT, seed=1)
    peer = obp_timings(workload, args.repeats)
    progress.step("obp" if peer is not None else "obp not importable")

    rows = [
        ("6 estimators, closed-form CIs (BanditLog in memory)", closed, "< 1 s"),
        ("IPS + SNIPS only, closed-form CIs", ips_only, ""),
        (f"6 estimators, {N_BOOT} bootstrap resamples", boot, "< 10 s"),
        (
            f"6 estimators, closed-form, shared ridge on ({N_ACTIONS}, {N_ACTION_FEATURES}) "
            "action features",
            shared,
            "",
        ),
        ("6 estimators, closed-form, logistic reward model (per action)", logistic, ""),
        ("6 estimators, closed-form, from a pandas DataFrame (sources layer)", from_pandas, ""),
        ("first call in a fresh interpreter (numba cache load), 10³ rows", first, ""),
    ]
    lines = [
        "# Off-policy evaluation speed",
        "",
        f"{args.rows:,} logged rounds, {N_ACTIONS} actions, {N_FEATURES} features; "
        "best of the repeats after a warm-up call. See `benchmarks/ope.py` for the workload.",
        "",
        "| workload | seconds | budget | within |",
        "|---|---:|---:|:---:|",
    ]
    for name, seconds, budget in rows:
        within = ""
        if budget:
            within = "yes" if seconds < float(budget.split()[1]) else "**no**"
        lines.append(f"| {name} | {seconds:.3f} | {budget} | {within} |")
    if args.rows == 1_000_000:
        lines += [
            "",
            "Before (commit 3da7dbe, same workload): "
            + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in BEFORE.items())
            + ".",
        ]
    lines += ["", "Estimates of the bootstrap run (the interval is the percentile interval):", ""]
    columns = ["estimator", "estimate", "se", "ci_low", "ci_high", "ess", "max_weight"]
    columns.append("diagnostics")
    lines += ["| " + " | ".join(columns) + " |", "|---" + "|---:" * (len(columns) - 1) + "|"]
    for _, result in table[columns].iterrows():
        cells = [result["estimator"]] + [f"{result[c]:.4f}" for c in columns[1:5]]
        cells += [f"{result['ess']:,.0f}", f"{result['max_weight']:.2f}"]
        cells.append(result["diagnostics"] or "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if peer is None:
        lines.append(
            "Open Bandit Pipeline (`obp`) was not importable in this interpreter: no peer run."
        )
    else:
        lines += [
            f"Open Bandit Pipeline, same workload and process: closed form {peer[0]:.3f} s "
            f"(ratio obp/splitlab {peer[0] / closed:.1f}x), {N_BOOT} bootstrap resamples "
            f"{peer[1]:.3f} s (ratio {peer[1] / boot:.1f}x).",
        ]
    lines += ["", "## Provenance", "", *run.lines(), ""]
    text = "\n".join(lines)
    write_text(args.out, text)
    progress.finish()
    print(text)
    return 0

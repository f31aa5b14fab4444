"""Peers side by side: the same workloads in splitlab and in each peer library, one run.

Each peer lives in its own virtual environment, made by ``bash benchmarks/peers/setup.sh``
under ``$SPLITLAB_PEERS_DIR`` (default ``/tmp/splitlab-peers``). This runner starts
``<venv>/bin/python peer_workloads.py`` per installed peer (a subprocess, JSON in on stdin
and out on stdout, see :mod:`tooling.peer_workloads`), times splitlab on the same
inputs in this process, and writes one table of speed ratios and one of agreement of the
numbers where the methods coincide. A peer whose environment is missing or failed to
install is listed with the reason its ``STATUS`` file gives.

Workloads:

* statistics (gbstats, spotify-confidence): N seeded (control, treatment) summaries with
  true effects of 0-3 standard errors (p-values spread over (0, 1)); Welch t-test absolute
  and relative, proportions, Gaussian Bayesian test with a flat and a proper prior. splitlab
  answers each with one vectorized call (``Moments.from_sums`` + the test), the peers with
  their own API (gbstats one comparison per call; spotify one DataFrame grouped by
  comparison).
* bandits (MABWiser, river, Vowpal Wabbit): R replications of T ``choose``/``update`` calls
  on the 10-arm Bernoulli testbed (and LinUCB on a linear environment with d = 20), the
  same Python loop around every library, so the ratio is the per-call cost through each
  public API; the mean cumulative regret of each is compared with splitlab's.

    python benchmarks/peers/run.py [--quick] [--peers gbstats river ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from splitlab.bench.markdown import results_dir, table, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, script_command
from tooling import peer_workloads

__all__ = ["PEERS", "main", "peer_environment", "peers_dir"]

PEERS = ("gbstats", "spotify-confidence", "mabwiser", "river", "vowpalwabbit", "obp")
STATS_PEERS = ("gbstats", "spotify-confidence")
BANDIT_PEERS = ("mabwiser", "river", "vowpalwabbit")
QUICK = ("--comparisons", "100", "--horizon", "500", "--replications", "3",
         "--linear-horizon", "100", "--repeats", "1")  # fmt: skip
AGREE = 1e-6
# p-values are compared relative to max(p, P_FLOOR): a peer computing p = 2 (1 − cdf) loses
# relative precision far in the tail (gbstats: 1e-6 relative at p = 7e-11, an absolute 7e-17)
P_FLOOR = 1e-6
N_ARMS, N_FEATURES = 10, 20
TIMEOUT = 1800

# (peer, peer workload, splitlab workload, what is compared, methods coincide?)
COMPARISONS = (
    ("gbstats", "welch", "welch", "TwoSidedTTest absolute vs `sl.ttest`", True),
    ("gbstats", "welch_relative", "welch_relative",
     "TwoSidedTTest relative vs `sl.ttest(relative=True)` (both delta method)", True),
    ("gbstats", "proportions", "proportions_t",
     "ProportionStatistic t-test vs `sl.ttest(Moments.from_proportions(...))`", True),
    ("gbstats", "bayes_flat", "bayes_flat",
     "EffectBayesianABTest, flat prior vs `sl.bayes_test`", True),
    ("gbstats", "bayes_proper_relative", "bayes_proper_relative",
     "EffectBayesianABTest relative, prior N(0, 0.1²) vs "
     "`sl.bayes_test(relative=True, prior=(0, 0.1))`", True),
    ("spotify-confidence", "welch", "welch", "StudentsTTest vs `sl.ttest`", True),
    ("spotify-confidence", "ztest", "welch",
     "ZTest vs `sl.ttest` (normal vs Student quantile: not the same method)", False),
    ("spotify-confidence", "proportions", "proportions_z",
     "ZTest on 0/1 sums vs `sl.proportions_test(pooled=False)`", True),
    ("spotify-confidence", "welch_relative", "welch_relative",
     "StudentsTTest(absolute=False) vs `sl.ttest(relative=True)` (interval conventions "
     "differ, see below)", False),
)  # fmt: skip
STATS_FIELDS = ("effect", "ci_low", "ci_high", "p_value")
BAYES_FIELDS = ("effect", "ci_low", "ci_high", "chance_to_win", "risk_control", "risk_treatment")
BANDIT_POLICIES = ("ThompsonSampling", "EpsilonGreedy", "UCB1", "LinUCB")

CONVENTIONS = """\
- **Relative lift intervals.** splitlab and gbstats use the delta method for
  (μt − μc)/|μc|: variance var_t/(μc² n_t) + var_c μt²/(μc⁴ n_c) (splitlab also offers
  Fieller's interval, `relative_method="fieller"`, which is asymmetric and differs from both).
  spotify-confidence's `absolute=False` divides the absolute difference and its interval by
  the control mean, treating it as known: the same point estimate, a narrower interval.
- **Normal vs Student.** spotify's `ZTest` uses normal quantiles; `sl.ttest` and gbstats use
  Welch's t with Welch–Satterthwaite degrees of freedom. With thousands of units per arm the
  two differ in the 4th-5th significant digit. spotify's `StudentsTTest` matches `sl.ttest`.
- **Pooled vs unpooled proportions.** `sl.proportions_test` is unpooled by default (as is
  spotify's z-test on 0/1 sums); `pooled=True` gives statsmodels' pooled-variance test.
  gbstats treats a proportion as a mean with variance p(1 − p) and runs its Welch t-test,
  which is `sl.ttest` on `Moments.from_proportions`.
- **Bayesian priors.** gbstats' `GaussianPrior(mean, variance, proper)` takes a variance;
  `sl.bayes_test(prior=(mean, sd))` takes a standard deviation, on the scale of the lift
  (relative when `relative=True`). A flat prior is `prior=None` in splitlab and
  `proper=False` in gbstats. Both report equal-tailed credible intervals and the expected
  loss of choosing control / treatment.
- **One-sided intervals.** `alternative="greater"` gives the interval (low, +∞) in splitlab;
  gbstats' one-sided tests report (low, ∞) too, spotify reports one-sided intervals only
  through non-inferiority margins; none is compared here.
- **Bandits.** MABWiser's and river's Thompson sampling use Beta(1, 1) priors like
  `ThompsonSampling()`; their UCB1 is `UCB1(alpha=1)` in MABWiser and `UCB(delta=1)` in
  river; river and MABWiser return an arm without its propensity (splitlab's `choose`
  returns both); VW's `--cb_explore --epsilon` learns a cost-sensitive regression rather than
  arm means, so its regret is shown but not expected to match. MABWiser needs a `fit`
  before `predict` and its UCB1 never explores an arm it has not seen: each MABWiser run
  starts from one reward-0 observation of every arm (not counted as steps).
"""


def peers_dir() -> Path:
    return Path(os.environ.get("SPLITLAB_PEERS_DIR", "/tmp/splitlab-peers"))


def peer_environment(peer: str, directory: Path | None = None) -> tuple[Path | None, str]:
    """(the peer's python, or None when it is not usable; the status line)."""
    venv = (directory or peers_dir()) / peer
    status_file = venv / "STATUS"
    if not status_file.exists():
        return None, "not set up (run `bash benchmarks/peers/setup.sh`)"
    status = " ".join(status_file.read_text().split())
    python = venv / "bin" / "python"
    if not status.startswith("ok") or not python.exists():
        return None, status
    return python, status


# ---------------------------------------------------------------------------- data


def make_stats(size: int, seed: int) -> dict[str, list]:
    """Per-arm sums of ``size`` comparisons, effects of 0-3 standard errors, and 0/1
    outcomes (rates 5-30%) for the proportion tests."""
    rng = np.random.default_rng(seed)
    n_c = rng.integers(1_000, 50_000, size).astype(float)
    n_t = rng.integers(1_000, 50_000, size).astype(float)
    mean_c = rng.uniform(5.0, 15.0, size)
    var_c, var_t = rng.uniform(1.0, 25.0, size), rng.uniform(1.0, 25.0, size)
    se = np.sqrt(var_c / n_c + var_t / n_t)
    mean_t = mean_c + rng.uniform(0.0, 3.0, size) * rng.choice([-1.0, 1.0], size) * se
    rate_c = rng.uniform(0.05, 0.3, size)
    rate_se = np.sqrt(rate_c * (1 - rate_c) * (1 / n_c + 1 / n_t))
    rate_t = np.clip(rate_c + rng.uniform(0.0, 3.0, size) * rate_se, 0.01, 0.99)
    return {
        "n_c": n_c.tolist(),
        "sum_c": (mean_c * n_c).tolist(),
        "sum_sq_c": (var_c * (n_c - 1) + mean_c**2 * n_c).tolist(),
        "n_t": n_t.tolist(),
        "sum_t": (mean_t * n_t).tolist(),
        "sum_sq_t": (var_t * (n_t - 1) + mean_t**2 * n_t).tolist(),
        "successes_c": rng.binomial(n_c.astype(np.int64), rate_c).astype(float).tolist(),
        "successes_t": rng.binomial(n_t.astype(np.int64), rate_t).astype(float).tolist(),
    }


def make_bandits(horizon: int, replications: int, linear_horizon: int, seed: int) -> dict:
    from splitlab.simulate import BernoulliArms, LinearContextual

    linear = LinearContextual.random(N_ARMS, N_FEATURES, sd=1.0, seed=seed)
    return {
        "means": BernoulliArms.testbed(N_ARMS, seed=seed).means.tolist(),
        "horizon": horizon,
        "replications": replications,
        "seed": seed,
        "linear": {"theta": linear.theta.tolist(), "sd": 1.0, "horizon": linear_horizon},
    }


# ---------------------------------------------------------------------------- splitlab


def splitlab_stats(stats: dict, repeats: int) -> dict:
    """The statistics workloads in splitlab: one vectorized call each, from the sums."""
    from splitlab import Moments, bayes_test, proportions_test, ttest

    data = {name: np.asarray(values) for name, values in stats.items()}

    def arms():
        return (
            Moments.from_sums(data["n_c"], data["sum_c"], data["sum_sq_c"]),
            Moments.from_sums(data["n_t"], data["sum_t"], data["sum_sq_t"]),
        )

    def frequentist(result):
        return {name: getattr(result, name).tolist() for name in STATS_FIELDS}

    def bayesian(result):
        return {
            "effect": result.effect.tolist(),
            "ci_low": result.ci_low.tolist(),
            "ci_high": result.ci_high.tolist(),
            "chance_to_win": result.chance_to_win.tolist(),
            "risk_control": result.risk[..., 0].tolist(),
            "risk_treatment": result.risk[..., 1].tolist(),
        }

    workloads = {
        "welch": lambda: frequentist(ttest(*arms())),
        "welch_relative": lambda: frequentist(ttest(*arms(), relative=True)),
        "proportions_t": lambda: frequentist(
            ttest(
                Moments.from_proportions(data["successes_c"], data["n_c"]),
                Moments.from_proportions(data["successes_t"], data["n_t"]),
            )
        ),
        "proportions_z": lambda: frequentist(
            proportions_test(data["successes_c"], data["n_c"], data["successes_t"], data["n_t"])
        ),
        "bayes_flat": lambda: bayesian(bayes_test(*arms())),
        "bayes_proper_relative": lambda: bayesian(
            bayes_test(*arms(), relative=True, prior=(0.0, 0.1))
        ),
    }
    size = len(stats["n_c"])
    results = {}
    for name, function in workloads.items():
        seconds, numbers = peer_workloads._best(function, repeats)
        results[name] = {"seconds": seconds, "count": size, "numbers": numbers}
    return results


def splitlab_bandits(bandits: dict) -> dict:
    """The bandit loops with splitlab's policies, in the peers' own harness."""
    from splitlab.bandits import UCB1, EpsilonGreedy, LinUCB, ThompsonSampling

    def context_free(cls, **parameters):
        def factory(replication):
            policy = cls(n_arms=N_ARMS, **parameters)
            rng = np.random.default_rng(replication)
            return (lambda: policy.choose(rng=rng)[0]), policy.update

        return factory

    def linucb(replication):
        policy = LinUCB(alpha=1.0, n_arms=N_ARMS, n_features=N_FEATURES)
        rng = np.random.default_rng(replication)
        return (lambda x: policy.choose(x, rng=rng)[0]), policy.update

    factories = {
        "ThompsonSampling": context_free(ThompsonSampling),
        "EpsilonGreedy": context_free(EpsilonGreedy, epsilon=0.1),
        "UCB1": context_free(UCB1, alpha=1.0),
        "LinUCB": linucb,
    }
    return peer_workloads._run_policies(factories, {"bandits": bandits})


# ---------------------------------------------------------------------------- peers


def run_peer(python: Path, request: dict) -> dict:
    """One peer's workloads in its own interpreter; raises RuntimeError with its stderr."""
    completed = subprocess.run(
        [str(python), peer_workloads.__file__],
        input=json.dumps(request), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    if completed.returncode != 0:
        tail = " ".join(completed.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"exit {completed.returncode}: {tail}")
    return json.loads(completed.stdout)


def max_relative_difference(ours: list, theirs: list, floor: float = 1e-300) -> float:
    """max |ours − theirs| / max(|ours|, floor) (0 where both are 0)."""
    mine, other = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = np.maximum(np.abs(mine), floor)
    both_zero = (mine == 0.0) & (other == 0.0)
    difference = np.where(both_zero, 0.0, np.abs(mine - other) / scale)
    return float(np.max(difference))


def _seconds(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _ratio(ratio: float) -> str:
    """Peer / splitlab time: two significant digits below 1 (0.018x, not 0.0x)."""
    return f"{ratio:,.1f}x" if ratio >= 1 else f"{ratio:.2g}x"


def _per_call(seconds: float, count: int) -> str:
    value = seconds / count
    return f"{value * 1e6:,.2f} µs" if value < 1e-3 else f"{value * 1e3:,.2f} ms"


def stats_tables(ours: dict, theirs: dict[str, dict]) -> tuple[str, str]:
    speed_rows, agreement_rows = [], []
    for peer, workload, counterpart, what, coincide in COMPARISONS:
        if peer not in theirs:
            continue
        peer_result, our_result = theirs[peer][workload], ours[counterpart]
        size = our_result["count"]
        speed_rows.append([
            f"{workload} ({size:,} comparisons)", peer,
            _per_call(peer_result["seconds"], size), _per_call(our_result["seconds"], size),
            _ratio(peer_result["seconds"] / our_result["seconds"]),
        ])  # fmt: skip
        fields = BAYES_FIELDS if workload.startswith("bayes") else STATS_FIELDS
        differences = {
            name: max_relative_difference(
                our_result["numbers"][name],
                peer_result["numbers"][name],
                P_FLOOR if name == "p_value" else 1e-300,
            )
            for name in fields
        }
        worst = max(differences.values())
        if coincide:
            verdict = "agree" if worst <= AGREE else "**DIFFER**"
        else:
            verdict = "different method (expected)"
        cells = ", ".join(f"{name} {value:.1e}" for name, value in differences.items())
        agreement_rows.append([peer, what, cells, verdict])
    speed = table(
        ["workload", "peer", "peer per comparison", "splitlab per comparison",
         "peer / splitlab"], speed_rows, "llrrr",
    )  # fmt: skip
    agreement = table(
        ["peer", "comparison", "max relative difference per field", "verdict"],
        agreement_rows,
        "lllc",
    )
    return speed, agreement


def bandit_tables(ours: dict, theirs: dict[str, dict], bandits: dict) -> tuple[str, str]:
    speed_rows, regret_rows = [], []

    def summary(regrets: list) -> tuple[float, float]:
        values = np.asarray(regrets)
        spread = values.std(ddof=1) if values.size > 1 else float("nan")
        return float(values.mean()), float(spread / np.sqrt(values.size))

    for policy in BANDIT_POLICIES:
        our = ours[policy]
        our_mean, our_se = summary(our["numbers"]["regret"])
        speed_rows.append([policy, "splitlab", _per_call(our["seconds"], our["count"]), "1.0x"])
        regret_rows.append([policy, "splitlab", f"{our_mean:,.1f} ± {1.96 * our_se:,.1f}", "—"])
        for peer, results in theirs.items():
            if policy not in results:
                continue
            result = results[policy]
            ratio = result["seconds"] / result["count"] / (our["seconds"] / our["count"])
            speed_rows.append([policy, peer, _per_call(result["seconds"], result["count"]),
                               _ratio(ratio)])  # fmt: skip
            mean, se = summary(result["numbers"]["regret"])
            combined = np.hypot(se, our_se)
            if peer == "vowpalwabbit":
                verdict = "different learner (not expected to match)"
            else:
                verdict = "consistent" if abs(mean - our_mean) <= 3 * combined else "**differs**"
            regret_rows.append([policy, peer, f"{mean:,.1f} ± {1.96 * se:,.1f}", verdict])
    speed = table(["policy", "library", "per choose + update", "vs splitlab"], speed_rows, "llrr")
    regret = table(
        ["policy", "library", f"mean cumulative regret ± 1.96 se (R = {bandits['replications']})",
         "vs splitlab (3 combined se)"], regret_rows, "llrl",
    )  # fmt: skip
    return speed, regret


# ---------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    parser.add_argument("--comparisons", type=int, default=1_000, help="statistics workloads")
    parser.add_argument("--horizon", type=int, default=5_000, help="bandit steps per run")
    parser.add_argument("--replications", type=int, default=10, help="bandit runs per policy")
    parser.add_argument("--linear-horizon", type=int, default=1_000, help="LinUCB steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="timed statistics calls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers-dir", type=Path, default=None, help="default $SPLITLAB_PEERS_DIR")
    parser.add_argument("--out", type=Path, default=results_dir() / "peers.md")
    parser.add_argument("--quick", action="store_true", help="smoke sizes: " + " ".join(QUICK))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:  # the smoke sizes first, so that options given explicitly still win
        args = parser.parse_args([*QUICK, *(sys.argv[1:] if argv is None else argv)])
    sizes = (args.comparisons, args.horizon, args.replications, args.linear_horizon, args.repeats)
    if min(sizes) < 1 or args.replications < 2:
        parser.error("sizes must be positive and --replications at least 2")
    directory = args.peers_dir or peers_dir()
    provenance = Provenance.start(
        command=command or script_command(argv, "benchmarks/peers/run.py"),
        seed=args.seed,
        parameters={
            "peers": args.peers, "comparisons": args.comparisons, "horizon": args.horizon,
            "replications": args.replications, "linear_horizon": args.linear_horizon,
            "repeats": args.repeats, "peers_dir": directory,
        },
        libraries=("numpy", "scipy", "numba"),
    )  # fmt: skip
    progress = progress or Progress(enabled=not args.no_progress)
    progress.start("peers", total=len(args.peers) + 2)

    stats = make_stats(args.comparisons, args.seed)
    bandits = make_bandits(args.horizon, args.replications, args.linear_horizon, args.seed)
    ours_stats = splitlab_stats(stats, args.repeats)
    progress.step("splitlab statistics")
    ours_bandits = splitlab_bandits(bandits)
    progress.step("splitlab bandits")

    status_rows, stats_results, bandit_results = [], {}, {}
    for peer in args.peers:
        python, status = peer_environment(peer, directory)
        if python is not None and peer in STATS_PEERS + BANDIT_PEERS:
            request = {
                "peer": peer,
                "repeats": args.repeats,
                "stats": stats if peer in STATS_PEERS else None,
                "bandits": bandits if peer in BANDIT_PEERS else None,
            }
            start = time.perf_counter()
            try:
                answer = run_peer(python, request)
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                status = f"installed, but its workloads failed: {exc}"
            else:
                target = stats_results if peer in STATS_PEERS else bandit_results
                target[peer] = answer["results"]
                status += f"; ran in {time.perf_counter() - start:.1f} s"
        elif python is not None:
            status += "; no workload here yet (off-policy evaluation is not compared)"
        status_rows.append([peer, status.replace("|", "/")])
        progress.step(peer)
    progress.finish()

    stats_speed, stats_agreement = stats_tables(ours_stats, stats_results)
    bandit_speed, bandit_regret = bandit_tables(ours_bandits, bandit_results, bandits)
    report = f"""# Peers side by side

The same workloads in splitlab (this process) and in each peer library (its own virtual
environment, a subprocess started by this run), on the same seeded inputs. Ratios are peer
time / splitlab time (> 1: splitlab is faster). Numbers agree when the largest relative
difference of every field is ≤ {AGREE:g} (p-values: relative to max(p, {P_FLOOR:g}), since a
peer computing 2 (1 − cdf) loses relative precision far in the tail). How each peer was installed:
`bash benchmarks/peers/setup.sh` (one venv per peer under `{directory}`).

{provenance.block()}

## Peers

{table(["peer", "status"], status_rows)}

## Statistics: speed ({args.comparisons:,} comparisons, best of {args.repeats})

{stats_speed}

## Statistics: agreement where the methods coincide

{stats_agreement}

## Bandits: per-call speed ({args.replications} runs × {args.horizon:,} steps; LinUCB d = \
{N_FEATURES}, {args.linear_horizon:,} steps)

Each library runs inside the same Python loop (draw a reward, choose, update, add the
regret), so the ratio is the cost of one `choose` + `update` through each public API.

{bandit_speed}

## Bandits: regret on the same environments

{bandit_regret}

## Conventions that differ

{CONVENTIONS}"""
    print(report)
    write_text(args.out, report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

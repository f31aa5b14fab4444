"""Regret of every splitlab bandit policy on the standard environments, and the simulation
speed budget.

Budget (docs/architecture.md, "Performance budgets"): 1,000 replications x 10,000 steps of a
10-arm Thompson sampler in < 10 s on 2 cores. Claim (issue 5, "Evidence"): on the 10-arm
Bernoulli testbed Thompson sampling, KL-UCB and UCB1 reach sublinear regret and beat
epsilon-greedy; on a linear contextual environment LinUCB/LinTS/SquareCB beat every
context-free policy; discounted variants recover after a change point.

Environments (all seeded, see ``splitlab.simulate.environments``):

- bernoulli: ``BernoulliArms.testbed(10, seed=0)``, means uniform on [0, 1];
- gaussian: ``GaussianArms.testbed(10, seed=0)``, means N(0, 1), noise sd 1;
- linear: ``LinearContextual.random(10, 5, sd=1, seed=0)``, contexts N(0, I_5), θ_k on the
  unit sphere (every arm's average reward is 0: only the context helps);
- logistic: ``LogisticContextual.random(10, 5, scale=2, seed=0)``;
- piecewise: the Bernoulli testbed's means, permuted at T/3 and again at 2T/3.

Every policy runs on every environment it accepts (policies that need rewards in [0, 1]
skip the Gaussian ones; contextual policies skip the context-free ones) through
``splitlab.simulate.simulate`` with its default hyperparameters, plus discounted
(``discount=0.99``) Thompson sampling and UCB1. TopTwoThompson runs with
``--top-two-replications`` copies only: its challenger resampling costs up to 10,000
posterior draws per decision once the posterior concentrates.

The timing line runs ``simulate(ThompsonSampling(), bernoulli, 10_000, 1_000)`` (best of
``--repeats`` after a warm-up call that compiles); the first call's time in this process is
reported separately as the compile time. ``--budget-replications`` shrinks that workload
(``--quick`` does); the line then says it is not the budget's size.

    python benchmarks/bandits_regret.py [--replications 1000] [--horizon 10000] \
        [--top-two-replications 10] [--repeats 3] [--seed 0] \
        [--out benchmarks/results/bandits_regret.md]
    splitlab bench regret [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from splitlab.bandits.linear import LinTS, LinUCB, LogisticTS, SquareCB
from splitlab.bandits.mab import (
    EXP3,
    KLUCB,
    UCB1,
    EpsilonGreedy,
    FixedSplit,
    GaussianThompson,
    Softmax,
    ThompsonSampling,
    TopTwoThompson,
)
from splitlab.bench.markdown import results_dir, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, load_average, script_command, usable_cores
from splitlab.errors import InvalidArgumentError
from splitlab.simulate import (
    BernoulliArms,
    GaussianArms,
    LinearContextual,
    LogisticContextual,
    PiecewiseStationary,
    simulate,
)

QUICK = (
    "--replications", "50", "--horizon", "2000", "--top-two-replications", "2",
    "--repeats", "1", "--budget-replications", "100",
    "--policies", "ThompsonSampling", "UCB1", "EpsilonGreedy(0.1)", "FixedSplit (uniform)",
    "LinUCB",
)  # fmt: skip
BUDGET_SECONDS = 10.0
BUDGET_REPLICATIONS, BUDGET_HORIZON = 1_000, 10_000


def environments(horizon: int) -> dict:
    testbed = BernoulliArms.testbed(10, seed=0)
    rng = np.random.default_rng(1)
    pieces = np.stack(
        [testbed.means, rng.permutation(testbed.means), rng.permutation(testbed.means)]
    )
    return {
        "bernoulli": testbed,
        "gaussian": GaussianArms.testbed(10, seed=0),
        "linear": LinearContextual.random(10, 5, sd=1.0, seed=0),
        "logistic": LogisticContextual.random(10, 5, scale=2.0, seed=0),
        "piecewise": PiecewiseStationary(pieces, change_points=[horizon // 3, 2 * horizon // 3]),
    }


def policies() -> dict:
    return {
        "ThompsonSampling": ThompsonSampling,
        "ThompsonSampling(discount=0.99)": lambda: ThompsonSampling(discount=0.99),
        "KLUCB": KLUCB,
        "UCB1": UCB1,
        "UCB1(discount=0.99)": lambda: UCB1(discount=0.99),
        "EpsilonGreedy(0.1)": lambda: EpsilonGreedy(epsilon=0.1),
        "GaussianThompson": GaussianThompson,
        "EXP3(0.1)": lambda: EXP3(gamma=0.1),
        "Softmax(0.1)": lambda: Softmax(tau=0.1),
        "TopTwoThompson": TopTwoThompson,
        "FixedSplit (uniform)": lambda: FixedSplit(weights=[1.0] * 10),
        "LinUCB": LinUCB,
        "LinTS": LinTS,
        "LogisticTS": LogisticTS,
        "SquareCB": SquareCB,
    }


def timing(repeats: int, seed: int, replications: int = BUDGET_REPLICATIONS) -> tuple[float, float]:
    """(first call incl. compile, best of ``repeats``) seconds of the budget workload."""
    env = BernoulliArms.testbed(10, seed=0)

    def run() -> float:
        start = time.perf_counter()
        simulate(ThompsonSampling(), env, BUDGET_HORIZON, replications, seed=seed, record=())
        return time.perf_counter() - start

    first = run()
    return first, min(run() for _ in range(repeats))


def compile_seconds(factory, env) -> float:
    """A 2-step, 2-replication call: numba compiles the runner for this policy's kernels."""
    start = time.perf_counter()
    simulate(factory(), env, 2, 2, seed=0, record=())
    return time.perf_counter() - start


def plot(curves: dict, path: Path) -> None:
    names = list(curves)
    figure = Figure(figsize=(4.2 * len(names), 4.2), layout="constrained")
    axes = figure.subplots(1, len(names))
    for axis, env_name in zip(axes, names, strict=True):
        for label, result in curves[env_name].items():
            steps = np.arange(1, result.horizon + 1)
            mean, band = result.mean_cumulative_regret, result.band
            (line,) = axis.plot(steps, mean, label=label, linewidth=1.2)
            axis.fill_between(steps, mean - band, mean + band, color=line.get_color(), alpha=0.2)
        axis.set_title(env_name)
        axis.set_xlabel("step")
        axis.set_yscale("symlog", linthresh=10)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean cumulative regret (±1.96 sd/√R)")
    handles, labels = {}, []
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    figure.legend([handles[label] for label in labels], labels, loc="outside lower center", ncols=8)
    figure.savefig(path, dpi=100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=10_000)
    parser.add_argument("--top-two-replications", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--budget-replications", type=int, default=BUDGET_REPLICATIONS,
        help="replications of the timed Thompson workload (the budget's size by default)",
    )  # fmt: skip
    parser.add_argument(
        "--policies", nargs="+", metavar="LABEL", choices=list(policies()),
        help="run only these rows (default: every policy; each class compiles once, ~1-3 s)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=results_dir() / "bandits_regret.md")
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.replications, args.horizon, args.top_two_replications, args.repeats,
           args.budget_replications) < 1 or args.horizon < 10:  # fmt: skip
        parser.error("sizes must be positive and --horizon at least 10")
    provenance = Provenance.start(
        command=command or script_command(argv, "benchmarks/bandits_regret.py"),
        seed=args.seed,
        parameters={
            "replications": args.replications, "horizon": args.horizon,
            "top_two_replications": args.top_two_replications, "repeats": args.repeats,
            "budget_replications": args.budget_replications,
            "policies": args.policies or "all",
        },
        libraries=("numpy", "numba"),
    )  # fmt: skip
    progress = progress or Progress()
    load = load_average()[0]
    envs = environments(args.horizon)
    factories = policies()
    if args.policies:
        factories = {label: factories[label] for label in args.policies}
    progress.start("bandits_regret", total=1 + len(factories) + 1)

    compile_ts = compile_seconds(ThompsonSampling, BernoulliArms.testbed(10, seed=0))
    first, best = timing(args.repeats, args.seed, args.budget_replications)
    at_budget_size = args.budget_replications == BUDGET_REPLICATIONS
    if at_budget_size:
        verdict = "PASS" if best < BUDGET_SECONDS else "FAIL"
    else:
        verdict = f"not the budget's size: {args.budget_replications:,} replications"
    progress.step(f"Thompson timing {best:.2f} s")

    curves: dict[str, dict] = {name: {} for name in envs}
    rows: dict[str, dict[str, str]] = {}
    seconds: dict[str, float] = {}
    for label, factory in factories.items():
        rows[label] = {}
        for env_name, env in envs.items():
            replications = (
                min(args.replications, args.top_two_replications)
                if label == "TopTwoThompson"
                else args.replications
            )
            try:
                compiled = compile_seconds(factory, env)
            except InvalidArgumentError:
                rows[label][env_name] = "—"
                continue
            start = time.perf_counter()
            result = simulate(factory(), env, args.horizon, replications, seed=args.seed, record=())
            elapsed = time.perf_counter() - start
            seconds[f"{label} on {env_name}"] = elapsed
            curves[env_name][label] = result
            final, band = result.mean_cumulative_regret[-1], result.band[-1]
            tenth = result.mean_cumulative_regret[args.horizon // 10 - 1]
            marker = f" (R={replications})" if replications != args.replications else ""
            rows[label][env_name] = f"{final:,.1f} ± {band:,.1f} [{final / tenth:.1f}x]{marker}"
            progress.finish()  # clear the bar's line before printing below it
            print(
                f"{label:32s} {env_name:10s} {final:10.1f} ± {band:6.1f}  "
                f"run {elapsed:6.2f} s, compile {compiled:5.2f} s",
                flush=True,
            )
        progress.step(label)

    png = args.out.with_suffix(".png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(curves, png)
    progress.step("plot")
    progress.finish()

    header = "| policy | " + " | ".join(envs) + " |"
    rule = "| --- | " + " | ".join("---:" for _ in envs) + " |"
    body = "\n".join(
        f"| {label} | " + " | ".join(cells[name] for name in envs) + " |"
        for label, cells in rows.items()
    )
    run_times = "\n".join(f"| {name} | {value:.2f} s |" for name, value in seconds.items())
    budget_line = (
        f"**{args.budget_replications:,} replications × 10,000 steps of 10-arm Thompson "
        f"sampling: {best:.2f} s (budget for 1,000 replications < 10 s) — {verdict}**"
    )
    report = f"""# Bandit regret and simulation speed

{budget_line} (best of {args.repeats} after a warm-up call; the warm-up took {first:.2f} s;
compiling the runner for ThompsonSampling's kernels, a 2-step call in this process, took
{compile_ts:.2f} s). 1-minute load average before timing: {load:.2f} on
{usable_cores()} usable cores (other processes slow every number here).

How it runs: the time loop is in numba (`splitlab.simulate._bandit_kernels.run_block`),
the policy's `_select_kernel` / `_update_kernel` passed in as first-class dispatcher
arguments; replications are cut into blocks of 32, each block runs the whole horizon with
its own seed in a GIL-free call, one thread per usable core.

{provenance.block()}

## Final cumulative regret at T = {args.horizon:,}

Mean over R = {args.replications:,} replications ± 1.96·sd/√R, and in brackets the growth
from T/10 to T (10x for linear regret, ~1-2x for logarithmic). "—": the policy does not
accept the environment (rewards outside [0, 1] for a policy that needs them, or no context
for a contextual policy). Regret is the pseudo-regret Σ_t max_k E[r_k | x_t] − E[r_a_t | x_t].

{header}
{rule}
{body}

Curves: [{png.name}]({png.name}) (symlog scale).

## Run time of each simulation (after its compile)

| run | time |
| --- | ---: |
{run_times}
"""
    write_text(args.out, report)
    print(report)
    print(f"written to {args.out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

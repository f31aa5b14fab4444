"""Peeking at experiments: type I error, coverage, power and sample size of the sequential
methods against the fixed-horizon test, by seeded simulation.

R replications of an experiment are looked at after every batch of ``--batch`` units per
arm, K = ``--looks`` times, as streams of cumulative sufficient statistics from
``splitlab.simulate.ab_streams`` (normal batches from the exact law of their sufficient
statistics, Bernoulli batches as binomial counts, lognormal units one by one) and
``count_streams`` (assignment counts, for SRM). Every method sees the same streams:

* Welch's t-test at the horizon only (the fixed-horizon design) and at every look
  (peeking, the mistake the other methods fix);
* the asymptotic confidence sequence (running minimum p-value, ``n_star`` = the horizon's
  total sample size) and the mSPRT (τ² from ``msprt_tau2`` at the horizon and the true sd);
* group-sequential designs with K equally spaced looks (O'Brien-Fleming and Pocock-type
  α-spending), on Welch's z statistic;
* for SRM, the chi-square test at every look and ``sequential_srm``.

Under A/A streams a method's "ever-reject" rate is its type I error under continuous
monitoring and must stay at or below α within 4 binomial standard errors; under A/B
streams the table reports power (ever rejecting by the horizon), the mean look of first
rejection (capped at the horizon: the expected sample size of a trial that stops at its
first rejection) and simultaneous coverage of the true effect. Effects are given as the
drift δ / se_horizon, in units of the fixed-horizon test's final standard error.

    python benchmarks/validity_sequential.py [--replications 10000] [--looks 100] \
        [--batch 100] [--drifts 2.0 2.8 4.0] [--seed 0] \
        [--out benchmarks/results/validity_sequential.md]
    splitlab bench validity [--quick]

The plot (rejection rate by look, under H0 and under an effect) is written next to
``--out`` with the suffix ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from splitlab.bench.markdown import results_dir, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, script_command
from splitlab.sequential.confseq import confidence_sequence_from_estimate
from splitlab.sequential.group import GroupSequentialDesign
from splitlab.sequential.msprt import msprt_from_estimate, msprt_tau2
from splitlab.sequential.srm import sequential_srm
from splitlab.simulate import ab_streams, count_streams
from splitlab.stats.frequentist import ttest
from splitlab.stats.srm import srm_test

ALPHA = 0.05
SIGMAS = 4.0
QUICK = ("--replications", "4000", "--looks", "20", "--batch", "100", "--skip-compile")
# Control laws (the ab_streams keywords) and their per-unit sd, which fixes the mSPRT's τ².
LAWS = {
    "normal": ({"mean": 0.0, "sd": 1.0}, 1.0),
    "bernoulli": ({"mean": 0.1}, float(np.sqrt(0.1 * 0.9))),
    "lognormal": ({"mean": 1.0, "sd": 2.0}, 2.0),
}
FIXED = "Welch t-test at the horizon only"
PEEKING = "Welch t-test at every look (peeking)"
CS = "confidence sequence (running min p)"
MSPRT = "mSPRT (running min p)"
OBF = "group-sequential, O'Brien-Fleming spending"
POCOCK = "group-sequential, Pocock spending"
METHODS = (FIXED, PEEKING, CS, MSPRT, OBF, POCOCK)
VALID = (FIXED, CS, MSPRT, OBF, POCOCK)
SRM_POWER = "sequential SRM power, true split {share}/{rest} vs 50/50"
SRM_WEIGHTS = {"2 arms 50/50": [0.5, 0.5], "3 arms 50/30/20": [0.5, 0.3, 0.2]}
COMPILE_SCRIPT = """
import json, time
start = time.perf_counter()
from splitlab.simulate import ab_streams, count_streams
from splitlab.sequential.group import GroupSequentialDesign
imported = time.perf_counter()
ab_streams(2, 2, 2, seed=0)
streams = time.perf_counter()
count_streams(2, 2, 2, [0.5, 0.5], seed=0)
counts = time.perf_counter()
GroupSequentialDesign(k=5)
gst = time.perf_counter()
print(json.dumps({"import": imported - start, "ab_streams": streams - imported,
                  "count_streams": counts - streams, "group_sequential": gst - counts}))
"""


@dataclass
class Analysis:
    """Per method, a boolean (R, K) array: rejected at that look (not yet cumulative)."""

    rejects: dict[str, np.ndarray]
    intervals: dict[str, tuple[np.ndarray, np.ndarray]]
    seconds: dict[str, float]


def tolerance(replications: int) -> float:
    return SIGMAS * float(np.sqrt(ALPHA * (1 - ALPHA) / replications))


def ever(reject: np.ndarray) -> np.ndarray:
    return np.any(reject, axis=1)


def first_look(reject: np.ndarray) -> np.ndarray:
    """Look (1-based) of the first rejection, the horizon K where there is none."""
    looks = reject.shape[1]
    return np.where(ever(reject), np.argmax(reject, axis=1) + 1, looks)


def analyse(
    streams,
    law_sd: float,
    looks: int,
    batch: int,
    designs,
    *,
    keep_intervals: bool,
    alpha: float = ALPHA,
) -> Analysis:
    """Every method on the same (R, K) streams, vectorized over replications and looks;
    the (R, K) intervals are kept only with ``keep_intervals`` (for the coverage table).
    ``designs`` holds the group-sequential designs under the keys OBF and POCOCK."""
    seconds = {}
    start = time.perf_counter()
    welch = ttest(streams.control(), streams.treatment(), alpha=alpha)
    seconds["Welch t-test"] = time.perf_counter() - start
    at_horizon = np.zeros_like(welch.p_value, dtype=bool)
    at_horizon[:, -1] = welch.p_value[:, -1] < alpha

    start = time.perf_counter()
    cs_low, cs_high, cs_p = confidence_sequence_from_estimate(
        welch.effect, welch.se, streams.n_control + streams.n_treatment,
        alpha=alpha, n_star=2 * batch * looks,
    )  # fmt: skip
    seconds["confidence sequence"] = time.perf_counter() - start
    start = time.perf_counter()
    tau2 = float(msprt_tau2(batch * looks, law_sd, alpha=alpha))
    msprt_low, msprt_high, msprt_p = msprt_from_estimate(
        welch.effect, welch.se, alpha=alpha, tau2=tau2
    )
    seconds["mSPRT"] = time.perf_counter() - start
    z = np.abs(welch.statistic)
    obf, pocock = designs[OBF].boundaries, designs[POCOCK].boundaries
    rejects = {
        FIXED: at_horizon,
        PEEKING: welch.p_value < alpha,
        CS: cs_p <= alpha,
        MSPRT: msprt_p <= alpha,
        OBF: z >= obf,
        POCOCK: z >= pocock,
    }
    if not keep_intervals:
        return Analysis(rejects, {}, seconds)
    horizon_low = np.full_like(welch.ci_low, -np.inf)
    horizon_high = np.full_like(welch.ci_high, np.inf)
    horizon_low[:, -1], horizon_high[:, -1] = welch.ci_low[:, -1], welch.ci_high[:, -1]
    return Analysis(
        rejects=rejects,
        intervals={
            FIXED: (horizon_low, horizon_high),
            PEEKING: (welch.ci_low, welch.ci_high),
            CS: (cs_low, cs_high),
            MSPRT: (msprt_low, msprt_high),
            OBF: (welch.effect - obf * welch.se, welch.effect + obf * welch.se),
            POCOCK: (welch.effect - pocock * welch.se, welch.effect + pocock * welch.se),
        },
        seconds=seconds,
    )


def cold_compile_seconds() -> dict[str, float]:
    """First-call times in a fresh interpreter with an empty numba cache (true compile),
    then in another fresh interpreter reusing that cache (what later runs pay)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        result = {}
        for label in ("cold", "cached"):
            run = subprocess.run(
                [sys.executable, "-c", COMPILE_SCRIPT], env=env, capture_output=True,
                text=True, check=True,
            )  # fmt: skip
            result[label] = json.loads(run.stdout)
    return result


def verdict(rate: float, replications: int) -> str:
    return "ok" if rate <= ALPHA + tolerance(replications) else "**ABOVE α**"


def type_one_table(null: dict[str, Analysis], replications: int) -> str:
    laws = list(null)
    lines = [
        "| method | " + " | ".join(laws) + " | within α + tolerance |",
        "| --- | " + " | ".join("---:" for _ in laws) + " | :---: |",
    ]
    for method in METHODS:
        rates = [float(np.mean(ever(null[law].rejects[method]))) for law in laws]
        if method == PEEKING:
            mark = "no (not a sequential method)"
        else:
            mark = ", ".join(verdict(rate, replications) for rate in rates)
        lines.append(
            f"| {method} | " + " | ".join(f"{rate:.4f}" for rate in rates) + f" | {mark} |"
        )
    return "\n".join(lines)


def srm_table(srm: dict[str, dict[str, float]], replications: int) -> str:
    lines = ["| test | " + " | ".join(srm) + " |", "| --- | " + " | ".join("---:" for _ in srm)
             + " |"]  # fmt: skip
    for method in ("chi-square at the horizon only", "chi-square at every look (peeking)",
                   "sequential SRM (running min p)", SRM_POWER.format(share=51, rest=49),
                   SRM_POWER.format(share=52, rest=48)):  # fmt: skip
        cells = []
        for name in srm:
            rate = srm[name].get(method)
            if rate is None:
                cells.append("—")
            elif method.startswith("sequential SRM (") and rate > ALPHA + tolerance(replications):
                cells.append(f"**{rate:.4f}**")
            else:
                cells.append(f"{rate:.4f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def power_table(effects: dict[float, tuple[float, Analysis]], looks: int, batch: int) -> str:
    lines = [
        "| drift δ/se | effect (sd units) | fixed-horizon power (normal theory) | method | "
        "power (ever rejects) | mean look of first rejection | E[N per arm] | E[N] / N_fixed |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for drift, (effect, analysis) in effects.items():
        theory = float(stats.norm.sf(stats.norm.ppf(1 - ALPHA / 2) - drift)
                       + stats.norm.cdf(-stats.norm.ppf(1 - ALPHA / 2) - drift))  # fmt: skip
        for method in (FIXED, CS, MSPRT, OBF, POCOCK, PEEKING):
            reject = analysis.rejects[method]
            stop = first_look(reject)
            lines.append(
                f"| {drift:g} | {effect:.4f} | {theory:.3f} | {method} | "
                f"{np.mean(ever(reject)):.4f} | {stop.mean():.1f} / {looks} | "
                f"{stop.mean() * batch:,.0f} | {stop.mean() / looks:.3f} |"
            )
    return "\n".join(lines)


def coverage_table(effects: dict[float, tuple[float, Analysis]], replications: int) -> str:
    lines = [
        "| drift δ/se | method | simultaneous coverage (all looks) | ≥ 1 − α − tolerance |",
        "| ---: | --- | ---: | :---: |",
    ]
    bound = 1 - ALPHA - tolerance(replications)
    for drift, (effect, analysis) in effects.items():
        for method in (CS, MSPRT, OBF, POCOCK, PEEKING, FIXED):
            low, high = analysis.intervals[method]
            covered = float(np.mean(np.all((low <= effect) & (effect <= high), axis=1)))
            note = "ok" if covered >= bound else "no"
            if method == PEEKING:
                note += " (fixed-horizon intervals, not a sequential method)"
            if method == FIXED:
                note += " (one interval, at the horizon)"
            if method in (OBF, POCOCK):
                note += " (repeated confidence intervals)"
            lines.append(f"| {drift:g} | {method} | {covered:.4f} | {note} |")
    return "\n".join(lines)


def plot(null: Analysis, alternative: Analysis, drift: float, looks: int, path: Path) -> None:
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    axes = figure.subplots(1, 2)
    look = np.arange(1, looks + 1)
    colours = {FIXED: "black", PEEKING: "tab:red", CS: "tab:blue", MSPRT: "tab:cyan",
               OBF: "tab:green", POCOCK: "tab:olive"}  # fmt: skip
    for axis, analysis, title in (
        (axes[0], null, "A/A (H0): cumulative false-positive rate"),
        (axes[1], alternative, f"A/B, drift {drift:g} se at the horizon: cumulative power"),
    ):
        for method in METHODS:
            colour = colours[method]
            curve = np.mean(np.logical_or.accumulate(analysis.rejects[method], axis=1), axis=0)
            if method == FIXED:
                axis.plot([looks], [curve[-1]], marker="o", color=colour, linestyle="",
                          label=method)  # fmt: skip
            else:
                axis.plot(look, curve, color=colour, label=method)
        axis.axhline(ALPHA, color="grey", linestyle=":", linewidth=1)
        axis.set_xlabel(f"look (a batch per arm each), horizon {looks}")
        axis.set_ylabel("share of replications rejected so far")
        axis.set_title(title, fontsize=10)
        axis.set_xlim(0, looks + 1)
    axes[0].legend(fontsize=7, loc="upper left")
    figure.savefig(path, dpi=110)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=10_000)
    parser.add_argument("--looks", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100, help="units per arm per look")
    parser.add_argument("--drifts", type=float, nargs="+", default=[2.0, 2.8, 4.0],
                        help="effects in units of the horizon's standard error")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=results_dir() / "validity_sequential.md")
    parser.add_argument(
        "--skip-compile", action="store_true",
        help="skip the cold/warm numba compile measurement in fresh interpreters",
    )  # fmt: skip
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.replications, args.looks, args.batch) < 1 or min(args.drifts) <= 0:
        parser.error("--replications, --looks, --batch and --drifts must be positive")
    replications, looks, batch = args.replications, args.looks, args.batch
    provenance = Provenance.start(
        command=command or script_command(argv, "benchmarks/validity_sequential.py"),
        seed=args.seed,
        parameters={
            "replications": replications, "looks": looks, "batch": batch,
            "drifts": args.drifts, "alpha": ALPHA,
        },
    )  # fmt: skip
    progress = progress or Progress()
    progress.start("validity_sequential", total=len(LAWS) + len(args.drifts) + 3)

    compile_seconds = None if args.skip_compile else cold_compile_seconds()
    progress.step("compile times" + (" (skipped)" if args.skip_compile else ""))
    timings: dict[str, float] = {}
    # Load (or, if the sources changed since the cache was written, compile) the kernels
    # first, so that the rows below time compiled code.
    start = time.perf_counter()
    ab_streams(2, 2, 2, seed=0)
    count_streams(2, 2, 2, [0.5, 0.5], seed=0)
    timings["first kernel calls in this process (cache load or compile)"] = (
        time.perf_counter() - start
    )
    start = time.perf_counter()
    designs = {
        OBF: GroupSequentialDesign(k=looks, alpha=ALPHA, spending="obf"),
        POCOCK: GroupSequentialDesign(k=looks, alpha=ALPHA, spending="pocock"),
    }
    timings[f"group-sequential boundaries, 2 designs × {looks} looks"] = time.perf_counter() - start

    null: dict[str, Analysis] = {}
    for index, (law, (keywords, law_sd)) in enumerate(LAWS.items()):
        start = time.perf_counter()
        streams = ab_streams(replications, looks, batch, distribution=law,
                             seed=args.seed + index, **keywords)  # fmt: skip
        timings[f"A/A streams, {law}"] = time.perf_counter() - start
        null[law] = analyse(streams, law_sd, looks, batch, designs, keep_intervals=False)
        for name, seconds in null[law].seconds.items():
            timings[f"{name}, {law} A/A"] = seconds
        del streams
        progress.step(f"A/A {law}")

    horizon_se = float(np.sqrt(2.0 / (batch * looks)))
    effects: dict[float, tuple[float, Analysis]] = {}
    for index, drift in enumerate(args.drifts):
        effect = drift * horizon_se
        start = time.perf_counter()
        streams = ab_streams(replications, looks, batch, effect=effect,
                             seed=args.seed + 100 + index, **LAWS["normal"][0])  # fmt: skip
        timings[f"A/B streams, normal, drift {drift:g}"] = time.perf_counter() - start
        effects[drift] = (
            effect,
            analyse(streams, 1.0, looks, batch, designs, keep_intervals=True),
        )
        del streams
        progress.step(f"A/B drift {drift:g}")

    srm: dict[str, dict[str, float]] = {}
    for index, (name, weights) in enumerate(SRM_WEIGHTS.items()):
        start = time.perf_counter()
        counts = count_streams(replications, looks, 2 * batch, weights,
                               seed=args.seed + 200 + index)  # fmt: skip
        timings[f"count streams, {name}"] = time.perf_counter() - start
        start = time.perf_counter()
        sequential = np.mean(ever(sequential_srm(counts, weights).p_value <= ALPHA))
        timings[f"sequential SRM, {name}"] = time.perf_counter() - start
        chi_square = srm_test(counts, weights).p_value < ALPHA
        srm[name] = {
            "chi-square at the horizon only": float(np.mean(chi_square[:, -1])),
            "chi-square at every look (peeking)": float(np.mean(ever(chi_square))),
            "sequential SRM (running min p)": float(sequential),
        }
    for index, share in enumerate((0.51, 0.52)):
        mismatch = count_streams(replications, looks, 2 * batch, [share, 1.0 - share],
                                 seed=args.seed + 300 + index)  # fmt: skip
        srm["2 arms 50/50"][
            SRM_POWER.format(share=round(100 * share), rest=round(100 * (1 - share)))
        ] = float(np.mean(ever(sequential_srm(mismatch, [0.5, 0.5]).p_value <= ALPHA)))
    del mismatch
    progress.step("SRM streams")

    plot_drift = args.drifts[len(args.drifts) // 2]
    png = args.out.with_suffix(".png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(null["normal"], effects[plot_drift][1], plot_drift, looks, png)
    progress.step("plot")
    progress.finish()

    if compile_seconds is None:
        compile_rows = "| (skipped: --skip-compile) | — | — |"
    else:
        cold, cached = compile_seconds["cold"], compile_seconds["cached"]
        compile_rows = "\n".join(
            f"| {name} | {cold[name]:.2f} s | {cached[name]:.2f} s |"
            for name in ("import", "ab_streams", "count_streams", "group_sequential")
        )
    timing_rows = "\n".join(f"| {name} | {seconds:.3f} s |" for name, seconds in timings.items())
    bound = ALPHA + tolerance(replications)
    report = f"""# Sequential validity: peeking with and without always-valid methods

{replications:,} replications per scenario, each looked at after every batch of {batch} units
per arm, {looks} looks (horizon {batch * looks:,} units per arm); α = {ALPHA}. A method's rate
is the share of replications it rejects at some look. Tolerance: {SIGMAS:g} binomial standard
errors, α + {tolerance(replications):.4f} = {bound:.4f}.
Confidence sequence: n_star = {2 * batch * looks:,} (the horizon's total). mSPRT: τ² =
msprt_tau2({batch * looks:,}, sd) with the law's true sd. Group-sequential: {looks} equally spaced
looks, two-sided, α/2 spent per side, on Welch's z. The fixed-horizon test analyses once, at
the horizon. The sequential methods are asymptotic (plug-in variance); normal data come from
the exact law of their batch sufficient statistics, Bernoulli (rate 0.1) as binomial counts,
lognormal (mean 1, sd 2, skewness ≈ 14) unit by unit.

{provenance.block()}

## Type I error under continuous peeking (A/A streams)

{type_one_table(null, replications)}

## Sample-ratio mismatch under continuous peeking (count streams, {2 * batch} units per look)

{srm_table(srm, replications)}

## Power and expected sample size (normal data, same streams for every method)

The mean look of first rejection counts a replication that never rejects at the horizon
({looks}), so E[N] is the expected sample size of a trial that stops at its first
rejection and runs to the horizon otherwise. The peeking t-test's row is not a valid
method (its type I error is in the first table); it is shown for scale.

{power_table(effects, looks, batch)}

## Simultaneous coverage of the true effect (normal data)

The share of replications whose interval covers the true effect at every look at once
(the fixed-horizon test: its single interval at the horizon).

{coverage_table(effects, replications)}

![rejection rate by look]({png.name})

`{png.name}`: share of replications rejected by each look; left A/A (the dotted line is
α), right the effect with drift {plot_drift:g}.

## Timings

numba compile, first call in a fresh interpreter (an empty cache: the true compile) and in
another fresh interpreter reusing that cache:

| step | cold cache | warm cache |
| --- | ---: | ---: |
{compile_rows}

This run (compiled kernels), {replications:,} × {looks} cells per scenario:

| step | time |
| --- | ---: |
{timing_rows}
"""
    print(report)
    write_text(args.out, report)
    print(f"written to {args.out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

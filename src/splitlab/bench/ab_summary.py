"""Throughput of splitlab's summary-statistics t-test against a bare numpy formula.

Budget (docs/architecture.md, "Performance budgets"): summary-statistics tests run at
>= 10^6 comparisons/s and within 3x of a bare numpy formula doing the same work.

One comparison is one (control, treatment) pair of ``Moments(n, mean, var)``; 10^6 pairs
are two struct-of-arrays of shape (10^6,) passed to one ``splitlab.stats.frequentist.ttest``
call. Workloads:

(a) Welch, absolute scale: effect, se, df, statistic, two-sided p-value, 95% CI.
(b) Relative lift (``relative=True``), delta-method variance
    var_t / (mc² n_t) + var_c mt² / (mc⁴ n_c), Welch df, p-value, CI.

Each is timed (best of ``--repeats`` calls with ``time.perf_counter`` after one warm-up
call, the garbage collector off as in ``timeit``) against a bare numpy + scipy.special
formula computing the same numbers (Welch df, ``stdtr`` p-value, ``stdtrit`` quantile),
after checking that both agree to 1e-9 relative. Building the two ``Moments`` objects
(input validation) is timed on its own; ``scipy.stats.ttest_ind_from_stats`` is a peer row
(statistic and p-value only: it computes no interval). A cProfile run then splits one
splitlab call into validation / mean_difference / quantile / p-value / blanking / the rest.

    python benchmarks/ab_summary.py [--n 1000000] [--repeats 5] \
        [--out benchmarks/results/ab_summary.md]
    splitlab bench speed [--quick]          # this suite with the other speed suites
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special, stats

from splitlab.bench.markdown import results_dir, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, load_average, script_command
from splitlab.stats.frequentist import ttest
from splitlab.stats.moments import Moments

ALPHA = 0.05
RTOL = 1e-9
MIN_RATE = 1e6
MAX_RATIO = 3.0
FIELDS = ("effect", "se", "df", "statistic", "p_value", "ci_low", "ci_high")
QUICK = ("--n", "100000", "--repeats", "2")


@dataclass(frozen=True)
class Arms:
    n_c: np.ndarray
    mean_c: np.ndarray
    var_c: np.ndarray
    n_t: np.ndarray
    mean_t: np.ndarray
    var_t: np.ndarray


@dataclass(frozen=True)
class Row:
    workload: str
    seconds: float
    n: int
    baseline: float | None = None
    budget: bool = False
    note: str = ""

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def ratio(self) -> float | None:
        return None if self.baseline is None else self.seconds / self.baseline

    @property
    def verdict(self) -> str:
        if not self.budget:
            return "—"
        ok = self.rate >= MIN_RATE and (self.ratio is None or self.ratio <= MAX_RATIO)
        return "PASS" if ok else "FAIL"


def make_arms(n: int, seed: int) -> Arms:
    """Realistic A/B summaries: 10^3-2·10^5 units per arm, control means well away from zero
    (so the relative lift is defined everywhere) and true effects of ~0-6 standard errors,
    so that p-values spread over (0, 1) instead of all underflowing to 0."""
    rng = np.random.default_rng(seed)
    n_c = rng.integers(1_000, 200_000, n).astype(np.float64)
    n_t = rng.integers(1_000, 200_000, n).astype(np.float64)
    mean_c = rng.uniform(5.0, 15.0, n)
    var_c = rng.uniform(1.0, 25.0, n)
    var_t = rng.uniform(1.0, 25.0, n)
    mean_t = mean_c + rng.normal(0.0, 2.0, n) * np.sqrt(var_c / n_c + var_t / n_t)
    return Arms(n_c, mean_c, var_c, n_t, mean_t, var_t)


def bare_welch(arms: Arms, *, relative: bool) -> dict[str, np.ndarray]:
    """The textbook formulas in plain numpy + scipy.special, no validation, no error rows."""
    se2_c = arms.var_c / arms.n_c
    se2_t = arms.var_t / arms.n_t
    df = (se2_c + se2_t) ** 2 / (se2_c**2 / (arms.n_c - 1) + se2_t**2 / (arms.n_t - 1))
    if relative:
        mean_c2 = arms.mean_c**2
        effect = (arms.mean_t - arms.mean_c) / np.abs(arms.mean_c)
        se = np.sqrt(
            arms.var_t / (mean_c2 * arms.n_t)
            + arms.var_c * arms.mean_t**2 / (mean_c2**2 * arms.n_c)
        )
    else:
        effect = arms.mean_t - arms.mean_c
        se = np.sqrt(se2_c + se2_t)
    statistic = effect / se
    p_value = 2.0 * special.stdtr(df, -np.abs(statistic))
    margin = special.stdtrit(df, 1.0 - ALPHA / 2.0) * se
    return {
        "effect": effect,
        "se": se,
        "df": df,
        "statistic": statistic,
        "p_value": p_value,
        "ci_low": effect - margin,
        "ci_high": effect + margin,
    }


def build_moments(arms: Arms) -> tuple[Moments, Moments]:
    return Moments(arms.n_c, arms.mean_c, arms.var_c), Moments(arms.n_t, arms.mean_t, arms.var_t)


def scipy_peer(arms: Arms, std_c: np.ndarray, std_t: np.ndarray):
    return stats.ttest_ind_from_stats(
        arms.mean_t, std_t, arms.n_t, arms.mean_c, std_c, arms.n_c, equal_var=False
    )


def assert_same_numbers(label: str, result, reference: dict[str, np.ndarray]) -> None:
    """Equal work: every field of splitlab's result equals the bare formula's to RTOL."""
    if np.any(result.error != ""):
        raise AssertionError(f"{label}: splitlab flagged rows as errors on clean input")
    for name in FIELDS:
        np.testing.assert_allclose(
            getattr(result, name), reference[name], rtol=RTOL, atol=0, err_msg=f"{label}: {name}"
        )


def best_times(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` wall time of each function after one warm-up call each.

    Rounds are interleaved (every function once per round), so that a burst of load from
    another process slows one round of all of them rather than every call of one.
    """
    for function in functions.values():
        function()
    best = dict.fromkeys(functions, float("inf"))
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, function in functions.items():
                start = time.perf_counter()
                function()
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return best


def profile_breakdown(
    control: Moments, treatment: Moments, *, relative: bool, repeats: int
) -> list[tuple]:
    """Split a ttest call by the splitlab function the time is spent in: cProfile over
    ``repeats`` calls, averaged per call (the ufuncs themselves are invisible to cProfile,
    so each is attributed to the splitlab function that calls it)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        ttest(control, treatment, relative=relative)
    profiler.disable()
    raw = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tottime, cumtime, ...)}

    def cumulative(*names: str) -> float:
        seconds = sum(
            value[3]
            for (file, _, name), value in raw.items()
            if name in names and "splitlab" in file
        )
        return seconds / repeats

    total = cumulative("ttest")
    validation = cumulative(
        "as_moments", "check_shapes", "check_alpha", "check_alternative", "check_choice"
    )
    difference = cumulative("mean_difference")
    flags = cumulative("flag")
    quantile = cumulative("quantile")
    p_value = cumulative("_cdf")
    blank = cumulative("blank")
    result = cumulative("__post_init__")  # EffectResult construction (scalarize loop)
    finish_rest = cumulative("finish") - quantile - p_value - blank - result
    rows = [
        ("validation (as_moments, check_shapes, check_alpha/alternative/choice)", validation),
        ("mean_difference (effect, se, Welch df)", difference - flags),
        ("RowErrors.flag (n < 2, se == 0[, mean_c == 0] masks)", flags),
        ("quantile: special.stdtrit", quantile),
        ("p-value: special.stdtr", p_value),
        ("blanking: RowErrors.blank", blank),
        ("finish rest (statistic, CI arithmetic, 7 broadcast copies)", finish_rest),
        ("EffectResult construction", result),
    ]
    accounted = sum(seconds for _, seconds in rows)
    rows.append(("other (call overhead)", total - accounted))
    return [(label, seconds, seconds / total) for label, seconds in rows] + [
        ("total ttest (under cProfile, mean per call)", total, 1.0)
    ]


def time_components(arms: Arms, repeats: int) -> list[tuple[str, float]]:
    """The bare costs of the pieces every implementation pays, for scale."""
    reference = bare_welch(arms, relative=False)
    df, statistic = reference["df"], reference["statistic"]
    copies = [reference[name] for name in FIELDS]
    pieces = {
        "special.stdtrit(df, 0.975)": lambda: special.stdtrit(df, 0.975),
        "special.stdtr(df, -abs(t))": lambda: special.stdtr(df, -np.abs(statistic)),
        "7 array copies (np.array(..., dtype=float))": lambda: [
            np.array(a, dtype=float) for a in copies
        ],
    }
    return list(best_times(pieces, repeats).items())


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def results_table(rows: list[Row]) -> str:
    lines = [
        "| workload | comparisons/s | time | ratio vs bare formula | budget |",
        "| --- | ---: | ---: | ---: | :---: |",
    ]
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x"
        workload = row.workload + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {workload} | {row.rate:,.0f} | {format_seconds(row.seconds)} | {ratio} | "
            f"{row.verdict} |"
        )
    return "\n".join(lines)


def breakdown_table(title: str, rows: list[tuple]) -> str:
    lines = [f"| {title} | time | share |", "| --- | ---: | ---: |"]
    lines += [f"| {label} | {format_seconds(s)} | {share:.0%} |" for label, s, share in rows]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="comparisons per call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=results_dir() / "ab_summary.md")
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be positive")
    progress = progress or Progress()
    progress.start("ab_summary", total=4)
    provenance = Provenance.start(
        command=command or script_command(argv, "benchmarks/ab_summary.py"),
        seed=args.seed,
        parameters={"n": args.n, "repeats": args.repeats},
        libraries=("numpy", "scipy"),
    )

    arms = make_arms(args.n, args.seed)
    control, treatment = build_moments(arms)
    std_c, std_t = np.sqrt(arms.var_c), np.sqrt(arms.var_t)

    bare_absolute = bare_welch(arms, relative=False)
    assert_same_numbers("(a) Welch absolute", ttest(control, treatment), bare_absolute)
    bare_relative = bare_welch(arms, relative=True)
    assert_same_numbers(
        "(b) relative lift", ttest(control, treatment, relative=True), bare_relative
    )
    peer = scipy_peer(arms, std_c, std_t)
    np.testing.assert_allclose(peer.statistic, bare_absolute["statistic"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(peer.pvalue, bare_absolute["p_value"], rtol=RTOL, atol=0)
    progress.step("equal work checked")

    repeats, n = args.repeats, args.n
    workloads = {
        "construction": lambda: build_moments(arms),
        "bare_a": lambda: bare_welch(arms, relative=False),
        "splitlab_a": lambda: ttest(control, treatment),
        "end_to_end_a": lambda: ttest(*build_moments(arms)),
        "scipy_a": lambda: scipy_peer(arms, std_c, std_t),
        "bare_b": lambda: bare_welch(arms, relative=True),
        "splitlab_b": lambda: ttest(control, treatment, relative=True),
        "end_to_end_b": lambda: ttest(*build_moments(arms), relative=True),
    }
    load = load_average()[0]
    seconds = best_times(workloads, repeats)
    progress.step("timed")
    bare_a, bare_b = seconds["bare_a"], seconds["bare_b"]
    a, b = "(a) Welch absolute", "(b) relative lift, delta"
    rows = [
        Row("Moments construction, both arms (validation)", seconds["construction"], n),
        Row(f"{a}: bare numpy + scipy.special", bare_a, n, bare_a),
        Row(f"{a}: splitlab ttest", seconds["splitlab_a"], n, bare_a, budget=True),
        Row(
            f"{a}: splitlab Moments + ttest", seconds["end_to_end_a"], n, bare_a, budget=True,
            note="end to end",
        ),
        Row(
            f"{a}: scipy.stats.ttest_ind_from_stats", seconds["scipy_a"], n, bare_a,
            note="peer; statistic and p only, no CI",
        ),
        Row(f"{b}: bare numpy + scipy.special", bare_b, n, bare_b),
        Row(f"{b}: splitlab ttest(relative=True)", seconds["splitlab_b"], n, bare_b, budget=True),
        Row(
            f"{b}: splitlab Moments + ttest(relative=True)", seconds["end_to_end_b"], n, bare_b,
            budget=True, note="end to end",
        ),
    ]  # fmt: skip
    table = results_table(rows)
    components = time_components(arms, repeats)
    progress.step("components timed")
    breakdown_a = profile_breakdown(control, treatment, relative=False, repeats=repeats)
    breakdown_b = profile_breakdown(control, treatment, relative=True, repeats=repeats)
    progress.step("profiled")
    progress.finish()

    components_text = "\n".join(f"| {label} | {format_seconds(s)} |" for label, s in components)
    report = f"""# A/B summary-statistics t-test throughput

Budget (docs/architecture.md): >= 10^6 comparisons/s and <= {MAX_RATIO:g}x the bare numpy formula.
{n:,} (control, treatment) pairs per call; best of {repeats} interleaved rounds after one
warm-up call each; 1-minute load average before timing: {load:.2f} (other processes slow
every row; compare ratios rather than absolute rates across runs).
splitlab's numbers were checked equal to the bare formula's to {RTOL:g} relative
(effect, se, df, statistic, p-value, CI) before timing; scipy's statistic and p-value too.

{provenance.block()}

{table}

## Where splitlab's time goes (cProfile, mean of {repeats} calls each)

{breakdown_table("(a) Welch absolute", breakdown_a)}

{breakdown_table("(b) relative lift, delta", breakdown_b)}

Bare costs of the shared pieces at this size, for scale:

| piece | time |
| --- | ---: |
{components_text}
"""
    print(report)
    write_text(args.out, report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

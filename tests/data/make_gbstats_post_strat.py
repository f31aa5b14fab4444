"""Generate tests/data/reference/gbstats_post_strat.json from GrowthBook's gbstats source.

Run in a throwaway virtualenv (numpy, scipy, pandas, pydantic, packaging, pytest) with
GrowthBook's source at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469 (PyPI's gbstats has
no post-stratification):
    git clone https://github.com/growthbook/growthbook && git -C growthbook checkout 8f1db445
    GBSTATS_SRC=growthbook/packages/stats python tests/data/make_gbstats_post_strat.py OUT.json
Nothing here imports splitlab: every expected value is gbstats' own output.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
from scipy.stats import t as student_t

GB = os.environ.get("GBSTATS_SRC", "growthbook/packages/stats")
sys.path.insert(0, GB)

from gbstats.frequentist.tests import (  # noqa: E402
    FrequentistConfig,
    OneSidedTreatmentGreaterTTest,
    OneSidedTreatmentLesserTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (  # noqa: E402
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.models.tests import (  # noqa: E402
    CreateStrataResult,
    CreateStrataResultRegressionAdjusted,
    PostStratificationSummary,
    sum_stats,
)
from tests.frequentist.test_post_strat import TestPostStratification  # noqa: E402

COMMIT = "8f1db4456915a8e7b7faf23d5632ca7219d2f469"
TEST_FILE = "packages/stats/tests/frequentist/test_post_strat.py"
TESTS = {
    "two-sided": TwoSidedTTest,
    "greater": OneSidedTreatmentGreaterTTest,
    "less": OneSidedTreatmentLesserTTest,
}


def finite(x):
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


# ----------------------------------------------------------------- statistics -> json


def arms_json(stats, kind):
    """Per-arm arrays over strata (last axis), in splitlab's from_sums argument names."""
    out = {}
    for arm, index in (("control", 0), ("treatment", 1)):
        cells = [pair[index] for pair in stats]
        if kind == "mean":
            out[arm] = {
                "n": [s.n for s in cells],
                "sum": [s.sum for s in cells],
                "sum_sq": [s.sum_squares for s in cells],
            }
        elif kind == "proportion":
            out[arm] = {"n": [s.n for s in cells], "successes": [s.sum for s in cells]}
        elif kind == "cuped":
            out[arm] = {
                "n": [s.n for s in cells],
                "sum_y": [s.post_statistic.sum for s in cells],
                "sum_y2": [s.post_statistic.sum_squares for s in cells],
                "sum_x": [s.pre_statistic.sum for s in cells],
                "sum_x2": [s.pre_statistic.sum_squares for s in cells],
                "sum_xy": [s.post_pre_sum_of_products for s in cells],
            }
        elif kind == "cuped_proportion":
            out[arm] = {
                "n": [s.n for s in cells],
                "successes_y": [s.post_statistic.sum for s in cells],
                "successes_x": [s.pre_statistic.sum for s in cells],
                "successes_xy": [s.post_pre_sum_of_products for s in cells],
            }
        elif kind == "ratio":
            out[arm] = {
                "n": [s.n for s in cells],
                "sum_y": [s.m_statistic.sum for s in cells],
                "sum_y2": [s.m_statistic.sum_squares for s in cells],
                "sum_x": [s.d_statistic.sum for s in cells],
                "sum_x2": [s.d_statistic.sum_squares for s in cells],
                "sum_xy": [s.m_d_sum_of_products for s in cells],
            }
        else:
            raise ValueError(kind)
    return out


def run(stats, relative, alpha=0.05, alternative="two-sided"):
    """The full frequentist test with post-stratification on, as gbstats.process_single_metric
    configures it (get_configured_test: post_stratify=True)."""
    config = FrequentistConfig(
        difference_type="relative" if relative else "absolute", alpha=alpha, post_stratify=True
    )
    test = TESTS[alternative](copy.deepcopy(list(stats)), config)
    result = test.compute_result()
    return {
        "effect": finite(result.expected),
        "se": finite(result.uplift.stddev),
        "ci_low": finite(result.ci[0]),
        "ci_high": finite(result.ci[1]),
        "p_value": finite(result.pValue),
        "df": finite(dof_or_none(test)),
        "post_stratification_applied": bool(test.realized_settings.postStratificationApplied),
        "error_message": result.errorMessage,
    }


def dof_or_none(test):
    try:
        return test.dof
    except ZeroDivisionError:  # zero variance in both arms
        return None


def produced_by(alternative, relative, alpha):
    name = TESTS[alternative].__name__
    diff = "relative" if relative else "absolute"
    return (
        f"gbstats.frequentist.tests.{name}(stats, FrequentistConfig(difference_type="
        f"'{diff}', alpha={alpha}, post_stratify=True)).compute_result(); df = .dof; "
        "post_stratification_applied = .realized_settings.postStratificationApplied"
    )


def case(
    cid,
    kind,
    stats,
    relative,
    origin,
    *,
    alpha=0.05,
    alternative="two-sided",
    literal=None,
    note=None,
):
    entry = {
        "id": cid,
        "kind": kind,
        "relative": relative,
        "alpha": alpha,
        "alternative": alternative,
        "origin": origin,
        **arms_json(stats, kind),
        "expected": run(stats, relative, alpha, alternative),
        "produced_by": produced_by(alternative, relative, alpha),
    }
    if literal is not None:
        entry["literal"] = literal
        for key in ("effect", "se"):
            if key in literal:
                got, want = entry["expected"][key], literal[key]
                assert abs(got - want) <= 1e-9 * max(1.0, abs(want)), (cid, key, got, want)
    if note:
        entry["note"] = note
    return entry


def unguarded(stats, relative, alpha, kind):
    """gbstats' own strata results and Algorithm-4 summary, called directly: what the
    post-stratified estimate is where EffectMomentsPostStratification's zero-baseline guard
    refuses to report it (splitlab reports absolute effects of a zero control mean)."""
    maker = CreateStrataResult if kind == "mean" else CreateStrataResultRegressionAdjusted
    strata = [maker(a, b).compute_result() for a, b in stats]
    summary = PostStratificationSummary(strata, nu_hat=None, relative=relative)
    effect = float(summary.point_estimate)
    se = float(np.sqrt(summary.estimated_variance))
    dof = TwoSidedTTest(copy.deepcopy(list(stats)), FrequentistConfig(post_stratify=True)).dof
    q = student_t.ppf(1 - alpha / 2, dof)
    return {
        "effect": effect,
        "se": se,
        "ci_low": effect - q * se,
        "ci_high": effect + q * se,
        "p_value": float(2 * student_t.sf(abs(effect / se), dof)),
        "df": float(dof),
        "produced_by": (
            "gbstats CreateStrataResult / CreateStrataResultRegressionAdjusted per stratum, "
            "PostStratificationSummary(strata, relative=False).point_estimate and "
            ".estimated_variance; df = TwoSidedTTest(...).dof; interval and p-value from "
            "scipy.stats.t with that df (the guard is bypassed, nothing else)"
        ),
    }


# ----------------------------------------------------------------- constructed data


def sample_mean(y):
    y = np.asarray(y, float)
    return SampleMeanStatistic(n=int(y.size), sum=float(y.sum()), sum_squares=float(y @ y))


def proportion(y):
    y = np.asarray(y, float)
    return ProportionStatistic(n=int(y.size), sum=float(y.sum()))


def regression(y, x, binary=False):
    y, x = np.asarray(y, float), np.asarray(x, float)
    make = proportion if binary else sample_mean
    return RegressionAdjustedStatistic(
        n=int(y.size),
        post_statistic=make(y),
        pre_statistic=make(x),
        post_pre_sum_of_products=float(y @ x),
        theta=None,
    )


def ratio(m, d):
    m, d = np.asarray(m, float), np.asarray(d, float)
    return RatioStatistic(
        n=int(m.size),
        m_statistic=sample_mean(m),
        d_statistic=sample_mean(d),
        m_d_sum_of_products=float(m @ d),
    )


def draw_strata(rng, sizes, kind, *, effect=0.3, base=None, binary=False):
    """Raw data per (stratum, arm): y = mu_s + effect*T + beta*(x - mu_x) + noise."""
    stats = []
    k = len(sizes)
    mu = base if base is not None else rng.uniform(2.0, 20.0, k)
    for s, (n_c, n_t) in enumerate(sizes):
        pair = []
        for arm, n in ((0, n_c), (1, n_t)):
            if kind == "proportion":
                p = float(np.clip(0.05 + 0.1 * s + 0.04 * arm, 0.01, 0.95))
                pair.append(proportion(rng.binomial(1, p, n)))
                continue
            if kind == "cuped_proportion":
                x = rng.binomial(1, 0.2 + 0.1 * s, n)
                p = np.clip(0.1 + 0.05 * s + 0.5 * x + 0.05 * arm, 0, 1)
                pair.append(regression(rng.binomial(1, p), x, binary=True))
                continue
            x = rng.normal(mu[s] / 2, 1.0 + 0.3 * s, n)
            y = mu[s] + effect * arm + 1.5 * (x - mu[s] / 2) + rng.normal(0, 2.0, n)
            if kind == "mean":
                pair.append(sample_mean(y))
            elif kind == "cuped":
                pair.append(regression(y, x))
            elif kind == "ratio":
                d = rng.poisson(2.0 + s, n) + 1.0
                m = d * (mu[s] / 10 + 0.05 * arm) + rng.normal(0, 1.0, n)
                pair.append(ratio(m, d))
        stats.append(tuple(pair))
    return stats


def main(out_path):
    fixture = TestPostStratification()
    fixture.setUp()
    cases = []
    cite = f"{TEST_FILE}@{COMMIT[:8]}"

    def lit(name, rel):
        scale = "rel" if rel else "abs"
        return {
            "effect": getattr(fixture, f"point_estimate_{name}_{scale}"),
            "se": getattr(fixture, f"standard_error_{name}_{scale}"),
            "from": f"setUp: point_estimate_{name}_{scale}, standard_error_{name}_{scale}",
        }

    # ---- ported from the test file ---------------------------------------------
    for rel in (False, True):
        scale = "rel" if rel else "abs"
        cases.append(
            case(
                f"count-{scale}",
                "mean",
                fixture.stats_count_strata,
                rel,
                f"ported: {cite} test_post_strat_count_effect_moments, "
                "test_post_strat_count_gbstats (setUp.stats_count_strata)",
                literal=lit("count", rel),
            )
        )
        cases.append(
            case(
                f"count_reg-{scale}",
                "cuped",
                fixture.stats_count_reg_strata,
                rel,
                f"ported: {cite} test_post_strat_count_reg_effect_moments, "
                "test_post_strat_mean_reg_gbstats (setUp.stats_count_reg_strata)",
                literal=lit("count_reg", rel),
            )
        )
        cases.append(
            case(
                f"ratio-{scale}",
                "ratio",
                fixture.stats_ratio_strata,
                rel,
                f"ported: {cite} test_post_strat_ratio_effect_moments, "
                "test_post_strat_ratio_gbstats (setUp.stats_ratio_strata)",
                literal=lit("ratio", rel),
            )
        )
        fallback = [
            tuple(
                RegressionAdjustedStatistic(
                    n=s.n,
                    post_statistic=SampleMeanStatistic(n=s.n, sum=s.sum, sum_squares=s.sum_squares),
                    pre_statistic=SampleMeanStatistic(n=s.n, sum=0, sum_squares=0),
                    post_pre_sum_of_products=0,
                    theta=None,
                )
                for s in pair
            )
            for pair in fixture.stats_count_strata
        ]
        cases.append(
            case(
                f"count_reg_fallback-{scale}",
                "cuped",
                fallback,
                rel,
                f"ported: {cite} test_post_strat_count_effect_moments_fallback (zero pre-period "
                "data in every stratum: the regression-adjusted input falls back to the "
                "unadjusted post-stratified result); also test_post_strat_mean_reg_gbstats_"
                "single_cell_fallback (the same per stratum)",
                literal=lit("count", rel),
            )
        )
        single_a, single_b = sum_stats(fixture.stats_count_reg_strata)
        cases.append(
            case(
                f"count_reg_single_cell-{scale}",
                "cuped",
                [(single_a, single_b)],
                rel,
                f"ported: {cite} test_post_strat_count_reg_effect_moments_single_cell (one "
                "stratum: gbstats runs the unstratified CUPED EffectMoments with pooled theta)",
            )
        )
        # missing variation data: one control unit moved from the largest stratum to a new
        # stratum without treatment units
        last_a, last_b = fixture.stats_count_strata[-1]
        moved = [
            *list(fixture.stats_count_strata[:-1]),
            (
                SampleMeanStatistic(
                    n=last_a.n - 1, sum=last_a.sum - 1, sum_squares=last_a.sum_squares - 1
                ),
                last_b,
            ),
            (
                SampleMeanStatistic(n=1, sum=1, sum_squares=1),
                SampleMeanStatistic(n=0, sum=0, sum_squares=0),
            ),
        ]
        cases.append(
            case(
                f"missing_variation_data-{scale}",
                "mean",
                moved,
                rel,
                f"ported: {cite} test_missing_variation_data (asserts the result equals the "
                "count case's; the relative scale is added here)",
                literal=lit("count", rel),
                note="a stratum with an empty treatment arm is merged into the largest stratum",
            )
        )

    zero = [
        (
            SampleMeanStatistic(n=21, sum=0, sum_squares=0),
            SampleMeanStatistic(n=42, sum=0, sum_squares=0),
        ),
        (
            SampleMeanStatistic(n=65, sum=0, sum_squares=0),
            SampleMeanStatistic(n=75, sum=0, sum_squares=0),
        ),
    ]
    cases.append(
        case(
            "zero_negative_variance-abs",
            "mean",
            zero,
            False,
            f"ported: {cite} test_zero_negative_variance",
        )
    )

    zero_mean = [
        (
            SampleMeanStatistic(n=21, sum=0, sum_squares=10),
            SampleMeanStatistic(n=42, sum=0, sum_squares=10),
        ),
        (
            SampleMeanStatistic(n=65, sum=0, sum_squares=10),
            SampleMeanStatistic(n=75, sum=0, sum_squares=10),
        ),
    ]
    for rel in (False, True):
        entry = case(
            f"baseline_variation_zero-{'rel' if rel else 'abs'}",
            "mean",
            zero_mean,
            rel,
            f"ported: {cite} test_baseline_variation_zero"
            + ("" if not rel else " (the relative scale is added here)"),
        )
        if not rel:
            entry["unguarded"] = unguarded(zero_mean, False, 0.05, "mean")
        cases.append(entry)

    reg_zero = []
    for pair in fixture.stats_count_reg_strata[:2]:
        reg_zero.append(
            tuple(
                replace(
                    s,
                    post_statistic=SampleMeanStatistic(
                        n=s.n, sum=0, sum_squares=s.post_statistic.sum_squares
                    ),
                )
                for s in pair
            )
        )
    correlations = []
    for pair in reg_zero:
        for s in pair:
            n = s.n
            var_y = (s.post_statistic.sum_squares - s.post_statistic.sum**2 / n) / (n - 1)
            var_x = (s.pre_statistic.sum_squares - s.pre_statistic.sum**2 / n) / (n - 1)
            cov = (s.post_pre_sum_of_products - s.post_statistic.sum * s.pre_statistic.sum / n) / (
                n - 1
            )
            correlations.append(cov / np.sqrt(var_y * var_x))
    entry = case(
        "baseline_variation_adjusted_zero-abs",
        "cuped",
        reg_zero,
        False,
        f"ported: {cite} test_baseline_variation_adjusted_zero",
        note="impossible sums: the implied correlation of y and x is "
        + ", ".join(f"{r:.2f}" for r in correlations)
        + " (stratum by stratum, control then treatment); no data set has them",
    )
    entry["impossible_sums"] = True
    cases.append(entry)

    def neg_mean(mean, n=1000):
        return SampleMeanStatistic(n=n, sum=mean * n, sum_squares=(mean**2 + 4) * n)

    def neg_ratio(mean, n=1000):
        return RatioStatistic(
            n=n,
            m_statistic=SampleMeanStatistic(n=n, sum=mean * n, sum_squares=(mean**2 + 4) * n),
            d_statistic=SampleMeanStatistic(n=n, sum=n, sum_squares=n),
            m_d_sum_of_products=mean * n,
        )

    for variation, lift in ((-5, 0.5), (-15, -0.5), (5, 1.5)):
        cases.append(
            case(
                f"count_negative_baseline_{variation}-rel",
                "mean",
                [(neg_mean(-10), neg_mean(variation)) for _ in range(2)],
                True,
                f"ported: {cite} test_count_relative_point_estimate_uses_negative_baseline_"
                f"magnitude (variation_mean={variation})",
                literal={"effect": lift, "from": "expected_relative_lift in the test"},
            )
        )
        cases.append(
            case(
                f"ratio_negative_baseline_{variation}-rel",
                "ratio",
                [(neg_ratio(-10), neg_ratio(variation)) for _ in range(2)],
                True,
                f"ported: {cite} test_ratio_relative_point_estimate_uses_negative_baseline_"
                f"magnitude (variation_mean={variation})",
                literal={"effect": lift, "from": "expected_relative_lift in the test"},
            )
        )

    for region, stats in (
        ("eu", fixture.stats_count_revenue_eu),
        ("us", fixture.stats_count_revenue_us),
        ("all", fixture.stats_count_revenue),
    ):
        for rel in (False, True):
            cases.append(
                case(
                    f"dimension_{region}-{'rel' if rel else 'abs'}",
                    "mean",
                    stats,
                    rel,
                    f"ported: {cite} test_post_strat_dimension (setUp.stats_count_revenue"
                    f"{'' if region == 'all' else '_' + region}; the test checks absolute "
                    "effects; the relative scale is added here)",
                )
            )

    # the ported gbstats-pipeline tests also go through process_single_metric: same numbers
    for name, stats in (
        ("count", fixture.stats_count_strata),
        ("count_reg", fixture.stats_count_reg_strata),
        ("ratio", fixture.stats_ratio_strata),
    ):
        for rel in (False, True):
            a, b = zip(*stats, strict=False)
            pipeline = TestPostStratification.run_post_strat_gbstats(
                a, b, FrequentistConfig(difference_type="relative" if rel else "absolute")
            )
            mine = next(c for c in cases if c["id"] == f"{name}-{'rel' if rel else 'abs'}")
            assert abs(pipeline.expected - mine["expected"]["effect"]) < 1e-12
            assert abs(pipeline.ci[0] - mine["expected"]["ci_low"]) < 1e-12
            assert abs(pipeline.ci[1] - mine["expected"]["ci_high"]) < 1e-12

    # ---- constructed here ---------------------------------------------------------
    rng = np.random.default_rng(20260815)
    origin = "constructed: raw samples drawn with numpy (seed 20260815, in order)"
    sizes3 = [(400, 380), (900, 950), (250, 270)]
    for kind in ("proportion", "cuped_proportion"):
        stats = draw_strata(rng, sizes3, kind)
        for rel in (False, True):
            cases.append(case(f"{kind}-{'rel' if rel else 'abs'}", kind, stats, rel, origin))

    # proportions with strata to merge: merged cells and pooled arms take the sample
    # variance (gbstats adds ProportionStatistic into SampleMeanStatistic)
    for kind in ("proportion", "cuped_proportion"):
        stats = draw_strata(rng, [(600, 640), (30, 35), (1500, 1480), (2, 0)], kind)
        zeros = np.zeros(30)
        if kind == "proportion":
            stats[1] = (proportion(zeros), stats[1][1])
        else:
            stats[1] = (regression(zeros, rng.binomial(1, 0.5, 30), binary=True), stats[1][1])
        for rel in (False, True):
            cases.append(
                case(
                    f"{kind}_merge-{'rel' if rel else 'abs'}",
                    kind,
                    stats,
                    rel,
                    origin,
                    note="strata 1 (no control conversions: zero variance) and 3 (empty "
                    "treatment) are merged into stratum 2, the largest",
                )
            )

    # regression adjustment falls back within one stratum (x constant in its control arm)
    reg = [list(p) for p in fixture.stats_count_reg_strata]
    a = reg[2][0]
    reg[2][0] = replace(
        a,
        pre_statistic=SampleMeanStatistic(n=a.n, sum=2.0 * a.n, sum_squares=4.0 * a.n),
        post_pre_sum_of_products=2.0 * a.post_statistic.sum,
    )
    reg = [tuple(p) for p in reg]
    for rel in (False, True):
        cases.append(
            case(
                f"count_reg_cell_fallback-{'rel' if rel else 'abs'}",
                "cuped",
                reg,
                rel,
                f"constructed from {cite} setUp.stats_count_reg_strata: stratum 2's control x "
                "set to the constant 2 (cf. test_post_strat_mean_reg_gbstats_single_cell_fallback)",
                note="stratum 2 is unadjusted (CreateStrataResult), the others adjusted",
            )
        )

    # strata to merge: an empty arm, a one-unit arm, a constant arm
    for kind in ("mean", "cuped", "ratio"):
        stats = draw_strata(rng, [(300, 320), (5, 0), (700, 650), (1, 9), (120, 110)], kind)
        for rel in (False, True):
            cases.append(
                case(
                    f"{kind}_merge-{'rel' if rel else 'abs'}",
                    kind,
                    stats,
                    rel,
                    origin,
                    note="strata 1 (empty treatment) and 3 (one control unit) are merged into "
                    "stratum 2, the largest",
                )
            )

    # the largest stratum has a constant control arm: gbstats' strata result errors and the
    # test falls back to the unstratified estimate
    stats = draw_strata(rng, [(200, 210), (800, 790), (150, 160)], "mean")
    c_big = stats[1][0]
    stats[1] = (
        SampleMeanStatistic(n=c_big.n, sum=7.0 * c_big.n, sum_squares=49.0 * c_big.n),
        stats[1][1],
    )
    for rel in (False, True):
        cases.append(
            case(
                f"largest_constant_control-{'rel' if rel else 'abs'}",
                "mean",
                stats,
                rel,
                origin,
                note="the largest stratum (1) has zero control variance: unstratified result",
            )
        )

    # one-sided alternatives and another alpha
    for kind in ("mean", "cuped", "ratio"):
        stats = draw_strata(rng, [(500, 520), (300, 280), (800, 790), (60, 75)], kind, effect=0.4)
        for alternative in ("greater", "less"):
            for rel in (False, True):
                cases.append(
                    case(
                        f"{kind}_{alternative}-{'rel' if rel else 'abs'}",
                        kind,
                        stats,
                        rel,
                        origin,
                        alpha=0.1,
                        alternative=alternative,
                    )
                )

    # negative baseline with regression adjustment
    stats = draw_strata(
        rng,
        [(400, 420), (600, 610), (200, 190)],
        "cuped",
        base=np.array([-30.0, -25.0, -40.0]),
        effect=2.0,
    )
    for rel in (False, True):
        cases.append(
            case(f"cuped_negative_baseline-{'rel' if rel else 'abs'}", "cuped", stats, rel, origin)
        )

    # a single stratum
    for kind in ("mean", "cuped", "ratio"):
        stats = draw_strata(rng, [(700, 680)], kind)
        for rel in (False, True):
            cases.append(case(f"{kind}_single-{'rel' if rel else 'abs'}", kind, stats, rel, origin))

    # random designs: 2-8 strata, sizes 20-3000 per arm
    for seed in range(4):
        for kind in ("mean", "cuped", "ratio"):
            k = int(rng.integers(2, 9))
            sizes = [tuple(int(v) for v in rng.integers(20, 3000, 2)) for _ in range(k)]
            stats = draw_strata(rng, sizes, kind, effect=float(rng.normal(0.2, 0.3)))
            for rel in (False, True):
                cases.append(
                    case(f"{kind}_random{seed}-{'rel' if rel else 'abs'}", kind, stats, rel, origin)
                )

    revision = subprocess.run(
        ["git", "-C", GB, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert revision == COMMIT, revision
    document = {
        "source": f"gbstats (GrowthBook repository, packages/stats at commit {COMMIT})",
        "test_file": TEST_FILE,
        "layout": "per arm, one list entry per stratum (splitlab's last axis)",
        "cases": cases,
    }
    with open(out_path, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")
    print(len(cases), "cases")


if __name__ == "__main__":
    main(sys.argv[1])

"""Generate tests/data/reference/gbstats_ratio_cuped.json from GrowthBook's gbstats source.

Run in a throwaway virtualenv (numpy, scipy, pandas, pydantic, packaging, pytest) with
GrowthBook's source at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469, either a checkout:
    git clone https://github.com/growthbook/growthbook && git -C growthbook checkout 8f1db445
    GBSTATS_SRC=growthbook/packages/stats python tests/data/make_gbstats_ratio_cuped.py OUT.json
or the package extracted from a bare mirror (no .git to ask, so name the commit):
    git --git-dir=MIRROR archive 8f1db445 packages/stats | tar -x -C /tmp/gb
    GBSTATS_SRC=/tmp/gb/packages/stats GBSTATS_COMMIT=8f1db4456915a8e7b7faf23d5632ca7219d2f469 \
        python tests/data/make_gbstats_ratio_cuped.py OUT.json
Run from the repository root (or anywhere: only GBSTATS_SRC and OUT.json are paths).
Nothing here imports splitlab: every expected value is gbstats' own output.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np

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
    RegressionAdjustedRatioStatistic,
    SampleMeanStatistic,
)
from gbstats.models.tests import sum_stats  # noqa: E402
from tests.frequentist.test_post_strat import TestPostStratification  # noqa: E402
from tests.frequentist.test_tests import TestTwoSidedTTest  # noqa: E402
from tests.test_shared_models import TestEffectMomentsCupedRatioNegativeBaseline  # noqa: E402

COMMIT = "8f1db4456915a8e7b7faf23d5632ca7219d2f469"
TESTS = {
    "two-sided": TwoSidedTTest,
    "greater": OneSidedTreatmentGreaterTTest,
    "less": OneSidedTreatmentLesserTTest,
}
# gbstats' six cross products in the order splitlab's ratio_cross_moments takes them
PRODUCTS = (
    "m_post_d_post_sum_of_products",
    "m_post_m_pre_sum_of_products",
    "m_post_d_pre_sum_of_products",
    "m_pre_d_post_sum_of_products",
    "d_post_d_pre_sum_of_products",
    "m_pre_d_pre_sum_of_products",
)
VARIABLES = ("m_statistic_post", "d_statistic_post", "m_statistic_pre", "d_statistic_pre")


def finite(x):
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def arm_json(stat):
    """gbstats' sums in splitlab's order: (m, d, m_pre, d_pre) and the 6 products."""
    parts = [getattr(stat, name) for name in VARIABLES]
    return {
        "n": int(stat.n),
        "sums": [float(p.sum) for p in parts],
        "sum_squares": [float(p.sum_squares) for p in parts],
        "cross_products": [float(getattr(stat, name)) for name in PRODUCTS],
    }


def run(stat_a, stat_b, relative, alpha, alternative):
    """The full frequentist test as gbstats' runner configures it (theta=None: gbstats'
    create_theta_adjusted_statistics estimates it; a set theta is kept)."""
    config = FrequentistConfig(difference_type="relative" if relative else "absolute", alpha=alpha)
    test = TESTS[alternative]([(copy.deepcopy(stat_a), copy.deepcopy(stat_b))], config)
    result = test.compute_result()
    adjusted = isinstance(test.stat_a, RegressionAdjustedRatioStatistic)
    theta = (test.stat_a.theta or 0.0) if adjusted else 0.0
    try:
        dof = test.dof
    except ZeroDivisionError:  # zero variance in both arms
        dof = None
    return {
        "effect": finite(result.expected),
        "se": finite(result.uplift.stddev),
        "ci_low": finite(result.ci[0]),
        "ci_high": finite(result.ci[1]),
        "p_value": finite(result.pValue),
        "df": finite(dof),
        "theta": float(theta),
        "adjusted": adjusted,
        "variance_control": finite(test.stat_a.variance),
        "variance_treatment": finite(test.stat_b.variance),
        "control_ratio": finite(test.stat_a.unadjusted_mean),
        "treatment_ratio": finite(test.stat_b.unadjusted_mean),
        "error_message": result.errorMessage,
    }


def produced_by(alternative, relative, alpha):
    name = TESTS[alternative].__name__
    diff = "relative" if relative else "absolute"
    return (
        f"gbstats.frequentist.tests.{name}([(stat_a, stat_b)], FrequentistConfig("
        f"difference_type='{diff}', alpha={alpha})).compute_result(); df = .dof; theta = "
        ".stat_a.theta (0 where gbstats reverted to RatioStatistic)"
    )


def case(
    cid,
    stat_a,
    stat_b,
    relative,
    origin,
    *,
    alpha=0.05,
    alternative="two-sided",
    ddof=1,
    literal=None,
    note=None,
):
    theta = stat_a.theta
    entry = {
        "id": cid,
        "relative": relative,
        "alpha": alpha,
        "alternative": alternative,
        "theta": None if theta is None else float(theta),
        "ddof": ddof,
        "origin": origin,
        "control": arm_json(stat_a),
        "treatment": arm_json(stat_b),
        "expected": run(stat_a, stat_b, relative, alpha, alternative),
        "produced_by": produced_by(alternative, relative, alpha),
    }
    if literal is not None:
        entry["literal"] = literal
        for key, value in literal.items():
            if key in ("from", "decimals"):
                continue
            got = entry["expected"][key]
            # the test file's figures are rounded to `decimals` places
            assert abs(got - value) <= 0.5 * 10 ** -literal["decimals"] + 1e-12, (cid, key, got)
    if note:
        entry["note"] = note
    return entry


# ----------------------------------------------------------------- statistics


def sample_mean(values):
    values = np.asarray(values, float)
    return SampleMeanStatistic(
        n=int(values.size), sum=float(values.sum()), sum_squares=float(values @ values)
    )


def proportion(values):
    values = np.asarray(values, float)
    return ProportionStatistic(n=int(values.size), sum=float(values.sum()))


def ratio_ra(m, d, m_pre, d_pre, *, theta=None, make=sample_mean):
    m, d, m_pre, d_pre = (np.asarray(v, float) for v in (m, d, m_pre, d_pre))
    return RegressionAdjustedRatioStatistic(
        n=int(m.size),
        m_statistic_post=make(m),
        d_statistic_post=make(d),
        m_statistic_pre=make(m_pre),
        d_statistic_pre=make(d_pre),
        m_post_m_pre_sum_of_products=float(m @ m_pre),
        d_post_d_pre_sum_of_products=float(d @ d_pre),
        m_pre_d_pre_sum_of_products=float(m_pre @ d_pre),
        m_post_d_post_sum_of_products=float(m @ d),
        m_post_d_pre_sum_of_products=float(m @ d_pre),
        m_pre_d_post_sum_of_products=float(m_pre @ d),
        theta=theta,
    )


def draw(rng, n, kind, *, lift, carry):
    """One arm's units: (m, d, m_pre, d_pre). A unit's propensity is shared by its two
    periods with weight ``carry`` (0: independent periods, 1: the same propensity)."""
    base = rng.gamma(2.0, 0.5, n)
    fresh = rng.gamma(2.0, 0.5, n)
    post = carry * base + (1.0 - carry) * fresh
    d_pre = rng.poisson(2.0 + base) + 1.0
    d = rng.poisson(2.0 + post) + 1.0
    if kind == "mean":
        m_pre = d_pre * base * 3.0 + rng.normal(0.0, 1.0, n)
        m = d * post * 3.0 * (1.0 + lift) + rng.normal(0.0, 1.0, n)
    elif kind == "count":
        m_pre = rng.poisson(d_pre * base).astype(float)
        m = rng.poisson(d * post * (1.0 + lift)).astype(float)
    elif kind == "negative":
        m_pre = -(d_pre * base * 3.0) + rng.normal(0.0, 1.0, n)
        m = -(d * post * 3.0 * (1.0 + lift)) + rng.normal(0.0, 1.0, n)
    elif kind == "conversion":
        # m binary (the unit converted), d its sessions: a proportion-like numerator
        m_pre = rng.binomial(1, np.clip(0.15 * base, 0, 1)).astype(float)
        m = rng.binomial(1, np.clip(0.15 * post * (1.0 + lift), 0, 1)).astype(float)
    elif kind == "binary":
        # m and d both 0/1 (visited, and bought on a visit): all four ProportionStatistic
        d_pre = rng.binomial(1, np.clip(0.3 + 0.2 * base, 0, 1)).astype(float)
        d = rng.binomial(1, np.clip(0.3 + 0.2 * post, 0, 1)).astype(float)
        m_pre = d_pre * rng.binomial(1, np.clip(0.2 * base, 0, 1))
        m = d * rng.binomial(1, np.clip(0.2 * post * (1.0 + lift), 0, 1))
    else:
        raise ValueError(kind)
    return m, d, m_pre, d_pre


def main(out_path):
    cases = []

    # ---- ported from gbstats' tests ---------------------------------------------
    tests_file = f"packages/stats/tests/frequentist/test_tests.py@{COMMIT[:8]}"
    # the two RegressionAdjustedRatioStatistic of test_two_sided_ttest_test_runs_ratio_ra,
    # taken from the test method's own source by running it with TwoSidedTTest captured
    captured = {}

    class Capture(TwoSidedTTest):
        def __init__(self, stats, config):
            captured["stats"] = copy.deepcopy(stats)
            super().__init__(stats, config)

    import tests.frequentist.test_tests as tests_module

    original = tests_module.TwoSidedTTest
    tests_module.TwoSidedTTest = Capture
    try:
        fixture = TestTwoSidedTTest("test_two_sided_ttest_test_runs_ratio_ra")
        fixture.setUp()
        fixture.test_two_sided_ttest_test_runs_ratio_ra()
    finally:
        tests_module.TwoSidedTTest = original
    ((stat_a, stat_b),) = captured["stats"]
    cases.append(
        case(
            "ttest_runs_ratio_ra-rel",
            stat_a,
            stat_b,
            True,
            f"ported: {tests_file} TestTwoSidedTTest.test_two_sided_ttest_test_runs_ratio_ra",
            literal={
                "effect": -0.0007,
                "ci_low": -0.00841,
                "ci_high": 0.00700,
                "se": 0.00391,
                "p_value": 0.85771,
                "decimals": 5,
                "from": "expected_dict (FrequentistTestResult, rounded to 5 decimals)",
            },
        )
    )
    cases.append(
        case(
            "sequential_runs_ratio_ra-rel",
            stat_a,
            stat_b,
            True,
            f"ported: {tests_file} TestSequentialTTest.test_sequential_test_runs_ratio_ra "
            "(the same statistics; its interval and p-value are the sequential ones, so only "
            "the point estimate and standard error are this test's)",
            literal={
                "effect": -0.0007,
                "se": 0.00391,
                "decimals": 5,
                "from": "expected_dict: expected, uplift.stddev",
            },
        )
    )
    for alternative in ("two-sided", "greater", "less"):
        cases.append(
            case(
                f"ttest_runs_ratio_ra-abs-{alternative}",
                stat_a,
                stat_b,
                False,
                f"ported inputs: {tests_file} TestTwoSidedTTest."
                "test_two_sided_ttest_test_runs_ratio_ra; absolute scale and the one-sided "
                "tests added here",
                alternative=alternative,
            )
        )

    # test_gbstats.py: the same data through the data-frame runner (two products differ in
    # the last digits from test_tests.py's)
    import tests.test_gbstats as runner_tests

    row_a, row_b = runner_tests.RATIO_RA_STATISTICS_DF.to_dict("records")

    def from_row(row):
        def mean_stat(prefix):
            return SampleMeanStatistic(
                n=row["users"], sum=row[f"{prefix}_sum"], sum_squares=row[f"{prefix}_sum_squares"]
            )

        return RegressionAdjustedRatioStatistic(
            n=row["users"],
            m_statistic_post=mean_stat("main"),
            d_statistic_post=mean_stat("denominator"),
            m_statistic_pre=mean_stat("covariate"),
            d_statistic_pre=mean_stat("denominator_pre"),
            m_post_m_pre_sum_of_products=row["main_covariate_sum_product"],
            d_post_d_pre_sum_of_products=row["denominator_post_denominator_pre_sum_product"],
            m_pre_d_pre_sum_of_products=row["main_pre_denominator_pre_sum_product"],
            m_post_d_post_sum_of_products=row["main_denominator_sum_product"],
            m_post_d_pre_sum_of_products=row["main_post_denominator_pre_sum_product"],
            m_pre_d_post_sum_of_products=row["main_pre_denominator_post_sum_product"],
            theta=None,
        )

    runner_file = f"packages/stats/tests/test_gbstats.py@{COMMIT[:8]}"
    cases.append(
        case(
            "analyze_metric_df_ratio_ra-rel",
            from_row(row_a),
            from_row(row_b),
            True,
            f"ported: {runner_file} TestAnalyzeMetricDfRegressionAdjustment."
            "test_analyze_metric_df_ratio_ra and TestUseCovariateAsResponse."
            "test_analyze_metric_df_ratio_ra (RATIO_RA_STATISTICS_DF, frequentist, relative)",
            literal={
                "effect": -0.000701483,
                "p_value": 0.857710405,
                "control_ratio": 0.713495487,
                "treatment_ratio": 0.729754963,
                "decimals": 9,
                "from": "variations[1].expected, .pValue; variations[0/1].cr (rounded to 9)",
            },
        )
    )

    # test_shared_models.py: theta fixed at 0.5, EffectMoments directly (no theta estimate)
    shared_file = f"packages/stats/tests/test_shared_models.py@{COMMIT[:8]}"
    negative = TestEffectMomentsCupedRatioNegativeBaseline(
        "test_negating_the_metric_negates_lift_and_keeps_standard_error"
    )
    literals = {"improving": (0.1039280, 0.0286196), "declining": (-0.1372068, 0.0223934)}
    for label, m_post_b in (
        ("improving", negative.M_POST_B_IMPROVING),
        ("declining", negative.M_POST_B_DECLINING),
    ):
        for sign in (1, -1):
            captured.clear()
            import tests.test_shared_models as shared_module

            original_moments = shared_module.EffectMoments

            def capture_moments(stats, config, _original=original_moments):
                captured["stats"] = copy.deepcopy(stats)
                return _original(stats, config)

            shared_module.EffectMoments = capture_moments
            try:
                moments = negative._moments(sign, m_post_b)
            finally:
                shared_module.EffectMoments = original_moments
            ((stat_a, stat_b),) = captured["stats"]
            lift, se = literals[label]
            literal = {
                "effect": sign * lift,
                "se": se,
                "decimals": 7,
                "from": "expected_lift, expected_se (assertAlmostEqual, 7 places; the negated "
                "metric: -expected_lift, the same se)",
            }
            assert abs(moments.point_estimate - sign * lift) < 5e-8
            cases.append(
                case(
                    f"negative_baseline-{label}-{'positive' if sign > 0 else 'negated'}-rel",
                    stat_a,
                    stat_b,
                    True,
                    f"ported: {shared_file} TestEffectMomentsCupedRatioNegativeBaseline."
                    "test_negating_the_metric_negates_lift_and_keeps_standard_error "
                    f"(subTest {label}, sign {sign:+d}; theta fixed at 0.5)",
                    literal=literal,
                )
            )

    # test_post_strat.py: the summed ratio-regression strata as one cell (pooled theta)
    strat_file = f"packages/stats/tests/frequentist/test_post_strat.py@{COMMIT[:8]}"
    strat = TestPostStratification()
    strat.setUp()
    single_a, single_b = sum_stats(strat.stats_ratio_reg_strata)
    for rel in (False, True):
        cases.append(
            case(
                f"post_strat_ratio_reg_single_cell-{'rel' if rel else 'abs'}",
                single_a,
                single_b,
                rel,
                f"ported: {strat_file} test_post_strat_ratio_reg_effect_moments_single_cell "
                "(sum_stats(stats_ratio_reg_strata): unstratified ratio CUPED with pooled theta)",
            )
        )
    # ... and the fallback of zero pre-period data (test_post_strat_ratio_effect_moments_
    # fallback, test_post_strat_ratio_reg_gbstats_single_cell_fallback), as one cell
    ratio_a, ratio_b = sum_stats(strat.stats_ratio_strata)

    def zero_pre(stat):
        empty = SampleMeanStatistic(n=stat.n, sum=0, sum_squares=0)
        return RegressionAdjustedRatioStatistic(
            n=stat.n,
            m_statistic_post=stat.m_statistic,
            d_statistic_post=stat.d_statistic,
            m_statistic_pre=empty,
            d_statistic_pre=empty,
            m_post_m_pre_sum_of_products=0,
            d_post_d_pre_sum_of_products=0,
            m_pre_d_pre_sum_of_products=0,
            m_post_d_post_sum_of_products=stat.m_d_sum_of_products,
            m_post_d_pre_sum_of_products=0,
            m_pre_d_post_sum_of_products=0,
            theta=None,
        )

    for rel in (False, True):
        cases.append(
            case(
                f"post_strat_ratio_fallback_single_cell-{'rel' if rel else 'abs'}",
                zero_pre(ratio_a),
                zero_pre(ratio_b),
                rel,
                f"ported: {strat_file} test_post_strat_ratio_effect_moments_fallback and "
                "test_post_strat_ratio_reg_gbstats_single_cell_fallback (zero pre-period sums: "
                "gbstats falls back to the unadjusted RatioStatistic), as one cell",
            )
        )

    # ---- seeded cases computed by gbstats --------------------------------------------
    seed = 20260904
    rng = np.random.default_rng(seed)
    origin = f"constructed: raw samples drawn with numpy (seed {seed}, in order)"
    designs = [
        # kind, n_c, n_t, lift, carry
        ("mean", 1000, 1000, 0.05, 0.9),
        ("mean", 200, 260, 0.0, 0.5),
        ("mean", 5000, 4800, 0.02, 0.99),
        ("mean", 60, 50, 0.1, 0.0),
        ("count", 2000, 2100, 0.03, 0.8),
        ("count", 300, 280, -0.05, 0.6),
        ("count", 8000, 8000, 0.01, 0.95),
        ("negative", 1500, 1400, 0.04, 0.8),
        ("negative", 120, 150, -0.08, 0.4),
        ("conversion", 3000, 3100, 0.1, 0.85),
        ("conversion", 800, 750, 0.0, 0.5),
        ("conversion", 20000, 19500, 0.05, 0.7),
    ]
    alternatives = ("two-sided", "greater", "less")
    for index, (kind, n_c, n_t, lift, carry) in enumerate(designs):
        stat_a = ratio_ra(*draw(rng, n_c, kind, lift=0.0, carry=carry))
        stat_b = ratio_ra(*draw(rng, n_t, kind, lift=lift, carry=carry))
        for rel in (False, True):
            alternative = alternatives[(index + rel) % 3]
            alpha = 0.1 if index % 4 == 3 else 0.05
            cases.append(
                case(
                    f"{kind}{index}-{'rel' if rel else 'abs'}-{alternative}",
                    stat_a,
                    stat_b,
                    rel,
                    origin,
                    alpha=alpha,
                    alternative=alternative,
                    note=f"{kind} numerator, n = ({n_c}, {n_t}), lift {lift}, carry {carry} "
                    "(SampleMeanStatistic for all four variables)",
                )
            )

    # all four variables 0/1 as ProportionStatistic: every covariance divides by n (ddof 0)
    for index, (n_c, n_t, lift, carry) in enumerate([(4000, 4100, 0.1, 0.9), (600, 650, 0.0, 0.6)]):
        stat_a = ratio_ra(*draw(rng, n_c, "binary", lift=0.0, carry=carry), make=proportion)
        stat_b = ratio_ra(*draw(rng, n_t, "binary", lift=lift, carry=carry), make=proportion)
        for rel in (False, True):
            cases.append(
                case(
                    f"binary{index}-{'rel' if rel else 'abs'}",
                    stat_a,
                    stat_b,
                    rel,
                    origin,
                    ddof=0,
                    note="all four variables ProportionStatistic: variances p(1 - p) and "
                    "covariances Σxy/n - x̄ȳ, the population (ddof 0) moments; sum_squares "
                    "are the sums",
                )
            )

    # theta fixed by the caller (gbstats keeps a set theta), and theta = 0: the ratio test
    m_c = draw(rng, 900, "count", lift=0.0, carry=0.8)
    m_t = draw(rng, 950, "count", lift=0.04, carry=0.8)
    for fixed in (0.0, 0.3, 1.0):
        for rel in (False, True):
            cases.append(
                case(
                    f"fixed_theta{fixed}-{'rel' if rel else 'abs'}",
                    ratio_ra(*m_c, theta=fixed),
                    ratio_ra(*m_t, theta=fixed),
                    rel,
                    origin,
                    note=f"theta set to {fixed} on both statistics (0: gbstats' `theta if "
                    "theta else 0` makes it the unadjusted ratio)",
                )
            )

    # constant pre-period ratio (every unit's m_pre = 2 d_pre): zero pre-ratio variance.
    # gbstats' var_pre is then the rounding of a cancellation (~1e-33, not 0) and its theta
    # ~1e15: `expected` is gbstats with theta set to 0 (its own unadjusted path, what its
    # revert to RatioStatistic intends), `as_is` what its estimate of theta gives
    arms = []
    for n, lift in ((500, 0.0), (520, 0.05)):
        m, d, _, d_pre = draw(rng, n, "mean", lift=lift, carry=0.5)
        arms.append((m, d, 2.0 * d_pre, d_pre))
    for rel in (False, True):
        entry = case(
            f"constant_pre_ratio-{'rel' if rel else 'abs'}",
            ratio_ra(*arms[0], theta=0.0),
            ratio_ra(*arms[1], theta=0.0),
            rel,
            origin,
            note="m_pre = 2 d_pre for every unit: the pre-period ratio has no variance. "
            "expected: gbstats with theta = 0 (the unadjusted ratio); as_is: gbstats' own "
            "theta estimate, which divides two rounding errors",
        )
        entry["theta"] = None
        entry["as_is"] = run(ratio_ra(*arms[0]), ratio_ra(*arms[1]), rel, 0.05, "two-sided")
        cases.append(entry)

    revision = os.environ.get("GBSTATS_COMMIT")
    if revision is None:
        revision = subprocess.run(
            ["git", "-C", GB, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    assert revision == COMMIT, revision
    document = {
        "source": f"gbstats (GrowthBook repository, packages/stats at commit {COMMIT})",
        "layout": "per arm: n, sums and sum_squares of (m, d, m_pre, d_pre), cross_products "
        "Σm·d, Σm·m_pre, Σm·d_pre, Σd·m_pre, Σd·d_pre, Σm_pre·d_pre",
        "cases": cases,
    }
    with open(out_path, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")
    print(len(cases), "cases")


if __name__ == "__main__":
    main(sys.argv[1])

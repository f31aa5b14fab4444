"""Generate tests/data/reference/gbstats_quantile.json: reference values for splitlab's
quantile test, computed by gbstats (GrowthBook packages/stats at commit 8f1db445) from
summaries made with numpy only. Nothing here imports splitlab.

    GBSTATS_SRC=growthbook/packages/stats python tests/data/make_gbstats_quantile.py
"""

import json
import os
import sys

import numpy as np
from scipy.stats import norm

sys.path.insert(0, os.environ.get("GBSTATS_SRC", "growthbook/packages/stats"))
from gbstats.frequentist.tests import (
    FrequentistConfig,
    OneSidedTreatmentGreaterTTest,
    OneSidedTreatmentLesserTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import QuantileClusteredStatistic, QuantileStatistic

GRID = [100 * 2**i for i in range(20)]  # back end N_STAR_VALUES


def growthbook_n_star(n):
    # largest grid value below n, or the smallest (quantile-bounds-from-query-response.ts)
    chosen = GRID[0]
    for value in GRID:
        if value < n:
            chosen = value
    return chosen


def levels(nu, n_star):
    z = norm.ppf(0.975)
    se = np.sqrt(nu * (1 - nu) / n_star)
    return max(nu - z * se, 1e-8), min(nu + z * se, 1 - 1e-8)


def summary(values, nu, clusters=None):
    n = len(values)
    n_star = growthbook_n_star(n)
    low, high = levels(nu, n_star)
    q = float(np.quantile(values, nu))
    out = dict(
        n=n,
        n_star=n_star,
        nu=nu,
        quantile_hat=q,
        quantile_lower=float(np.quantile(values, low)),
        quantile_upper=float(np.quantile(values, high)),
    )
    if clusters is not None:
        ids, inverse = np.unique(clusters, return_inverse=True)
        s = np.bincount(inverse, (values <= q).astype(float))
        m = np.bincount(inverse).astype(float)
        out.update(
            main_sum=float(s.sum()),
            main_sum_squares=float((s * s).sum()),
            denominator_sum=float(m.sum()),
            denominator_sum_squares=float((m * m).sum()),
            main_denominator_sum_product=float((s * m).sum()),
            n_clusters=len(ids),
        )
    return out


def statistic(d):
    if "n_clusters" in d:
        return QuantileClusteredStatistic(**d)
    return QuantileStatistic(**d)


TESTS = {
    "two-sided": TwoSidedTTest,
    "greater": OneSidedTreatmentGreaterTTest,
    "less": OneSidedTreatmentLesserTTest,
}


def case(kind, c, t, relative, alpha, alternative, note):
    config = FrequentistConfig(alpha=alpha, difference_type="relative" if relative else "absolute")
    test = TESTS[alternative]([(statistic(c), statistic(t))], config)
    result = test.compute_result()
    expected = dict(
        effect=result.expected,
        ci_low=result.ci[0],
        ci_high=result.ci[1],
        p_value=result.pValue,
        error_message=result.errorMessage,
    )
    if not result.errorMessage:
        expected.update(
            se=float(test.moments_result.standard_error),
            df=float(test.dof),
            variance_control=float(statistic(c).variance),
            variance_treatment=float(statistic(t).variance),
        )
    for key, value in expected.items():
        if isinstance(value, float) and not np.isfinite(value):
            expected[key] = None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return dict(
        kind=kind,
        note=note,
        relative=relative,
        alpha=alpha,
        alternative=alternative,
        control=c,
        treatment=t,
        expected=expected,
    )


rng = np.random.default_rng(20260821)
cases = []
draws = {
    "lognormal": lambda size, shift: np.exp(rng.normal(shift, 1.0, size)),
    "pareto": lambda size, shift: (1 + shift) * (rng.pareto(2.5, size) + 1),
    "student_t3": lambda size, shift: shift + rng.standard_t(3, size),
}
settings = [
    (0.5, 150, 160),
    (0.9, 1200, 1100),
    (0.99, 5000, 4600),
    (0.1, 700, 800),
    (0.5, 30000, 29000),
]
for index, (name, draw) in enumerate(draws.items()):
    for j, (nu, n_c, n_t) in enumerate(settings):
        c = summary(draw(n_c, 0.0), nu)
        t = summary(draw(n_t, 0.15), nu)
        relative = (index + j) % 2 == 1 and name != "student_t3"
        alpha = 0.05 if j % 3 else 0.1
        alternative = ["two-sided", "greater", "less"][(index + j) % 3]
        cases.append(
            case("quantile", c, t, relative, alpha, alternative, f"{name}, nu={nu}, iid units")
        )
# event-level, clustered by unit: a random number of events, a strong unit effect
for j, (nu, units) in enumerate([(0.5, 400), (0.9, 900), (0.99, 3000), (0.5, 120)]):
    arms = []
    for shift in (0.0, 0.1):
        events = rng.poisson(3.0, units) + 1
        effect = rng.normal(0.0, 1.0, units)
        clusters = np.repeat(np.arange(units), events)
        values = np.exp(shift + effect[clusters] + rng.normal(0.0, 0.5, clusters.size))
        arms.append(summary(values, nu, clusters))
    for relative, alternative in [
        (False, "two-sided"),
        (True, ["greater", "less", "two-sided", "two-sided"][j]),
    ]:
        cases.append(
            case(
                "quantile_clustered",
                arms[0],
                arms[1],
                relative,
                0.05,
                alternative,
                f"lognormal events, unit effect, nu={nu}, {units} units per arm",
            )
        )
# degenerate rows: collapsed bounds (tied data), too few values for p99
tied_c = summary(rng.integers(0, 3, 2000).astype(float), 0.5)
tied_t = summary(rng.integers(0, 4, 2000).astype(float), 0.5)
cases.append(
    case("quantile", tied_c, tied_t, False, 0.05, "two-sided", "ties at the median: lower = upper")
)
small = summary(rng.lognormal(size=300), 0.99)
cases.append(
    case(
        "quantile",
        small,
        summary(rng.lognormal(size=5000), 0.99),
        False,
        0.05,
        "two-sided",
        "n = 300 <= z^2 * 0.99/0.01 for p99",
    )
)
json.dump(
    {
        "source": "gbstats (GrowthBook repository packages/stats, commit 8f1db445, 2026-08)",
        "seed": 20260821,
        "cases": cases,
    },
    open(sys.argv[1], "w"),
    indent=1,
)
print(len(cases), [c["expected"]["error_message"] for c in cases[-2:]])

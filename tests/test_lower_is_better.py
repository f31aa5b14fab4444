"""Metric(lower_is_better=True): effects keep their sign, everything that says which way is
good follows the metric, and every number equals the same computation on the negated
metric (or on scipy's one-sided tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from splitlab import Analyzer, Metric
from splitlab.errors import InvalidArgumentError
from splitlab.stats.bayesian import bayes_test
from splitlab.stats.moments import Moments


def _data(seed: int = 3, n: int = 3000, shift: float = -0.08) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = np.repeat(["control", "b", "c"], n)
    effect = np.select([variant == "b", variant == "c"], [shift, -shift], 0.0)
    latency = rng.gamma(4.0, 0.25, variant.size) + effect
    pre = latency + rng.normal(0, 0.3, variant.size)
    churn = (rng.random(variant.size) < 0.2 + effect / 4).astype(float)
    sessions = rng.integers(1, 6, variant.size).astype(float)
    errors = rng.poisson(sessions * (0.5 + effect))
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant,
            "latency": latency,
            "neg_latency": -latency,
            "pre": pre,
            "neg_pre": -pre,
            "churn": churn,
            "retained": 1.0 - churn,
            "errors": errors.astype(float),
            "neg_errors": -errors.astype(float),
            "sessions": sessions,
        }
    )


LOWER = [
    Metric("latency", lower_is_better=True),
    Metric("latency_cuped", column="latency", covariate="pre", lower_is_better=True),
    Metric("churn", kind="proportion", lower_is_better=True),
    Metric(
        "errors_per_session", kind="ratio", numerator="errors", denominator="sessions",
        lower_is_better=True,
    ),
]  # fmt: skip
NEGATED = [
    Metric("latency", column="neg_latency"),
    Metric("latency_cuped", column="neg_latency", covariate="neg_pre"),
    Metric("churn", column="retained", kind="proportion"),
    Metric("errors_per_session", kind="ratio", numerator="neg_errors", denominator="sessions"),
]


def _by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index(["metric", "variant"]).sort_index()


def test_metric_accepts_either_spelling_and_refuses_a_contradiction():
    assert Metric("a", lower_is_better=True).higher_is_better is False
    assert Metric("a", higher_is_better=False).lower_is_better is True
    assert Metric("a").lower_is_better is False
    assert Metric("a", lower_is_better=True, higher_is_better=False).lower_is_better
    with pytest.raises(InvalidArgumentError, match="lower_is_better"):
        Metric("a", lower_is_better=False, higher_is_better=False)
    with pytest.raises(InvalidArgumentError, match="lower_is_better"):
        Metric("a", lower_is_better="yes")
    with pytest.raises(InvalidArgumentError, match="higher_is_better"):
        Metric("a", higher_is_better=0)


@pytest.mark.parametrize("method", ["ttest", "cs"])
def test_decisions_follow_the_direction_and_equal_the_negated_metric(method):
    data = _data()
    lower = _by_key(Analyzer(data).analyze(LOWER, method=method))
    negated = _by_key(Analyzer(data).analyze(NEGATED, method=method))
    np.testing.assert_allclose(lower["effect"], -negated["effect"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(lower["ci_low"], -negated["ci_high"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(lower["p_value"], negated["p_value"], rtol=1e-9)
    assert lower["decision"].tolist() == negated["decision"].tolist()
    assert lower["lower_is_better"].all() and not negated["lower_is_better"].any()
    # b lowered latency (a win), c raised it (a loss): the planted effects
    assert lower.loc[("latency", "b"), "decision"] == "win"
    assert lower.loc[("latency", "c"), "decision"] == "loss"


def test_bayesian_chance_to_win_and_risks_equal_the_negated_metric():
    data = _data()
    lower = _by_key(Analyzer(data).analyze(LOWER, method="bayes"))
    negated = _by_key(Analyzer(data).analyze(NEGATED, method="bayes"))
    for column in ("chance_to_win", "risk_control", "risk_variant"):
        np.testing.assert_allclose(lower[column], negated[column], rtol=1e-9, atol=1e-15)
    # a lower latency in b: the variant is very probably better
    assert lower.loc[("latency", "b"), "chance_to_win"] > 0.99
    assert lower.loc[("latency", "c"), "chance_to_win"] < 0.01


def test_bayes_test_lower_is_better_is_the_mirror_posterior():
    control = Moments.from_sums(n=1000, sum=5000.0, sum_sq=27000.0)
    treatment = Moments.from_sums(n=1000, sum=5150.0, sum_sq=28500.0)
    higher = bayes_test(control, treatment)
    lower = bayes_test(control, treatment, higher_is_better=False)
    assert float(lower.effect) == float(higher.effect)
    # closed form: P(L < 0) = Φ(−m/v) and E[max(−L, 0)] for keeping the control
    m, v = float(higher.effect), float(higher.se)
    assert float(lower.chance_to_win) == pytest.approx(scipy_stats.norm.cdf(-m / v), rel=1e-12)
    assert float(lower.risk_control) == pytest.approx(float(higher.risk_treatment), rel=1e-12)
    assert float(lower.risk_treatment) == pytest.approx(float(higher.risk_control), rel=1e-12)


def test_one_sided_better_is_scipys_less_for_a_lower_is_better_metric():
    data = _data()
    results = _by_key(
        Analyzer(data).analyze(
            [Metric("latency", lower_is_better=True), Metric("neg_latency")], alternative="better"
        )
    )
    control = data.loc[data["variant"] == "control", "latency"]
    for variant in ("b", "c"):
        treated = data.loc[data["variant"] == variant, "latency"]
        less = scipy_stats.ttest_ind(treated, control, equal_var=False, alternative="less")
        greater = scipy_stats.ttest_ind(-treated, -control, equal_var=False, alternative="greater")
        row = results.loc[("latency", variant)]
        assert row["p_value"] == pytest.approx(less.pvalue, rel=1e-9)
        assert results.loc[("neg_latency", variant), "p_value"] == pytest.approx(
            greater.pvalue, rel=1e-9
        )
        # the one-sided interval is open on the side of the alternative
        assert row["ci_low"] == -np.inf and np.isfinite(row["ci_high"])
    worse = _by_key(
        Analyzer(data).analyze(Metric("latency", lower_is_better=True), alternative="worse")
    )
    treated = data.loc[data["variant"] == "c", "latency"]
    greater = scipy_stats.ttest_ind(treated, control, equal_var=False, alternative="greater")
    assert worse.loc[("latency", "c"), "p_value"] == pytest.approx(greater.pvalue, rel=1e-9)


def test_multiple_testing_corrects_the_one_sided_p_values_in_each_metrics_direction():
    data = _data()
    metrics = [
        Metric("latency", lower_is_better=True),
        Metric("churn", kind="proportion", lower_is_better=True),
        Metric("sessions"),
    ]
    results = Analyzer(data).analyze(
        metrics, alternative="better", correction="holm", correction_scope="experiment"
    )
    expected = []
    control = data[data["variant"] == "control"]
    for metric, variant in zip(results["metric"], results["variant"], strict=True):
        treated = data.loc[data["variant"] == variant]
        side = "greater" if metric == "sessions" else "less"
        if metric == "churn":
            # Welch's test with the Bernoulli variance p(1 − p), one-sided
            p_t, p_c = treated["churn"].mean(), control["churn"].mean()
            welch = scipy_stats.ttest_ind_from_stats(
                p_t, np.sqrt(p_t * (1 - p_t)), len(treated),
                p_c, np.sqrt(p_c * (1 - p_c)), len(control),
                equal_var=False, alternative=side,
            )  # fmt: skip
            expected.append(welch.pvalue)
        else:
            expected.append(
                scipy_stats.ttest_ind(
                    treated[metric], control[metric], equal_var=False, alternative=side
                ).pvalue
            )
    np.testing.assert_allclose(results["p_value"], expected, rtol=1e-9)
    holm = multipletests(expected, method="holm")[1]
    np.testing.assert_allclose(results["p_adjusted"], holm, rtol=1e-9)


def test_guardrail_that_got_worse_is_violated_in_its_own_direction():
    data = _data(shift=-0.15)
    guard = Metric("latency", lower_is_better=True, guardrail=True)
    results = _by_key(Analyzer(data).analyze(guard))
    assert results.loc[("latency", "c"), "decision"] == "guardrail violated"
    assert results.loc[("latency", "b"), "decision"] == "win"


def test_quantile_metric_follows_the_direction():
    data = _data(shift=-0.2)
    p90 = Metric("p90", column="latency", kind="quantile", quantile=0.9, lower_is_better=True)
    results = _by_key(Analyzer(data).analyze(p90, method="bayes"))
    assert results.loc[("p90", "b"), "effect"] < 0
    assert results.loc[("p90", "b"), "chance_to_win"] > 0.95
    assert results.loc[("p90", "b"), "decision"] == "win"


def test_one_sided_alternative_is_refused_where_it_is_not_defined():
    data = _data()
    with pytest.raises(InvalidArgumentError, match="alternative"):
        Analyzer(data).analyze("latency", alternative="less")
    with pytest.raises(InvalidArgumentError, match=r"alternative.*bayes"):
        Analyzer(data).analyze("latency", method="bayes", alternative="better")

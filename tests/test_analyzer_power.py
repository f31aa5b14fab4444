"""Analyzer.power: mid-experiment power from the variance and exposure so far, checked
against the closed form, stats.power.sample_size and a seeded simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats as scipy_stats

import splitlab as sl
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError
from splitlab.stats.power import sample_size


def make_data(seed: int = 11, per_arm: int = 2000, experiments: int = 1, effect: float = 0.0):
    rng = np.random.default_rng(seed)
    size = 2 * per_arm * experiments
    variant = np.tile(np.repeat(["control", "b"], per_arm), experiments)
    pre = rng.normal(10.0, 2.0, size)
    return pd.DataFrame(
        {
            "experiment": np.repeat(np.arange(experiments), 2 * per_arm),
            "variant": variant,
            "pre": pre,
            "revenue": pre + rng.normal(0.0, 2.0, size) + effect * (variant == "b"),
            "constant": 1.0,
        }
    )


def closed_form(se: float, mde: float, alpha: float = 0.05, power: float = 0.8):
    """The two-sided z test's power now, and the factor on n that gives ``power`` (both
    tails, solved numerically; the usual ((z_a + z_b) se / mde)^2 drops the far one)."""
    z = scipy_stats.norm.ppf(1 - alpha / 2)

    def power_at(scale: float) -> float:
        shift = mde / (se / np.sqrt(scale))
        return scipy_stats.norm.cdf(shift - z) + scipy_stats.norm.cdf(-shift - z)

    scale = optimize.brentq(lambda f: power_at(f) - power, 1e-6, 1e6, xtol=1e-14, rtol=1e-14)
    return power_at(1.0), scale


def test_fixed_horizon_power_is_the_closed_form_on_the_observed_se():
    data = make_data()
    row = sl.Analyzer(data).power("revenue", mde=0.2).iloc[0]
    control = data.loc[data["variant"] == "control", "revenue"]
    treated = data.loc[data["variant"] == "b", "revenue"]
    se = np.sqrt(control.var() / len(control) + treated.var() / len(treated))
    now, scale = closed_form(se, 0.2)
    assert row["se"] == pytest.approx(se, rel=1e-10)
    assert row["power"] == pytest.approx(now, rel=1e-9)
    n = len(data)
    assert row["units_needed"] == pytest.approx(n * scale, rel=1e-9)
    assert row["additional_units"] == np.ceil(max(n * scale - n, 0.0))
    assert not row["already_powered"] and row["error"] == ""


def test_units_needed_agree_with_sample_size():
    data = make_data()
    row = sl.Analyzer(data).power("revenue", mde=0.2, target_power=0.9).iloc[0]
    sd = np.sqrt(data.groupby("variant")["revenue"].var(ddof=1).mean())
    plan = sample_size(baseline=10.0, sd=sd, mde=0.2, power=0.9, test="z")
    # the same plan: equal arms with the pooled sd (sample_size drops the far tail, whose
    # share of the power is Φ(−z_a − z_b − z_a) ≈ 1e-7 here)
    assert row["units_needed"] == pytest.approx(2 * float(plan.n_control_exact), rel=1e-6)


def test_power_now_matches_a_seeded_simulation_within_binomial_error():
    experiments, mde = 400, 0.15
    data = make_data(seed=5, per_arm=1500, experiments=experiments, effect=mde)
    analyzer = sl.Analyzer(data)
    rejected = analyzer.analyze("revenue")["significant"].mean()
    predicted = analyzer.power("revenue", mde=mde)["power"].mean()
    truth, _ = closed_form(np.sqrt(2 * 8.0 / 1500), mde)  # var(revenue) = 4 + 4
    binomial_se = np.sqrt(truth * (1 - truth) / experiments)
    assert abs(rejected - truth) < 4 * binomial_se
    assert abs(predicted - truth) < 0.02  # the mean of plug-in powers, se estimated


def test_cuped_and_sequential_methods_change_the_units_needed():
    data = make_data()
    analyzer = sl.Analyzer(data)
    plain = analyzer.power("revenue", mde=0.2).iloc[0]
    adjusted = analyzer.power(sl.Metric("revenue", covariate="pre"), mde=0.2).iloc[0]
    sequential = analyzer.power("revenue", mde=0.2, method="cs").iloc[0]
    assert adjusted["se"] < plain["se"] and adjusted["power"] > plain["power"]
    assert adjusted["units_needed"] < plain["units_needed"] < sequential["units_needed"]
    # the confidence sequence's power now is the chance its interval excludes 0 now
    direct = sl.power_now(plain["se"], len(data), mde=0.2, method="cs", n_star=5000.0)
    assert sequential["power"] == pytest.approx(float(direct.power), rel=1e-12)
    prior = analyzer.power(
        "revenue", mde=0.2, method="bayes", method_options={"prior": (0.0, 0.1)}
    ).iloc[0]
    assert prior["power"] != pytest.approx(plain["power"], rel=1e-3)


def test_one_sided_power_points_in_each_metrics_direction():
    data = make_data()
    lower = sl.Metric("revenue", lower_is_better=True)
    better = sl.Analyzer(data).power(lower, mde=0.2, alternative="better").iloc[0]
    assert better["mde"] == -0.2
    higher = sl.Analyzer(data).power("revenue", mde=0.2, alternative="better").iloc[0]
    assert better["power"] == pytest.approx(higher["power"], rel=1e-12)
    z = scipy_stats.norm.ppf(0.95)
    assert higher["power"] == pytest.approx(scipy_stats.norm.cdf(0.2 / higher["se"] - z), rel=1e-9)


def test_a_metric_with_no_variance_has_no_power_and_says_why():
    data = make_data()
    with pytest.warns(DegenerateDataWarning, match="1 of 2"):
        rows = sl.Analyzer(data).power(["revenue", "constant"], mde=0.2).set_index("metric")
    assert np.isnan(rows.loc["constant", "power"])
    assert "constant" in rows.loc["constant", "error"]
    assert "variance" in rows.loc["constant", "error"]
    assert rows.loc["revenue", "error"] == ""


@pytest.mark.parametrize(
    "options, argument",
    [
        ({"mde": {"other": 0.1}}, "mde"),
        ({"mde": 0.0}, "mde"),
        ({"mde": "big"}, "mde"),
        ({"mde": 0.1, "method": "gst"}, "method"),
        ({"mde": 0.1, "target_power": 1.5}, "target_power"),
        ({"mde": 0.1, "alternative": "less"}, "alternative"),
    ],
)
def test_bad_input_names_the_argument(options, argument):
    with pytest.raises(InvalidArgumentError) as caught:
        sl.Analyzer(make_data(per_arm=50)).power("revenue", **options)
    assert caught.value.argument == argument

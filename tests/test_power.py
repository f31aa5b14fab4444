"""Sample size, power and MDE against statsmodels and closed forms written out here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, special, stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from splitlab.errors import (
    DegenerateDataWarning,
    InvalidArgumentError,
    ShapeMismatchError,
    UnknownOptionError,
)
from splitlab.stats.power import SampleSizeResult, mde, power, sample_size

STATSMODELS_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}
STATSMODELS_POWER = {"z": NormalIndPower(), "t": TTestIndPower()}
CASES = 40


def random_mean_designs(seed: int, alternative: str) -> dict[str, np.ndarray]:
    """Designs with moderate standardized effects, so that n stays well above 2."""
    rng = np.random.default_rng(seed)
    sd = rng.uniform(0.5, 5.0, CASES)
    standardized = rng.uniform(0.1, 0.8, CASES)
    if alternative == "less":
        standardized = -standardized
    elif alternative == "two-sided":
        standardized = standardized * rng.choice([-1.0, 1.0], CASES)
    return {
        "baseline": rng.uniform(1.0, 20.0, CASES),
        "sd": sd,
        "mde": standardized * sd,
        "alpha": rng.choice([0.01, 0.05, 0.1, 0.2], CASES),
        "power": rng.uniform(0.55, 0.95, CASES),
        "ratio": rng.choice([0.3, 0.5, 1.0, 2.0, 3.7], CASES),
    }


def statsmodels_solve(test: str, alternative: str, **kwargs: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solution = STATSMODELS_POWER[test].solve_power(
            alternative=STATSMODELS_ALTERNATIVE[alternative], **kwargs
        )
    return float(np.squeeze(solution))


def unpooled_proportion_power(
    control_rate: float, effect: float, n_control: float, ratio: float, alpha: float, side: str
) -> float:
    """Φ(s − z) (+ Φ(−s − z) two-sided), s = δ / sqrt(p_c q_c / n_c + p_t q_t / n_t)."""
    treatment_rate = control_rate + effect
    standard_error = np.sqrt(
        control_rate * (1 - control_rate) / n_control
        + treatment_rate * (1 - treatment_rate) / (ratio * n_control)
    )
    shift = effect / standard_error
    if side == "two-sided":
        critical = stats.norm.isf(alpha / 2)
        return stats.norm.cdf(shift - critical) + stats.norm.cdf(-shift - critical)
    critical = stats.norm.isf(alpha)
    return stats.norm.cdf(shift - critical if side == "greater" else -shift - critical)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("test", ["z", "t"])
def test_sample_size_matches_statsmodels_solve_power(test: str, alternative: str) -> None:
    design = random_mean_designs(seed=11, alternative=alternative)
    result = sample_size(**design, alternative=alternative, test=test)
    expected = [
        statsmodels_solve(
            test,
            alternative,
            effect_size=design["mde"][i] / design["sd"][i],
            nobs1=None,
            alpha=design["alpha"][i],
            power=design["power"][i],
            ratio=design["ratio"][i],
        )
        for i in range(CASES)
    ]
    np.testing.assert_allclose(result.n_control_exact, expected, rtol=1e-6)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("test", ["z", "t"])
def test_power_matches_statsmodels_power(test: str, alternative: str) -> None:
    rng = np.random.default_rng(12)
    design = random_mean_designs(seed=13, alternative=alternative)
    del design["power"]
    # Effects of either sign: power against the wrong direction is legal and small.
    design["mde"] = design["mde"] * rng.choice([-1.0, 1.0], CASES)
    n_control = rng.uniform(3.0, 500.0, CASES)
    achieved = power(**design, n=n_control, alternative=alternative, test=test)
    expected = np.array(
        [
            STATSMODELS_POWER[test].power(
                design["mde"][i] / design["sd"][i],
                n_control[i],
                design["alpha"][i],
                ratio=design["ratio"][i],
                alternative=STATSMODELS_ALTERNATIVE[alternative],
            )
            for i in range(CASES)
        ]
    )
    # statsmodels inherits NaN from scipy's noncentral t far tail (scipy issue #25470).
    answered = np.isfinite(expected)
    assert answered.mean() > 0.7 and np.all(np.isfinite(achieved))
    np.testing.assert_allclose(achieved[answered], expected[answered], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("test", ["z", "t"])
def test_mde_solves_the_statsmodels_power_equation(test: str, alternative: str) -> None:
    rng = np.random.default_rng(14)
    design = random_mean_designs(seed=15, alternative=alternative)
    del design["mde"]
    n_control = rng.uniform(5.0, 2000.0, CASES)
    effect = mde(**design, n=n_control, alternative=alternative, test=test)

    assert np.all(effect < 0) if alternative == "less" else np.all(effect > 0)
    achieved = [
        STATSMODELS_POWER[test].power(
            effect[i] / design["sd"][i],
            n_control[i],
            design["alpha"][i],
            ratio=design["ratio"][i],
            alternative=STATSMODELS_ALTERNATIVE[alternative],
        )
        for i in range(CASES)
    ]
    np.testing.assert_allclose(achieved, design["power"], rtol=1e-9)

    # statsmodels' own effect-size solver stops early (its power misses by up to 1e-5) and,
    # for one-sided t-tests, sometimes lands on no root at all; compare where it found one.
    solved = np.array(
        [
            statsmodels_solve(
                test,
                alternative,
                effect_size=None,
                nobs1=n_control[i],
                alpha=design["alpha"][i],
                power=design["power"][i],
                ratio=design["ratio"][i],
            )
            for i in range(CASES)
        ]
    )
    solved_power = np.array(
        [
            STATSMODELS_POWER[test].power(
                solved[i],
                n_control[i],
                design["alpha"][i],
                ratio=design["ratio"][i],
                alternative=STATSMODELS_ALTERNATIVE[alternative],
            )
            for i in range(CASES)
        ]
    )
    found_root = np.abs(solved_power - design["power"]) < 1e-4
    if alternative == "two-sided":
        # Both signs solve the two-sided equation; statsmodels may return either.
        solved = np.abs(solved)
    assert found_root.mean() > 0.5
    np.testing.assert_allclose((effect / design["sd"])[found_root], solved[found_root], rtol=1e-3)


def test_sample_size_reproduces_cohens_table_for_the_two_sample_t_test() -> None:
    # Cohen (1988), Statistical Power Analysis, Table 2.4.1: two-sided α = .05, power .80
    # needs n = 64 per group for d = .50 and n = 26 for d = .80.
    result = sample_size(baseline=0.0, sd=1.0, mde=np.array([0.5, 0.8]), test="t")
    np.testing.assert_array_equal(result.n_control, [64, 26])


def test_one_sided_normal_sample_size_matches_the_closed_form() -> None:
    # n_c = (z_{1−α} + z_{1−β})² σ² (1 + 1/r) / δ² exactly when only one tail rejects.
    result = sample_size(
        baseline=5.0, sd=2.0, mde=0.3, alpha=0.025, power=0.9, ratio=2.0, alternative="greater"
    )
    z_sum = stats.norm.isf(0.025) + stats.norm.ppf(0.9)
    expected = z_sum**2 * 4.0 * (1 + 1 / 2.0) / 0.3**2
    assert result.n_control_exact == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_proportion_power_matches_unpooled_normal_closed_form(alternative: str) -> None:
    rng = np.random.default_rng(16)
    control_rate = rng.uniform(0.01, 0.9, CASES)
    effect = rng.uniform(-0.5, 0.5, CASES) * np.minimum(control_rate, 1 - control_rate)
    n_control = rng.uniform(50.0, 50_000.0, CASES)
    ratio = rng.choice([0.5, 1.0, 2.0, 3.0], CASES)
    alpha = rng.choice([0.01, 0.05, 0.1], CASES)
    achieved = power(
        baseline=control_rate,
        mde=effect,
        n=n_control,
        ratio=ratio,
        alpha=alpha,
        alternative=alternative,
    )
    expected = [
        unpooled_proportion_power(
            control_rate[i], effect[i], n_control[i], ratio[i], alpha[i], alternative
        )
        for i in range(CASES)
    ]
    np.testing.assert_allclose(achieved, expected, rtol=1e-9)


def test_one_sided_proportion_sample_size_matches_the_closed_form() -> None:
    # n_c = (z_{1−α} + z_{1−β})² (p_c q_c + p_t q_t / r) / δ² (Chow, Shao & Wang §4.2).
    rng = np.random.default_rng(17)
    control_rate = rng.uniform(0.02, 0.6, CASES)
    effect = rng.uniform(0.05, 0.3, CASES) * control_rate
    ratio = rng.choice([0.5, 1.0, 2.0], CASES)
    result = sample_size(
        baseline=control_rate, mde=effect, ratio=ratio, power=0.9, alternative="greater"
    )
    treatment_rate = control_rate + effect
    variance_unit = (
        control_rate * (1 - control_rate) + treatment_rate * (1 - treatment_rate) / ratio
    )
    z_sum = stats.norm.isf(0.05) + stats.norm.ppf(0.9)
    expected = z_sum**2 * variance_unit / effect**2
    np.testing.assert_allclose(result.n_control_exact, expected, rtol=1e-12)


def test_two_sided_proportion_sample_size_solves_the_two_tailed_power_equation() -> None:
    rng = np.random.default_rng(18)
    control_rate = rng.uniform(0.02, 0.6, 10)
    effect = rng.uniform(-0.3, 0.3, 10) * control_rate
    result = sample_size(baseline=control_rate, mde=effect, ratio=1.5, alpha=0.1, power=0.7)
    for i in range(10):
        expected = optimize.brentq(
            lambda n, i=i: (
                unpooled_proportion_power(control_rate[i], effect[i], n, 1.5, 0.1, "two-sided")
                - 0.7
            ),
            1.0,
            1e9,
            xtol=1e-10,
            rtol=1e-14,
        )
        assert result.n_control_exact[i] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize(
    "metric",
    [
        {"baseline": 0.08, "mde": 0.1, "relative": True},
        {"baseline": 0.6, "mde": 0.03, "relative": False},
        {"baseline": 12.0, "sd": 4.0, "mde": 0.05, "relative": True},
        {"baseline": 12.0, "sd": 4.0, "mde": 0.05, "relative": True, "test": "t"},
        {"baseline": 12.0, "sd": 4.0, "mde": 2.5, "relative": False, "test": "t"},
    ],
)
def test_power_and_mde_invert_sample_size(metric: dict, alternative: str) -> None:
    metric = dict(metric)
    if alternative == "less":
        metric["mde"] = -metric["mde"]
    shared = {"alpha": 0.05, "ratio": 1.7, "alternative": alternative}
    result = sample_size(**metric, power=0.85, **shared)
    n_control = result.n_control_exact
    effect = metric.pop("mde")
    assert power(**metric, mde=effect, n=n_control, **shared) == pytest.approx(0.85, rel=1e-10)
    assert mde(**metric, n=n_control, power=0.85, **shared) == pytest.approx(effect, rel=1e-9)
    # Whole units reach at least the target power.
    assert power(**metric, mde=effect, n=result.n_control, **shared) >= 0.85


def test_sample_size_rounds_each_arm_up_to_whole_units() -> None:
    result = sample_size(baseline=0.2, mde=np.array([0.01, 0.02, -0.03]), ratio=2.5)
    np.testing.assert_array_equal(result.n_control, np.ceil(result.n_control_exact))
    np.testing.assert_array_equal(result.n_treatment, np.ceil(2.5 * result.n_control_exact))
    np.testing.assert_array_equal(result.n_total, result.n_control + result.n_treatment)


def test_sample_size_broadcasts_and_matches_scalar_calls() -> None:
    baselines = np.array([[0.05], [0.1], [0.3]])
    lifts = np.array([0.05, 0.1, 0.2, 0.4])
    result = sample_size(baseline=baselines, mde=lifts, relative=True, power=[0.8, 0.8, 0.9, 0.9])
    assert isinstance(result, SampleSizeResult)
    assert result.n_control.shape == (3, 4)
    for row, baseline in enumerate(baselines[:, 0]):
        for column, lift in enumerate(lifts):
            scalar = sample_size(
                baseline=baseline, mde=lift, relative=True, power=[0.8, 0.8, 0.9, 0.9][column]
            )
            assert result.n_control_exact[row, column] == pytest.approx(
                scalar.n_control_exact, rel=1e-12
            )
    frame = result.to_frame()
    assert list(frame.columns) == ["n_control", "n_treatment", "n_total", "n_control_exact"]
    assert len(frame) == 12


def test_scalar_inputs_give_scalar_outputs() -> None:
    result = sample_size(baseline=0.1, mde=0.01)
    assert all(isinstance(value, float) for value in vars(result).values())
    assert isinstance(power(baseline=0.1, mde=0.01, n=1000), float)
    assert isinstance(mde(baseline=0.1, n=1000), float)
    assert len(result.to_frame()) == 1


def test_power_of_a_zero_effect_is_alpha() -> None:
    for test in ("z", "t"):
        assert power(baseline=1.0, sd=1.0, mde=0.0, n=50, alpha=0.05, test=test) == (
            pytest.approx(0.05, rel=1e-9)
        )


def test_t_power_stays_finite_where_scipy_noncentral_t_cdf_returns_nan() -> None:
    # scipy 1.17's nctdtr returns NaN for this far lower tail (scipy issue #25470), which
    # makes statsmodels' power NaN; the tail is below Φ(−nc) ≈ 1e-14 and power is the
    # upper tail alone.
    n_control, alpha, effect = 78.98, 0.01, 7.8152561 / np.sqrt(78.98 / 2)
    df = 2 * n_control - 2
    critical = -special.stdtrit(df, alpha / 2)
    noncentrality = effect * np.sqrt(n_control / 2)
    upper_tail = 1 - special.nctdtr(df, noncentrality, critical)
    achieved = power(baseline=0.0, sd=1.0, mde=effect, n=n_control, alpha=alpha, test="t")
    assert achieved == pytest.approx(upper_tail, abs=stats.norm.sf(noncentrality))


def test_mde_is_nan_with_a_warning_when_no_rate_reaches_the_power() -> None:
    with pytest.warns(DegenerateDataWarning, match="cannot reach"):
        effect = mde(baseline=np.array([0.5, 0.5]), n=np.array([1.0, 1000.0]))
    assert np.isnan(effect[0]) and effect[1] > 0


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        ({"alpha": 0.0}, "alpha", InvalidArgumentError),
        ({"alpha": 1.5}, "alpha", InvalidArgumentError),
        ({"power": 1.0}, "power", InvalidArgumentError),
        ({"power": -0.2}, "power", InvalidArgumentError),
        ({"power": 0.04}, "power", InvalidArgumentError),
        ({"sd": -1.0}, "sd", InvalidArgumentError),
        ({"sd": 0.0}, "sd", InvalidArgumentError),
        ({"baseline": 1.2}, "baseline", InvalidArgumentError),
        ({"baseline": 0.0}, "baseline", InvalidArgumentError),
        ({"baseline": np.nan}, "baseline", InvalidArgumentError),
        ({"mde": 0.0}, "mde", InvalidArgumentError),
        ({"mde": 0.95}, "mde", InvalidArgumentError),
        ({"mde": -0.01, "alternative": "greater"}, "mde", InvalidArgumentError),
        ({"mde": 0.01, "alternative": "less"}, "mde", InvalidArgumentError),
        ({"ratio": 0.0}, "ratio", InvalidArgumentError),
        ({"test": "f"}, "test", UnknownOptionError),
        ({"test": "t"}, "test", InvalidArgumentError),
        ({"alternative": "larger"}, "alternative", UnknownOptionError),
        ({"baseline": [0.1, 0.2, 0.3], "mde": [0.01, 0.02]}, "baseline", ShapeMismatchError),
        ({"relative": "yes"}, "relative", InvalidArgumentError),
    ],
)
def test_sample_size_rejects_bad_input_naming_the_argument(
    kwargs: dict, argument: str, error: type
) -> None:
    arguments = {"baseline": 0.1, "mde": 0.01} | kwargs
    with pytest.raises(error) as raised:
        sample_size(**arguments)
    assert argument in raised.value.argument
    assert argument in str(raised.value)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: power(baseline=0.1, mde=0.01, n=-5), "n"),
        (lambda: power(baseline=1.0, sd=1.0, mde=0.5, n=0.5, test="t"), "n"),
        (lambda: power(baseline=0.1, mde=0.01, n=100, alternative="both"), "alternative"),
        (lambda: mde(baseline=0.1, n=100, power=1.2), "power"),
        (lambda: mde(baseline=-2.0, sd=1.0, n=100, relative=True), "baseline"),
        (lambda: mde(baseline=0.1, n=[10, 20], alpha=[0.05, 0.1, 0.2]), "n"),
    ],
)
def test_power_and_mde_reject_bad_input_naming_the_argument(call, argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        call()
    assert argument in raised.value.argument.split("/")


def test_t_mde_is_nan_with_a_warning_when_almost_no_degrees_of_freedom_remain() -> None:
    with pytest.warns(DegenerateDataWarning, match="cannot reach"):
        effect = mde(baseline=1.0, sd=1.0, n=[1.0001, 10.0], power=0.99, test="t")
    assert np.isnan(effect[0]) and np.isfinite(effect[1])

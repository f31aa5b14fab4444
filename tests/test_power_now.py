"""Mid-experiment power: GrowthBook gbstats' figures (tests/data/reference/gbstats_power.json,
how it was made in the README there), agreement with splitlab.stats.power, rejection rates
by simulation, and errors that name the argument."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special

from conftest import reference_params
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, UnknownOptionError
from splitlab.sequential.confseq import confidence_sequence_from_estimate
from splitlab.stats.power import power, sample_size
from splitlab.stats.power_now import PowerNowResult, power_now

REFERENCE = "gbstats_power.json"
GBSTATS_TOLERANCE = 1e-5  # gbstats stops bisecting once |power - target| < 1e-5
CASES = reference_params(REFERENCE, "cases", lambda case: True, lambda i, case: case["id"])


def run(case: dict, scaling: float = 0.0) -> PowerNowResult:
    """The case after n·scaling more units: se shrinks by sqrt(1 + scaling)."""
    grown = 1.0 + scaling
    return power_now(
        case["se"] / math.sqrt(grown),
        case["n"] * grown,
        mde=case["mde"],
        relative=case["relative"],
        alpha=case["alpha"],
        target_power=case["target_power"],
        method=case["method"],
        n_star=case["n_star"],
        prior=None if case["prior"] is None else tuple(case["prior"]),
        tests=case["tests"],
        goal_metrics=case["goal_metrics"],
    )


def gbstats_search(power_at, target: float) -> float:
    """gbstats' scaling-factor search (midexperimentpower.py, calculate_scaling_factor),
    re-stated: 0 if already powered; else double k from 1 until the target is reached (27
    times at most), then bisect [0, k] until the power is within 1e-5 of the target."""
    if power_at(0.0) > target:
        return 0.0
    scaling = 1.0
    for _ in range(27):
        if power_at(scaling) >= target:
            break
        scaling *= 2.0
    low, high, excess = 0.0, scaling, power_at(scaling) - target
    for _ in range(100):
        if excess > 0:
            high = scaling
        else:
            low = scaling
        scaling = 0.5 * (low + high)
        excess = power_at(scaling) - target
        if abs(excess) < GBSTATS_TOLERANCE:
            break
    return scaling


@pytest.mark.parametrize("case", CASES)
def test_power_now_matches_gbstats(case):
    expected = case["expected"]
    result = run(case)
    assert result.error == ""
    np.testing.assert_allclose(result.power, expected["power"], rtol=1e-6, atol=1e-12)
    assert bool(result.already_powered) == expected["already_powered"]
    np.testing.assert_allclose(
        result.params["target_power_each"], expected["adjusted_power"], rtol=1e-12
    )
    for scaling, gbstats_power in expected["curve"]:
        np.testing.assert_allclose(run(case, scaling).power, gbstats_power, rtol=1e-6, atol=1e-12)
    root = expected["scaling_factor_root"]
    if root is None:
        assert result.scaling_factor == 0.0 and result.additional_units == 0.0
        assert result.units_needed <= case["n"]
    else:
        np.testing.assert_allclose(result.scaling_factor, root, rtol=1e-6)
        np.testing.assert_allclose(result.units_needed, case["n"] * (1.0 + root), rtol=1e-6)
        np.testing.assert_allclose(result.additional_units, case["n"] * root, rtol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_gbstats_bisection_is_reproduced_on_splitlab_power(case):
    """gbstats reports the first bisection point within 1e-5 of the target, not the root:
    the same search over splitlab's power curve lands on the same point."""
    expected = case["expected"]
    target = expected["adjusted_power"]
    scaling = gbstats_search(lambda k: float(run(case, k).power), target)
    np.testing.assert_allclose(scaling, expected["scaling_factor"], rtol=1e-6, atol=1e-12)
    if expected["additional_users"] is None:  # gbstats' quirk: a scaling factor of 0 is falsy
        assert expected["already_powered"] and scaling == 0.0
    else:
        np.testing.assert_allclose(case["n"] * scaling, expected["additional_users"], rtol=1e-6)
    at_gbstats = float(run(case, expected["scaling_factor"]).power)
    np.testing.assert_allclose(at_gbstats, expected["power_at_scaling_factor"], rtol=1e-6)
    if not expected["already_powered"]:
        assert abs(at_gbstats - target) < GBSTATS_TOLERANCE
    literal = case.get("literal")
    if literal is not None:  # the figures written in gbstats' test, to its places=4
        np.testing.assert_allclose(scaling, literal["scaling_factor"], rtol=1e-6)
        assert round(at_gbstats - literal["power_at_scaling_factor"], literal["places"]) == 0


# ----------------------------------------------------------------- splitlab.stats.power

SE = np.array([0.05, 0.02, 0.3, 0.01, 1.5])
N = np.array([1000.0, 12_000.0, 400.0, 80_000.0, 30.0])
MDE = np.array([0.1, 0.03, 0.2, 0.05, 0.9])


@pytest.mark.parametrize(
    ("alternative", "alpha", "target", "tests"),
    [("two-sided", 0.05, 0.8, 1), ("greater", 0.1, 0.9, 1), ("two-sided", 0.05, 0.8, 3)],
)
def test_fixed_matches_power_and_sample_size(alternative, alpha, target, tests):
    # equal arms of n/2 units with sd σ: se² = 4σ²/n
    sd = SE * np.sqrt(N) / 2.0
    result = power_now(
        SE, N, mde=MDE, alpha=alpha, target_power=target, alternative=alternative, tests=tests
    )
    design = {"baseline": 1.0, "sd": sd, "mde": MDE, "alpha": alpha / tests}
    now = power(**design, n=N / 2.0, alternative=alternative)
    np.testing.assert_allclose(result.power, now, rtol=1e-12)
    needed = sample_size(**design, power=target, alternative=alternative)
    np.testing.assert_allclose(result.units_needed, 2.0 * needed.n_control_exact, rtol=1e-10)
    short = ~result.already_powered
    assert short.any() and (~short).any()
    np.testing.assert_allclose(
        (N + result.additional_units)[short], 2.0 * needed.n_control_exact[short], rtol=1e-10
    )
    assert np.all(2.0 * np.ceil(result.units_needed / 2.0 * (1 - 1e-10)) == needed.n_total)
    assert np.all(result.additional_units[~short] == 0.0)
    assert np.all(result.units_needed[~short] < N[~short])


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_cs_rejects_where_the_confidence_sequence_excludes_zero(alternative):
    """power_now states the sequence's half-width itself (stats may not import sequential):
    at the margin h, an estimate just above h is rejected by the sequence, just below not."""
    sign = -1.0 if alternative == "less" else 1.0
    se, n = SE * 0.8, N * 1.7
    result = power_now(se, n, mde=sign * MDE, method="cs", alternative=alternative, alpha=0.03)
    # invert the power for the margin: power = Φ((|mde| − h)/se) + (far tail, two-sided)
    margin = confidence_sequence_from_estimate(
        0.0, se, n, alpha=0.03, n_star=5000.0, alternative=alternative
    )[1 if alternative != "greater" else 0]
    margin = np.abs(margin)
    far = special.ndtr((-margin - MDE) / se) if alternative == "two-sided" else 0.0
    np.testing.assert_allclose(result.power, special.ndtr((MDE - margin) / se) + far, rtol=1e-12)
    for nudge, excluded in ((1e-9, True), (-1e-9, False)):
        effect = sign * margin * (1.0 + nudge)
        low, high, _ = confidence_sequence_from_estimate(
            effect, se, n, alpha=0.03, n_star=5000.0, alternative=alternative
        )
        assert np.all(((low > 0) | (high < 0)) == excluded)


def test_bayes_with_flat_prior_is_the_fixed_test():
    fixed = power_now(SE, N, mde=MDE)
    flat = power_now(SE, N, mde=MDE, method="bayes")
    np.testing.assert_array_equal(flat.power, fixed.power)
    np.testing.assert_array_equal(flat.units_needed, fixed.units_needed)


def test_a_tight_prior_on_the_effect_raises_the_power_now():
    flat = power_now(0.05, 1000, mde=0.1, method="bayes")
    informed = power_now(0.05, 1000, mde=0.1, method="bayes", prior=(0.1, 0.05))
    sceptical = power_now(0.05, 1000, mde=0.1, method="bayes", prior=(0.0, 0.05))
    assert sceptical.power < flat.power < informed.power
    assert informed.units_needed < flat.units_needed < sceptical.units_needed


def test_a_prior_decisive_on_its_own_needs_no_units():
    # prior mean / sd = 5 > z: the credible interval excludes 0 however little data there is
    result = power_now(0.05, 1000, mde=0.1, method="bayes", prior=(0.5, 0.1))
    assert result.already_powered and result.units_needed == 0.0
    assert result.additional_units == 0.0 and result.scaling_factor == 0.0


def test_one_sided_power_is_symmetric_in_the_direction():
    for method in ("fixed", "cs"):
        greater = power_now(SE, N, mde=MDE, method=method, alternative="greater")
        less = power_now(SE, N, mde=-MDE, method=method, alternative="less")
        np.testing.assert_allclose(less.power, greater.power, rtol=1e-12)
        np.testing.assert_allclose(less.units_needed, greater.units_needed, rtol=1e-12)


def test_goal_metrics_raise_the_target_of_each():
    one = power_now(0.05, 1000, mde=0.1)
    three = power_now(0.05, 1000, mde=0.1, goal_metrics=3)
    each = power_now(0.05, 1000, mde=0.1, target_power=0.8 ** (1 / 3))
    assert three.power == one.power
    np.testing.assert_allclose(three.units_needed, each.units_needed, rtol=1e-12)
    assert three.units_needed > one.units_needed


def test_result_broadcasts_and_makes_a_frame():
    result = power_now(SE[:, None], N[:, None], mde=[[0.05, 0.1, 0.2]], method="cs")
    assert result.power.shape == result.units_needed.shape == (5, 3)
    frame = result.to_frame()
    assert len(frame) == 15
    assert list(frame.columns) == [
        "power", "units_needed", "additional_units", "scaling_factor", "already_powered",
        "error", "method", "scale",
    ]  # fmt: skip
    assert set(frame["method"]) == {"cs"}
    assert isinstance(power_now(0.05, 1000, mde=0.1).power, float)


# ----------------------------------------------------------------- simulation


def simulate_rejections(rng, n_total, mde, sd, reps, alpha=0.05, n_star=5000.0):
    """Equal arms of normal units with sd ``sd``; per arm the sample mean and variance are
    drawn from their exact distributions. Rejection rates of the two-sided z-test, the
    two-sided CS (it excludes 0) and the one-sided CS (its lower bound is above 0)."""
    per_arm = n_total / 2.0
    mean_c = rng.normal(0.0, sd / math.sqrt(per_arm), reps)
    mean_t = rng.normal(mde, sd / math.sqrt(per_arm), reps)
    var_c = sd**2 * rng.chisquare(per_arm - 1, reps) / (per_arm - 1)
    var_t = sd**2 * rng.chisquare(per_arm - 1, reps) / (per_arm - 1)
    effect = mean_t - mean_c
    se = np.sqrt((var_c + var_t) / per_arm)
    fixed = np.abs(effect / se) > special.ndtri(1.0 - alpha / 2.0)
    low, high, _ = confidence_sequence_from_estimate(
        effect, se, n_total, alpha=alpha, n_star=n_star
    )
    low_greater, _, _ = confidence_sequence_from_estimate(
        effect, se, n_total, alpha=alpha, n_star=n_star, alternative="greater"
    )
    return fixed.mean(), ((low > 0) | (high < 0)).mean(), (low_greater > 0).mean()


def test_rejection_rates_match_power_now_and_units_needed():
    rng = np.random.default_rng(20261204)
    reps, sd, mde = 40_000, 2.0, 0.1
    for n_total in (2000.0, 6000.0):
        se = 2.0 * sd / math.sqrt(n_total)
        fixed = power_now(se, n_total, mde=mde)
        cs = power_now(se, n_total, mde=mde, method="cs")
        greater = power_now(se, n_total, mde=mde, method="cs", alternative="greater")
        for result, column in ((fixed, 0), (cs, 1), (greater, 2)):
            rate = simulate_rejections(rng, n_total, mde, sd, reps)[column]
            binomial_se = math.sqrt(result.power * (1 - result.power) / reps)
            assert abs(rate - result.power) < 4 * binomial_se, (n_total, result.method)
            # continue to units_needed: the target power
            later = round(float(result.units_needed) / 2.0) * 2.0
            rate = simulate_rejections(rng, later, mde, sd, reps)[column]
            binomial_se = math.sqrt(0.8 * 0.2 / reps)
            assert abs(rate - 0.8) < 4 * binomial_se + 0.002, (n_total, result.method, later)


# ----------------------------------------------------------------- errors


def test_rows_without_variance_or_units_are_nan_with_a_reason():
    with pytest.warns(DegenerateDataWarning, match="no result"):
        result = power_now([0.05, 0.0, np.nan, 0.05], [1000, 1000, 1000, 0], mde=0.1)
    assert result.error.tolist() == [
        "",
        "se is 0: a metric with no variance has no power",
        "se is NaN or infinite",
        "n is 0: no units yet",
    ]
    assert np.isfinite(result.power[0]) and np.all(np.isnan(result.power[1:]))
    assert np.all(np.isnan(result.units_needed[1:])) and not result.already_powered[1:].any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alone = power_now(0.05, 1000, mde=0.1)
    assert alone.power == result.power[0]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"se": -0.1}, "se"),
        ({"se": "0.1"}, "se"),
        ({"n": -5}, "n"),
        ({"mde": 0.0}, "mde"),
        ({"mde": [0.1, 0.0]}, "mde"),
        ({"mde": np.nan}, "mde"),
        ({"mde": -0.1, "alternative": "greater"}, "mde"),
        ({"mde": 0.1, "alternative": "less"}, "mde"),
        ({"alpha": 1.5}, "alpha"),
        ({"target_power": 0.04}, "target_power"),
        ({"target_power": 1.0}, "target_power"),
        ({"method": "sprt"}, "method"),
        ({"alternative": "both"}, "alternative"),
        ({"prior": (0.0, 0.1)}, "prior"),
        ({"prior": (0.0, -0.1), "method": "bayes"}, "prior"),
        ({"prior": 0.1, "method": "bayes"}, "prior"),
        ({"n_star": 0.0, "method": "cs"}, "n_star"),
        ({"n_star": [1000.0, 2000.0], "method": "cs"}, "n_star"),
        ({"alpha": 0.6, "target_power": 0.9, "method": "cs", "alternative": "greater"}, "alpha"),
        ({"tests": 0}, "tests"),
        ({"goal_metrics": 1.5}, "goal_metrics"),
        ({"relative": 1}, "relative"),
        ({"se": [0.1, 0.2], "n": [1, 2, 3]}, "se/n/mde"),
    ],
)
def test_bad_input_names_the_argument(kwargs, argument):
    arguments = {"se": 0.05, "n": 1000, "mde": 0.1} | kwargs
    se, n = arguments.pop("se"), arguments.pop("n")
    with pytest.raises(InvalidArgumentError) as caught:
        power_now(se, n, **arguments)
    assert caught.value.argument == argument
    if argument in ("method", "alternative"):
        assert isinstance(caught.value, UnknownOptionError)

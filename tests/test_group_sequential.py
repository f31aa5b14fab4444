"""Group-sequential designs: reference boundaries, published tables and Monte Carlo.

Independent checks, none derived from splitlab's own output:

* ``tests/data/reference/group_sequential.json`` (99 designs, 4001-point Simpson grid);
* published boundaries: Lan-DeMets O'Brien-Fleming type, two-sided α = 0.05, K = 5:
  4.877, 3.357, 2.680, 2.290, 2.031 (gsDesign, ldbounds, Jennison & Turnbull);
* gsDesign's documented designs (sample-size ratio 1.0189482 of the one-interim HSD(−3)
  design in the gsDesign technical manual, ch. 3; the package's default asymmetric design
  with bounds −0.24, 0.94, 2.00 / 3.01, 2.55, 2.00 and ratio 1.07);
* Jennison & Turnbull (2000) Tables 2.1 and 2.3: classical Pocock and O'Brien-Fleming
  constants C_P(5, 0.05) = 2.413, C_B(5, 0.05) = 2.040 and their maximum-sample-size
  ratios R_P = 1.207, R_B = 1.026 at 90% power;
* seeded simulations of the Brownian motion of z statistics at the looks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from conftest import reference_params
from splitlab.errors import InvalidArgumentError, ShapeMismatchError, UnknownOptionError
from splitlab.sequential import _group_kernels as kernels
from splitlab.sequential.group import GroupSequentialDesign, spending_function

PATHS = 200_000


def reference_designs() -> list:
    return reference_params(
        "group_sequential.json",
        "designs",
        lambda design: True,
        lambda i, design: (
            f"{design['spending']}{design['param'] or ''}-s{design['sides']}-"
            f"a{design['alpha']}-k{len(design['information'])}-{i}"
        ),
    )


def simulate_z(fractions, drift: float, paths: int, seed: int) -> np.ndarray:
    """z statistics at the looks: Z_k = S_k/√t_k, S a Brownian motion with drift θ."""
    rng = np.random.default_rng(seed)
    fractions = np.asarray(fractions, dtype=float)
    steps = np.diff(fractions, prepend=0.0)
    score = np.cumsum(drift * steps + np.sqrt(steps) * rng.standard_normal((paths, steps.size)), 1)
    return score / np.sqrt(fractions)


def first_crossing(crossed: np.ndarray) -> np.ndarray:
    """Look index of each path's first True, −1 for none."""
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)


def binomial_tolerance(p: float, n: int, sds: float = 4.0) -> float:
    return sds * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("case", reference_designs())
def test_boundaries_match_reference(case):
    spending = case["spending"] if case["param"] is None else (case["spending"], case["param"])
    design = GroupSequentialDesign(
        information=case["information"],
        alpha=case["alpha"],
        spending=spending,
        sides=case["sides"],
    )
    np.testing.assert_allclose(design.boundaries, case["boundaries"], rtol=0, atol=1e-4)


def test_obrien_fleming_matches_published_boundaries():
    design = GroupSequentialDesign(k=5, alpha=0.05, spending="obf", sides=2)
    published = [4.877, 3.357, 2.680, 2.290, 2.031]
    np.testing.assert_allclose(design.boundaries, published, atol=5e-4)


def test_one_look_is_the_fixed_horizon_test():
    assert GroupSequentialDesign(k=1, alpha=0.05).boundaries[0] == pytest.approx(
        stats.norm.isf(0.025), abs=1e-9
    )
    assert GroupSequentialDesign(k=1, alpha=0.05, sides=1).boundaries[0] == pytest.approx(
        stats.norm.isf(0.05), abs=1e-9
    )


def test_spending_families_have_their_published_forms():
    t = np.array([0.05, 0.2, 0.5, 1.0])
    a = 0.025
    assert spending_function("obf")(np.array([0.0]), a)[0] == 0.0
    np.testing.assert_allclose(
        spending_function("obf")(t, a),
        2 - 2 * stats.norm.cdf(stats.norm.isf(a / 2) / np.sqrt(t)),
        rtol=1e-12,
        atol=1e-15,
    )
    np.testing.assert_allclose(spending_function("pocock")(t, a), a * np.log(1 + (math.e - 1) * t))
    np.testing.assert_allclose(spending_function(("power", 3))(t, a), a * t**3)
    np.testing.assert_allclose(
        spending_function(("hsd", -4))(t, a), a * (1 - np.exp(4 * t)) / (1 - math.exp(4))
    )
    np.testing.assert_allclose(spending_function(("hsd", 0))(t, a), a * t)


def test_callable_spending_equals_the_named_family():
    named = GroupSequentialDesign(information=[0.3, 0.55, 1.0], spending=("power", 2.0))
    own = GroupSequentialDesign(information=[0.3, 0.55, 1.0], spending=lambda t, a: a * t**2)
    np.testing.assert_allclose(own.boundaries, named.boundaries, atol=1e-12)


def test_absolute_information_is_normalized_by_the_last_look():
    absolute = GroupSequentialDesign(information=[120, 300, 400], spending="pocock")
    fractions = GroupSequentialDesign(information=[0.3, 0.75, 1.0], spending="pocock")
    np.testing.assert_allclose(absolute.boundaries, fractions.boundaries, atol=1e-12)
    assert absolute.max_information == 400


@pytest.mark.parametrize("sides", [1, 2])
def test_type_one_error_by_simulation_equals_the_spent_alpha(sides):
    design = GroupSequentialDesign(
        information=[0.15, 0.4, 0.5, 0.8, 1.0], alpha=0.05, spending=("hsd", -2), sides=sides
    )
    z = simulate_z(design.information, 0.0, PATHS, seed=sides)
    statistic = np.abs(z) if sides == 2 else z
    look = first_crossing(statistic >= design.boundaries)
    for k in range(design.k):
        observed = np.mean((look >= 0) & (look <= k))
        expected = design.alpha_spent[k]
        assert abs(observed - expected) < binomial_tolerance(max(expected, 1e-4), PATHS)
    assert design.alpha_spent[-1] == pytest.approx(0.05)


def test_integration_reproduces_jennison_turnbull_classical_designs():
    """Tables 2.1 and 2.3: constant Pocock and √(K/k)-shaped O'Brien-Fleming boundaries."""
    fractions = np.arange(1, 6) / 5
    fixed = stats.norm.isf(0.025) + stats.norm.isf(0.1)
    for bounds, ratio in (
        (np.full(5, 2.413), 1.207),
        (2.040 * np.sqrt(5 / np.arange(1, 6)), 1.026),
    ):
        upper, lower = kernels.crossing_probabilities(fractions, bounds, -bounds, 0.0, 32)
        # The tabled constants have three decimals, which moves α by less than 5e-4.
        assert upper.sum() + lower.sum() == pytest.approx(0.05, abs=5e-4)

        def power(drift, bounds=bounds):
            return kernels.crossing_probabilities(fractions, bounds, -bounds, drift, 32)[0].sum()

        drift = optimize.brentq(lambda d: power(d) - 0.9, 1.0, 6.0)
        assert (drift / fixed) ** 2 == pytest.approx(ratio, abs=1.5e-3)


def test_inflation_factor_matches_gsdesign_one_interim_design():
    """gsDesign(k=2, timing=0.6, test.type=1, sfu=sfHSD, sfupar=-3): n.I = 611.3689,
    1018.9482 for n.fix = 1000 (gsDesign technical manual, ch. 3)."""
    design = GroupSequentialDesign(
        information=[0.6, 1.0], alpha=0.025, sides=1, spending=("hsd", -3), beta=0.1
    )
    assert design.inflation_factor == pytest.approx(1.0189482, abs=1e-6)


def test_futility_design_matches_gsdesign_default():
    """gsDesign() defaults: k=3, α=0.025 one-sided, β=0.1, HSD(−4) efficacy, HSD(−2)
    non-binding β-spending futility."""
    design = GroupSequentialDesign(
        k=3, alpha=0.025, sides=1, spending=("hsd", -4), beta=0.1, futility=("hsd", -2)
    )
    np.testing.assert_allclose(design.boundaries, [3.01, 2.55, 2.00], atol=5e-3)
    np.testing.assert_allclose(design.futility, [-0.24, 0.94, 2.00], atol=5e-3)
    assert design.inflation_factor == pytest.approx(1.07, abs=5e-3)
    assert design.futility[-1] == design.boundaries[-1]
    assert design.power == pytest.approx(0.9, abs=1e-9)


@pytest.mark.parametrize(
    ("spending", "sides"), [("obf", 2), ("pocock", 2), (("power", 2.0), 1), (("hsd", 1.0), 1)]
)
def test_power_at_the_design_effect_holds_by_simulation(spending, sides):
    design = GroupSequentialDesign(k=4, alpha=0.05, spending=spending, sides=sides, beta=0.2)
    z = simulate_z(design.information, design.effect, PATHS, seed=7)
    look = first_crossing(z >= design.boundaries)
    assert abs(np.mean(look >= 0) - 0.8) < binomial_tolerance(0.8, PATHS)
    fixed = stats.norm.isf(0.05 / sides) + stats.norm.isf(0.2)
    assert design.inflation_factor == pytest.approx((design.effect / fixed) ** 2)
    assert design.inflation_factor > 1


def test_futility_bounds_spend_beta_and_keep_alpha_by_simulation():
    design = GroupSequentialDesign(
        information=[0.25, 0.5, 0.7, 1.0],
        alpha=0.025,
        sides=1,
        spending="obf",
        beta=0.15,
        futility=("hsd", -1),
    )
    futility = np.nan_to_num(design.futility, nan=-np.inf)
    z = simulate_z(design.information, design.effect, PATHS, seed=11)
    reject = z >= design.boundaries
    stop = reject | (z <= futility)
    look = first_crossing(stop)
    assert np.all(look >= 0), "the bounds meet at the last look, so every path stops"
    rows = np.arange(PATHS)
    rejected = reject[rows, look]
    assert abs(rejected.mean() - 0.85) < binomial_tolerance(0.85, PATHS)
    beta_increments = np.diff(design.beta_spent, prepend=0.0)
    for k in range(design.k - 1):
        share = np.mean((look == k) & ~rejected)
        assert abs(share - beta_increments[k]) < binomial_tolerance(beta_increments[k], PATHS)

    # Non-binding: under H0 the efficacy bounds alone spend α; obeying futility spends less.
    null = simulate_z(design.information, 0.0, PATHS, seed=12)
    alone = np.mean(first_crossing(null >= design.boundaries) >= 0)
    assert abs(alone - 0.025) < binomial_tolerance(0.025, PATHS)
    stopped = first_crossing((null >= design.boundaries) | (null <= futility))
    binding = np.mean(null[np.arange(PATHS), stopped] >= design.boundaries[stopped])
    assert binding < alone


def test_two_sided_futility_is_one_sided_in_the_effect_direction():
    design = GroupSequentialDesign(k=3, alpha=0.05, sides=2, beta=0.1, futility="pocock")
    assert design.futility[-1] == design.boundaries[-1]
    assert np.all(design.futility[:-1] < design.boundaries[:-1])
    upper, lower = design.crossing_probabilities(design.effect, futility=True)
    assert upper.sum() == pytest.approx(0.9, abs=1e-9)
    assert upper.sum() + lower.sum() == pytest.approx(1.0, abs=1e-9)


def test_given_effect_fixes_the_drift_and_reports_power():
    planned = GroupSequentialDesign(k=4, alpha=0.025, sides=1, beta=0.1, futility="obf")
    larger = GroupSequentialDesign(
        k=4, alpha=0.025, sides=1, beta=0.1, futility="obf", effect=planned.effect * 1.1
    )
    assert larger.effect == pytest.approx(planned.effect * 1.1)
    assert larger.power > 0.9
    assert larger.futility[-1] == larger.boundaries[-1]
    efficacy_only = GroupSequentialDesign(k=4, alpha=0.025, sides=1, effect=3.0)
    upper, _ = efficacy_only.crossing_probabilities(3.0)
    assert efficacy_only.power == pytest.approx(upper.sum())


@pytest.mark.parametrize(
    ("spending", "sides", "fractions", "final"),
    [
        ("obf", 2, [0.15, 0.33, 0.61, 0.8], False),
        ("pocock", 1, [0.18, 0.52, 1.0], True),
        (("hsd", -4), 2, [0.3, 0.7, 1.08], True),
        (("power", 3.0), 1, [0.4, 0.9], True),
    ],
)
def test_analyze_at_unplanned_looks_spends_alpha_by_the_spending_function(
    spending, sides, fractions, final
):
    design = GroupSequentialDesign(k=5, alpha=0.05, spending=spending, sides=sides)
    result = design.analyze(np.zeros(len(fractions)), information=fractions, final=final)
    lower = -result.boundaries if sides == 2 else np.full(len(fractions), -np.inf)
    upper_exit, lower_exit = kernels.crossing_probabilities(
        np.asarray(fractions), result.boundaries, lower, 0.0, 32
    )
    spent = np.cumsum(upper_exit + lower_exit)
    expected = design.alpha_spending(fractions)
    if final:
        expected[-1] = 0.05
    np.testing.assert_allclose(spent, expected, atol=1e-8)
    np.testing.assert_allclose(result.alpha_spent, expected, atol=1e-12)
    assert result.decision == ("fail to reject" if final else "continue")


def test_analyze_at_the_planned_looks_reproduces_the_design():
    design = GroupSequentialDesign(k=4, spending="pocock", futility="obf", beta=0.2)
    result = design.analyze(np.zeros(4), information=design.information)
    np.testing.assert_allclose(result.boundaries, design.boundaries, atol=1e-12)
    np.testing.assert_allclose(result.futility, design.futility, atol=1e-12)


def test_analyze_decisions():
    design = GroupSequentialDesign(k=4, alpha=0.05, spending="obf", beta=0.1, futility="pocock")
    rejected = design.analyze([1.0, 3.5, 0.2], information=[0.25, 0.5, 0.75])
    assert (rejected.decision, rejected.stopped_at) == ("reject", 2)
    negative = design.analyze([-4.5], information=[0.25])
    assert negative.decision == "reject", "sides=2 rejects in both directions"
    futile = design.analyze([0.5, -0.4], information=[0.26, 0.49])
    assert futile.futility[1] > -0.4
    assert (futile.decision, futile.stopped_at) == ("futility", 2)
    ongoing = design.analyze([1.0], information=[0.25])
    assert (ongoing.decision, ongoing.stopped_at) == ("continue", None)
    final = design.analyze([1.0, 1.5, 1.7, 1.8], information=[0.25, 0.5, 0.75, 1.0])
    assert (final.decision, final.stopped_at) == ("fail to reject", 4)
    frame = final.to_frame()
    assert list(frame["look"]) == [1, 2, 3, 4]
    assert {"boundaries", "futility", "ci_low", "ci_high"} <= set(frame.columns)


def test_repeated_confidence_intervals_use_absolute_information():
    design = GroupSequentialDesign(information=[100, 200, 300], alpha=0.05, spending="obf")
    se = np.array([0.1, 0.0707, 0.0577])
    z = np.array([0.8, 1.9, 2.2])
    by_se = design.analyze(z, se=se)
    by_information = design.analyze(z, information=1 / se**2)
    np.testing.assert_allclose(by_se.ci_low, by_information.ci_low)
    np.testing.assert_allclose(by_se.information, 1 / se**2 / 300)
    np.testing.assert_allclose(by_se.estimate, z * se)
    np.testing.assert_allclose(by_se.ci_low, z * se - by_se.boundaries * se)
    np.testing.assert_allclose(by_se.ci_high, z * se + by_se.boundaries * se)
    one_sided = GroupSequentialDesign(k=3, sides=1).analyze(z, information=[0.3, 0.6, 0.9])
    assert np.all(np.isposinf(one_sided.ci_high))


def test_estimated_information_that_falls_spends_nothing_at_that_look():
    # se from estimated variances can rise between looks: that look gets no α (bound +∞)
    # and the other looks are analyzed as if it were not there
    design = GroupSequentialDesign(information=[100, 200, 300, 400], spending="obf")
    se = 1 / np.sqrt([100.0, 210.0, 190.0, 300.0])
    z = np.array([0.5, 1.0, 1.2, 1.4])
    result = design.analyze(z, se=se)
    without = design.analyze(z[[0, 1, 3]], information=[100, 210, 300])
    assert np.isposinf(result.boundaries[2]) and np.isposinf(result.ci_high[2])
    np.testing.assert_allclose(result.boundaries[[0, 1, 3]], without.boundaries, rtol=1e-12)
    np.testing.assert_allclose(result.information, [0.25, 0.525, 0.525, 0.75])
    assert result.decision == "continue"


def test_estimated_information_past_the_plan_makes_that_look_final():
    design = GroupSequentialDesign(information=[100, 200, 300], spending="pocock", beta=0.2,
                                   futility="obf")  # fmt: skip
    se = 1 / np.sqrt([90.0, 180.0, 320.0, 400.0])
    z = np.array([0.8, 1.6, 1.9, 2.5])
    result = design.analyze(z, se=se)
    final = design.analyze(z[:3], information=[90, 180, 320], final=True)
    assert result.z.size == 3  # the fourth look is not analyzed
    assert (result.decision, result.stopped_at) == ("fail to reject", 3)
    np.testing.assert_allclose(result.boundaries, final.boundaries, rtol=1e-12)
    assert result.decision == final.decision
    np.testing.assert_allclose(result.alpha_spent[-1], 0.05, rtol=1e-9)


def test_repeated_confidence_intervals_cover_simultaneously():
    """Jennison & Turnbull ch. 9: P(θ ∈ RCI_k for every k) = 1 − α, whatever θ."""
    design = GroupSequentialDesign(k=5, alpha=0.1, spending="pocock")
    theta, sd = 0.3, 2.0
    units = np.array([150, 380, 520, 800, 1000])
    se = sd / np.sqrt(units)
    fractions = units / units[-1]
    result = design.analyze(np.zeros(5), se=se, max_information=1 / se[-1] ** 2)
    np.testing.assert_allclose(result.information, fractions)
    # θ̂_k = θ + noise with the correlation of a Brownian motion in information.
    estimate = theta + simulate_z(fractions, 0.0, PATHS, seed=3) * se
    z = estimate / se
    for row in range(3):
        one = design.analyze(z[row], se=se, max_information=1 / se[-1] ** 2)
        np.testing.assert_allclose(one.ci_low, estimate[row] - result.boundaries * se)
    covered = np.all(np.abs(estimate - theta) <= result.boundaries * se, axis=1)
    assert abs(covered.mean() - 0.9) < binomial_tolerance(0.9, PATHS)
    naive = np.all(np.abs(estimate - theta) <= stats.norm.isf(0.05) * se, axis=1)
    assert naive.mean() < 0.85, "fixed-horizon intervals do not cover simultaneously"


def test_k10_design_is_monotone_and_fast_enough_to_build():
    design = GroupSequentialDesign(k=10, alpha=0.05, spending="obf", beta=0.1, futility="obf")
    assert np.all(np.diff(design.boundaries) < 0)
    assert np.all(np.diff(design.futility) > 0)
    assert design.to_frame().shape == (10, 6)


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        ({}, "k", InvalidArgumentError),
        ({"k": 3, "information": [0.5, 1.0]}, "k", InvalidArgumentError),
        ({"k": 0}, "k", InvalidArgumentError),
        ({"k": 2.5}, "k", InvalidArgumentError),
        ({"information": [0.5, 0.5, 1.0]}, "information", InvalidArgumentError),
        ({"information": [0.6, 0.4, 1.0]}, "information", InvalidArgumentError),
        ({"information": [0.0, 0.5, 1.0]}, "information", InvalidArgumentError),
        ({"information": [-0.2, 1.0]}, "information", InvalidArgumentError),
        ({"information": [0.3, np.nan]}, "information", InvalidArgumentError),
        ({"information": []}, "information", InvalidArgumentError),
        ({"k": 3, "alpha": 0.0}, "alpha", InvalidArgumentError),
        ({"k": 3, "alpha": 1.2}, "alpha", InvalidArgumentError),
        ({"k": 3, "sides": 3}, "sides", InvalidArgumentError),
        ({"k": 3, "spending": "wang"}, "spending", UnknownOptionError),
        ({"k": 3, "spending": ("kim", 2)}, "spending", UnknownOptionError),
        ({"k": 3, "spending": ("power", -1)}, "spending", InvalidArgumentError),
        ({"k": 3, "spending": ("power",)}, "spending", InvalidArgumentError),
        ({"k": 3, "spending": ("hsd", "a")}, "spending", InvalidArgumentError),
        ({"k": 3, "spending": ("hsd", math.inf)}, "spending", InvalidArgumentError),
        ({"k": 3, "spending": ("obf", 1)}, "spending", InvalidArgumentError),
        ({"k": 3, "spending": 3}, "spending", InvalidArgumentError),
        ({"k": 3, "spending": lambda t, a: 2 * a * t}, "spending", InvalidArgumentError),
        ({"k": 3, "spending": lambda t, a: a * (1 - t)}, "spending", InvalidArgumentError),
        ({"k": 3, "beta": 1.5}, "beta", InvalidArgumentError),
        ({"k": 3, "beta": 0.99}, "beta", InvalidArgumentError),
        ({"k": 3, "futility": "nope"}, "futility", UnknownOptionError),
        ({"k": 3, "effect": -1.0}, "effect", InvalidArgumentError),
        ({"k": 3, "grid": 0}, "grid", InvalidArgumentError),
    ],
)
def test_bad_design_arguments_raise_naming_the_argument(kwargs, argument, error):
    with pytest.raises(error) as caught:
        GroupSequentialDesign(**kwargs)
    assert caught.value.argument == argument
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("args", "kwargs", "argument", "error"),
    [
        (([1.0, 2.0],), {}, "information", InvalidArgumentError),
        (([1.0, 2.0], [0.5, 0.4]), {}, "information", InvalidArgumentError),
        (([1.0, 2.0], [0.5]), {}, "information", ShapeMismatchError),
        (([1.0, np.inf], [0.2, 0.4]), {}, "z", InvalidArgumentError),
        (([], []), {}, "z", InvalidArgumentError),
        (([1.0, 2.0], [1.0, 1.2]), {}, "information", InvalidArgumentError),
        (([1.0, 2.0],), {"se": [0.1, -0.1]}, "se", InvalidArgumentError),
        (([1.0, 2.0],), {"se": [0.1]}, "se", ShapeMismatchError),
        (([1.0], [0.5]), {"max_information": 0}, "max_information", InvalidArgumentError),
    ],
)
def test_bad_analyze_arguments_raise_naming_the_argument(args, kwargs, argument, error):
    design = GroupSequentialDesign(k=3)
    with pytest.raises(error) as caught:
        design.analyze(*args, **kwargs)
    assert caught.value.argument == argument

"""AW-AIPW, period-weighted means and the policy-value confidence sequence against direct
formulas written here, plus a time-uniform coverage simulation of the confidence sequence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation_helpers import binomial_tolerance
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError
from splitlab.ope import arm_contrasts, arm_values, aw_aipw_weights, confidence_sequence

Z = stats.norm.ppf(0.975)

PROBS = np.array(
    [[0.5, 0.5], [0.5, 0.5], [0.7, 0.3], [0.7, 0.3], [0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]
)
ACTIONS = np.array([0, 1, 0, 1, 1, 0, 1])
REWARDS = np.array([1.0, 0.0, 2.0, 1.0, 3.0, 0.5, 2.0])
LOG = {
    "action": ACTIONS,
    "reward": REWARDS,
    "propensity": PROBS[np.arange(7), ACTIONS],
    "probabilities": PROBS,
}


def direct_scores() -> np.ndarray:
    """AIPW scores with μ̂ from earlier rows: arm mean, else the mean of all earlier rewards,
    else 0 — written as a plain loop."""
    scores = np.zeros((7, 2))
    for t in range(7):
        earlier = np.arange(t)
        for a in range(2):
            own = earlier[ACTIONS[earlier] == a]
            if own.size:
                mu = REWARDS[own].mean()
            elif t:
                mu = REWARDS[earlier].mean()
            else:
                mu = 0.0
            hit = ACTIONS[t] == a
            scores[t, a] = mu + (hit / PROBS[t, a]) * (REWARDS[t] - mu)
    return scores


@pytest.mark.parametrize("weights", ["stable_var", "uniform"])
def test_aw_aipw_arm_values_and_contrast_match_direct_formulas(weights):
    scores = direct_scores()
    h = np.sqrt(PROBS) if weights == "stable_var" else np.ones_like(PROBS)
    estimate = (h * scores).sum(axis=0) / h.sum(axis=0)
    se = np.sqrt((h**2 * (scores - estimate) ** 2).sum(axis=0)) / h.sum(axis=0)
    table = arm_values(LOG, weights=weights)
    np.testing.assert_allclose(table["estimate"], estimate, rtol=1e-12)
    np.testing.assert_allclose(table["se"], se, rtol=1e-12)
    np.testing.assert_allclose(table["ci_high"], estimate + Z * se, rtol=1e-12)
    # Hadad et al.'s contrast standard error, as in their replication code's formula
    total = h.sum(axis=0)
    numerator = total[0] * h[:, 1] * (scores[:, 1] - estimate[1]) - total[1] * h[:, 0] * (
        scores[:, 0] - estimate[0]
    )
    contrast_se = np.sqrt(np.sum(numerator**2)) / (total[0] * total[1])
    contrast = arm_contrasts(LOG, control=0, weights=weights).iloc[0]
    assert contrast["effect"] == pytest.approx(estimate[1] - estimate[0], rel=1e-12)
    assert contrast["se"] == pytest.approx(contrast_se, rel=1e-12)
    z = contrast["effect"] / contrast["se"]
    assert contrast["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)


def test_relative_contrast_is_the_delta_method_of_the_ratio():
    values = arm_values(LOG)
    absolute = arm_contrasts(LOG).iloc[0]
    relative = arm_contrasts(LOG, relative=True).iloc[0]
    control, arm = values["estimate"]
    assert relative["effect"] == pytest.approx(arm / control - 1)
    # the se of the absolute contrast is Var(a) + Var(c) − 2Cov; recover Cov from it
    var_c, var_a = values["se"] ** 2
    cov = (var_a + var_c - absolute["se"] ** 2) / 2
    gradient = np.array([-arm / control**2, 1 / control])
    expected = gradient @ np.array([[var_c, cov], [cov, var_a]]) @ gradient
    assert relative["se"] == pytest.approx(np.sqrt(expected), rel=1e-10)


def test_two_point_weights_follow_the_stick_breaking_recursion():
    rng = np.random.default_rng(0)
    e = rng.dirichlet([1, 1, 1], size=50)
    alpha, horizon = 0.6, 50
    h = aw_aipw_weights(e, "two_point", floor_decay=alpha)
    remaining = np.ones(3)
    for t in range(1, horizon + 1):
        good = 1 / (horizon - t + 1)
        bad = (1 - alpha) / ((1 - alpha) + horizon * (t / horizon) ** alpha - t)
        rate = e[t - 1] * good + (1 - e[t - 1]) * bad
        expected = remaining * rate * e[t - 1]
        np.testing.assert_allclose(h[t - 1] ** 2, expected, rtol=1e-9, atol=1e-15)
        remaining = remaining * (1 - rate)
    # the allocation rates use up exactly the whole stick: Σ hₜ²/eₜ = 1 (λ_T = 1)
    np.testing.assert_allclose((h**2 / e).sum(axis=0), 1.0, rtol=1e-9)


def test_naive_arm_values_are_sample_means():
    table = arm_values(LOG, method="naive")
    for a in range(2):
        rewards = REWARDS[ACTIONS == a]
        assert table["estimate"][a] == pytest.approx(rewards.mean())
        assert table["se"][a] == pytest.approx(stats.sem(rewards))
    assert table["n"].tolist() == [3, 4]


def test_period_weighted_means_undo_simpsons_paradox():
    # period 1: conversion is low and arm b gets 90% of traffic; period 2: conversion is high
    # and arm b gets 10%. In both periods b is better by 0.05, but pooled b looks worse.
    rows = []
    for period, base, share_b, n in ((1, 0.10, 0.9, 10_000), (2, 0.50, 0.1, 10_000)):
        n_b = int(n * share_b)
        for arm, count, rate in (("a", n - n_b, base), ("b", n_b, base + 0.05)):
            successes = round(count * rate)
            rewards = np.r_[np.ones(successes), np.zeros(count - successes)]
            rows.append(pd.DataFrame({"arm": arm, "reward": rewards, "period": period}))
    frame = pd.concat(rows, ignore_index=True)
    frame["action"] = (frame["arm"] == "b").astype(int)
    frame["propensity"] = np.where(
        frame["period"] == 1, np.where(frame["action"] == 1, 0.9, 0.1),
        np.where(frame["action"] == 1, 0.1, 0.9),
    )  # fmt: skip
    naive = arm_contrasts(frame, control="a", method="naive").iloc[0]
    weighted = arm_contrasts(frame, control="a", method="period_weighted").iloc[0]
    assert naive["effect"] < 0
    assert weighted["effect"] == pytest.approx(0.05, abs=1e-3)
    # direct formula: Σₚ (nₚ/N) ȳₚ and Σₚ (nₚ/N)² sₚ²/nₚ
    values = arm_values(frame, method="period_weighted").set_index("arm")
    for arm in ("a", "b"):
        mean = var = 0.0
        for _, period in frame.groupby("period"):
            share = len(period) / len(frame)
            rewards = period.loc[period["arm"] == arm, "reward"]
            mean += share * rewards.mean()
            var += share**2 * rewards.var(ddof=1) / len(rewards)
        assert values.loc[arm, "estimate"] == pytest.approx(mean, rel=1e-12)
        assert values.loc[arm, "se"] == pytest.approx(np.sqrt(var), rel=1e-12)


def test_period_weighting_warns_when_an_arm_skips_a_period():
    frame = pd.DataFrame(
        {
            "action": [0, 1, 0, 1, 0, 0],
            "reward": [1.0, 0.0, 2.0, 1.0, 3.0, 1.0],
            "propensity": 0.5,
            "period": [1, 1, 1, 1, 2, 2],
        }
    )
    with pytest.warns(DegenerateDataWarning, match="not served in every period"):
        table = arm_values(frame, method="period_weighted")
    assert table["estimate"][1] == pytest.approx(0.5)


def test_adaptive_readouts_refuse_logs_without_what_they_need():
    no_probabilities = {k: v for k, v in LOG.items() if k != "probabilities"}
    with pytest.raises(InvalidArgumentError, match="full logged probabilities"):
        arm_values(no_probabilities)
    with pytest.raises(InvalidArgumentError, match="period column"):
        arm_values(LOG, method="period_weighted")
    with pytest.raises(InvalidArgumentError, match="weights"):
        arm_values(LOG, weights="sqrt")
    with pytest.raises(InvalidArgumentError, match="floor_decay"):
        arm_values(LOG, weights="two_point", floor_decay=1.0)
    with pytest.raises(InvalidArgumentError, match="control"):
        arm_contrasts(LOG, control=5)


# ---------------------------------------------------------------------------- sequences


def test_confidence_sequence_matches_the_asymptotic_cs_formula():
    rng = np.random.default_rng(8)
    n = 900
    actions = rng.integers(2, size=n)
    rewards = rng.normal(np.where(actions == 1, 1.0, 0.2))
    log = {"action": actions, "reward": rewards, "propensity": np.full(n, 0.5)}
    target = np.ones(n, dtype=int)
    path = confidence_sequence(log, target, "ips", alpha=0.1, looks=[300, 600, 900], n_star=500)
    phi = 2.0 * (actions == 1) * rewards
    # Waudby-Smith et al. (2103.06476v7) eq. 9 with ρ² from eq. 161, written out here
    rho2 = (-2 * np.log(0.1) + np.log(-2 * np.log(0.1) + 1)) / 500
    for look, t in enumerate([300, 600, 900]):
        mean, sd = phi[:t].mean(), phi[:t].std(ddof=1)
        margin = sd * np.sqrt(
            2 * (t * rho2 + 1) / (t**2 * rho2) * np.log(np.sqrt(t * rho2 + 1) / 0.1)
        )
        assert path["estimate"][look] == pytest.approx(mean, rel=1e-12)
        assert path["ci_low"][look] == pytest.approx(mean - margin, rel=1e-10)
        assert path["ci_high"][look] == pytest.approx(mean + margin, rel=1e-10)
    assert path["running_low"].tolist() == list(np.maximum.accumulate(path["ci_low"]))


def test_confidence_sequence_dr_uses_only_earlier_looks_for_its_reward_model():
    rng = np.random.default_rng(9)
    n = 400
    x = rng.normal(size=(n, 1))
    actions = rng.integers(2, size=n)
    rewards = x[:, 0] * actions + rng.normal(size=n)
    log = {"action": actions, "reward": rewards, "propensity": np.full(n, 0.5), "contexts": x}
    target = np.ones(n, dtype=int)
    full = confidence_sequence(log, target, "dr", looks=[200, 400])
    # the first look's estimate cannot depend on rewards after row 200
    changed = dict(log, reward=np.r_[rewards[:200], rewards[200:] + 100.0])
    altered = confidence_sequence(changed, target, "dr", looks=[200, 400])
    assert altered["estimate"][0] == full["estimate"][0]
    # at look 1 there is no earlier data: the model predicts 0 and DR is IPS
    ips = confidence_sequence(log, target, "ips", looks=[200, 400])
    assert full["estimate"][0] == pytest.approx(ips["estimate"][0], rel=1e-12)


@pytest.mark.validity
def test_confidence_sequence_covers_at_every_look_simultaneously():
    """Time-uniform coverage: the share of replications in which the truth leaves the
    sequence at *any* of 30 looks stays below α (within binomial tolerance)."""
    rng = np.random.default_rng(10)
    replications, n, alpha = 400, 3000, 0.1
    looks = np.linspace(100, n, 30).astype(int)
    missed = 0
    for _ in range(replications):
        x = rng.normal(size=(n, 2))
        propensity = 1.0 / (1.0 + np.exp(-x[:, 0]))  # logging depends on the context
        actions = (rng.random(n) < propensity).astype(int)
        rewards = 0.5 + x[:, 1] * actions + rng.normal(size=n)
        logged = np.where(actions == 1, propensity, 1 - propensity)
        log = {"action": actions, "reward": rewards, "propensity": logged, "contexts": x}
        path = confidence_sequence(log, np.ones(n, dtype=int), "dr", alpha=alpha, looks=looks)
        missed += bool(np.any((path["ci_low"] > 0.5) | (path["ci_high"] < 0.5)))
    rate = missed / replications
    assert rate <= alpha + binomial_tolerance(alpha, replications), rate


def test_contextual_logs_weight_by_the_periods_effective_allocation():
    rng = np.random.default_rng(12)
    n = 40
    e = rng.dirichlet([2, 2], size=n)
    actions = (rng.random(n) < e[:, 1]).astype(int)
    rewards = rng.normal(size=n)
    periods = np.repeat([0, 1], n // 2)
    log = {
        "action": actions, "reward": rewards, "propensity": e[np.arange(n), actions],
        "probabilities": e, "contexts": rng.normal(size=(n, 1)), "periods": periods,
    }  # fmt: skip
    table = arm_values(log)
    # scores use each row's own e; weights 1/sqrt(mean over the period of 1/e)
    scores = np.zeros((n, 2))
    for t in range(n):
        for a in range(2):
            own = [s for s in range(t) if actions[s] == a]
            mu = rewards[own].mean() if own else (rewards[:t].mean() if t else 0.0)
            scores[t, a] = mu + (actions[t] == a) / e[t, a] * (rewards[t] - mu)
    h = np.vstack([np.tile(1 / np.sqrt(np.mean(1 / e[periods == p], axis=0)), (n // 2, 1))
                   for p in (0, 1)])  # fmt: skip
    np.testing.assert_allclose(table["estimate"], (h * scores).sum(0) / h.sum(0), rtol=1e-12)
    with pytest.raises(InvalidArgumentError, match="period column"):
        arm_values({k: v for k, v in log.items() if k != "periods"})

"""AIPW arm values on logs that record only the chosen arm's propensity (issue 18 item 4):
``weights="uniform"`` against an independent numpy formula, coverage over seeded
Thompson-sampling logs with the per-arm columns dropped, and the refusal of the adaptive
weights that need every arm's probability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation_helpers import binomial_tolerance, coverage_rate
from splitlab.analyzer.analyzer import Analyzer
from splitlab.bandits import ThompsonSampling
from splitlab.errors import InvalidArgumentError
from splitlab.ope import arm_contrasts, arm_values

Z = stats.norm.ppf(0.975)
RATES = np.array([0.30, 0.50, 0.40])
FLOOR = 0.05  # exploration floor mixed into the Thompson probabilities
PROB_COLUMNS = ["prob_0", "prob_1", "prob_2"]
ARMS = ["control", "b", "c"]


def thompson_log(seed: int, n: int = 3000, batch: int = 100) -> pd.DataFrame:
    """A Bernoulli Thompson-sampling log, posterior updated once per period of ``batch``
    rows, every arm's probability floored at FLOOR and recorded in prob_0 … prob_2."""
    rng = np.random.default_rng(seed)
    policy = ThompsonSampling(n_arms=3)
    parts = []
    for period, start in enumerate(range(0, n, batch)):
        e = FLOOR + (1.0 - 3 * FLOOR) * policy.probabilities()
        e = e / e.sum()
        actions = rng.choice(3, size=batch, p=e)
        rewards = (rng.random(batch) < RATES[actions]).astype(float)
        policy.update_batch(actions, rewards)
        parts.append(
            pd.DataFrame(
                {
                    "experiment": "e",
                    "arm": np.asarray(ARMS)[actions],
                    "timestamp": start + np.arange(batch),
                    "action": actions.astype(np.int64),
                    "propensity": e[actions],
                    **{f"prob_{k}": np.full(batch, e[k]) for k in range(3)},
                    "period": np.int64(period),
                    "reward": rewards,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def plain_aipw(actions: np.ndarray, rewards: np.ndarray, propensity: np.ndarray, k: int):
    """Unweighted AIPW written with numpy cumulative sums: μ̂ₜ₋₁(a) is arm a's mean over
    earlier rows, else the mean of all earlier rewards, else 0; Γₜ(a) = μ̂ + 1{Aₜ=a}(Yₜ −
    μ̂)/eₜ(Aₜ); Q̂ = mean Γ, Cov = Σₜ (Γₜ − Q̂)(Γₜ − Q̂)ᵀ / T²."""
    n = actions.size
    chosen = np.zeros((n, k))
    chosen[np.arange(n), actions] = 1.0
    counts = np.vstack([np.zeros(k), np.cumsum(chosen, axis=0)[:-1]])
    sums = np.vstack([np.zeros(k), np.cumsum(chosen * rewards[:, None], axis=0)[:-1]])
    before = np.arange(n, dtype=float)
    pooled = np.divide(
        np.r_[0.0, np.cumsum(rewards)[:-1]], before, out=np.zeros(n), where=before > 0
    )
    own = np.divide(sums, counts, out=np.zeros((n, k)), where=counts > 0)
    mu = np.where(counts > 0, own, pooled[:, None])
    gamma = mu + chosen * (rewards[:, None] - mu) / propensity[:, None]
    estimate = gamma.mean(axis=0)
    centred = gamma - estimate
    return estimate, centred.T @ centred / n**2


@pytest.fixture(scope="module")
def full_log() -> pd.DataFrame:
    return thompson_log(seed=3)


def test_chosen_propensity_aipw_equals_the_numpy_formula(full_log):
    chosen = full_log.drop(columns=PROB_COLUMNS)
    estimate, covariance = plain_aipw(
        full_log["action"].to_numpy(), full_log["reward"].to_numpy(),
        full_log["propensity"].to_numpy(), 3,
    )  # fmt: skip
    table = arm_values(chosen, weights="uniform")
    np.testing.assert_allclose(table["estimate"], estimate, rtol=1e-12)
    np.testing.assert_allclose(table["se"], np.sqrt(np.diag(covariance)), rtol=1e-12)
    assert set(table["method"]) == {"aw_aipw/uniform"}
    contrast = arm_contrasts(chosen, control="control", weights="uniform").set_index("arm")
    for arm, b in (("b", 1), ("c", 2)):
        variance = covariance[b, b] + covariance[0, 0] - 2 * covariance[0, b]
        assert contrast.loc[arm, "effect"] == pytest.approx(estimate[b] - estimate[0], rel=1e-12)
        assert contrast.loc[arm, "se"] == pytest.approx(np.sqrt(variance), rel=1e-12)
    # the same numbers as uniform weights on the log that still has every arm's probability
    with_all = arm_values(full_log, weights="uniform")
    np.testing.assert_allclose(table["estimate"], with_all["estimate"], rtol=1e-12)
    np.testing.assert_allclose(table["se"], with_all["se"], rtol=1e-12)


def test_contextual_chosen_propensity_log_needs_no_period_column():
    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(size=(n, 1))
    p1 = 0.1 + 0.8 / (1.0 + np.exp(-x[:, 0]))
    actions = (rng.random(n) < p1).astype(int)
    rewards = rng.normal(0.5 * actions * x[:, 0])
    propensity = np.where(actions == 1, p1, 1.0 - p1)
    log = {"action": actions, "reward": rewards, "propensity": propensity, "contexts": x}
    estimate, covariance = plain_aipw(actions, rewards, propensity, 2)
    table = arm_values(log, weights="uniform")
    np.testing.assert_allclose(table["estimate"], estimate, rtol=1e-12)
    np.testing.assert_allclose(table["se"], np.sqrt(np.diag(covariance)), rtol=1e-12)


@pytest.mark.parametrize("weights", ["stable_var", "two_point"])
def test_adaptive_weights_refuse_a_chosen_propensity_log_and_name_uniform(full_log, weights):
    chosen = full_log.drop(columns=PROB_COLUMNS)
    for call in (arm_values, arm_contrasts):
        with pytest.raises(InvalidArgumentError, match="weights='uniform'") as raised:
            call(chosen, weights=weights)
        assert raised.value.argument == "weights"
        assert "probabilities" in raised.value.problem
        assert "chosen arm's propensity" in raised.value.problem


def test_analyzer_aipw_reads_a_chosen_propensity_log_with_uniform_weights(full_log):
    chosen = full_log.drop(columns=PROB_COLUMNS)
    analyzer = Analyzer(chosen, variant="arm")
    results = analyzer.analyze(["reward"], method="aipw", method_options={"weights": "uniform"})
    expected = arm_contrasts(chosen, control="control", weights="uniform").set_index("arm")
    got = results.set_index("variant")
    assert set(got.index) == {"b", "c"}
    assert set(got["method"]) == {"aipw/uniform"}
    for column in ("effect", "se", "p_value"):
        np.testing.assert_allclose(
            got.loc[["b", "c"], column], expected.loc[["b", "c"], column], rtol=1e-12
        )
    with pytest.raises(InvalidArgumentError, match="'weights': 'uniform'"):
        analyzer.analyze(["reward"], method="aipw")


@pytest.mark.validity
def test_chosen_propensity_intervals_cover_every_arm_at_the_nominal_rate():
    """Over R seeded floored-Thompson logs with the per-arm columns dropped, the 95%
    uniform-weight AIPW interval of every arm covers its true rate at 95% (binomial
    tolerance); the stable_var interval on the full log is checked alongside."""
    replications = 300
    low, high = np.empty((replications, 3)), np.empty((replications, 3))
    stable_low, stable_high = np.empty((replications, 3)), np.empty((replications, 3))
    for r in range(replications):
        log = thompson_log(seed=1000 + r)
        table = arm_values(log.drop(columns=PROB_COLUMNS), weights="uniform")
        low[r], high[r] = table["ci_low"], table["ci_high"]
        stable = arm_values(log, weights="stable_var")
        stable_low[r], stable_high[r] = stable["ci_low"], stable["ci_high"]
    tolerance = binomial_tolerance(0.95, replications)
    for a in range(3):
        rate = coverage_rate(low[:, a], high[:, a], RATES[a])
        assert abs(rate - 0.95) <= tolerance, (a, rate)
        stable_rate = coverage_rate(stable_low[:, a], stable_high[:, a], RATES[a])
        assert abs(stable_rate - 0.95) <= tolerance, (a, stable_rate)

"""The policy-value confidence sequence is valid from the first look (issue 18, item 3).

A click log whose first look has no click used to give a [0, 0] interval that the running
intersection then kept for good. The betting confidence sequence (Waudby-Smith & Ramdas,
JRSS-B 2024) of :mod:`splitlab.sequential.betting` is exact at every row, and the
asymptotic one now has a variance floor.
"""

from __future__ import annotations

import numpy as np
import pytest

from splitlab.errors import InvalidArgumentError, UnknownOptionError
from splitlab.ope import confidence_sequence
from splitlab.sequential.betting import (
    betting_confidence_sequence,
    betting_grid,
    plug_in_bets,
)

K, CTR = 10, 0.004


def binomial_tolerance(alpha: float, replications: int) -> float:
    return 4.0 * np.sqrt(alpha * (1.0 - alpha) / replications)


def click_log(rng, n: int, *, silent_rows: int = 0):
    """Uniform logging over K actions, CTR 0.4 % for every action, a deterministic
    context-dependent target (action 3 when x > 0, else 0): the value is CTR."""
    x = rng.normal(size=(n, 1))
    actions = rng.integers(K, size=n)
    clicks = (rng.random(n) < CTR).astype(float)
    clicks[:silent_rows] = 0.0
    log = {"action": actions, "reward": clicks, "propensity": np.full(n, 1.0 / K), "contexts": x}
    return log, np.where(x[:, 0] > 0, 3, 0)


# ------------------------------------------------------------------ (a) no click at look 1


@pytest.mark.parametrize("estimator", ["ips", "dr"])
@pytest.mark.parametrize("method", ["betting", "asymptotic"])
def test_a_first_look_without_clicks_does_not_collapse(estimator, method):
    log, target = click_log(np.random.default_rng(1), 20_000, silent_rows=1_000)
    path = confidence_sequence(log, target, estimator, method=method, looks=20)
    assert path["n"].iloc[0] == 1_000
    width = path["running_high"] - path["running_low"]
    assert (width > 0).all() and (path["ci_high"] - path["ci_low"] > 0).all()
    assert ((path["running_low"] <= CTR) & (CTR <= path["running_high"])).all()
    if method == "betting" and estimator == "ips":
        # no click yet: [0, u] with u > 0; the intervals shrink as rows arrive
        assert path["ci_low"].iloc[0] == 0.0 < path["ci_high"].iloc[0]
        assert width.iloc[-1] < width.iloc[0] / 4


def test_a_zero_clicks_gives_zero_to_a_shrinking_upper_bound():
    n = 5_000
    log = {"action": np.zeros(n, int), "reward": np.zeros(n), "propensity": np.full(n, 0.1)}
    path = confidence_sequence(log, np.zeros(n, int), "ips", looks=[10, 100, 1_000, 5_000])
    assert path["running_low"].tolist() == [0.0] * 4
    high = path["running_high"].to_numpy()
    assert np.all(high > 0) and np.all(np.diff(high) < 0)
    asymptotic = confidence_sequence(
        log, np.zeros(n, int), "ips", method="asymptotic", looks=[10, 100, 1_000, 5_000]
    )
    assert (asymptotic["running_high"] > 0).all() and (asymptotic["se"] > 0).all()


def test_the_asymptotic_floor_is_one_pseudo_observation_at_the_largest_variance():
    log, target = click_log(np.random.default_rng(2), 3_000)
    path = confidence_sequence(log, target, "ips", method="asymptotic", looks=[1_000, 3_000])
    phi = K * (log["action"] == target) * log["reward"]
    for look, t in enumerate([1_000, 3_000]):
        # IPS of [0, 1] rewards with w_max = K lies in [0, K]: σ₀² = K²/4
        pooled = (K**2 / 4 + (t - 1) * phi[:t].var(ddof=1)) / t
        assert path["se"].iloc[look] == pytest.approx(np.sqrt(pooled / t), rel=1e-12)
    assert path.attrs["parameters"]["pseudo_outcome_range"] == (0.0, float(K))
    assert path.attrs["parameters"]["method"] == "asymptotic"


def test_rewards_outside_zero_one_default_to_the_asymptotic_sequence():
    rng = np.random.default_rng(3)
    n = 600
    actions = rng.integers(2, size=n)
    log = {"action": actions, "reward": rng.normal(size=n), "propensity": np.full(n, 0.5)}
    path = confidence_sequence(log, np.ones(n, int), "ips", looks=3)
    assert path.attrs["parameters"]["method"] == "asymptotic"
    # a known range makes betting possible
    clipped = dict(log, reward=np.clip(log["reward"], -3, 3))
    bet = confidence_sequence(clipped, np.ones(n, int), "ips", looks=3, reward_range=(-3, 3))
    assert bet.attrs["parameters"]["method"] == "betting"
    assert bet.attrs["parameters"]["pseudo_outcome_range"] == (-6.0, 6.0)
    assert (bet["running_low"] < 0.0).all() and (bet["running_high"] > 0.0).all()


# ------------------------------------------------------- (b) rare rewards, every look at once


def coverage_of_click_logs(replications, n, estimator, seed, alpha=0.05):
    rng = np.random.default_rng(seed)
    covered = np.zeros((replications, 20), dtype=bool)
    widths = np.zeros((replications, 20))
    for r in range(replications):
        log, target = click_log(rng, n)
        path = confidence_sequence(log, target, estimator, alpha, looks=20)
        low, high = path["running_low"].to_numpy(), path["running_high"].to_numpy()
        covered[r] = (low <= CTR) & (CTR <= high)
        widths[r] = high - low
    return covered, widths


@pytest.mark.validity
def test_b_rare_reward_sequence_covers_at_every_look_simultaneously():
    """CTR 0.4 %, uniform logging over 10 actions, 300 replications of 20 000 rows, 20 looks,
    default DR + betting. Measured (seed 18): every run covers at every look (simultaneous
    and per-look coverage 1.000); mean width 0.16 at look 1, 0.011 at look 20."""
    alpha, replications = 0.05, 300
    covered, widths = coverage_of_click_logs(replications, 20_000, "dr", seed=18, alpha=alpha)
    per_look = covered.mean(axis=0)
    simultaneous = covered.all(axis=1).mean()
    assert simultaneous >= 1 - alpha - binomial_tolerance(alpha, replications), per_look
    assert per_look.min() >= simultaneous
    assert (widths > 0).all()


@pytest.mark.slow
@pytest.mark.validity
@pytest.mark.parametrize("estimator", ["ips", "dr"])
def test_b_rare_reward_sequence_covers_heavier(estimator):
    alpha, replications = 0.05, 500
    covered, widths = coverage_of_click_logs(replications, 50_000, estimator, seed=19)
    assert covered.all(axis=1).mean() >= 1 - alpha - binomial_tolerance(alpha, replications)
    assert (widths > 0).all()


# --------------------------------------------------- (c) the generic bounded-mean sequence


@pytest.mark.validity
def test_c_betting_sequence_is_time_uniform_for_bernoulli_samples():
    """Bernoulli(p), every row a look: the share of runs in which the running interval ever
    misses p stays below α (within binomial tolerance)."""
    rng = np.random.default_rng(20)
    alpha, replications, n = 0.1, 300, 2_000
    missed = {}
    for p in (0.02, 0.3):
        ever = 0
        for _ in range(replications):
            path = betting_confidence_sequence(
                (rng.random(n) < p).astype(float), alpha=alpha, grid=300
            )
            ever += bool(np.any((path.running_low > p) | (path.running_high < p)))
        missed[p] = ever / replications
        assert missed[p] <= alpha + binomial_tolerance(alpha, replications), missed


def hoeffding_cs(x: np.ndarray, alpha: float) -> tuple[float, float]:
    """Waudby-Smith & Ramdas' predictable-mixture Hoeffding CS at the last row (their
    eq. 9 with λₜ = sqrt(8 ln(2/α)/(t ln(t + 1))) ∧ 1)."""
    t = np.arange(1, x.size + 1)
    lam = np.minimum(np.sqrt(8 * np.log(2 / alpha) / (t * np.log(t + 1))), 1.0)
    center = np.sum(lam * x) / lam.sum()
    margin = (np.log(2 / alpha) + np.sum(lam**2) / 8) / lam.sum()
    return center - margin, center + margin


def test_c_betting_is_narrower_than_hoeffding_at_ten_thousand():
    rng = np.random.default_rng(21)
    x = (rng.random(10_000) < 0.1).astype(float)
    path = betting_confidence_sequence(x, alpha=0.05, looks=[10_000])
    low, high = hoeffding_cs(x, 0.05)
    assert path.ci_low[0] < 0.1 < path.ci_high[0]
    assert path.ci_high[0] - path.ci_low[0] < 0.7 * (high - low)  # 0.61 measured


def test_c_kernel_matches_a_plain_loop():
    rng = np.random.default_rng(22)
    x = rng.beta(0.5, 3.0, size=300)
    alpha, c = 0.1, 0.5
    path = betting_confidence_sequence(x, alpha=alpha, looks=[50, 300], grid=60, truncation=c)
    grid = betting_grid(60, float(x.mean()))
    bets = plug_in_bets(x, alpha)
    for look, t in enumerate([50, 300]):
        plus = [
            np.sum(np.log1p(np.minimum(bets[:t], c / m if m > 0 else np.inf) * (x[:t] - m)))
            for m in grid
        ]
        minus = [
            np.sum(np.log1p(-np.minimum(bets[:t], c / (1 - m) if m < 1 else np.inf) * (x[:t] - m)))
            for m in grid
        ]
        rejected_low = [g for g, v in zip(grid, plus, strict=True) if v >= np.log(2 / alpha)]
        rejected_high = [g for g, v in zip(grid, minus, strict=True) if v >= np.log(2 / alpha)]
        assert path.ci_low[look] == pytest.approx(max(rejected_low, default=0.0), abs=1e-15)
        assert path.ci_high[look] == pytest.approx(min(rejected_high, default=1.0), abs=1e-15)
        assert path.ci_low[look] < x[:t].mean() < path.ci_high[look]


def test_c_betting_runs_a_million_rows_on_a_thousand_point_grid_quickly():
    import time

    x = (np.random.default_rng(23).random(1_000_000) < 0.3).astype(float)
    betting_confidence_sequence(x[:100], looks=[100])  # compile / load the cache
    start = time.perf_counter()
    path = betting_confidence_sequence(x, looks=np.linspace(50_000, 1_000_000, 20).astype(int))
    assert time.perf_counter() - start < 15.0  # about 2 s measured
    assert path.running_low[-1] < 0.3 < path.running_high[-1]


# ------------------------------------------------------------------------ (d) bad input


def test_d_bad_input():
    log, target = click_log(np.random.default_rng(4), 500)
    with pytest.raises(UnknownOptionError):
        confidence_sequence(log, target, method="exact")
    with pytest.raises(InvalidArgumentError, match="reward_range"):
        confidence_sequence(log, target, reward_range=(0.5, 1.0))
    with pytest.raises(InvalidArgumentError, match="reward_range"):
        confidence_sequence(log, target, reward_range=(1.0, 0.0))
    with pytest.raises(InvalidArgumentError, match="max_weight"):
        confidence_sequence(log, target, max_weight=2.0)
    normal = dict(log, reward=np.random.default_rng(5).normal(size=500))
    with pytest.raises(InvalidArgumentError, match="betting"):
        confidence_sequence(normal, target, method="betting")
    with pytest.raises(InvalidArgumentError, match="grid"):
        confidence_sequence(log, target, grid=3)
    x = np.full(20, 0.5)
    for kwargs in (
        {"bounds": (1.0, 0.0)}, {"bounds": "ab"}, {"bounds": (0.0, 0.4)}, {"grid": 10**9},
        {"grid": 100.0}, {"looks": [5, 3]}, {"looks": [0]}, {"looks": [21]},
        {"truncation": 1.0}, {"alpha": 1.5},
    ):  # fmt: skip
        with pytest.raises(InvalidArgumentError):
            betting_confidence_sequence(x, **kwargs)
    for bad in (np.array([]), np.full((2, 2), 0.5), [0.1, np.nan]):
        with pytest.raises(InvalidArgumentError):
            betting_confidence_sequence(bad)

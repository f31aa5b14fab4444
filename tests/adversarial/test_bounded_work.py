"""Every parameter that sets work has a documented cap or runs in time linear in it (issue
17): just above a cap the call refuses at once, at the cap it returns, and nonsense values
(NaN, negative, bool, huge, fractional) raise InvalidArgumentError naming the argument."""

from __future__ import annotations

import time

import numpy as np
import pytest

import splitlab as sl
from splitlab import bandits
from splitlab.errors import InvalidArgumentError
from splitlab.ope import evaluate
from splitlab.ope import sequential as ope_sequential
from splitlab.ope.estimators import MAX_BOOTSTRAP
from splitlab.ope.reward_model import MAX_FOLDS
from splitlab.sequential.group import MAX_LOOKS, GroupSequentialDesign
from splitlab.simulate import BernoulliArms, ab_streams, count_streams, simulate
from splitlab.simulate.bandits import MAX_CELLS
from splitlab.simulate.streams import MAX_CELLS as STREAM_CELLS

QUICK = 1.0  # seconds a refusal may take


def small_log(size: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    actions = rng.integers(2, size=size)
    rewards = rng.binomial(1, np.where(actions == 1, 0.6, 0.3)).astype(float)
    contexts = rng.normal(size=(size, 2))
    return {
        "action": actions,
        "reward": rewards,
        "propensity": np.full(size, 0.5),
        "contexts": contexts,
    }


def ones(size: int) -> np.ndarray:
    """The target policy that always plays action 1."""
    return np.ones(size, dtype=int)


def refuses_quickly(call, argument: str) -> InvalidArgumentError:
    started = time.perf_counter()
    with pytest.raises(InvalidArgumentError) as error:
        call()
    assert time.perf_counter() - started < QUICK
    assert error.value.argument == argument
    return error.value


# ---------------------------------------------------------------------- caps: just above


ABOVE_CAP = {
    "gsd-k": (lambda: GroupSequentialDesign(k=MAX_LOOKS + 1), "k"),
    "gsd-k-million": (lambda: GroupSequentialDesign(k=10**6), "k"),
    "gsd-information": (
        lambda: GroupSequentialDesign(information=np.arange(1, MAX_LOOKS + 2)),
        "information",
    ),
    "gsd-analyze-z": (
        lambda: GroupSequentialDesign(k=3).analyze(
            np.zeros(MAX_LOOKS + 1), information=np.arange(1, MAX_LOOKS + 2) / (MAX_LOOKS + 1)
        ),
        "z",
    ),
    "gsd-grid": (lambda: GroupSequentialDesign(k=3, grid=201), "grid"),
    "thompson-arms": (
        lambda: bandits.ThompsonSampling(n_arms=bandits.ThompsonSampling.max_arms + 1),
        "n_arms",
    ),
    "top-two-arms": (lambda: bandits.TopTwoThompson(n_arms=129), "n_arms"),
    "gaussian-thompson-arms": (lambda: bandits.GaussianThompson(n_arms=129), "n_arms"),
    "thompson-add-arm": (lambda: bandits.ThompsonSampling(n_arms=128).add_arm(), "n_arms"),
    "linucb-features": (lambda: bandits.LinUCB(n_arms=1, n_features=1_001), "n_features"),
    "lints-unsized-features": (lambda: bandits.LinTS(n_features=10**6), "n_features"),
    "linucb-matrix-cells": (lambda: bandits.LinUCB(n_arms=4_097, n_features=64), "n_arms"),
    "ope-n-boot": (
        lambda: evaluate(small_log(), ones(400), ci="bootstrap", n_boot=MAX_BOOTSTRAP + 1),
        "n_boot",
    ),
    "ope-folds": (lambda: evaluate(small_log(), ones(400), folds=MAX_FOLDS + 1), "folds"),
    "ope-looks": (
        lambda: ope_sequential.confidence_sequence(small_log(), ones(400), "ips", looks=401),
        "looks",
    ),
    "simulate-recorded": (
        lambda: simulate(sl.bandits.UCB1(), BernoulliArms([0.1, 0.2]), 10**4, 10**5 + 1),
        "record",
    ),
    "simulate-horizon": (
        lambda: simulate(sl.bandits.UCB1(), BernoulliArms([0.1, 0.2]), MAX_CELLS + 1, 1),
        "horizon",
    ),
    "ab-streams": (lambda: ab_streams(10**5, STREAM_CELLS // 10**5 + 1, 10), "looks"),
    "count-streams": (lambda: count_streams(10**4, 10**5, 10, [1, 1]), "looks"),
}


@pytest.mark.parametrize("case", list(ABOVE_CAP))
def test_just_above_a_cap_refuses_at_once(case):
    call, argument = ABOVE_CAP[case]
    error = refuses_quickly(call, argument)
    assert "at most" in error.problem or "more than" in error.problem


# ---------------------------------------------------------------------- caps: at the cap


def timed(call, budget: float):
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    assert elapsed < budget, f"took {elapsed:.1f} s"
    return result


def test_a_design_with_the_most_looks_returns():
    # ~1.5 s on a quiet core; the budget leaves room for a shared machine
    design = timed(lambda: GroupSequentialDesign(k=MAX_LOOKS), 20.0)
    assert design.boundaries.shape == (MAX_LOOKS,)
    assert np.all(np.isfinite(design.boundaries))
    assert timed(lambda: design.effect, 30.0) > 0


def test_analyzing_the_most_looks_returns():
    design = GroupSequentialDesign(k=4)
    fractions = np.arange(1, MAX_LOOKS + 1) / MAX_LOOKS
    result = timed(lambda: design.analyze(np.zeros(MAX_LOOKS), information=fractions), 20.0)
    assert result.decision == "fail to reject"


@pytest.mark.parametrize("name", ["ThompsonSampling", "GaussianThompson"])
def test_a_thompson_policy_with_the_most_arms_gives_its_probabilities(name):
    cls = getattr(bandits, name)
    policy = cls(n_arms=cls.max_arms)
    arms = np.arange(cls.max_arms)
    policy.update_batch(arms, np.linspace(0.1, 0.9, arms.size))
    probabilities = timed(policy.probabilities, 20.0)
    assert probabilities.shape == (cls.max_arms,)
    assert abs(probabilities.sum() - 1.0) < 1e-9


def test_a_linear_policy_at_its_size_caps_updates_and_chooses():
    wide = bandits.LinUCB(n_arms=1, n_features=1_000)
    rng = np.random.default_rng(0)
    for _ in range(3):
        timed(lambda: wide.update(0, 1.0, rng.normal(size=1_000)), 5.0)
    many = bandits.LinUCB(n_arms=4_096, n_features=64)  # n_arms · d² = 2²⁴ exactly
    arm, propensity = timed(lambda: many.choose(rng.normal(size=64), rng=1), 10.0)
    assert 0 <= arm < 4_096 and 0 < propensity <= 1


def test_the_most_bootstrap_resamples_and_folds_return():
    log = small_log(200)
    table = timed(
        lambda: evaluate(log, ones(200), estimators=["ips"], ci="bootstrap", n_boot=MAX_BOOTSTRAP),
        30.0,
    )
    assert np.isfinite(table["ci_low"]).all()
    folded = timed(
        lambda: evaluate(small_log(1_000), ones(1_000), estimators=["dr"], folds=MAX_FOLDS), 30.0
    )
    assert np.isfinite(folded["estimate"]).all()


def test_one_look_per_row_returns():
    path = timed(
        lambda: ope_sequential.confidence_sequence(small_log(), ones(400), "ips", looks=400), 10.0
    )
    assert len(path) == 400


# ---------------------------------------------------------------------- linear work


def best_of_three(call) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def test_simulation_time_is_linear_in_the_horizon_and_the_replications():
    env = BernoulliArms([0.2, 0.4, 0.5])

    def run(horizon, replications):
        return lambda: simulate(bandits.UCB1(), env, horizon, replications, seed=1, threads=1)

    run(100, 32)()  # compile
    base = best_of_three(run(4_000, 64))
    # twice the work takes about twice the time (a quadratic cost would take four times)
    assert best_of_three(run(8_000, 64)) < 3.0 * base
    assert best_of_three(run(4_000, 128)) < 3.0 * base


def test_iterative_power_searches_stop_on_extreme_designs():
    # bracketing and the Illinois iterations are capped (64 doublings, 200 steps)
    result = timed(
        lambda: sl.sample_size(baseline=0.5, mde=np.array([1e-9, 1e-3, 0.4]), power=0.999999),
        QUICK,
    )
    assert np.all(np.isfinite(result.n_control))
    effect = timed(lambda: sl.mde(baseline=0.5, n=np.array([100.0, 1e12]), power=0.999), QUICK)
    assert np.all(np.isfinite(effect)) and effect[1] < effect[0]


# ---------------------------------------------------------------------- bad input


BAD_INPUTS = [
    ("k", lambda: GroupSequentialDesign(k=float("nan"))),
    ("k", lambda: GroupSequentialDesign(k=-3)),
    ("k", lambda: GroupSequentialDesign(k=True)),
    ("k", lambda: GroupSequentialDesign(k=2.5)),
    ("k", lambda: GroupSequentialDesign(k=10**30)),
    ("grid", lambda: GroupSequentialDesign(k=3, grid=float("nan"))),
    ("grid", lambda: GroupSequentialDesign(k=3, grid=False)),
    ("information", lambda: GroupSequentialDesign(information=[0.5, float("nan")])),
    ("n_arms", lambda: bandits.ThompsonSampling(n_arms=float("nan"))),
    ("n_arms", lambda: bandits.ThompsonSampling(n_arms=float("inf"))),
    ("n_arms", lambda: bandits.EpsilonGreedy(n_arms=-2)),
    ("n_arms", lambda: bandits.UCB1(n_arms=True)),
    ("n_arms", lambda: bandits.Softmax(n_arms=2.5)),
    ("n_arms", lambda: bandits.GaussianThompson(n_arms=10**12)),
    ("n_features", lambda: bandits.LinUCB(n_arms=2, n_features=float("nan"))),
    ("n_features", lambda: bandits.SquareCB(n_arms=2, n_features=0)),
    ("n_features", lambda: bandits.LogisticTS(n_arms=2, n_features=10**9)),
    ("n_boot", lambda: evaluate(small_log(), ones(400), ci="bootstrap", n_boot=float("nan"))),
    ("n_boot", lambda: evaluate(small_log(), ones(400), ci="bootstrap", n_boot=float("inf"))),
    ("n_boot", lambda: evaluate(small_log(), ones(400), ci="bootstrap", n_boot=True)),
    ("n_boot", lambda: evaluate(small_log(), ones(400), ci="bootstrap", n_boot=-5)),
    ("n_boot", lambda: evaluate(small_log(), ones(400), ci="bootstrap", n_boot=100.5)),
    ("n_boot", lambda: evaluate(small_log(), ones(400), ci="bootstrap", n_boot=10**12)),
    ("folds", lambda: evaluate(small_log(), ones(400), folds=float("nan"))),
    ("folds", lambda: evaluate(small_log(), ones(400), folds=1)),
    ("folds", lambda: evaluate(small_log(), ones(400), folds=True)),
    ("folds", lambda: evaluate(small_log(), ones(400), folds=10**9)),
    ("looks", lambda: ope_sequential.confidence_sequence(small_log(), ones(400), looks=0)),
    ("looks", lambda: ope_sequential.confidence_sequence(small_log(), ones(400), looks=True)),
    ("looks", lambda: ope_sequential.confidence_sequence(small_log(), ones(400), looks=10**15)),
    ("horizon", lambda: simulate(bandits.UCB1(), BernoulliArms([0.1, 0.2]), float("nan"), 2)),
    ("horizon", lambda: simulate(bandits.UCB1(), BernoulliArms([0.1, 0.2]), -1, 2)),
    ("horizon", lambda: simulate(bandits.UCB1(), BernoulliArms([0.1, 0.2]), 10**15, 1)),
    ("replications", lambda: simulate(bandits.UCB1(), BernoulliArms([0.1, 0.2]), 10, True)),
    ("replications", lambda: simulate(bandits.UCB1(), BernoulliArms([0.1, 0.2]), 10, 2.5)),
    ("replications", lambda: simulate(bandits.UCB1(), BernoulliArms([0.1, 0.2]), 2, 10**15)),
    ("looks", lambda: ab_streams(10, float("nan"), 5)),
    ("looks", lambda: ab_streams(10, 10**12, 5)),
    ("replications", lambda: count_streams(-1, 3, 5, [1, 1])),
    ("batch_size", lambda: count_streams(3, 3, 0.5, [1, 1])),
]


@pytest.mark.parametrize(
    ("argument", "call"), BAD_INPUTS, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_INPUTS)]
)
def test_bad_work_parameters_raise_naming_the_argument(argument, call):
    refuses_quickly(call, argument)

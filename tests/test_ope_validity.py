"""Statistical validity of splitlab.ope by seeded simulation with a known ground truth.

Contextual: a linear-Gaussian environment (``splitlab.simulate.LinearContextual``), a
logging policy and a different target policy from ``splitlab.bandits`` (linear Thompson
sampling fitted on different warm-up data, so both are stochastic and overlap). Contexts
are drawn from a fixed pool of 200,000 normal vectors, so the true target value
E_x Σₐ π(a|x) μ(x, a) is an exact average over the pool. Each replication
logs ``ROUNDS`` decisions and runs every estimator; bias and interval coverage per
estimator are printed (``pytest -s``) and checked against binomial tolerances.

Adaptive: Bernoulli arms logged by Beta-Bernoulli Thompson sampling (probabilities clipped
at a floor, as in Hadad et al. 2021, whose theory needs one) with batched updates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from simulation_helpers import binomial_tolerance
from splitlab.bandits import LinTS, ThompsonSampling
from splitlab.errors import DegenerateDataWarning
from splitlab.ope import BanditLog, evaluate
from splitlab.ope.adaptive import arm_inference, contrasts
from splitlab.simulate import LinearContextual
from splitlab.stats.bayesian import prob_best

pytestmark = pytest.mark.validity

ALPHA = 0.05
N_ARMS, N_FEATURES, ROUNDS = 3, 3, 1500


def _policy(env, seed: int, size: int, scale: float) -> LinTS:
    """A LinTS policy warmed up on ``size`` uniformly logged rounds of ``env``."""
    rng = np.random.default_rng(seed)
    policy = LinTS(v=scale, n_arms=N_ARMS, n_features=N_FEATURES)
    contexts = rng.normal(size=(size, N_FEATURES))
    arms = rng.integers(N_ARMS, size=size)
    means = env.expected_rewards(0, contexts)[np.arange(size), arms]
    policy.update_batch(arms, means + rng.normal(size=size), contexts)
    return policy


POOL = 200_000


@pytest.fixture(scope="module")
def contextual_world():
    """Environment, policies and the exact target value over a pool of contexts that every
    replication samples from (so the truth is the pool average, with no Monte Carlo error)."""
    env = LinearContextual(
        theta=np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5], [-0.5, 0.5, 1.0]]),
        intercept=np.array([0.2, 0.0, -0.1]),
        sd=1.0,
    )
    logging_policy = _policy(env, 1, 60, 1.0)
    target_policy = _policy(env, 2, 300, 0.5)
    contexts = np.random.default_rng(99).normal(size=(POOL, N_FEATURES))
    means = env.expected_rewards(0, contexts)
    logging = logging_policy._probabilities_batch(contexts, None)
    target = target_policy._probabilities_batch(contexts, None)
    truth = float(np.mean(np.sum(target * means, axis=1)))
    return contexts, means, logging, target, truth


def _log(world, rng, rounds):
    contexts, means, logging, target, _ = world
    rows = rng.integers(POOL, size=rounds)
    probabilities = logging[rows]
    cumulative = probabilities.cumsum(axis=1)
    actions = np.minimum((cumulative < rng.random(rounds)[:, None]).sum(axis=1), N_ARMS - 1)
    rewards = means[rows, actions] + rng.normal(size=rounds)
    log = BanditLog.from_arrays(
        actions, rewards, probabilities[np.arange(rounds), actions], contexts[rows], probabilities
    )
    return log, target[rows]


def _simulate(world, replications, rounds, seed, **options):
    rng = np.random.default_rng(seed)
    truth = world[-1]
    frames = []
    for _ in range(replications):
        log, target = _log(world, rng, rounds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            frames.append(evaluate(log, target, alpha=ALPHA, **options))
    estimates = np.array([f["estimate"].to_numpy() for f in frames])
    covered = np.array(
        [((f["ci_low"] <= truth) & (truth <= f["ci_high"])).to_numpy() for f in frames]
    )
    return list(frames[0]["estimator"]), estimates, covered, truth


def _report(names, estimates, covered, truth):
    print(f"\ntruth {truth:.4f}")
    for j, name in enumerate(names):
        bias = estimates[:, j].mean() - truth
        sd = estimates[:, j].std(ddof=1)
        print(f"{name:10s} bias {bias:+.4f} (sd {sd:.4f})  coverage {covered[:, j].mean():.3f}")


def test_contextual_estimators_are_unbiased_and_cover(contextual_world):
    replications = 300
    names, estimates, covered, truth = _simulate(contextual_world, replications, ROUNDS, 7)
    _report(names, estimates, covered, truth)
    tolerance = binomial_tolerance(1 - ALPHA, replications)
    for j, name in enumerate(names):
        bias = estimates[:, j].mean() - truth
        sd = estimates[:, j].std(ddof=1)
        if name in ("ips", "snips", "dr", "sndr", "switch_dr"):
            # unbiased or consistent: the mean over replications is within 4 of its se
            assert abs(bias) <= 4 * sd / np.sqrt(replications), name
        if name in ("ips", "snips", "dr", "sndr"):
            assert covered[:, j].mean() >= 1 - ALPHA - tolerance, name


# ---------------------------------------------------------------------------- adaptive


def thompson_logs(truth, horizon, batch, replications, seed, floor):
    """Replications of Beta-Bernoulli Thompson sampling with batched updates; the choice
    probabilities are ThompsonSampling's (P(arm is the posterior argmax), computed for all
    replications at once by ``prob_best``) clipped at ``floor`` and renormalized."""
    rng = np.random.default_rng(seed)
    truth = np.asarray(truth)
    k = truth.size
    successes = np.zeros((replications, k))
    counts = np.zeros((replications, k))
    actions = np.empty((replications, horizon), dtype=np.int64)
    rewards = np.empty((replications, horizon))
    probabilities = np.empty((replications, horizon, k))
    copies = np.repeat(np.arange(replications), batch)
    for start in range(0, horizon, batch):
        p = np.maximum(prob_best(successes=successes, n=counts), floor)
        p /= p.sum(axis=1, keepdims=True)
        drawn = p.cumsum(axis=1)[:, None, :] < rng.random((replications, batch))[:, :, None]
        a = np.minimum(drawn.sum(axis=2), k - 1)
        y = (rng.random((replications, batch)) < truth[a]).astype(float)
        window = slice(start, start + batch)
        actions[:, window], rewards[:, window], probabilities[:, window] = a, y, p[:, None, :]
        np.add.at(successes, (copies, a.ravel()), y.ravel())
        np.add.at(counts, (copies, a.ravel()), 1.0)
    return actions, rewards, probabilities


def test_thompson_probabilities_in_the_simulation_are_the_policys():
    policy = ThompsonSampling(n_arms=2)
    policy.update_batch([0, 0, 0, 1, 1], [1.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(
        prob_best(successes=[[2.0, 0.0]], n=[[3.0, 2.0]])[0], policy.probabilities(), atol=1e-9
    )


def _adaptive_study(truth, horizon, batch, replications, seed, floor):
    actions, rewards, probabilities = thompson_logs(
        truth, horizon, batch, replications, seed, floor
    )
    truth = np.asarray(truth)
    z = 1.959963984540054
    out = {}
    for name, method in (("naive", "naive"), ("aw_aipw", "aw_aipw")):
        estimates, covered, contrast_covered = [], [], []
        for r in range(replications):
            log = BanditLog.from_arrays(
                actions[r], rewards[r], probabilities[r, np.arange(horizon), actions[r]],
                probabilities=probabilities[r],
            )  # fmt: skip
            value, covariance, _ = arm_inference(log, method)
            se = np.sqrt(np.diag(covariance))
            effect, effect_se = contrasts(value, covariance, 0, relative=False)
            estimates.append(value)
            covered.append(np.abs(value - truth) <= z * se)
            contrast_covered.append(abs(effect[1] - (truth[1] - truth[0])) <= z * effect_se[1])
        out[name] = (np.array(estimates), np.array(covered), np.array(contrast_covered))
        bias = out[name][0].mean(axis=0) - truth
        print(f"{name:8s} bias {np.round(bias, 4)} coverage {out[name][1].mean(axis=0)} "
              f"contrast coverage {out[name][2].mean():.3f}")  # fmt: skip
    return out


def test_naive_means_are_biased_down_on_thompson_logs_and_aw_aipw_covers():
    """No-signal arms (Hadad et al.'s hardest case): the naive per-arm mean is biased
    downward (Nie et al., "Why adaptively collected data have negative bias", AISTATS 2018)
    while AW-AIPW's intervals keep their level."""
    replications, truth = 200, [0.5, 0.5]
    out = _adaptive_study(truth, 2000, 20, replications, seed=11, floor=0.01)
    estimates = out["naive"][0].ravel() - 0.5
    assert estimates.mean() < -3 * estimates.std(ddof=1) / np.sqrt(estimates.size)
    tolerance = binomial_tolerance(1 - ALPHA, replications)
    assert out["aw_aipw"][1].mean(axis=0).min() >= 1 - ALPHA - tolerance
    assert out["aw_aipw"][2].mean() >= 1 - ALPHA - tolerance


@pytest.mark.slow
def test_naive_intervals_under_cover_on_thompson_logs_while_aw_aipw_covers():
    replications = 1000
    out = _adaptive_study([0.5, 0.5], 5000, 10, replications, seed=1, floor=0.01)
    tolerance = binomial_tolerance(1 - ALPHA, replications)
    assert out["naive"][2].mean() < 1 - ALPHA - tolerance
    assert out["aw_aipw"][2].mean() >= 1 - ALPHA - tolerance
    assert out["aw_aipw"][1].mean(axis=0).min() >= 1 - ALPHA - tolerance

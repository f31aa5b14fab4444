"""Workloads run inside a peer library's own virtual environment (no splitlab there).

``tooling.peers`` (``python benchmarks/peers/run.py``) starts ``<peer venv>/bin/python
peer_workloads.py`` with a JSON request on stdin and reads one JSON object from stdout: the
peer's versions and, per workload, the best wall time of ``repeats`` runs and the numbers it
computed. The file
imports only the standard library and numpy at the top; each peer is imported inside its
own function, so the module also imports (and its doctest runs) where no peer is installed.

Request: ``{"peer": name, "repeats": int, "stats": {...} | null, "bandits": {...} | null}``
with ``stats`` = per-arm summaries of N comparisons (``n_c, sum_c, sum_sq_c, n_t, sum_t,
sum_sq_t`` and binary ``successes_c, successes_t`` lists) and ``bandits`` = ``{"means":
[...], "horizon": T, "replications": R, "seed": s, "linear": {...}}``.

>>> sorted(WORKLOADS)
['gbstats', 'mabwiser', 'river', 'spotify-confidence', 'vowpalwabbit']
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
import warnings

import numpy as np


def _best(function, repeats: int):
    """(best wall time of ``repeats`` calls, the last call's value)."""
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def _columns(stats: dict) -> dict[str, np.ndarray]:
    return {name: np.asarray(values, dtype=float) for name, values in stats.items()}


# ---------------------------------------------------------------------------- gbstats


def gbstats(request: dict) -> dict:
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
    from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

    data, repeats = _columns(request["stats"]), request["repeats"]
    size = len(data["n_c"])

    def means(i):
        return (
            SampleMeanStatistic(n=int(data["n_c"][i]), sum=data["sum_c"][i],
                                sum_squares=data["sum_sq_c"][i]),
            SampleMeanStatistic(n=int(data["n_t"][i]), sum=data["sum_t"][i],
                                sum_squares=data["sum_sq_t"][i]),
        )  # fmt: skip

    def proportions(i):
        return (
            ProportionStatistic(n=int(data["n_c"][i]), sum=data["successes_c"][i]),
            ProportionStatistic(n=int(data["n_t"][i]), sum=data["successes_t"][i]),
        )

    def frequentist(statistics, difference_type):
        config = FrequentistConfig(difference_type=difference_type, alpha=0.05)
        out = {"effect": [], "ci_low": [], "ci_high": [], "p_value": []}
        for i in range(size):
            result = TwoSidedTTest(*statistics(i), config).compute_result()
            out["effect"].append(result.expected)
            out["ci_low"].append(result.ci[0])
            out["ci_high"].append(result.ci[1])
            out["p_value"].append(result.p_value)
        return out

    def bayesian(difference_type, prior):
        config = EffectBayesianConfig(difference_type=difference_type, prior_effect=prior)
        out = {"effect": [], "ci_low": [], "ci_high": [], "chance_to_win": [],
               "risk_control": [], "risk_treatment": []}  # fmt: skip
        for i in range(size):
            result = EffectBayesianABTest(*means(i), config).compute_result()
            out["effect"].append(result.expected)
            out["ci_low"].append(result.ci[0])
            out["ci_high"].append(result.ci[1])
            out["chance_to_win"].append(result.chance_to_win)
            out["risk_control"].append(result.risk[0])
            out["risk_treatment"].append(result.risk[1])
        return out

    proper = GaussianPrior(mean=0.0, variance=0.1**2, proper=True)
    workloads = {
        "welch": lambda: frequentist(means, "absolute"),
        "welch_relative": lambda: frequentist(means, "relative"),
        "proportions": lambda: frequentist(proportions, "absolute"),
        "bayes_flat": lambda: bayesian("absolute", GaussianPrior()),
        "bayes_proper_relative": lambda: bayesian("relative", proper),
    }
    results = {}
    for name, function in workloads.items():
        seconds, numbers = _best(function, repeats)
        results[name] = {"seconds": seconds, "count": size, "numbers": numbers}
    return results


# ---------------------------------------------------------------------------- spotify


def spotify_confidence(request: dict) -> dict:
    import pandas as pd
    import spotify_confidence as confidence

    data, repeats = _columns(request["stats"]), request["repeats"]
    size = len(data["n_c"])
    index = np.arange(size)

    def frame(numerator_c, sum_sq_c, numerator_t, sum_sq_t):
        return pd.DataFrame(
            {
                "comparison": np.concatenate([index, index]),
                "variant": ["control"] * size + ["treatment"] * size,
                "sum": np.concatenate([numerator_c, numerator_t]),
                "sum_sq": np.concatenate([sum_sq_c, sum_sq_t]),
                "n": np.concatenate([data["n_c"], data["n_t"]]),
            }
        )

    means = frame(data["sum_c"], data["sum_sq_c"], data["sum_t"], data["sum_sq_t"])
    # 0/1 outcomes: the sum of squares is the sum
    binary = frame(data["successes_c"], data["successes_c"], data["successes_t"],
                   data["successes_t"])  # fmt: skip

    def difference(test, table, absolute):
        analysis = test(table, "sum", "sum_sq", "n",
                        categorical_group_columns=["variant", "comparison"])  # fmt: skip
        out = analysis.difference("control", "treatment", groupby="comparison", absolute=absolute)
        out = out.sort_values("comparison")
        return {
            "effect": out["difference"].tolist(),
            "ci_low": out["ci_lower"].tolist(),
            "ci_high": out["ci_upper"].tolist(),
            "p_value": out["p-value"].tolist(),
        }

    workloads = {
        "welch": lambda: difference(confidence.StudentsTTest, means, True),
        "welch_relative": lambda: difference(confidence.StudentsTTest, means, False),
        "ztest": lambda: difference(confidence.ZTest, means, True),
        "proportions": lambda: difference(confidence.ZTest, binary, True),
    }
    results = {}
    for name, function in workloads.items():
        seconds, numbers = _best(function, repeats)
        results[name] = {"seconds": seconds, "count": size, "numbers": numbers}
    return results


# ---------------------------------------------------------------------------- bandits


def _bandit_loop(choose, update, means: np.ndarray, horizon: int, rng) -> tuple[float, float]:
    """One replication: ``horizon`` choose/update calls on Bernoulli arms; returns (seconds,
    cumulative pseudo-regret)."""
    rewards = rng.random((horizon, means.size)) < means
    best = means.max()
    regret = 0.0
    start = time.perf_counter()
    for step in range(horizon):
        arm = choose()
        update(arm, float(rewards[step, arm]))
        regret += best - means[arm]
    return time.perf_counter() - start, regret


def _linear_loop(choose, update, bandit: dict, rng) -> tuple[float, float]:
    """One replication on a linear contextual environment (reward = x·θ_arm + N(0, sd²))."""
    theta = np.asarray(bandit["theta"])
    horizon, sd = bandit["horizon"], bandit["sd"]
    contexts = rng.normal(size=(horizon, theta.shape[1]))
    expected = contexts @ theta.T
    noise = rng.normal(0.0, sd, horizon)
    regret = 0.0
    start = time.perf_counter()
    for step in range(horizon):
        x = contexts[step]
        arm = choose(x)
        update(arm, float(expected[step, arm] + noise[step]), x)
        regret += expected[step].max() - expected[step, arm]
    return time.perf_counter() - start, regret


def _run_policies(factories: dict, request: dict) -> dict:
    """Every policy over R replications; seconds per step and the regret of each run."""
    bandit = request["bandits"]
    means = np.asarray(bandit["means"])
    results = {}
    for name, factory in factories.items():
        seconds, regrets = 0.0, []
        for replication in range(bandit["replications"]):
            rng = np.random.default_rng([bandit["seed"], replication])
            if name.startswith("LinUCB"):
                choose, update = factory(replication)
                elapsed, regret = _linear_loop(choose, update, bandit["linear"], rng)
                steps = bandit["linear"]["horizon"]
            else:
                choose, update = factory(replication)
                elapsed, regret = _bandit_loop(choose, update, means, bandit["horizon"], rng)
                steps = bandit["horizon"]
            seconds += elapsed
            regrets.append(regret)
        results[name] = {
            "seconds": seconds,
            "count": steps * bandit["replications"],
            "numbers": {"regret": regrets},
        }
    return results


def river(request: dict) -> dict:
    from river import bandit, proba

    arms = list(range(len(request["bandits"]["means"])))

    def context_free(make):
        def factory(replication):
            policy = make(replication)
            return (lambda: policy.pull(arms)), policy.update

        return factory

    def linucb(replication):
        policy = bandit.LinUCBDisjoint(alpha=1.0, beta=1.0, seed=replication)

        def choose(x):
            return policy.pull(arms, dict(enumerate(x.tolist())))

        def update(arm, reward, x):
            policy.update(arm, dict(enumerate(x.tolist())), reward)

        return choose, update

    factories = {
        "ThompsonSampling": context_free(
            lambda seed: bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=seed)
        ),
        "EpsilonGreedy": context_free(lambda seed: bandit.EpsilonGreedy(epsilon=0.1, seed=seed)),
        "UCB1": context_free(lambda seed: bandit.UCB(delta=1.0, seed=seed)),
        "LinUCB": linucb,
    }
    return _run_policies(factories, request)


def mabwiser(request: dict) -> dict:
    from mabwiser.mab import MAB, LearningPolicy

    arms = list(range(len(request["bandits"]["means"])))

    def context_free(learning_policy):
        def factory(replication):
            mab = MAB(arms, learning_policy, seed=replication)
            # MABWiser needs a fit before predict, and an arm it has never seen is never
            # explored by its UCB1: start from one reward-0 observation of every arm
            mab.fit(arms, [0] * len(arms))
            return mab.predict, lambda arm, reward: mab.partial_fit([arm], [reward])

        return factory

    def linucb(replication):
        mab = MAB(arms, LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=replication)
        dimension = len(request["bandits"]["linear"]["theta"][0])
        mab.fit(arms, [0.0] * len(arms), np.zeros((len(arms), dimension)))

        def update(arm, reward, x):
            mab.partial_fit([arm], [reward], x[None, :])

        return (lambda x: mab.predict(x[None, :])), update

    factories = {
        "ThompsonSampling": context_free(LearningPolicy.ThompsonSampling()),
        "EpsilonGreedy": context_free(LearningPolicy.EpsilonGreedy(epsilon=0.1)),
        "UCB1": context_free(LearningPolicy.UCB1(alpha=1.0)),
        "LinUCB": linucb,
    }
    return _run_policies(factories, request)


def vowpalwabbit(request: dict) -> dict:
    import vowpalwabbit as vw

    n_arms = len(request["bandits"]["means"])

    def epsilon_greedy(replication):
        workspace = vw.Workspace(
            f"--cb_explore {n_arms} --epsilon 0.1 --quiet --random_seed {replication}"
        )
        rng = np.random.default_rng(replication)
        last = {}

        def choose():
            pmf = np.asarray(workspace.predict("| "), dtype=float)
            arm = int(rng.choice(n_arms, p=pmf / pmf.sum()))
            last["probability"] = pmf[arm] / pmf.sum()
            return arm

        def update(arm, reward):
            workspace.learn(f"{arm + 1}:{-reward}:{last['probability']} | ")

        return choose, update

    return _run_policies({"EpsilonGreedy": epsilon_greedy}, request)


WORKLOADS = {
    "gbstats": gbstats,
    "spotify-confidence": spotify_confidence,
    "river": river,
    "mabwiser": mabwiser,
    "vowpalwabbit": vowpalwabbit,
}
DISTRIBUTIONS = {"spotify-confidence": "spotify-confidence"}


def main() -> int:
    request = json.loads(sys.stdin.read())
    peer = request["peer"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peers' deprecation chatter must not reach stdout
        results = WORKLOADS[peer](request)
    version = importlib.metadata.version(DISTRIBUTIONS.get(peer, peer))
    json.dump({"peer": peer, "version": version, "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

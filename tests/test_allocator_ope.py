"""End to end: an Allocator serves a bandit, flushes its decision log, and splitlab.ope and
the Analyzer read that log back with estimates that cover the known truth."""

from __future__ import annotations

import numpy as np
import pytest

import splitlab as sl
from splitlab.allocator import Allocator
from splitlab.bandits import EpsilonGreedy, LinUCB, ThompsonSampling

RATES = np.array([0.10, 0.12, 0.16])
SIGMAS = 4.0  # |estimate − truth| <= 4 se fails by chance with probability ~6e-5


def serve(alloc: Allocator, steps: int, seed: int, delay: int = 25) -> None:
    """Bernoulli rewards that arrive ``delay`` decisions late."""
    rng = np.random.default_rng(seed)
    waiting = []
    for _ in range(steps):
        waiting.append(alloc.choose())
        if len(waiting) > delay:
            decision = waiting.pop(0)
            alloc.update(decision, float(rng.random() < RATES[decision.arm_index]))
    for decision in waiting:
        alloc.update(decision, float(rng.random() < RATES[decision.arm_index]))


def test_off_policy_values_from_an_allocator_log_cover_the_truth(tmp_path):
    alloc = Allocator(["a", "b", "c"], EpsilonGreedy(epsilon=0.3), seed=3, salt="exp")
    serve(alloc, 12_000, seed=4)
    alloc.flush(tmp_path)
    table = sl.ope.evaluate(str(tmp_path / "*.parquet"), np.full(12_000, 0, dtype=int),
                            estimators=("ips", "snips"))  # fmt: skip
    assert set(table["n"]) == {12_000}
    for row in table.itertuples():
        assert abs(row.estimate - RATES[0]) <= SIGMAS * row.se, row
    uniform = np.full((12_000, 3), 1 / 3)
    value = sl.ope.evaluate(str(tmp_path), uniform, estimators=("snips",)).iloc[0]
    assert abs(value["estimate"] - RATES.mean()) <= SIGMAS * value["se"]


def test_aipw_readout_of_a_thompson_allocator_log(tmp_path):
    alloc = Allocator(["a", "b", "c"], ThompsonSampling(), seed=5, salt="exp",
                      refresh_every=500, min_weight=0.05)  # fmt: skip
    serve(alloc, 15_000, seed=6)
    alloc.flush(tmp_path)
    results = sl.Analyzer(str(tmp_path), experiment="experiment", variant="arm",
                          control="a").analyze(["reward"], method="aipw")  # fmt: skip
    for row in results.itertuples():
        truth = RATES[int(row.variant == "c") + 1] - RATES[0]
        assert abs(row.effect - truth) <= SIGMAS * row.se, row
    assert results["n_control"].iloc[0] + results["n_variant"].sum() == 15_000


def test_contextual_log_feeds_policy_evaluation(tmp_path):
    rng = np.random.default_rng(0)
    theta = np.array([[0.5, 0.0], [0.0, 0.5], [0.3, 0.3]])
    alloc = Allocator(["a", "b", "c"], LinUCB(alpha=2.0), n_features=2, seed=1,
                      min_weight=0.1)  # fmt: skip
    for _ in range(3000):
        context = rng.normal(size=2)
        decision = alloc.choose(context=context)
        alloc.update(decision, float(theta[decision.arm_index] @ context + rng.normal()))
    alloc.flush(tmp_path / "log.parquet")
    log = sl.ope.load_log(str(tmp_path / "log.parquet"))
    assert log.contexts.shape == (3000, 2) and log.n == 3000
    target = alloc.policy
    table = sl.ope.evaluate(str(tmp_path / "log.parquet"), target, estimators=("dr",))
    target_probabilities = np.stack([target.probabilities(x) for x in log.contexts])
    truth_rows = np.einsum("nk,nk->n", target_probabilities, log.contexts @ theta.T)
    assert abs(table["estimate"].iloc[0] - truth_rows.mean()) <= SIGMAS * table["se"].iloc[0]


@pytest.mark.parametrize("missing", ["prob_1", "propensity"])
def test_a_damaged_log_is_refused_naming_the_column(tmp_path, missing):
    import pandas as pd

    alloc = Allocator(["a", "b"], EpsilonGreedy(), seed=0)
    serve(alloc, 200, seed=1, delay=0)
    frame = pd.read_parquet(alloc.flush(tmp_path / "log.parquet")).drop(columns=missing)
    with pytest.raises(sl.errors.InvalidArgumentError):
        sl.ope.arm_values(frame)

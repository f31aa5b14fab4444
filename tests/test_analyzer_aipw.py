"""Analyzer.analyze(method="aipw") on decision logs in the Allocator.flush schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from splitlab.analyzer.analyzer import RESULT_COLUMNS, Analyzer
from splitlab.bandits import ThompsonSampling
from splitlab.errors import InvalidArgumentError
from splitlab.ope import arm_contrasts

ARMS = ["control", "blue", "green"]


def decision_log(experiment: str, seed: int, rates=(0.10, 0.12, 0.10), n=3000, batch=100):
    """A Thompson-sampling decision log with batched (per-period) updates."""
    rng = np.random.default_rng(seed)
    policy = ThompsonSampling(n_arms=3)
    parts = []
    for period, start in enumerate(range(0, n, batch)):
        probabilities = policy.probabilities()
        actions = rng.choice(3, size=batch, p=probabilities)
        rewards = (rng.random(batch) < np.asarray(rates)[actions]).astype(float)
        policy.update_batch(actions, rewards)
        frame = pd.DataFrame(
            {
                "decision_id": [f"{experiment}-{start + i}" for i in range(batch)],
                "timestamp": pd.Timestamp("2024-05-01", tz="UTC")
                + pd.to_timedelta(start + np.arange(batch), unit="s"),
                "unit": None,
                "experiment": experiment,
                "arm": np.asarray(ARMS)[actions],
                "action": actions.astype(np.int64),
                "propensity": probabilities[actions],
                **{f"prob_{k}": np.full(batch, probabilities[k]) for k in range(3)},
                "policy_version": np.int64(period),
                "period": np.int64(period),
                "reward": rewards,
            }
        )
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def logs() -> pd.DataFrame:
    return pd.concat([decision_log("e1", 1), decision_log("e2", 2)], ignore_index=True)


def test_aipw_rows_match_arm_contrasts(logs, tmp_path):
    path = tmp_path / "decisions.parquet"
    logs.sample(frac=1.0, random_state=0).to_parquet(path)  # shuffled: order by timestamp
    results = Analyzer(path, variant="arm").analyze(["reward"], method="aipw")
    assert list(results.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert len(results) == 4 and set(results["variant"]) == {"blue", "green"}
    for experiment, frame in logs.groupby("experiment"):
        expected = arm_contrasts(frame, control="control").set_index("arm")
        got = results[results["experiment"] == experiment].set_index("variant")
        for arm in ("blue", "green"):
            for ours, theirs in (("effect", "effect"), ("se", "se"), ("ci_low", "ci_low"),
                                 ("p_value", "p_value"), ("mean_control", "value_control"),
                                 ("mean_variant", "value_arm")):  # fmt: skip
                assert got.loc[arm, ours] == pytest.approx(expected.loc[arm, theirs], rel=1e-10)
            assert got.loc[arm, "n_variant"] == (frame["arm"] == arm).sum()
    assert (results["method"] == "aipw/stable_var").all()
    assert results["srm_p_value"].isna().all()
    assert results.attrs["parameters"]["method"] == "aipw"


def test_aipw_options_relative_and_corrections(logs):
    analyzer = Analyzer(logs, variant="arm")
    two_point = analyzer.analyze(
        ["reward"], method="aipw", method_options={"weights": "two_point", "floor_decay": 0.5}
    )
    assert (two_point["method"] == "aipw/two_point").all()
    relative = analyzer.analyze(["reward"], method="aipw", relative=True, correction="holm")
    plain = analyzer.analyze(["reward"], method="aipw")
    np.testing.assert_allclose(
        relative["effect"], plain["mean_variant"] / plain["mean_control"] - 1, rtol=1e-12
    )
    assert (relative["scale"] == "relative").all()
    assert (relative["p_adjusted"] >= relative["p_value"]).all()


def test_null_rewards_are_dropped_and_counted(logs):
    frame = logs.copy()
    frame.loc[frame.index[-50:], "reward"] = None  # the last rewards have not arrived yet
    results = Analyzer(frame, variant="arm").analyze(["reward"], method="aipw")
    assert results.loc[results["experiment"] == "e2", "excluded"].unique().tolist() == [50]
    assert results.loc[results["experiment"] == "e1", "excluded"].unique().tolist() == [0]


def test_aipw_refuses_what_it_cannot_do(logs):
    analyzer = Analyzer(logs, variant="arm")
    with pytest.raises(InvalidArgumentError, match="segments"):
        analyzer.analyze(["reward"], method="aipw", segments=["period"])
    with pytest.raises(InvalidArgumentError, match="label 'red'"):
        Analyzer(logs, variant="arm", control="red").analyze(["reward"], method="aipw")
    with pytest.raises(InvalidArgumentError, match="logged probabilities"):
        no_probabilities = logs.drop(columns=["prob_0", "prob_1", "prob_2"])
        Analyzer(no_probabilities, variant="arm").analyze(["reward"], method="aipw")
    with pytest.raises(InvalidArgumentError, match="method_options"):
        analyzer.analyze(["reward"], method="aipw", method_options={"tau2": 1.0})

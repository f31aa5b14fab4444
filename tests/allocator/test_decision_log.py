"""The decision log on its own (``splitlab.allocator.log``)."""

import json
import math
import warnings

import numpy as np
import pytest

from splitlab.allocator.log import DecisionLog, DecisionLogOverflowWarning, decision_table
from splitlab.allocator.pending import new_row
from splitlab.bandits import LinUCB, ThompsonSampling


def make_row(k, arm=0, context=None, reward=None, reward_time=None, sticky=False):
    probabilities = np.array([0.25, 0.75])
    row = new_row(
        f"d-{k}", 1_700_000_000.25 + k, None if k % 2 else f"u{k}", arm,
        float(probabilities[arm]), probabilities, 3, 1, context, sticky,
    )  # fmt: skip
    row[9], row[10] = reward, reward_time
    return row


def test_the_log_drops_its_oldest_rows_at_capacity_and_warns_once():
    counters = {"log_dropped": 0}
    log = DecisionLog(capacity=3, counters=counters)
    with pytest.warns(DecisionLogOverflowWarning, match="log_capacity=3") as caught:
        for k in range(6):
            log.append(make_row(k))
    assert len(caught) == 1
    assert [row[0] for row in log.rows] == ["d-3", "d-4", "d-5"] and counters["log_dropped"] == 3


def test_restored_rows_are_kept_whatever_the_capacity():
    log = DecisionLog(capacity=1, counters={"log_dropped": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log.extend([make_row(0), make_row(1)])
    assert len(log) == 2


def test_take_keeps_the_pending_rows_and_put_back_restores_the_order():
    log = DecisionLog(capacity=10, counters={"log_dropped": 0})
    for k in range(5):
        log.append(make_row(k))
    taken = log.take(pending={"d-1", "d-3"})
    assert [row[0] for row in taken] == ["d-0", "d-2", "d-4"]
    assert [row[0] for row in log.rows] == ["d-1", "d-3"]
    log.append(make_row(5))
    log.put_back(taken)  # a failed write: its rows go back in front
    assert [row[0] for row in log.rows] == ["d-0", "d-2", "d-4", "d-1", "d-3", "d-5"]
    assert [row[0] for row in log.take(pending=())] == ["d-0", "d-2", "d-4", "d-1", "d-3", "d-5"]


def test_decision_table_has_one_column_per_field():
    rows = [make_row(0, arm=1, reward=1.0, reward_time=1_700_000_010.5), make_row(1, sticky=True)]
    policy = ThompsonSampling()
    policy.resize(2)
    table = decision_table(rows, ["a", "b"], "exp-1", policy, "periodic")
    frame = table.to_pandas()
    assert list(frame.columns) == [
        "decision_id", "timestamp", "unit", "experiment", "arm", "action", "propensity",
        "prob_0", "prob_1", "policy_version", "period", "reward", "reward_timestamp", "sticky",
    ]  # fmt: skip
    assert frame["arm"].tolist() == ["b", "a"] and frame["action"].tolist() == [1, 0]
    assert frame["propensity"].tolist() == [0.75, 0.25]
    assert frame["unit"].tolist()[0] == "u0" and frame["unit"].isna().tolist() == [False, True]
    assert frame["experiment"].tolist() == ["exp-1", "exp-1"]
    assert frame["sticky"].tolist() == [False, True]
    assert frame["reward"].tolist()[0] == 1.0 and math.isnan(frame["reward"].tolist()[1])
    micros = table.column("timestamp").cast("int64").to_pylist()
    assert micros == [1_700_000_000_250_000, 1_700_000_001_250_000]
    assert table.column("reward_timestamp").cast("int64").to_pylist() == [
        1_700_000_010_500_000,
        None,
    ]
    metadata = json.loads(table.schema.metadata[b"splitlab"])
    assert metadata["arms"] == ["a", "b"] and metadata["policy"] == "ThompsonSampling"
    assert metadata["mode"] == "periodic" and metadata["salt"] == "exp-1"


def test_decision_table_of_a_contextual_policy_has_the_contexts():
    policy = LinUCB()
    policy.resize(2, 3)
    rows = [make_row(0, context=[1.0, 2.0, 3.0]), make_row(1, context=[4.0, 5.0, 6.0])]
    frame = decision_table(rows, ["a", "b"], "", policy, "online").to_pandas()
    assert frame[["x_0", "x_1", "x_2"]].to_numpy().tolist() == [[1, 2, 3], [4, 5, 6]]
    empty = decision_table([], ["a", "b"], "", policy, "online")
    assert empty.num_rows == 0 and "x_2" in empty.column_names

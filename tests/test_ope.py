"""splitlab.ope: estimators against direct formulas on small hand-made logs, reward models
against statsmodels, bootstrap against a numpy bootstrap, sources, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from splitlab.bandits import EpsilonGreedy, LinTS
from splitlab.errors import InvalidArgumentError
from splitlab.ope import (
    BanditLog,
    PoorOverlapWarning,
    cross_fitted_rewards,
    evaluate,
    load_log,
    replay,
    target_probabilities,
)
from splitlab.ope.reward_model import fit_predict

Z = stats.norm.ppf(0.975)

# a hand-made log: 8 rounds, 3 actions, 1 feature, full logged probabilities
PROBABILITIES = np.array(
    [
        [0.5, 0.3, 0.2],
        [0.2, 0.5, 0.3],
        [0.6, 0.2, 0.2],
        [0.1, 0.1, 0.8],
        [0.3, 0.3, 0.4],
        [0.25, 0.5, 0.25],
        [0.4, 0.4, 0.2],
        [0.7, 0.2, 0.1],
    ]
)
ACTIONS = np.array([0, 1, 0, 2, 2, 1, 1, 0])
REWARDS = np.array([1.0, 0.0, 2.0, 1.5, 0.5, 1.0, 3.0, 0.0])
CONTEXTS = np.array([[0.1], [-0.4], [1.2], [0.3], [-1.0], [0.8], [0.0], [2.0]])
TARGET = np.array(
    [
        [0.2, 0.6, 0.2],
        [0.0, 1.0, 0.0],
        [0.5, 0.25, 0.25],
        [0.1, 0.1, 0.8],
        [1.0, 0.0, 0.0],
        [0.3, 0.3, 0.4],
        [0.2, 0.7, 0.1],
        [0.6, 0.2, 0.2],
    ]
)
Q = np.array(  # reward predictions q̂(x, a), as if from a model fitted on other data
    [
        [0.9, 0.5, 1.0],
        [0.2, 0.3, 1.1],
        [1.8, 0.4, 1.2],
        [0.7, 0.9, 1.4],
        [0.1, 0.2, 0.6],
        [1.1, 1.2, 0.9],
        [0.6, 2.5, 0.8],
        [0.3, 0.1, 0.2],
    ]
)


def hand_frame() -> pd.DataFrame:
    frame = pd.DataFrame({"action": ACTIONS, "reward": REWARDS})
    frame["propensity"] = PROBABILITIES[np.arange(8), ACTIONS]
    frame["x_0"] = CONTEXTS[:, 0]
    for k in range(3):
        frame[f"prob_{k}"] = PROBABILITIES[:, k]
    return frame


def row(table: pd.DataFrame, name: str) -> pd.Series:
    return table.set_index("estimator").loc[name]


# ---------------------------------------------------------------------------- estimators


def test_ips_snips_and_clipping_match_direct_formulas():
    n = 8
    w = np.array([TARGET[i, ACTIONS[i]] / PROBABILITIES[i, ACTIONS[i]] for i in range(n)])
    table = evaluate(hand_frame(), TARGET, ["ips", "snips"], min_ess_fraction=0.0)
    ips_terms = w * REWARDS
    assert row(table, "ips")["estimate"] == pytest.approx(ips_terms.mean(), rel=1e-12)
    assert row(table, "ips")["se"] == pytest.approx(stats.sem(ips_terms), rel=1e-12)
    # SNIPS: delta method for a ratio of means, written with the sample (co)variances
    mean_wr, mean_w = (w * REWARDS).mean(), w.mean()
    ratio = mean_wr / mean_w
    cov = np.cov(np.vstack([w * REWARDS, w]), ddof=1)
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / mean_w**2 / n
    snips = row(table, "snips")
    assert snips["estimate"] == pytest.approx(ratio, rel=1e-12)
    assert snips["se"] == pytest.approx(np.sqrt(var), rel=1e-12)
    assert snips["ci_low"] == pytest.approx(ratio - Z * np.sqrt(var), rel=1e-12)
    clipped = evaluate(hand_frame(), TARGET, ["ips"], clip=1.5, min_ess_fraction=0.0)
    assert row(clipped, "ips")["estimate"] == pytest.approx(
        np.mean(np.minimum(w, 1.5) * REWARDS), rel=1e-12
    )
    assert row(clipped, "ips")["parameter"] == 1.5


def test_dm_dr_sndr_switch_match_direct_formulas_with_given_predictions():
    n = 8
    table = evaluate(
        hand_frame(), TARGET, ["dm", "dr", "sndr", "switch_dr"], reward_model=Q,
        switch_threshold=1.2, min_ess_fraction=0.0,
    )  # fmt: skip
    dm_terms, dr_terms, switch_terms, w, residual = [], [], [], [], []
    for i in range(n):
        a = ACTIONS[i]
        q_target = sum(TARGET[i, k] * Q[i, k] for k in range(3))
        weight = TARGET[i, a] / PROBABILITIES[i, a]
        dm_terms.append(q_target)
        dr_terms.append(q_target + weight * (REWARDS[i] - Q[i, a]))
        switch_terms.append(q_target + (weight * (REWARDS[i] - Q[i, a]) if weight <= 1.2 else 0))
        w.append(weight)
        residual.append(REWARDS[i] - Q[i, a])
    for name, terms in (("dm", dm_terms), ("dr", dr_terms), ("switch_dr", switch_terms)):
        assert row(table, name)["estimate"] == pytest.approx(np.mean(terms), rel=1e-12)
        assert row(table, name)["se"] == pytest.approx(stats.sem(terms), rel=1e-12)
    w, residual, dm_terms = np.array(w), np.array(residual), np.array(dm_terms)
    correction = np.sum(w * residual) / np.sum(w)
    sndr = row(table, "sndr")
    assert sndr["estimate"] == pytest.approx(dm_terms.mean() + correction, rel=1e-12)
    # delta method of mean(A) + mean(B)/mean(C) with gradient (1, 1/C̄, −B̄/C̄²)
    stacked = np.vstack([dm_terms, w * residual, w])
    gradient = np.array([1.0, 1.0 / w.mean(), -(w * residual).mean() / w.mean() ** 2])
    var = gradient @ np.cov(stacked, ddof=1) @ gradient / n
    assert sndr["se"] == pytest.approx(np.sqrt(var), rel=1e-12)


def test_diagnostics_match_direct_formulas():
    table = evaluate(hand_frame(), TARGET, ["ips"], min_ess_fraction=0.0)
    w = TARGET[np.arange(8), ACTIONS] / PROBABILITIES[np.arange(8), ACTIONS]
    first = table.iloc[0]
    assert first["ess"] == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)
    assert first["max_weight"] == pytest.approx(w.max())
    assert first["mean_weight"] == pytest.approx(w.mean())
    assert first["unsupported_mass"] == 0.0
    assert first["n"] == 8 and first["excluded"] == 0


def test_target_as_actions_policy_and_callable_agree_with_the_matrix():
    frame = hand_frame()
    deterministic = np.array([1, 1, 0, 2, 0, 2, 1, 0])
    one_hot = np.eye(3)[deterministic]
    by_actions = evaluate(frame, deterministic, ["ips", "snips"], min_ess_fraction=0.0)
    by_matrix = evaluate(frame, one_hot, ["ips", "snips"], min_ess_fraction=0.0)
    by_callable = evaluate(frame, lambda x: one_hot, ["ips", "snips"], min_ess_fraction=0.0)
    for other in (by_matrix, by_callable):
        np.testing.assert_allclose(by_actions["estimate"], other["estimate"], rtol=1e-12)
    policy = LinTS(n_arms=3, n_features=1)
    policy.update_batch([0, 1, 2, 1], [1.0, 0.5, 0.2, 0.9], [[0.5], [1.0], [-1.0], [0.3]])
    looped = np.stack([policy.probabilities(context) for context in CONTEXTS])
    assert np.allclose(target_probabilities(policy, load_log(frame)), looped, atol=1e-12)
    context_free = EpsilonGreedy(epsilon=0.3, n_arms=3)
    matrix = target_probabilities(context_free, load_log(frame))
    assert np.allclose(matrix, context_free.probabilities())


def test_replay_is_the_mean_over_matching_rounds():
    rng = np.random.default_rng(4)
    n, k = 600, 3
    actions = rng.integers(k, size=n)
    rewards = rng.normal(size=n)
    target = rng.integers(k, size=n)
    log = {"action": actions, "reward": rewards, "propensity": np.full(n, 1 / k)}
    result = replay(log, target).iloc[0]
    matched = actions == target
    assert result["estimate"] == pytest.approx(rewards[matched].mean(), rel=1e-12)
    assert result["matched"] == matched.sum()
    # se of a ratio of means Σ1{match} r / Σ1{match} by the delta method
    m, r = matched.astype(float), rewards
    ratio = (m * r).mean() / m.mean()
    var = np.var(m * r - ratio * m, ddof=1) / m.mean() ** 2 / n
    assert result["se"] == pytest.approx(np.sqrt(var), rel=1e-12)
    with pytest.raises(InvalidArgumentError, match="uniformly logged"):
        replay(hand_frame(), TARGET)


# ---------------------------------------------------------------------------- reward models


def test_cross_fitted_ridge_is_leave_one_out_ridge_when_every_row_is_a_fold():
    rng = np.random.default_rng(0)
    n, d, k, l2 = 40, 2, 2, 0.7
    x = rng.normal(size=(n, d))
    a = np.arange(n) % k
    r = x @ np.array([1.0, -0.5]) + a + rng.normal(size=n)
    predicted = cross_fitted_rewards(x, a, r, n_actions=k, l2=l2, folds=n, seed=1)
    z = np.hstack([np.ones((n, 1)), x])
    for i in range(n):
        train = np.arange(n) != i
        centre = r[train].mean()
        for action in range(k):
            rows = train & (a == action)
            beta = np.linalg.solve(
                z[rows].T @ z[rows] + l2 * np.eye(d + 1), z[rows].T @ (r[rows] - centre)
            )
            assert predicted[i, action] == pytest.approx(centre + z[i] @ beta, rel=1e-9)


def test_unpenalized_ridge_matches_statsmodels_ols():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    a = rng.integers(2, size=300)
    r = x @ np.array([0.5, 1.0, -1.0]) + 2.0 * a + rng.normal(size=300)
    new = rng.normal(size=(5, 3))
    ours = fit_predict(x, a, r, new, 2, "ridge", 0.0)
    for action in range(2):
        rows = a == action
        ols = sm.OLS(r[rows], sm.add_constant(x[rows])).fit()
        np.testing.assert_allclose(ours[:, action], ols.predict(sm.add_constant(new)), rtol=1e-9)


def test_unpenalized_logistic_matches_statsmodels_logit():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 2))
    a = rng.integers(2, size=800)
    eta = 0.3 + x @ np.array([1.0, -0.7]) - 0.5 * a
    r = (rng.random(800) < 1 / (1 + np.exp(-eta))).astype(float)
    new = rng.normal(size=(6, 2))
    ours = fit_predict(x, a, r, new, 2, "logistic", 0.0)
    for action in range(2):
        rows = a == action
        logit = sm.Logit(r[rows], sm.add_constant(x[rows])).fit(disp=0)
        np.testing.assert_allclose(ours[:, action], logit.predict(sm.add_constant(new)), rtol=1e-7)


def test_doubly_robust_corrects_a_wrong_reward_model():
    rng = np.random.default_rng(3)
    n = 20_000
    actions = rng.integers(2, size=n)
    rewards = rng.normal(np.where(actions == 1, 1.0, 0.0))
    log = {"action": actions, "reward": rewards, "propensity": np.full(n, 0.5)}
    wrong = np.full((n, 2), 5.0)
    table = evaluate(log, np.ones(n, dtype=int), ["dm", "dr"], reward_model=wrong)
    assert row(table, "dm")["estimate"] == 5.0
    assert abs(row(table, "dr")["estimate"] - 1.0) < 4 * row(table, "dr")["se"]


# ---------------------------------------------------------------------------- bootstrap


def test_bootstrap_agrees_with_a_numpy_bootstrap_and_the_delta_method():
    rng = np.random.default_rng(5)
    n = 5000
    actions = rng.integers(3, size=n)
    propensity = np.full(n, 1 / 3)
    rewards = rng.binomial(1, np.array([0.2, 0.5, 0.4])[actions]).astype(float)
    target = rng.dirichlet([1, 1, 1], size=n)
    log = {"action": actions, "reward": rewards, "propensity": propensity}
    closed = evaluate(log, target, ["ips", "snips"])
    boot = evaluate(log, target, ["ips", "snips"], ci="bootstrap", n_boot=2000, seed=3)
    again = evaluate(log, target, ["ips", "snips"], ci="bootstrap", n_boot=2000, seed=3)
    pd.testing.assert_frame_equal(boot, again)
    np.testing.assert_allclose(boot["estimate"], closed["estimate"])
    # an independent (multinomial) numpy bootstrap of the same statistics
    w = target[np.arange(n), actions] / propensity
    draws = np.random.default_rng(0).integers(n, size=(400, n))
    ips = (w * rewards)[draws].mean(axis=1)
    snips = (w * rewards)[draws].sum(axis=1) / w[draws].sum(axis=1)
    for name, reference in (("ips", ips), ("snips", snips)):
        # sd of a bootstrap sd estimate from B draws is about sd / sqrt(2B)
        assert row(boot, name)["se"] == pytest.approx(reference.std(ddof=1), rel=0.15)
        assert row(boot, name)["se"] == pytest.approx(row(closed, name)["se"], rel=0.1)
        low, high = row(boot, name)[["ci_low", "ci_high"]]
        assert low < row(boot, name)["estimate"] < high


# ---------------------------------------------------------------------------- overlap


def test_poor_overlap_warns_with_ess_and_unsupported_mass():
    frame = hand_frame()
    frame.loc[:, ["prob_0", "prob_1", "prob_2"]] = [[0.5, 0.5, 0.0]] * 8
    frame["action"] = [0, 1, 0, 1, 0, 1, 1, 0]
    frame["propensity"] = 0.5
    with pytest.warns(PoorOverlapWarning, match="could not take"):
        table = evaluate(frame, np.full(8, 2), ["ips"])
    assert table.iloc[0]["unsupported_mass"] == 1.0
    with pytest.warns(PoorOverlapWarning, match="effective sample size"):
        evaluate(hand_frame(), TARGET, ["ips"], min_ess_fraction=0.99)


# ---------------------------------------------------------------------------- sources


def test_every_source_gives_the_same_answer(tmp_path):
    import duckdb
    import polars as pl
    import pyarrow as pa

    frame = hand_frame()
    frame["timestamp"] = pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC")
    expected = evaluate(frame, TARGET, ["ips", "snips"], min_ess_fraction=0.0)
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    connection = duckdb.connect()
    relation = connection.from_df(frame)
    for source in (pl.from_pandas(frame), pa.Table.from_pandas(frame), path, str(path), relation):
        result = evaluate(source, TARGET, ["ips", "snips"], min_ess_fraction=0.0)
        np.testing.assert_allclose(result["estimate"], expected["estimate"], rtol=1e-12)
        np.testing.assert_allclose(result["se"], expected["se"], rtol=1e-12)
    assert expected.attrs["splitlab_version"]
    assert len(expected.attrs["input_fingerprint"]) == 16


def test_rows_are_put_in_timestamp_order_and_arrays_aligned_with_the_source():
    frame = hand_frame()
    frame["timestamp"] = pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC")
    shuffled = frame.iloc[::-1].reset_index(drop=True)
    log = load_log(shuffled)
    np.testing.assert_array_equal(log.actions, ACTIONS)
    # the target matrix is given in the order of the (shuffled) source
    expected = evaluate(frame, TARGET, ["ips", "dr"], reward_model=Q, min_ess_fraction=0.0)
    result = evaluate(
        shuffled, TARGET[::-1], ["ips", "dr"], reward_model=Q[::-1], min_ess_fraction=0.0
    )
    np.testing.assert_allclose(result["estimate"], expected["estimate"], rtol=1e-12)


def test_null_rewards_are_excluded_and_counted_or_refused():
    frame = hand_frame()
    frame.loc[[2, 5], "reward"] = None
    keep = np.array([0, 1, 3, 4, 6, 7])
    table = evaluate(frame, TARGET, ["ips"], min_ess_fraction=0.0)
    w = TARGET[keep, ACTIONS[keep]] / PROBABILITIES[keep, ACTIONS[keep]]
    assert row(table, "ips")["estimate"] == pytest.approx(np.mean(w * REWARDS[keep]), rel=1e-12)
    assert table.iloc[0]["excluded"] == 2 and table.iloc[0]["n"] == 6
    assert table.attrs["excluded_null_rewards"] == 2
    with pytest.raises(InvalidArgumentError, match=r"reward: is null .*rows 2, 5"):
        evaluate(frame, TARGET, ["ips"], missing_reward="raise")


def test_column_names_can_be_overridden():
    frame = hand_frame().rename(
        columns={"action": "arm_index", "reward": "clicks", "propensity": "p", "x_0": "age"}
    )
    frame = frame.drop(columns=["prob_0", "prob_1", "prob_2"])
    result = evaluate(
        frame, TARGET, ["ips"], action="arm_index", reward="clicks", propensity="p",
        context=["age"], min_ess_fraction=0.0,
    )  # fmt: skip
    expected = evaluate(hand_frame(), TARGET, ["ips"], min_ess_fraction=0.0)
    assert result["estimate"].iloc[0] == pytest.approx(expected["estimate"].iloc[0])


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "argument", "message"),
    [
        (lambda f: f.assign(propensity=f["propensity"].where(f.index != 3, 0.0)),
         "propensity", r"\(0, 1\]; not in row 3"),
        (lambda f: f.assign(propensity=f["propensity"].where(f.index != 1, 1.5)),
         "propensity", "row 1"),
        (lambda f: f.assign(action=f["action"].where(f.index != 4, 3)), "action", "row 4"),
        (lambda f: f.assign(action=f["action"].where(f.index != 4, -1)), "action", "row 4"),
        (lambda f: f.assign(reward=f["reward"].where(f.index != 6, np.inf)), "reward",
         "finite; not in row 6"),
        (lambda f: f.drop(columns=["propensity"]), "propensity", "not in the log"),
        (lambda f: f.drop(columns=["reward"]), "reward", "not in the log"),
        (lambda f: f.assign(prob_0=f["prob_0"] + 0.1), "probabilities", "sum to 1"),
        (lambda f: f.assign(propensity=f["propensity"].where(f.index != 2, 0.33)),
         "propensity", "logged probability of the logged action in row 2"),
        (lambda f: f.assign(x_0=f["x_0"].where(f.index != 0, np.nan)), "context", "null"),
    ],
)  # fmt: skip
def test_bad_logs_raise_naming_the_argument_and_rows(change, argument, message):
    with pytest.raises(InvalidArgumentError, match=message) as info:
        evaluate(change(hand_frame()), TARGET, ["ips"])
    assert info.value.argument == argument


def test_nan_reward_in_arrow_is_an_error_not_a_missing_value():
    import pyarrow as pa

    table = pa.table({"action": [0, 1], "reward": [1.0, float("nan")], "propensity": [0.5, 0.5]})
    with pytest.raises(InvalidArgumentError, match="reward: must be finite; not in row 1"):
        load_log(table)


def test_bad_targets_and_options_raise():
    frame = hand_frame()
    with pytest.raises(InvalidArgumentError, match="4 actions but the log has 3") as info:
        evaluate(frame, np.full((8, 4), 0.25))
    assert info.value.argument == "target"
    with pytest.raises(InvalidArgumentError, match="sum to 1; not in row 0"):
        evaluate(frame, np.vstack([[0.5, 0.6, 0.0], TARGET[1:]]))
    with pytest.raises(InvalidArgumentError, match="one row per row of the log"):
        evaluate(frame, TARGET[:5])
    with pytest.raises(InvalidArgumentError, match="indices 0 … 2"):
        evaluate(frame, np.array([0, 1, 2, 3, 0, 1, 2, 0]))
    with pytest.raises(InvalidArgumentError, match="2 context features but the log has 1"):
        evaluate(frame, LinTS(n_arms=3, n_features=2))
    with pytest.raises(InvalidArgumentError, match="estimators"):
        evaluate(frame, TARGET, ["ipw"])
    with pytest.raises(InvalidArgumentError, match="alpha"):
        evaluate(frame, TARGET, alpha=1.5)
    with pytest.raises(InvalidArgumentError, match="n_boot"):
        evaluate(frame, TARGET, ci="bootstrap", n_boot=1)
    with pytest.raises(InvalidArgumentError, match="reward_model"):
        evaluate(frame, TARGET, reward_model="forest")
    with pytest.raises(InvalidArgumentError, match="shape"):
        evaluate(frame, TARGET, reward_model=np.zeros((8, 2)))
    with pytest.raises(InvalidArgumentError, match="0 or 1"):
        evaluate(frame, TARGET, reward_model="logistic")
    with pytest.raises(InvalidArgumentError, match="clip"):
        evaluate(frame, TARGET, clip=0)


def test_mapping_and_bandit_log_inputs():
    mapping = {
        "action": ACTIONS, "reward": REWARDS, "propensity": PROBABILITIES[np.arange(8), ACTIONS],
        "contexts": CONTEXTS, "probabilities": PROBABILITIES,
    }  # fmt: skip
    log = BanditLog.from_arrays(
        ACTIONS, REWARDS, PROBABILITIES[np.arange(8), ACTIONS], CONTEXTS, PROBABILITIES
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = evaluate(mapping, TARGET, ["ips", "dr"], min_ess_fraction=0.0)
        second = evaluate(log, TARGET, ["ips", "dr"], min_ess_fraction=0.0)
    third = evaluate(hand_frame(), TARGET, ["ips", "dr"], min_ess_fraction=0.0)
    np.testing.assert_allclose(first["estimate"], second["estimate"], rtol=1e-12)
    np.testing.assert_allclose(first["estimate"], third["estimate"], rtol=1e-12)
    with pytest.raises(InvalidArgumentError, match="unknown keys"):
        evaluate({**mapping, "weights": 1}, TARGET)

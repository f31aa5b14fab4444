"""Reward models of the DM / DR estimators: the shared model on action features, cross-fitting,
the reward-model warnings, and the estimates of ``evaluate`` against independent numpy
formulas (so that the speed work cannot have changed them)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from splitlab.ope import evaluate
from splitlab.ope.estimators import RewardModelWarning
from splitlab.ope.reward_model import cross_fitted_model, cross_fitted_rewards, fit_predict


def feature_map(x: np.ndarray, actions: np.ndarray, features: np.ndarray) -> np.ndarray:
    """φ(x, a) = (1, x) ⊗ (1, f_a), built row by row (the documented design)."""
    z = np.hstack([np.ones((x.shape[0], 1)), x])
    g = np.hstack([np.ones((features.shape[0], 1)), features])[actions]
    return np.einsum("ij,il->ijl", z, g).reshape(x.shape[0], -1)


def ridge_by_lstsq(design, rewards, l2):
    """Ridge on rewards centred at their mean, as an augmented least-squares problem."""
    centre = rewards.mean()
    augmented = np.vstack([design, np.sqrt(l2) * np.eye(design.shape[1])])
    target = np.concatenate([rewards - centre, np.zeros(design.shape[1])])
    return centre, np.linalg.lstsq(augmented, target, rcond=None)[0]


def logistic_by_newton(design, rewards, l2):
    beta = np.zeros(design.shape[1])
    penalty = l2 * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(100):
        mu = 1 / (1 + np.exp(-(design @ beta)))
        hessian = design.T @ (design * (mu * (1 - mu))[:, None]) + penalty
        step = np.linalg.solve(hessian, design.T @ (rewards - mu) - penalty @ beta)
        beta += step
        if np.abs(step).max() < 1e-12:
            break
    return beta


def problem(seed=0, n=3000, d=3, k=6, p=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    features = rng.normal(size=(k, p))
    actions = rng.integers(k, size=n)
    truth = 0.5 + x[:, 0] * features[actions, 0] - 0.3 * features[actions, 1]
    return rng, x, actions, features, truth


def test_shared_ridge_equals_a_closed_form_lstsq_ridge_on_the_same_design():
    rng, x, actions, features, truth = problem()
    rewards = truth + rng.normal(size=truth.size)
    new = rng.normal(size=(7, x.shape[1]))
    ours = fit_predict(x, actions, rewards, new, 6, "ridge", 2.5, action_features=features)
    centre, beta = ridge_by_lstsq(feature_map(x, actions, features), rewards, 2.5)
    for a in range(6):
        expected = centre + feature_map(new, np.full(7, a), features) @ beta
        np.testing.assert_allclose(ours[:, a], expected, rtol=1e-10, atol=1e-12)


def test_shared_logistic_equals_an_independent_newton_fit():
    rng, x, actions, features, truth = problem(1)
    rewards = (rng.random(truth.size) < 1 / (1 + np.exp(-truth))).astype(float)
    new = rng.normal(size=(5, x.shape[1]))
    ours = fit_predict(x, actions, rewards, new, 6, "logistic", 1.0, action_features=features)
    beta = logistic_by_newton(feature_map(x, actions, features), rewards, 1.0)
    for a in range(6):
        expected = 1 / (1 + np.exp(-feature_map(new, np.full(5, a), features) @ beta))
        np.testing.assert_allclose(ours[:, a], expected, rtol=1e-8)


@pytest.mark.parametrize("kind", ["ridge", "logistic"])
def test_cross_fitting_predicts_each_row_from_a_model_not_fitted_on_it(kind):
    rng, x, actions, features, truth = problem(2, n=1200)
    rewards = (rng.random(truth.size) < 1 / (1 + np.exp(-truth))).astype(float)
    folds = 4
    q = cross_fitted_rewards(
        x, actions, rewards, n_actions=6, kind=kind, folds=folds, seed=3, action_features=features
    )
    fold = np.random.default_rng(3).permutation(x.shape[0]) % folds
    for f in range(folds):
        rows = fold == f
        refit = fit_predict(
            x[~rows], actions[~rows], rewards[~rows], x[rows], 6, kind, 1.0, features
        )
        np.testing.assert_allclose(q[rows], refit, rtol=1e-8, atol=1e-10)
    # flipping the reward of one row leaves that row's own predictions unchanged
    flipped = rewards.copy()
    flipped[0] = 1.0 - flipped[0]
    again = cross_fitted_rewards(
        x, actions, flipped, n_actions=6, kind=kind, folds=folds, seed=3, action_features=features
    )
    np.testing.assert_allclose(again[0], q[0], rtol=1e-12)
    assert not np.allclose(again[fold != fold[0]], q[fold != fold[0]], rtol=1e-12, atol=0)


def test_action_features_enter_evaluate_through_one_shared_model():
    rng, x, actions, features, truth = problem(4, n=4000)
    rewards = truth + 0.1 * rng.normal(size=truth.size)
    log = {"action": actions, "reward": rewards, "propensity": np.full(4000, 1 / 6), "contexts": x}
    uniform = np.full((4000, 6), 1 / 6)
    table = evaluate(log, uniform, ["dm"], action_features=features, folds=5, seed=0)
    q = cross_fitted_rewards(
        x, actions, rewards, n_actions=6, folds=5, seed=0, action_features=features
    )
    assert table["estimate"].iloc[0] == pytest.approx(q.mean(), rel=1e-12)
    per_action = evaluate(log, uniform, ["dm"], folds=5, seed=0)
    # the true model is in the shared model's span: it predicts better than one fit per action
    truth_value = np.mean(0.5 + x[:, :1] * features[None, :, 0] - 0.3 * features[None, :, 1])
    assert abs(table["estimate"].iloc[0] - truth_value) < 0.01
    assert table["reward_model_mse"].iloc[0] < per_action["reward_model_mse"].iloc[0]
    assert table.attrs["parameters"]["action_features"] == [6, 2]


# ---------------------------------------------------------------------------- warnings


def logged_problem(n=5000, seed=5):
    rng = np.random.default_rng(seed)
    actions = rng.integers(2, size=n)
    means = np.array([0.2, 0.6])
    rewards = rng.binomial(1, means[actions]).astype(float)
    log = {"action": actions, "reward": rewards, "propensity": np.full(n, 0.5)}
    return log, actions, means


def test_a_good_reward_model_raises_no_reward_model_warning():
    log, actions, means = logged_problem()
    good = np.tile(means, (actions.size, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RewardModelWarning)
        given = evaluate(log, np.ones(actions.size, dtype=int), reward_model=good)
        fitted = evaluate(log, np.ones(actions.size, dtype=int))
    for table in (given, fitted):
        assert (table["diagnostics"] == "").all()
        assert (table["reward_model_mse"] < table["mean_model_mse"]).all()


def test_a_model_worse_than_the_mean_on_held_out_rows_warns():
    log, actions, means = logged_problem()
    bad = np.tile(means[::-1], (actions.size, 1))  # the two actions' means swapped
    with pytest.warns(RewardModelWarning, match="exceeds"):
        table = evaluate(log, np.ones(actions.size, dtype=int), ["ips", "dm", "dr"],
                         reward_model=bad)  # fmt: skip
    flags = table.set_index("estimator")["diagnostics"]
    assert flags["dm"] == "reward_model_worse_than_mean"
    assert flags["dr"] == "reward_model_worse_than_mean"
    assert flags["ips"] == ""  # IPS does not use the model
    # a cross-fitted model on pure noise features does not beat the fold means either: the
    # warning is for models significantly worse, so a useless fit stays silent
    rng = np.random.default_rng(0)
    noisy = {**log, "contexts": rng.normal(size=(actions.size, 3))}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RewardModelWarning)
        evaluate(noisy, np.ones(actions.size, dtype=int), ["dm"])


def test_an_estimate_outside_the_reward_range_warns():
    log, actions, means = logged_problem()
    # exact on the logged actions (no MSE alarm), absurd on the other one
    q = np.tile(means, (actions.size, 1))
    q[actions == 0, 1] = -10.0
    q[actions == 1, 0] = -10.0
    target = np.full((actions.size, 2), 0.5)
    with pytest.warns(RewardModelWarning, match="outside the logged reward range"):
        table = evaluate(log, target, ["dm", "dr", "snips"], reward_model=q)
    flags = table.set_index("estimator")["diagnostics"]
    assert flags["dm"] == "outside_reward_range"
    assert flags["snips"] == ""
    assert table.set_index("estimator").loc["dm", "estimate"] < 0


# ---------------------------------------------------------------------------- unchanged


def test_estimates_equal_an_independent_numpy_computation():
    """The old code path: per-action ridge, cross-fitted, an (n, K) q matrix, then the
    pseudo-outcome formulas of the module docstring."""
    rng = np.random.default_rng(7)
    n, d, k, folds, l2 = 600, 2, 3, 5, 1.0
    x = rng.normal(size=(n, d))
    logging = rng.dirichlet(np.ones(k), size=n)
    actions = np.array([rng.choice(k, p=row) for row in logging])
    rewards = x[:, 0] * (actions == 1) + actions + rng.normal(size=n)
    target = rng.dirichlet(np.ones(k), size=n)
    log = {"action": actions, "reward": rewards, "propensity": logging[np.arange(n), actions],
           "contexts": x}  # fmt: skip
    table = evaluate(log, target, ["ips", "snips", "dm", "dr", "sndr", "switch_dr"],
                     l2=l2, folds=folds, seed=0, switch_threshold=2.0,
                     min_ess_fraction=0.0).set_index("estimator")  # fmt: skip

    fold = np.random.default_rng(0).permutation(n) % folds
    z = np.hstack([np.ones((n, 1)), x])
    q = np.empty((n, k))
    for f in range(folds):
        train = fold != f
        centre = rewards[train].mean()
        for a in range(k):
            rows = train & (actions == a)
            beta = np.linalg.solve(
                z[rows].T @ z[rows] + l2 * np.eye(d + 1), z[rows].T @ (rewards[rows] - centre)
            )
            q[fold == f, a] = centre + z[fold == f] @ beta
    w = target[np.arange(n), actions] / logging[np.arange(n), actions]
    dm = (target * q).sum(axis=1)
    residual = rewards - q[np.arange(n), actions]
    expected = {
        "ips": np.mean(w * rewards),
        "snips": np.sum(w * rewards) / np.sum(w),
        "dm": dm.mean(),
        "dr": np.mean(dm + w * residual),
        "sndr": dm.mean() + np.sum(w * residual) / np.sum(w),
        "switch_dr": np.mean(dm + w * residual * (w <= 2.0)),
    }
    for name, value in expected.items():
        assert table.loc[name, "estimate"] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    dr_influence = dm + w * residual
    assert table.loc["dr", "se"] == pytest.approx(
        np.std(dr_influence, ddof=1) / np.sqrt(n), rel=1e-12
    )


def test_cross_fitted_model_matches_its_prediction_matrix():
    rng, x, actions, features, truth = problem(8, n=500)
    rewards = truth + rng.normal(size=truth.size)
    target = rng.dirichlet(np.ones(6), size=500)
    for kind, r in (("ridge", rewards), ("logistic", (rewards > 0.5).astype(float))):
        for feats in (None, features):
            fit = cross_fitted_model(x, actions, r, n_actions=6, kind=kind, action_features=feats)
            q = fit.predictions(x)
            q_target, q_logged = fit.policy_predictions(x, actions, target)
            np.testing.assert_allclose(q_target, (target * q).sum(axis=1), rtol=1e-12)
            np.testing.assert_allclose(q_logged, q[np.arange(500), actions], rtol=1e-12)

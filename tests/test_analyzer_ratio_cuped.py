"""Ratio metrics adjusted by their pre-period ratio, through the Analyzer: the engine's
4 × 4 cross products give the same answer as the statistic on the raw rows, on every
engine, in segments and timelines, with cluster=, and under the sequential methods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import splitlab as sl
from splitlab.errors import InvalidArgumentError
from splitlab.stats.ratio_adjustment import ratio_cuped_test
from splitlab.stats.regression import CrossMoments

CTR = sl.Metric(
    "ctr", kind="ratio", numerator="clicks", denominator="sessions",
    covariate=("pre_clicks", "pre_sessions"),
)  # fmt: skip
COLUMNS = ["clicks", "sessions", "pre_clicks", "pre_sessions"]


def make_users(seed: int = 5, users: int = 6000, lift: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "b"], users)
    rate = rng.beta(2.0, 8.0, users)  # a user's click rate, before and after
    pre_sessions = rng.integers(1, 9, users)
    sessions = np.maximum(1, pre_sessions + rng.integers(-2, 3, users))
    treated = variant == "b"
    return pd.DataFrame(
        {
            "experiment": "search",
            "variant": variant,
            "user": np.arange(users),
            "day": pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.integers(0, 5, users), "D"),
            "country": rng.choice(["US", "DE"], users),
            "clicks": rng.binomial(sessions, np.minimum(rate * (1 + lift * treated), 1.0)),
            "sessions": sessions.astype(float),
            "pre_clicks": rng.binomial(pre_sessions, rate).astype(float),
            "pre_sessions": pre_sessions.astype(float),
        }
    )


def by_hand(frame: pd.DataFrame, relative: bool = False, alternative: str = "two-sided"):
    """The statistic on CrossMoments of the raw per-unit rows (numpy's covariance)."""
    arms = []
    for label in ("control", "b"):
        part = frame.loc[frame["variant"] == label, COLUMNS].to_numpy(float)
        arms.append(CrossMoments.from_samples(part[:, 0], part[:, 1:].T))
    return ratio_cuped_test(*arms, relative=relative, alternative=alternative)


@pytest.fixture(scope="module")
def users() -> pd.DataFrame:
    return make_users()


@pytest.mark.parametrize("relative", [False, True])
def test_analyzer_equals_the_statistic_on_raw_rows(users, relative):
    found = sl.Analyzer(users).analyze([CTR], relative=relative).iloc[0]
    expected = by_hand(users, relative=relative)
    for column, value in (
        ("effect", expected.effect), ("se", expected.se), ("ci_low", expected.ci_low),
        ("ci_high", expected.ci_high), ("p_value", expected.p_value),
        ("theta", expected.theta), ("variance_reduction", expected.variance_reduction),
    ):  # fmt: skip
        np.testing.assert_allclose(found[column], float(value), rtol=1e-9, err_msg=column)
    assert found["method"] == "ratio-cuped" and found["error"] == ""
    control = users[users["variant"] == "control"]
    np.testing.assert_allclose(
        found["mean_control"], control["clicks"].sum() / control["sessions"].sum(), rtol=1e-12
    )


def test_adjustment_narrows_the_unadjusted_ratio(users):
    plain = sl.Metric("ctr_plain", kind="ratio", numerator="clicks", denominator="sessions")
    found = sl.Analyzer(users).analyze([CTR, plain]).set_index("metric")
    assert found.loc["ctr", "se"] < found.loc["ctr_plain", "se"]
    assert found.loc["ctr", "variance_reduction"] > 0.05


@pytest.mark.parametrize("engine", ["polars", "parquet"])
def test_every_engine_gives_the_same_adjustment(users, engine, tmp_path):
    expected = sl.Analyzer(users).analyze([CTR])
    if engine == "polars":
        source: object = pl.from_pandas(users)
    else:
        source = tmp_path / "users.parquet"
        users.to_parquet(source)
    found = sl.Analyzer(source).analyze([CTR])
    for column in ("effect", "se", "theta", "variance_reduction"):
        np.testing.assert_allclose(found[column], expected[column], rtol=1e-10)


def test_segments_and_timeline_pool_the_cross_products_exactly(users):
    results = sl.Analyzer(users).analyze([CTR], segments="country")
    slices = [("all", users), *((f"country={c}", g) for c, g in users.groupby("country"))]
    for label, part in slices:
        found = results[results["segment"] == label].iloc[0]
        np.testing.assert_allclose(found["effect"], float(by_hand(part).effect), rtol=1e-9)
    timeline = sl.Analyzer(users, date="day").timeline(CTR)
    for _, look in timeline.iterrows():
        part = users[users["day"] <= look["period"]]
        np.testing.assert_allclose(look["se"], float(by_hand(part).se), rtol=1e-9)


@pytest.mark.parametrize("method", ["cs", "msprt"])
def test_sequential_methods_take_the_adjusted_estimate(users, method):
    options = {"n_star": 4000} if method == "cs" else {"n_plan": 3000}
    found = sl.Analyzer(users).analyze([CTR], method=method, method_options=options)
    fixed = sl.Analyzer(users).analyze([CTR])
    np.testing.assert_allclose(found["effect"], fixed["effect"])
    np.testing.assert_allclose(found["se"], fixed["se"])
    assert found["ci_low"][0] < fixed["ci_low"][0] < fixed["ci_high"][0] < found["ci_high"][0]
    assert found["method"][0] == f"{method}/ratio-cuped"


def test_one_sided_test_follows_the_statistic(users):
    found = sl.Analyzer(users).analyze([CTR], alternative="better").iloc[0]
    np.testing.assert_allclose(
        found["p_value"], float(by_hand(users, alternative="greater").p_value), rtol=1e-9
    )


def test_clustered_mean_with_a_covariate_is_the_ratio_of_cluster_sums(users):
    """Sessions of users: a session metric with cluster="user" and its pre-period
    covariate equals the ratio CUPED of per-user sums over per-user session counts."""
    rng = np.random.default_rng(9)
    sessions = users.loc[users.index.repeat(users["sessions"].astype(int))].reset_index(drop=True)
    sessions["clicked"] = rng.binomial(1, 0.2 + 0.02 * (sessions["variant"] == "b"))
    sessions["pre_clicked"] = sessions["clicked"] * rng.binomial(1, 0.8, len(sessions))
    metric = sl.Metric("clicked", covariate="pre_clicked")
    found = sl.Analyzer(sessions, cluster="user").analyze([metric]).iloc[0]
    per_user = sessions.groupby(["variant", "user"], as_index=False).agg(
        clicked=("clicked", "sum"), n=("clicked", "size"), pre_clicked=("pre_clicked", "sum")
    )
    arms = []
    for label in ("control", "b"):
        part = per_user[per_user["variant"] == label]
        columns = part[["clicked", "n", "pre_clicked", "n"]].to_numpy(float)
        arms.append(CrossMoments.from_samples(columns[:, 0], columns[:, 1:].T))
    expected = ratio_cuped_test(*arms)
    assert found["n_control"] == (per_user["variant"] == "control").sum()
    np.testing.assert_allclose(found["effect"], float(expected.effect), rtol=1e-9)
    np.testing.assert_allclose(found["se"], float(expected.se), rtol=1e-9)


def test_ratio_covariate_without_its_denominator_names_the_argument():
    with pytest.raises(InvalidArgumentError, match="without its denominator") as caught:
        sl.Metric(
            "ctr", kind="ratio", numerator="clicks", denominator="sessions",
            covariate="pre_clicks",
        )  # fmt: skip
    assert caught.value.argument == "covariate"
    with pytest.raises(InvalidArgumentError, match="3 columns"):
        sl.Metric(
            "ctr", kind="ratio", numerator="clicks", denominator="sessions",
            covariate=["a", "b", "c"],
        )  # fmt: skip


def test_several_covariates_with_cluster_are_refused(users):
    with pytest.raises(InvalidArgumentError, match="several covariates"):
        sl.Analyzer(users, cluster="country").analyze(
            [sl.Metric("clicks", covariate=["pre_clicks", "pre_sessions"])]
        )

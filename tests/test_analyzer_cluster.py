"""Analysis unit ≠ randomization unit: ``Analyzer(..., cluster=)`` against an independent
pandas + delta-method computation, and its type-I error where the naive row-level test
fails (strong intra-cluster correlation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import splitlab as sl
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError


def sessions(seed: int, users: int, experiments: int = 1, lift: float = 0.0) -> pd.DataFrame:
    """Sessions of randomized users: a strong user effect (ICC ≈ 0.8), 1-12 sessions per
    user, so rows of one user are far from independent."""
    rng = np.random.default_rng(seed)
    total = users * experiments
    experiment = np.repeat(np.arange(experiments), users)
    treated = rng.random(total) < 0.5
    level = rng.normal(0.0, 2.0, total)
    count = rng.integers(1, 13, total)
    user = np.repeat(np.arange(total), count)
    value = level[user] + rng.normal(0.0, 1.0, user.size) + lift * treated[user]
    clicked = rng.random(user.size) < 1.0 / (1.0 + np.exp(-level[user]))
    return pd.DataFrame(
        {
            "experiment": experiment[user],
            "variant": np.where(treated[user], "b", "control"),
            "user": user,
            "session_value": value,
            "clicked": clicked.astype(int),
            "pages": rng.poisson(3.0, user.size) + 1.0,
            "clicks": rng.poisson(1.0, user.size).astype(float),
        }
    )


def delta_method(frame: pd.DataFrame, numerator: str, denominator: str | None, alpha=0.05):
    """The ratio of per-user sums by the delta method, written out from the formula
    Var(ȳ/x̄) ≈ (σ²_y − 2rσ_yx + r²σ²_x) / (n x̄²) (Deng, Knoblich & Lu 2018)."""
    rows = frame.assign(_one=1.0)
    denominator = denominator or "_one"
    per_user = rows.groupby(["variant", "user"])[[numerator, denominator]].sum()
    out = {}
    for arm in ("control", "b"):
        y = per_user.loc[arm, numerator].to_numpy()
        x = per_user.loc[arm, denominator].to_numpy()
        n = y.size
        ratio = y.sum() / x.sum()
        cov = np.cov(y, x, ddof=1)
        variance = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (n * x.mean() ** 2)
        out[arm] = (ratio, variance, n)
    effect = out["b"][0] - out["control"][0]
    se = np.sqrt(out["b"][1] + out["control"][1])
    return effect, se, out["control"][2], out["b"][2]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return sessions(seed=3, users=3000)


def test_mean_metric_is_the_ratio_of_cluster_sums_by_the_delta_method(data):
    found = sl.Analyzer(data, cluster="user").analyze(["session_value"]).iloc[0]
    effect, se, n_c, n_t = delta_method(data, "session_value", None)
    np.testing.assert_allclose([found["effect"], found["se"]], [effect, se], rtol=1e-9)
    assert (found["n_control"], found["n_variant"]) == (n_c, n_t)
    by_row = data.groupby("variant")["session_value"].mean()
    np.testing.assert_allclose(
        [found["mean_control"], found["mean_variant"]], [by_row["control"], by_row["b"]]
    )
    assert found["error"] == ""


def test_proportion_and_ratio_metrics_are_clustered_too(data):
    results = sl.Analyzer(data, cluster="user").analyze(
        [
            sl.Metric("clicked", kind="proportion"),
            sl.Metric("ctr", kind="ratio", numerator="clicks", denominator="pages"),
        ]
    )
    for name, numerator, denominator in (("clicked", "clicked", None), ("ctr", "clicks", "pages")):
        found = results[results["metric"] == name].iloc[0]
        effect, se, _, _ = delta_method(data, numerator, denominator)
        np.testing.assert_allclose([found["effect"], found["se"]], [effect, se], rtol=1e-9)


def test_clusters_built_from_event_units(data):
    """``unit`` sums events into sessions, ``cluster`` groups sessions by user."""
    events = data.loc[data.index.repeat(2)].assign(
        session=lambda f: f.index, session_value=lambda f: f["session_value"] / 2
    )
    found = sl.Analyzer(events, unit="session", cluster="user").analyze(["session_value"])
    effect, se, _, _ = delta_method(data, "session_value", None)
    np.testing.assert_allclose([found["effect"][0], found["se"][0]], [effect, se], rtol=1e-9)


def test_srm_counts_clusters(data):
    table = sl.Analyzer(data, cluster="user").srm()
    users = data.groupby("variant")["user"].nunique()
    counts = dict(zip(table["variants"].iloc[0], table["counts"].iloc[0], strict=True))
    assert counts == {"b": users["b"], "control": users["control"]}


def test_type_one_error_holds_where_the_naive_row_test_fails():
    """400 A/A experiments in one frame, one Analyzer call each way. With an ICC near 0.8
    and ~6.5 sessions per user the row-level test's variance is ~5× too small; the
    clustered test keeps α within binomial error, the naive one is far above it."""
    replications, alpha = 400, 0.05
    frame = sessions(seed=11, users=400, experiments=replications)
    clustered = sl.Analyzer(frame, cluster="user").analyze(["session_value"], alpha=alpha)
    naive = sl.Analyzer(frame).analyze(["session_value"], alpha=alpha)
    assert len(clustered) == len(naive) == replications
    rate = float((clustered["p_value"] < alpha).mean())
    naive_rate = float((naive["p_value"] < alpha).mean())
    tolerance = 4 * np.sqrt(alpha * (1 - alpha) / replications)
    assert abs(rate - alpha) < tolerance, rate
    assert naive_rate > alpha + 4 * tolerance, naive_rate
    # and the clustered p-values are uniform (Kolmogorov–Smirnov at the 0.1% level)
    assert stats.kstest(clustered["p_value"], "uniform").pvalue > 1e-3


def test_power_under_clustering_detects_a_real_lift():
    frame = sessions(seed=12, users=4000, lift=0.25)
    found = sl.Analyzer(frame, cluster="user").analyze(["session_value"]).iloc[0]
    assert found["p_value"] < 0.01 and found["ci_low"] < 0.25 < found["ci_high"]


def test_null_cluster_ids_are_refused_naming_the_argument(data):
    broken = data.astype({"user": float})
    broken.loc[broken.index[:3], "user"] = np.nan
    with pytest.raises(InvalidArgumentError, match=r"cluster.*3 row"):
        sl.Analyzer(broken, cluster="user").analyze(["session_value"])


def test_cluster_column_must_exist_and_differ(data):
    with pytest.raises(InvalidArgumentError, match="cluster"):
        sl.Analyzer(data, cluster="nope")
    with pytest.raises(InvalidArgumentError, match="cluster"):
        sl.Analyzer(data, cluster="variant")


def test_clustered_metric_takes_one_covariate_and_refuses_several(data):
    adjusted = sl.Analyzer(data, cluster="user").analyze(
        [sl.Metric("session_value", covariate="pages")]
    )
    assert (adjusted["method"] == "ratio-cuped").all() and (adjusted["error"] == "").all()
    with pytest.raises(InvalidArgumentError, match="several covariates"):
        sl.Analyzer(data, cluster="user").analyze(
            [sl.Metric("session_value", covariate=["pages", "clicks"])]
        )


def test_clustered_proportion_with_values_other_than_0_and_1_is_a_row_error(data):
    frame = data.assign(clicked=data["clicked"] * 2)
    with pytest.warns(DegenerateDataWarning, match="1 of 2"):
        results = sl.Analyzer(frame, cluster="user").analyze(
            [sl.Metric("clicked", kind="proportion"), "session_value"]
        )
    assert "other than 0 and 1" in results["error"][0]
    assert results["error"][1] == ""


@pytest.mark.parametrize("method", ["cs", "msprt"])
def test_sequential_methods_take_the_clustered_estimate(data, method):
    options = {"n_star": 2000} if method == "cs" else {"tau2": 0.01}
    found = sl.Analyzer(data, cluster="user").analyze(
        ["session_value"], method=method, method_options=options
    )
    fixed = sl.Analyzer(data, cluster="user").analyze(["session_value"])
    np.testing.assert_allclose(found["se"], fixed["se"])
    assert found["ci_low"][0] < fixed["ci_low"][0] and found["ci_high"][0] > fixed["ci_high"][0]

"""Peeking stays safe with the new estimators: regression adjustment on several covariates,
post-stratification, quantiles and clustered means, each fed into the always-valid
intervals (``method="cs"`` and ``method="msprt"``).

Every simulation monitors R seeded replications after each of K batches of units (clusters
for the clustered mean). Per look, numpy reduces the raw draws to the summaries the engine
would return (cumulative sums, per-stratum sums, sample quantiles, per-cluster sums), the
stats-level ``*_difference`` function turns them into (effect, se), and the sequential
kernel into an interval. The running intersection of the intervals (the running max of
``ci_low`` and min of ``ci_high``, as :meth:`Analyzer.timeline` reports them) "ever
excludes" the true effect 0 when its last look does. Under A/A streams that rate is the
type-I error of continuous monitoring and must stay at most α + 4 binomial standard errors
(:func:`simulation_helpers.binomial_tolerance`); with a real effect of 5 design standard
errors at the horizon, the interval must exclude 0 in most replications.

τ² of the mSPRT follows the Analyzer's ``{"n_plan": ...}`` rule, τ² = r*·se²·N/(2·n_plan)
(a plug-in of the per-unit variance), with n_plan the planned units per arm; ``n_star`` of
the confidence sequence is the planned total. The last tests drive the same estimates
through :meth:`Analyzer.analyze` and :meth:`Analyzer.timeline` on small frames and require
the stats-level numbers.

Tests marked ``slow`` repeat the type-I checks with R = 4000.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import splitlab as sl
from simulation_helpers import binomial_tolerance
from splitlab.errors import DegenerateDataWarning
from splitlab.sequential.confseq import confidence_sequence_from_estimate
from splitlab.sequential.msprt import msprt_from_estimate, msprt_mixing_ratio
from splitlab.stats.frequentist import mean_difference, ratio_difference
from splitlab.stats.moments import JointMoments, Moments
from splitlab.stats.quantile import QuantileSummary, quantile_difference
from splitlab.stats.regression import CrossMoments, regression_difference
from splitlab.stats.results import RowErrors
from splitlab.stats.stratification import poststratified_difference

pytestmark = pytest.mark.validity

ALPHA = 0.05
REPLICATIONS = 500
SLOW_REPLICATIONS = 4000
LOOKS = 15
BATCH = 100  # units (clusters) per arm per look: 1,500 per arm at the horizon
HORIZON = LOOKS * BATCH  # planned units per arm (the mSPRT's n_plan)
N_STAR = 2.0 * HORIZON  # the confidence sequence is tuned for the planned total
SEQUENTIAL = ["cs", "msprt"]
# A real effect of Z_DESIGN design standard errors at the horizon: there both intervals'
# half-width is about 3.03 se (α = 0.05, tuned for the horizon), so the horizon look alone
# excludes 0 with probability Φ(5 − 3.03) ≈ 0.98, and still ≈ 0.83 if the se were 25%
# larger than designed; POWER_FLOOR is that loose.
Z_DESIGN = 5.0
POWER_FLOOR = 0.8

# regression: y = 3 + xβ + ε with five equicorrelated pre-period covariates (one useless)
BETA = np.array([1.0, 0.5, -0.5, 0.25, 0.0])
X_MEAN, X_CORRELATION, NOISE_SD = 10.0, 0.5, 1.0
# post-stratification: three strata of very different levels, unit noise sd 1 within each
STRATA_SHARES = np.array([0.2, 0.3, 0.5])
STRATA_MEANS = np.array([1.0, 4.0, 10.0])
# quantiles of lognormal(0, 1) values; a real effect shifts every value by the same amount
LOGNORMAL_SIGMA = 1.0
# clustered mean: 1 + Poisson(4) sessions per user, a user effect of sd 2 and session
# noise of sd 1, so the intra-cluster correlation is 4 / (4 + 1) = 0.8
SESSIONS_EXTRA, USER_SD, SESSION_SD, SESSION_LEVEL = 4.0, 2.0, 1.0, 10.0

SEEDS = {"regression": 11, "strata": 12, "median": 13, "p90": 14, "cluster": 15}
QUANTILES = {"median": 0.5, "p90": 0.9}


def slow(value):
    return pytest.param(value, marks=pytest.mark.slow, id=f"R={value}")


SIZES = [pytest.param(REPLICATIONS, id=f"R={REPLICATIONS}"), slow(SLOW_REPLICATIONS)]


# ---------------------------------------------------------------------- design standard errors


def design_se(estimator: str) -> float:
    """The standard error of the estimator at the horizon, from the data-generating law
    (fixed before any data are drawn; it sizes the real effect of the power checks)."""
    if estimator in ("regression", "strata"):
        return NOISE_SD * np.sqrt(2.0 / HORIZON)  # the residual (within-stratum) noise
    if estimator in QUANTILES:
        nu = QUANTILES[estimator]
        law = stats.lognorm(s=LOGNORMAL_SIGMA)
        density = law.pdf(law.ppf(nu))
        return float(np.sqrt(2.0 * nu * (1.0 - nu) / HORIZON) / density)
    # ratio of cluster sums: Var(S − μM) / E[M]² per cluster, M = 1 + Poisson(λ)
    mean_m = 1.0 + SESSIONS_EXTRA
    second_m = SESSIONS_EXTRA + mean_m**2
    per_cluster = (second_m * USER_SD**2 + mean_m * SESSION_SD**2) / mean_m**2
    return float(np.sqrt(2.0 * per_cluster / HORIZON))


# ---------------------------------------------------------------------- streams


def _cumulative(values: np.ndarray, looks: int) -> np.ndarray:
    """Per-look cumulative sums of (R, looks·B, ...) draws: shape (R, looks, ...)."""
    shape = values.shape
    batches = values.reshape(shape[0], looks, shape[1] // looks, *shape[2:])
    return batches.sum(axis=2).cumsum(axis=1)


def _regression_arm(rng, replications, looks, shift):
    """Cumulative CrossMoments of (y, x1..x5) per look, from the raw sums (Σv, Σvvᵀ)."""
    k = BETA.size
    cov = X_CORRELATION * np.ones((k, k)) + (1.0 - X_CORRELATION) * np.eye(k)
    x = X_MEAN + rng.standard_normal((replications, looks * BATCH, k)) @ np.linalg.cholesky(cov).T
    y = 3.0 + x @ BETA + NOISE_SD * rng.standard_normal(x.shape[:2]) + shift
    v = np.concatenate([y[..., None], x], axis=-1)
    sums = _cumulative(v, looks)
    cross = _cumulative(v[..., :, None] * v[..., None, :], looks)
    n = np.broadcast_to(BATCH * np.arange(1.0, looks + 1), sums.shape[:2])
    return CrossMoments.from_sums(n, sums, cross)


def _strata_arm(rng, replications, looks, shift):
    """Cumulative per-stratum Moments per look (strata last): shape (R, looks, 3)."""
    size = (replications, looks * BATCH)
    stratum = rng.choice(STRATA_SHARES.size, size=size, p=STRATA_SHARES)
    y = STRATA_MEANS[stratum] + NOISE_SD * rng.standard_normal(size) + shift
    member = stratum[..., None] == np.arange(STRATA_SHARES.size)
    n = _cumulative(member.astype(float), looks)
    total = _cumulative(member * y[..., None], looks)
    squares = _cumulative(member * (y * y)[..., None], looks)
    return Moments.from_sums(n, total, squares)


def _quantile_estimates(rng, replications, looks, nu, effect):
    """(effect, se) of the quantile difference at every look, from numpy's quantiles."""
    size = (replications, looks * BATCH)
    control = rng.lognormal(0.0, LOGNORMAL_SIGMA, size)
    treatment = rng.lognormal(0.0, LOGNORMAL_SIGMA, size) + effect
    estimate = np.empty((2, replications, looks))
    for look in range(looks):
        seen = (look + 1) * BATCH
        difference = quantile_difference(
            QuantileSummary.from_samples(control[:, :seen], nu),
            QuantileSummary.from_samples(treatment[:, :seen], nu),
        )
        _no_row_errors(difference.errors)
        estimate[:, :, look] = difference.effect, difference.se
    return estimate[0], estimate[1]


def _cluster_arm(rng, replications, looks, shift):
    """Cumulative JointMoments of (cluster sum S, cluster size M) per look, and the
    row-level Moments of the same sessions (what a naive analysis would use)."""
    size = (replications, looks * BATCH)
    m = 1.0 + rng.poisson(SESSIONS_EXTRA, size)
    level = SESSION_LEVEL + USER_SD * rng.standard_normal(size) + shift
    # the exact law of one user's sessions: Σe ~ N(0, mσ²) and, given it,
    # Σe² = (Σe)²/m + σ²χ²(m − 1) (the sample mean and variance of normals are independent)
    noise = SESSION_SD * np.sqrt(m) * rng.standard_normal(size)
    spread = np.where(m > 1, rng.chisquare(np.maximum(m - 1.0, 1.0)), 0.0)
    squares = noise**2 / m + SESSION_SD**2 * spread
    s = m * level + noise
    row_squares = m * level**2 + 2.0 * level * noise + squares
    count = np.broadcast_to(BATCH * np.arange(1.0, looks + 1), (replications, looks))
    clusters = JointMoments.from_sums(
        count,
        _cumulative(s, looks),
        _cumulative(s * s, looks),
        _cumulative(m, looks),
        _cumulative(m * m, looks),
        _cumulative(s * m, looks),
    )
    rows = Moments.from_sums(
        _cumulative(m, looks), _cumulative(s, looks), _cumulative(row_squares, looks)
    )
    return clusters, rows


def _no_row_errors(errors: RowErrors) -> None:
    bad = np.asarray(errors.bad)
    assert not bad.any(), f"{int(bad.sum())} looks have no estimate: {errors.messages[bad][:3]}"


@cache
def estimates(estimator: str, replications: int, effect: float = 0.0):
    """(effect, se, n_total) of every look of every replication, shape (R, K) each."""
    rng = np.random.default_rng(SEEDS[estimator] + replications + int(effect > 0))
    n_total = np.broadcast_to(2.0 * BATCH * np.arange(1.0, LOOKS + 1), (replications, LOOKS))
    if estimator == "regression":
        control = _regression_arm(rng, replications, LOOKS, 0.0)
        treatment = _regression_arm(rng, replications, LOOKS, effect)
        difference, _, _ = regression_difference(control, treatment, relative=False)
    elif estimator == "strata":
        control = _strata_arm(rng, replications, LOOKS, 0.0)
        treatment = _strata_arm(rng, replications, LOOKS, effect)
        difference = poststratified_difference(control, treatment)
    elif estimator in QUANTILES:
        nu = QUANTILES[estimator]
        return (*_quantile_estimates(rng, replications, LOOKS, nu, effect), n_total)
    else:
        (control, _), (treatment, _) = (
            _cluster_arm(rng, replications, LOOKS, shift) for shift in (0.0, effect)
        )
        difference = ratio_difference(control, treatment, relative=False)
    _no_row_errors(difference.errors)
    return difference.effect, difference.se, n_total


def always_valid(method: str, effect, se, n_total, alpha: float = ALPHA):
    """This look's always-valid interval, as the Analyzer builds it for ``method``."""
    if method == "cs":
        return confidence_sequence_from_estimate(effect, se, n_total, alpha=alpha, n_star=N_STAR)
    # the Analyzer's {"n_plan": ...} rule: τ² = r*·V at the planned size, V = se²·N/(2 n_plan)
    tau2 = msprt_mixing_ratio(alpha) * se * se * n_total / (2.0 * HORIZON)
    return msprt_from_estimate(effect, se, alpha=alpha, tau2=tau2)


def ever_excludes_zero(method: str, effect, se, n_total) -> np.ndarray:
    """Per replication: whether the running intersection of the intervals excludes 0 at
    some look (the intersection only shrinks, so: at the last look)."""
    ci_low, ci_high, _ = always_valid(method, effect, se, n_total)
    assert np.isfinite(ci_low).all() and np.isfinite(ci_high).all()
    running_low = np.maximum.accumulate(ci_low, axis=-1)[..., -1]
    running_high = np.minimum.accumulate(ci_high, axis=-1)[..., -1]
    return (running_low > 0.0) | (running_high < 0.0)


def assert_type_one_error(estimator: str, method: str, replications: int) -> float:
    rate = float(ever_excludes_zero(method, *estimates(estimator, replications)).mean())
    bound = ALPHA + binomial_tolerance(ALPHA, replications)
    assert rate <= bound, (
        f"{estimator}/{method}: the running interval excluded the true effect 0 in "
        f"{rate:.3f} of {replications} A/A replications (bound α + 4 s.e. = {bound:.3f})"
    )
    return rate


# ---------------------------------------------------------------------- type-I error


@pytest.mark.parametrize("replications", SIZES)
@pytest.mark.parametrize("method", SEQUENTIAL)
def test_regression_adjusted_interval_keeps_type_one_error_under_peeking(method, replications):
    """Five covariates, θ pooled over the arms and re-estimated at every look."""
    assert_type_one_error("regression", method, replications)


@pytest.mark.parametrize("replications", SIZES)
@pytest.mark.parametrize("method", SEQUENTIAL)
def test_poststratified_interval_keeps_type_one_error_under_peeking(method, replications):
    """Three strata whose shares are re-estimated at every look."""
    assert_type_one_error("strata", method, replications)


@pytest.mark.parametrize("replications", SIZES)
@pytest.mark.parametrize("method", SEQUENTIAL)
@pytest.mark.parametrize("estimator", list(QUANTILES))
def test_quantile_interval_keeps_type_one_error_under_peeking(estimator, method, replications):
    """Median and p90 of lognormal values (GrowthBook's order-statistics variance)."""
    assert_type_one_error(estimator, method, replications)


@pytest.mark.parametrize("replications", SIZES)
@pytest.mark.parametrize("method", SEQUENTIAL)
def test_clustered_mean_interval_keeps_type_one_error_under_peeking(method, replications):
    """Sessions of randomized users with intra-cluster correlation 0.8."""
    assert_type_one_error("cluster", method, replications)


def test_the_simulation_detects_an_invalid_interval_the_naive_row_level_sequence():
    """The check has teeth: the same clustered A/A streams analysed per session (rows taken
    as independent, se about 2.2 times too small) exclude 0 far more often than α + 4 s.e."""
    rng = np.random.default_rng(SEEDS["cluster"] + 99)
    (_, control), (_, treatment) = (_cluster_arm(rng, REPLICATIONS, LOOKS, 0.0) for _ in "ct")
    errors = RowErrors(control.shape)
    naive = mean_difference(
        control.mean, control.var, control.n, treatment.mean, treatment.var, treatment.n,
        relative=False, errors=errors,
    )  # fmt: skip
    _no_row_errors(errors)
    rate = float(ever_excludes_zero("cs", naive.effect, naive.se, control.n + treatment.n).mean())
    assert rate > ALPHA + 2.0 * binomial_tolerance(ALPHA, REPLICATIONS)


# ---------------------------------------------------------------------- power


ESTIMATORS = ["regression", "strata", "median", "p90", "cluster"]


@pytest.mark.parametrize("method", SEQUENTIAL)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_a_real_effect_is_eventually_detected_in_most_replications(estimator, method):
    effect = Z_DESIGN * design_se(estimator)
    detected = ever_excludes_zero(method, *estimates(estimator, REPLICATIONS, effect))
    assert detected.mean() >= POWER_FLOOR, (estimator, method, float(detected.mean()))


# ---------------------------------------------------------------------- through the Analyzer

ANALYZER_LOOKS = (1, 2, 3)
ANALYZER_BATCH = 150  # rows (users) per arm per look
ANALYZER_PLAN = {"cs": {"n_star": 900.0}, "msprt": {"n_plan": 450.0}}


def _analyzer_frame(seed: int = 41) -> pd.DataFrame:
    """Rows of every kind the estimators read, with the look at which each arrived."""
    rng = np.random.default_rng(seed)
    units = 2 * ANALYZER_BATCH * len(ANALYZER_LOOKS)
    look = np.repeat(np.arange(1, len(ANALYZER_LOOKS) + 1), 2 * ANALYZER_BATCH)
    variant = np.tile(np.repeat(["control", "b"], ANALYZER_BATCH), len(ANALYZER_LOOKS))
    x = rng.normal(X_MEAN, 1.0, (units, BETA.size))
    frame = pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant,
            "look": look,
            "day": pd.Timestamp("2024-05-01") + pd.to_timedelta(look - 1, unit="D"),
            "user": np.arange(units),
            "stratum": rng.choice(["a", "b", "c"], units, p=STRATA_SHARES),
            "latency": rng.lognormal(0.0, LOGNORMAL_SIGMA, units),
            **{f"x{j}": x[:, j] for j in range(BETA.size)},
            "y": 3.0 + x @ BETA + rng.normal(0.0, NOISE_SD, units),
        }
    )
    frame["y_strata"] = frame["stratum"].map(dict(zip("abc", STRATA_MEANS, strict=True)))
    frame["y_strata"] += rng.normal(0.0, NOISE_SD, units)
    # sessions: each user's rows repeated 1-6 times with a shared user effect
    sessions = frame.loc[frame.index.repeat(rng.integers(1, 7, units))].reset_index(drop=True)
    level = rng.normal(0.0, USER_SD, units)[sessions["user"]]
    sessions["value"] = level + rng.normal(0.0, SESSION_SD, len(sessions))
    return frame, sessions


@pytest.fixture(scope="module")
def frames():
    return _analyzer_frame()


def _arms(frame: pd.DataFrame):
    return frame[frame["variant"] == "control"], frame[frame["variant"] == "b"]


def _stats_level(estimator: str, frame: pd.DataFrame, sessions: pd.DataFrame):
    """(effect, se, n_total) from numpy/pandas reductions of the rows seen so far."""
    control, treatment = _arms(frame)
    if estimator == "regression":
        columns = [f"x{j}" for j in range(BETA.size)]
        arms = [
            CrossMoments.from_samples(arm["y"], [arm[c] for c in columns])
            for arm in (control, treatment)
        ]
        difference, _, _ = regression_difference(*arms, relative=False)
    elif estimator == "strata":
        arms = []
        for arm in (control, treatment):
            groups = arm.groupby("stratum")["y_strata"]
            arms.append(Moments(groups.size(), groups.mean(), groups.var()))
        difference = poststratified_difference(*arms)
    elif estimator == "median":
        arms = [
            QuantileSummary.from_samples(arm["latency"].to_numpy(), 0.5)
            for arm in (control, treatment)
        ]
        difference = quantile_difference(*arms)
    else:
        arms = []
        for arm in _arms(sessions):
            per_user = arm.groupby("user")["value"].agg(["sum", "size"])
            arms.append(JointMoments.from_samples(per_user["sum"], per_user["size"].astype(float)))
        difference = ratio_difference(*arms, relative=False)
        return difference.effect, difference.se, float(arms[0].n + arms[1].n)
    _no_row_errors(difference.errors)
    return difference.effect, difference.se, float(len(frame))


def _analyze(estimator: str, frame: pd.DataFrame, sessions: pd.DataFrame, method: str):
    options = {"method": method, "method_options": ANALYZER_PLAN[method]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateDataWarning)
        if estimator == "regression":
            covariates = [f"x{j}" for j in range(BETA.size)]
            return sl.Analyzer(frame).analyze([sl.Metric("y", covariate=covariates)], **options)
        if estimator == "strata":
            return sl.Analyzer(frame).analyze(["y_strata"], strata="stratum", **options)
        if estimator == "median":
            metric = sl.Metric("p50", column="latency", kind="quantile", quantile=0.5)
            return sl.Analyzer(frame).analyze([metric], **options)
        return sl.Analyzer(sessions, cluster="user").analyze(["value"], **options)


@pytest.mark.parametrize("method", SEQUENTIAL)
@pytest.mark.parametrize("estimator", ["regression", "strata", "median", "cluster"])
def test_analyzer_sequential_rows_are_the_stats_level_interval_at_every_look(
    frames, estimator, method
):
    frame, sessions = frames
    for look in ANALYZER_LOOKS:
        seen, seen_sessions = frame[frame["look"] <= look], sessions[sessions["look"] <= look]
        row = _analyze(estimator, seen, seen_sessions, method).iloc[0]
        effect, se, n_total = _stats_level(estimator, seen, seen_sessions)
        assert row["n_control"] + row["n_variant"] == n_total
        if method == "cs":
            interval = confidence_sequence_from_estimate(
                effect, se, n_total, alpha=ALPHA, n_star=ANALYZER_PLAN["cs"]["n_star"]
            )
        else:
            n_plan = ANALYZER_PLAN["msprt"]["n_plan"]
            tau2 = msprt_mixing_ratio(ALPHA) * se * se * n_total / (2.0 * n_plan)
            interval = msprt_from_estimate(effect, se, alpha=ALPHA, tau2=tau2)
        np.testing.assert_allclose(
            row[["effect", "se", "ci_low", "ci_high", "p_value"]].to_numpy(float),
            np.ravel([effect, se, *interval]),
            rtol=1e-9,
            err_msg=f"{estimator}/{method} at look {look}",
        )
        assert row["method"].startswith(f"{method}/") and row["error"] == ""


def test_timeline_of_a_regression_adjusted_metric_is_the_running_intersection(frames):
    frame, _ = frames
    covariates = [f"x{j}" for j in range(BETA.size)]
    path = sl.Analyzer(frame, date="day").timeline(
        sl.Metric("y", covariate=covariates), method="cs", method_options=ANALYZER_PLAN["cs"]
    )
    looks = np.array(
        [_stats_level("regression", frame[frame["look"] <= k], None) for k in ANALYZER_LOOKS]
    )
    ci_low, ci_high, p_value = confidence_sequence_from_estimate(
        looks[:, 0], looks[:, 1], looks[:, 2], alpha=ALPHA, n_star=ANALYZER_PLAN["cs"]["n_star"]
    )
    np.testing.assert_allclose(path["effect"], looks[:, 0], rtol=1e-9)
    np.testing.assert_allclose(path["ci_low"], np.maximum.accumulate(ci_low), rtol=1e-9)
    np.testing.assert_allclose(path["ci_high"], np.minimum.accumulate(ci_high), rtol=1e-9)
    np.testing.assert_allclose(path["p_value"], np.minimum.accumulate(p_value), rtol=1e-9)

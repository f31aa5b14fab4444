"""Peeking is safe with the sequential methods: error rates checked by seeded simulation.

R replications of an experiment are monitored after every batch of units, up to a horizon
of K ≥ 50 looks, with streams of cumulative sufficient statistics drawn by
:func:`splitlab.simulate.ab_streams` (normal batches from the exact law of their sufficient
statistics; Bernoulli as binomial counts; lognormal units one by one) and
:func:`splitlab.simulate.count_streams` (assignment counts for SRM). A method "ever
rejects" a replication when it rejects at any look; under A/A streams that rate is the
type I error of continuous monitoring, and it must stay at or below α within
``binomial_tolerance`` (4 binomial standard errors over R replications). A fixed-horizon
test checked at every look is the counter-example: its rate is several times α.

Tests marked ``slow`` repeat the type I checks with R = 20,000 and K = 100 looks.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy import stats

from simulation_helpers import assert_rate_close, binomial_tolerance
from splitlab.errors import InvalidArgumentError, ShapeMismatchError, UnknownOptionError
from splitlab.sequential.confseq import confidence_sequence_from_estimate
from splitlab.sequential.group import GroupSequentialDesign
from splitlab.sequential.monitor import SequentialMonitor
from splitlab.sequential.msprt import msprt_from_estimate, msprt_tau2
from splitlab.sequential.srm import sequential_srm
from splitlab.simulate import ab_streams, count_streams
from splitlab.stats.frequentist import ttest
from splitlab.stats.moments import Moments
from splitlab.stats.srm import srm_test

pytestmark = pytest.mark.validity

ALPHA = 0.05
REPLICATIONS = 10_000
LOOKS = 50
BATCH = 100  # units per arm per look: 5,000 per arm at the horizon
SLOW_REPLICATIONS = 20_000
SLOW_LOOKS = 100

# Each distribution's control law and true per-unit sd (the mSPRT's τ² is fixed from the
# planned sample size and this sd before any data are seen, as msprt_tau2 documents).
LAWS = {
    "normal": ({"mean": 0.0, "sd": 1.0}, 1.0),
    "bernoulli": ({"mean": 0.1}, float(np.sqrt(0.1 * 0.9))),
    "lognormal": ({"mean": 1.0, "sd": 2.0}, 2.0),
}
# Raw lognormal units cost R·K·2·BATCH draws; fewer replications keep the file fast.
LAW_REPLICATIONS = {"normal": REPLICATIONS, "bernoulli": REPLICATIONS, "lognormal": 2000}
SEEDS = {"normal": 101, "bernoulli": 102, "lognormal": 103}


def slow(value):
    return pytest.param(value, marks=pytest.mark.slow, id=f"R={value[0]},K={value[1]}")


SIZES = [
    pytest.param((REPLICATIONS, LOOKS), id=f"R={REPLICATIONS},K={LOOKS}"),
    slow((SLOW_REPLICATIONS, SLOW_LOOKS)),
]


@cache
def streams(law: str, replications: int, looks: int, effect: float = 0.0):
    return ab_streams(
        replications, looks, BATCH, distribution=law, effect=effect,
        seed=SEEDS[law] + looks + int(1000 * effect), **LAWS[law][0],
    )  # fmt: skip


@cache
def welch(law: str, replications: int, looks: int, effect: float = 0.0):
    """Welch's test at every look of every replication, one call over shape (R, K)."""
    stream = streams(law, replications, looks, effect)
    return ttest(stream.control(), stream.treatment(), alpha=ALPHA)


def ever(reject: np.ndarray) -> float:
    """Share of replications (rows) rejected at some look (column)."""
    return float(np.mean(np.any(reject, axis=1)))


def assert_at_most_alpha(rate: float, replications: int, what: str) -> None:
    bound = ALPHA + binomial_tolerance(ALPHA, replications)
    assert rate <= bound, f"{what}: ever-reject rate {rate:.4f} above α + tolerance {bound:.4f}"


def tau2(law: str, looks: int) -> float:
    return float(msprt_tau2(BATCH * looks, LAWS[law][1], alpha=ALPHA))


def monitor_looks(law, replications, looks, method, effect=0.0, **options):
    """Feed every look's cumulative Moments (one comparison per replication) to a
    SequentialMonitor, as a team checking a dashboard daily would."""
    stream = streams(law, replications, looks, effect)
    control, treatment = stream.control(), stream.treatment()
    monitor = SequentialMonitor(method, alpha=ALPHA, **options)
    for look in range(looks):
        monitor.update(
            Moments(control.n[:, look], control.mean[:, look], control.var[:, look]),
            Moments(treatment.n[:, look], treatment.mean[:, look], treatment.var[:, look]),
        )
    return monitor


# --- the generator ---------------------------------------------------------------------------


def test_streams_repeat_for_a_seed_and_differ_across_seeds() -> None:
    first = ab_streams(50, 10, 20, effect=0.3, seed=7)
    again = ab_streams(50, 10, 20, effect=0.3, seed=7)
    other = ab_streams(50, 10, 20, effect=0.3, seed=8)
    for name in ("sum_control", "sum_sq_control", "sum_treatment", "sum_sq_treatment"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
        assert not np.array_equal(getattr(first, name), getattr(other, name))
    np.testing.assert_array_equal(count_streams(5, 4, 30, [1, 2], seed=3),
                                  count_streams(5, 4, 30, [1, 2], seed=3))  # fmt: skip


@pytest.mark.parametrize("law", list(LAWS))
def test_streams_are_cumulative_with_the_requested_law(law) -> None:
    replications, looks, effect = 4000, 3, 0.05
    stream = ab_streams(replications, looks, (40, 60), distribution=law, effect=effect,
                        seed=5, **LAWS[law][0])  # fmt: skip
    np.testing.assert_array_equal(stream.n_control, np.tile([40.0, 80.0, 120.0], (4000, 1)))
    np.testing.assert_array_equal(stream.n_treatment, np.tile([60.0, 120.0, 180.0], (4000, 1)))
    assert np.all(np.diff(stream.sum_sq_control, axis=1) >= 0)
    control, treatment = stream.control(), stream.treatment()
    sd = LAWS[law][1]
    mean = stream.control_mean
    assert mean == LAWS[law][0]["mean"]
    # Replication means of x̄ are N(μ, sd²/(n R)) up to 4 standard errors.
    for arm, truth in ((control, mean), (treatment, mean + effect)):
        final = arm.mean[:, -1]
        assert abs(final.mean() - truth) < 4 * sd / np.sqrt(arm.n[0, -1] * replications)
    # The sample variance is unbiased for sd², within 4 of its own standard errors.
    variance = control.var[:, -1]
    assert abs(variance.mean() - sd**2) < 4 * variance.std(ddof=1) / np.sqrt(replications)


def test_exact_normal_batches_have_the_per_unit_law() -> None:
    """The two-draw shortcut (x̄ normal, scatter χ²) against unit-by-unit draws."""
    exact = ab_streams(4000, 3, 15, mean=2.0, sd=3.0, seed=11)
    units = ab_streams(4000, 3, 15, mean=2.0, sd=3.0, exact=False, seed=12)
    for field in ("mean", "var"):
        for look in range(3):
            a = getattr(exact.control(), field)[:, look]
            b = getattr(units.control(), field)[:, look]
            assert stats.ks_2samp(a, b).pvalue > 1e-4, (field, look)


def test_count_streams_add_a_multinomial_batch_per_look() -> None:
    weights = np.array([0.5, 0.3, 0.2])
    counts = count_streams(4000, 20, 100, 10 * weights, seed=13)
    np.testing.assert_array_equal(counts.sum(axis=-1), np.tile(100 * np.arange(1, 21), (4000, 1)))
    assert np.all(np.diff(counts, axis=1) >= 0)
    shares = counts[:, -1] / 2000
    np.testing.assert_allclose(shares.mean(axis=0), weights, atol=4 * np.sqrt(0.25 / 8e6))
    np.testing.assert_allclose(shares.var(axis=0, ddof=1), weights * (1 - weights) / 2000, rtol=0.1)


@pytest.mark.parametrize(
    ("call", "argument", "error"),
    [
        (lambda: ab_streams(0, 10, 10), "replications", InvalidArgumentError),
        (lambda: ab_streams(10, 2.5, 10), "looks", InvalidArgumentError),
        (lambda: ab_streams(10, 10, (10, 0)), "batch_size", InvalidArgumentError),
        (lambda: ab_streams(10, 10, (1, 2, 3)), "batch_size", InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, distribution="cauchy"), "distribution",
         UnknownOptionError),
        (lambda: ab_streams(10, 10, 10, sd=0.0), "sd", InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, mean=np.nan), "mean", InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, distribution="bernoulli", mean=1.2), "mean",
         InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, distribution="bernoulli", sd=0.3), "sd",
         InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, distribution="bernoulli", effect=0.6), "effect",
         InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, distribution="lognormal", mean=-1.0), "mean",
         InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, distribution="lognormal", effect=-2.0), "effect",
         InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, exact="yes"), "exact", InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, seed=-1), "seed", InvalidArgumentError),
        (lambda: ab_streams(10, 10, 10, seed=2**32), "seed", InvalidArgumentError),
        (lambda: count_streams(10, 10, 10, [1.0]), "probabilities", ShapeMismatchError),
        (lambda: count_streams(10, 10, 10, [0.5, -0.5]), "probabilities",
         InvalidArgumentError),
        (lambda: count_streams(10, 10, 10, [0.0, 0.0]), "probabilities", InvalidArgumentError),
        (lambda: count_streams(10, 10, 0, [0.5, 0.5]), "batch_size", InvalidArgumentError),
    ],
)  # fmt: skip
def test_bad_stream_arguments_raise_naming_the_argument(call, argument, error) -> None:
    with pytest.raises(error) as raised:
        call()
    assert raised.value.argument == argument


# --- (a) the fixed-horizon test is not safe to peek at --------------------------------------


@pytest.mark.parametrize("law", list(LAWS))
def test_fixed_horizon_ttest_inflates_under_continuous_peeking(law) -> None:
    replications = LAW_REPLICATIONS[law]
    result = welch(law, replications, LOOKS)
    # Checked once, at the horizon, Welch's test keeps its level on these streams ...
    assert_rate_close(
        float(np.mean(result.p_value[:, -1] < ALPHA)), ALPHA, replications, "final-look rate"
    )
    # ... checked after every batch, it rejects a true null several times as often.
    peeking = ever(result.p_value < ALPHA)
    assert peeking > 4 * ALPHA, f"peeking Welch rejects only {peeking:.4f}"


def test_fixed_horizon_chi_square_srm_inflates_under_continuous_peeking() -> None:
    counts = count_streams(REPLICATIONS, LOOKS, 2 * BATCH, [0.5, 0.5], seed=201)
    assert ever(srm_test(counts, [0.5, 0.5]).p_value < ALPHA) > 4 * ALPHA


# --- (b) the sequential methods keep α under continuous peeking -----------------------------


@pytest.mark.parametrize("law", list(LAWS))
def test_confidence_sequence_type_one_error_holds_under_continuous_peeking(law) -> None:
    replications = LAW_REPLICATIONS[law]
    monitor = monitor_looks(law, replications, LOOKS, "cs", n_star=2 * BATCH * LOOKS)
    rate = float(np.mean(monitor.decision == "reject"))
    assert_at_most_alpha(rate, replications, f"confidence sequence, {law}")
    # The monitor's running quantities are the running min / intersection of the looks'.
    result = welch(law, replications, LOOKS)
    stream = streams(law, replications, LOOKS)
    low, high, p_value = confidence_sequence_from_estimate(
        result.effect, result.se, stream.n_control + stream.n_treatment,
        alpha=ALPHA, n_star=2 * BATCH * LOOKS,
    )  # fmt: skip
    np.testing.assert_allclose(monitor.p_value, p_value.min(axis=1), rtol=1e-12)
    np.testing.assert_allclose(monitor.ci_low, low.max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(monitor.ci_high, high.min(axis=1), rtol=1e-12)
    assert ever(p_value <= ALPHA) == rate


@pytest.mark.parametrize("law", list(LAWS))
def test_msprt_type_one_error_holds_under_continuous_peeking(law) -> None:
    replications = LAW_REPLICATIONS[law]
    monitor = monitor_looks(law, replications, LOOKS, "msprt", tau2=tau2(law, LOOKS))
    rate = float(np.mean(monitor.decision == "reject"))
    assert_at_most_alpha(rate, replications, f"mSPRT, {law}")
    result = welch(law, replications, LOOKS)
    _, _, p_value = msprt_from_estimate(result.effect, result.se, alpha=ALPHA,
                                        tau2=tau2(law, LOOKS))  # fmt: skip
    np.testing.assert_allclose(monitor.p_value, p_value.min(axis=1), rtol=1e-12)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("method", ["cs", "msprt"])
def test_always_valid_type_one_error_on_normal_streams(method, size) -> None:
    replications, looks = size
    result = welch("normal", replications, looks)
    if method == "cs":
        stream = streams("normal", replications, looks)
        _, _, p_value = confidence_sequence_from_estimate(
            result.effect, result.se, stream.n_control + stream.n_treatment,
            alpha=ALPHA, n_star=2 * BATCH * looks,
        )  # fmt: skip
    else:
        _, _, p_value = msprt_from_estimate(
            result.effect, result.se, alpha=ALPHA, tau2=tau2("normal", looks)
        )
    assert_at_most_alpha(ever(p_value <= ALPHA), replications, method)


GST_DESIGNS = {
    "obf": {"spending": "obf"},
    "pocock": {"spending": "pocock"},
    "power-2": {"spending": ("power", 2.0)},
    "obf-one-sided": {"spending": "obf", "sides": 1},
}


def gst_rejects(design: GroupSequentialDesign, z: np.ndarray) -> np.ndarray:
    statistic = np.abs(z) if design.sides == 2 else z
    return statistic >= design.boundaries


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", list(GST_DESIGNS))
def test_group_sequential_type_one_error_with_a_look_after_every_batch(name, size) -> None:
    replications, looks = size
    design = GroupSequentialDesign(k=looks, alpha=ALPHA, **GST_DESIGNS[name])
    result = welch("normal", replications, looks)
    rate = ever(gst_rejects(design, result.statistic))
    # The boundaries spend exactly α over the K looks, so the rate is α, not just below it.
    assert_rate_close(rate, ALPHA, replications, f"group-sequential {name}")


def test_group_sequential_type_one_error_at_the_designs_own_looks() -> None:
    """A 10-look O'Brien-Fleming design looks at every fifth batch of the stream."""
    design = GroupSequentialDesign(information=[5, 10, 15, 20, 25, 30, 35, 40, 45, 50],
                                   alpha=ALPHA, spending="obf")  # fmt: skip
    z = welch("normal", REPLICATIONS, LOOKS).statistic[:, 4::5]
    assert_rate_close(ever(gst_rejects(design, z)), ALPHA, REPLICATIONS, "10-look OBF")


def test_group_sequential_analyze_agrees_with_the_planned_boundaries() -> None:
    design = GroupSequentialDesign(k=LOOKS, alpha=ALPHA, spending="pocock")
    z = welch("normal", REPLICATIONS, LOOKS, effect=0.06).statistic
    rejects = gst_rejects(design, z)
    rejected = np.flatnonzero(rejects.any(axis=1))[:3]
    kept = np.flatnonzero(~rejects.any(axis=1))[:3]
    fractions = np.arange(1, LOOKS + 1) / LOOKS
    for replication in (*rejected, *kept):
        analysis = design.analyze(z[replication], information=fractions)
        np.testing.assert_allclose(analysis.boundaries, design.boundaries, rtol=1e-8)
        if replication in rejected:
            first = int(np.argmax(rejects[replication])) + 1
            assert (analysis.decision, analysis.stopped_at) == ("reject", first)
        else:
            assert analysis.decision == "fail to reject"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.5, 0.3, 0.2]], ids=["50/50", "50/30/20"])
def test_sequential_srm_type_one_error_holds_under_continuous_peeking(weights, size) -> None:
    replications, looks = size
    counts = count_streams(replications, looks, 2 * BATCH, weights, seed=202 + len(weights))
    p_value = sequential_srm(counts, weights).p_value
    assert_at_most_alpha(ever(p_value <= ALPHA), replications, f"sequential SRM {weights}")


# --- (c) confidence sequences cover the effect at every look at once ------------------------


@pytest.mark.parametrize("law", ["normal", "bernoulli"])
def test_confidence_sequence_covers_the_true_effect_at_every_look_simultaneously(law) -> None:
    effect = 0.05 if law == "normal" else 0.01
    replications = LAW_REPLICATIONS[law]
    monitor = monitor_looks(law, replications, LOOKS, "cs", effect=effect,
                            n_star=2 * BATCH * LOOKS)  # fmt: skip
    # Covering at every look is the same as the running intersection covering at the end.
    covered = (monitor.ci_low <= effect) & (effect <= monitor.ci_high)
    bound = 1 - ALPHA - binomial_tolerance(ALPHA, replications)
    assert covered.mean() >= bound, f"simultaneous coverage {covered.mean():.4f} < {bound:.4f}"
    # The fixed-horizon intervals, read at every look, miss far more often.
    result = welch(law, replications, LOOKS, effect)
    fixed = np.all((result.ci_low <= effect) & (effect <= result.ci_high), axis=1)
    assert fixed.mean() < 1 - 2 * ALPHA, fixed.mean()


@pytest.mark.parametrize("method", ["msprt", "gst-repeated-ci"])
def test_other_always_valid_intervals_cover_at_every_look_simultaneously(method) -> None:
    effect = 0.05
    result = welch("normal", REPLICATIONS, LOOKS, effect)
    if method == "msprt":
        low, high, _ = msprt_from_estimate(result.effect, result.se, alpha=ALPHA,
                                           tau2=tau2("normal", LOOKS))  # fmt: skip
    else:  # repeated confidence intervals, Jennison & Turnbull (2000) ch. 9
        boundaries = GroupSequentialDesign(k=LOOKS, alpha=ALPHA, spending="obf").boundaries
        low = result.effect - boundaries * result.se
        high = result.effect + boundaries * result.se
    covered = np.all((low <= effect) & (effect <= high), axis=1)
    bound = 1 - ALPHA - binomial_tolerance(ALPHA, REPLICATIONS)
    assert covered.mean() >= bound, f"{method}: coverage {covered.mean():.4f} < {bound:.4f}"


# --- (d) under a real effect every method gets there ----------------------------------------

# 5 standard errors at the horizon (se = sqrt(2 / 5000) = 0.02): the fixed-horizon test
# has power 0.999, so every valid method should reject in most replications.
POWER_EFFECT = 0.1


def test_every_method_eventually_rejects_a_real_effect_in_the_right_direction() -> None:
    result = welch("normal", REPLICATIONS, LOOKS, POWER_EFFECT)
    stream = streams("normal", REPLICATIONS, LOOKS, POWER_EFFECT)
    cs_low, _, cs_p = confidence_sequence_from_estimate(
        result.effect, result.se, stream.n_control + stream.n_treatment,
        alpha=ALPHA, n_star=2 * BATCH * LOOKS,
    )  # fmt: skip
    msprt_low, _, msprt_p = msprt_from_estimate(result.effect, result.se, alpha=ALPHA,
                                                tau2=tau2("normal", LOOKS))  # fmt: skip
    design = GroupSequentialDesign(k=LOOKS, alpha=ALPHA, spending="obf")
    rejections = {
        "confidence sequence": (cs_p <= ALPHA) & (cs_low > 0),
        "mSPRT": (msprt_p <= ALPHA) & (msprt_low > 0),
        "group-sequential OBF": result.statistic >= design.boundaries,
    }
    for name, reject in rejections.items():
        assert ever(reject) > 0.9, f"{name} rejects only {ever(reject):.3f}"
        # ... and usually before the horizon.
        first_look = np.where(reject.any(axis=1), np.argmax(reject, axis=1) + 1, LOOKS)
        assert first_look.mean() < 0.8 * LOOKS, f"{name}: mean stopping look {first_look.mean()}"


def test_sequential_srm_detects_a_real_mismatch() -> None:
    counts = count_streams(REPLICATIONS, LOOKS, 2 * BATCH, [0.53, 0.47], seed=204)
    assert ever(sequential_srm(counts, [0.5, 0.5]).p_value <= ALPHA) > 0.9

"""Change detectors (splitlab.sequential.changepoint) and the Allocator's DriftGuard.

Seeded simulations check the stated guarantees: under no change the average run length
meets ARL ≥ 1/α (e-detectors; a bound) or the Siegmund target (CUSUM; an approximation);
after a shift the mean delay stays below the stated bounds; a guarded bandit recovers
from a change of its best arm.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from splitlab.allocator.allocator import Allocator
from splitlab.allocator.drift import DriftGuard
from splitlab.bandits import ThompsonSampling
from splitlab.errors import InvalidArgumentError
from splitlab.sequential.changepoint import EDetector, GaussianCUSUM, detect_changes


def run_lengths(make, draw, replications, horizon, seed):
    """First alarm time (1-based) of each replication, censored at ``horizon``."""
    rng = np.random.default_rng(seed)
    lengths = np.empty(replications)
    for r in range(replications):
        detector, seen = make(), 0
        lengths[r] = horizon
        while seen < horizon:
            chunk = min(4096, horizon - seen)
            index = detector.update_many(draw(rng, chunk))
            if index >= 0:
                lengths[r] = seen + index + 1
                break
            seen += chunk
    return lengths


def gaussian(mean):
    return lambda rng, n: rng.normal(mean, 1.0, n)


def bernoulli(rate):
    return lambda rng, n: rng.binomial(1, rate, n).astype(float)


# ---------------------------------------------------------------- (a) no change


@pytest.mark.parametrize("kind", ["sr", "cusum"])
@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_edetector_arl_meets_one_over_alpha_under_no_change(kind, alternative):
    alpha, replications = 0.01, 300

    def make():
        return EDetector(0.0, 0.25, sigma=1.0, alpha=alpha, kind=kind, alternative=alternative)

    # censoring only lowers the estimate, so the check is conservative
    lengths = run_lengths(make, gaussian(0.0), replications, 20_000, seed=1)
    error = lengths.std(ddof=1) / math.sqrt(replications)
    assert lengths.mean() + 3 * error >= 1 / alpha, (lengths.mean(), error)


def test_bounded_edetector_arl_on_a_bernoulli_stream_and_under_a_lower_mean():
    # the SR e-detector with exact Bernoulli bets is nearly tight: ARL ≈ 1.3/α
    alpha, replications = 0.01, 400
    make = lambda: EDetector(0.3, 0.1, bounds=(0, 1), alpha=alpha)  # noqa: E731
    lengths = run_lengths(make, bernoulli(0.3), replications, 20_000, seed=2)
    error = lengths.std(ddof=1) / math.sqrt(replications)
    assert lengths.mean() + 3 * error >= 1 / alpha
    # the null is "mean <= 0.3": a lower mean is no change
    lower = run_lengths(make, bernoulli(0.2), 100, 5_000, seed=3)
    assert lower.mean() > 10 / alpha


def test_edetector_with_a_null_interval_holds_for_any_mean_inside_it():
    alpha = 0.02
    make = lambda: EDetector((-0.2, 0.2), 0.3, sigma=1.0, alpha=alpha, alternative="two-sided")  # noqa: E731
    for mean, seed in ((-0.2, 4), (0.2, 5)):
        lengths = run_lengths(make, gaussian(mean), 300, 10_000, seed=seed)
        error = lengths.std(ddof=1) / math.sqrt(300)
        assert lengths.mean() + 3 * error >= 1 / alpha


@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_cusum_siegmund_calibration_hits_the_target_arl(alternative):
    target, replications = 200.0, 2000
    make = lambda: GaussianCUSUM(0.0, 1.0, arl=target, alternative=alternative)  # noqa: E731
    assert make().expected_run_length() == pytest.approx(target, rel=1e-9)
    lengths = run_lengths(make, gaussian(0.0), replications, 100_000, seed=6)
    error = lengths.std(ddof=1) / math.sqrt(replications)
    # Monte Carlo error (3 SE) plus 5% for the approximation itself
    assert abs(lengths.mean() - target) <= 3 * error + 0.05 * target, (lengths.mean(), error)


def test_cusum_lorden_calibration_is_a_lower_bound():
    target = 200.0
    make = lambda: GaussianCUSUM(0.0, 1.0, arl=target, calibration="lorden")  # noqa: E731
    assert make().h == pytest.approx(math.log(target))
    lengths = run_lengths(make, gaussian(0.0), 300, 100_000, seed=7)
    error = lengths.std(ddof=1) / math.sqrt(300)
    assert lengths.mean() - 3 * error >= target


# ---------------------------------------------------------------- (b) delays


def test_cusum_delay_after_a_shift_matches_siegmund_and_lorden():
    cusum = GaussianCUSUM(0.0, 1.0, arl=10_000)
    kl = 0.5  # δ²/(2σ²)
    delays = run_lengths(lambda: GaussianCUSUM(0.0, 1.0, arl=10_000), gaussian(1.0), 1000,
                         10_000, seed=8)  # fmt: skip
    error = delays.std(ddof=1) / math.sqrt(1000)
    assert delays.mean() == pytest.approx(cusum.expected_run_length(1.0), rel=0.05)
    # Lorden: h/KL asymptotically; with Siegmund's overshoot correction (h + 1.166 θ)/KL
    assert delays.mean() <= (cusum.h + 1.166) / kl + 3 * error


def test_cusum_detects_a_change_at_tau_and_estimates_it():
    rng = np.random.default_rng(9)
    tau, delays, estimates = 500, [], []
    for _ in range(200):
        cusum = GaussianCUSUM(0.0, 1.0, arl=10_000)
        if cusum.update_many(rng.normal(0.0, 1.0, tau)) >= 0:
            cusum.reset()  # a false alarm: watch on
        index = cusum.update_many(rng.normal(1.0, 1.0, 1000))
        assert index >= 0
        delays.append(index + 1)
        estimates.append(cusum.changepoint_estimate - cusum.n + index + 1 + tau)
    assert np.mean(delays) <= (cusum.h + 1.166) / 0.5 + 2.0
    assert abs(np.median(estimates) - tau) <= 3


@pytest.mark.parametrize("kind", ["sr", "cusum"])
@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_edetector_delay_below_the_mixture_bound(kind, alternative):
    alpha, shift = 0.01, 1.0  # a grid point of delta = 0.25 (0.25, 0.5, 1, 2, 4)
    make = lambda: EDetector(0.0, 0.25, sigma=1.0, alpha=alpha, kind=kind, alternative=alternative)  # noqa: E731
    weight = math.exp(make()._log_weights[0])
    delays = run_lengths(make, gaussian(shift), 300, 10_000, seed=10)
    # w_k M^k ≤ M: no later than component k's CUSUM at ln(1/(α w_k)), KL = d²/2, plus
    # an overshoot of at most about two steps
    bound = math.log(1 / (alpha * weight)) / (shift**2 / 2) + 2.0
    assert delays.mean() <= bound, (delays.mean(), bound)
    if alternative == "two-sided":
        down = run_lengths(make, gaussian(-shift), 300, 10_000, seed=11)
        assert down.mean() <= bound


def test_bounded_edetector_detects_a_bernoulli_rise_and_a_fall():
    make = lambda: EDetector(0.3, 0.1, bounds=(0, 1), alpha=1e-3, alternative="two-sided")  # noqa: E731
    up = run_lengths(make, bernoulli(0.5), 200, 10_000, seed=12)
    down = run_lengths(make, bernoulli(0.1), 200, 10_000, seed=13)
    kl_up = 0.5 * math.log(0.5 / 0.3) + 0.5 * math.log(0.5 / 0.7)
    assert up.mean() <= math.log(1 / (1e-3 / make()._lambdas.size)) / kl_up + 5
    assert down.mean() < up.mean()


def test_update_and_update_many_agree_and_stop_at_the_alarm():
    rng = np.random.default_rng(14)
    xs = np.concatenate([rng.normal(0, 1, 300), rng.normal(1.5, 1, 100)])
    for make in (
        lambda: EDetector(0.0, 0.5, sigma=1.0, alpha=1e-3),
        lambda: GaussianCUSUM(0.0, 1.0, arl=5000, alternative="two-sided"),
    ):
        one, many = make(), make()
        first = next(i for i, x in enumerate(xs) if one.update(float(x)))
        assert many.update_many(xs) == first
        assert many.n == one.n == first + 1 and many.alarm and one.alarm
        assert many.statistic == one.statistic
        assert many.alarm_index == first
        many.reset()
        assert (many.n, many.alarm, many.alarm_index) == (0, False, None)


def test_detect_changes_on_a_daily_series():
    rng = np.random.default_rng(15)
    series = np.concatenate([rng.normal(10, 1, 200), rng.normal(13, 1, 20), rng.normal(10, 1, 200)])
    template = GaussianCUSUM(10.0, 3.0, arl=1e6, alternative="two-sided")
    alarms, changes = detect_changes(series, template, changepoints=True)
    assert 200 <= alarms[0] <= 205 and abs(changes[0] - 200) <= 2
    assert np.all((alarms >= 200) & (alarms < 225))  # repeated alarms only while shifted
    assert template.n == 0  # the argument is not consumed
    assert detect_changes(rng.normal(10, 1, 300), template).size == 0


# ---------------------------------------------------------------- (c) DriftGuard


def _bandit_regret(action, seed, horizon=3000, change=1500):
    """Post-change regret of online Thompson sampling on two Bernoulli arms whose best
    arm flips at ``change`` (a: 0.8 → 0.2, b: 0.5)."""
    alloc = Allocator(["a", "b"], ThompsonSampling(), seed=seed, mode="online")
    guard = None
    if action is not None:
        guard = DriftGuard(
            alloc,
            lambda arm, rewards: EDetector.from_baseline(rewards, 0.2, bounds=(0, 1)),
            action=action,
            discount=0.98,
            warmup=100,
        )
    rng = np.random.default_rng(
        [seed, 99]
    )  # not the allocator's stream: rewards independent of draws
    regret = 0.0
    for step in range(horizon):
        decision = alloc.choose()
        rates = {"a": 0.8, "b": 0.5} if step < change else {"a": 0.2, "b": 0.5}
        reward = float(rng.random() < rates[decision.arm])
        (guard or alloc).update(decision, reward)
        if step >= change:
            regret += max(rates.values()) - rates[decision.arm]
    return regret, guard


def test_drift_guard_recovers_after_the_best_arm_changes():
    plain, reset, discount = [], [], []
    for seed in range(3):
        plain.append(_bandit_regret(None, seed)[0])
        regret, guard = _bandit_regret("reset", seed)
        reset.append(regret)
        assert guard.alarms and guard.alarms[0].arm == "a" and guard.alarms[0].step > 1500
        assert guard.alarms[0].since_change is not None
        regret, guard = _bandit_regret("discount", seed)
        discount.append(regret)
        assert guard.allocator.policy.discount == 0.98
    # measured (seeds 0-2): plain ~390, reset ~11, discount ~105
    assert np.mean(reset) < 0.1 * np.mean(plain), (reset, plain)
    assert np.mean(discount) < 0.5 * np.mean(plain), (discount, plain)


def test_drift_guard_reset_restores_the_prior_of_one_arm_only():
    alloc = Allocator(["a", "b", "c"], ThompsonSampling(prior=(2.0, 3.0)), mode="online")
    for arm, reward in (("a", 1.0), ("b", 0.0), ("c", 1.0)):
        alloc.update(arm=arm, reward=reward)
    guard = DriftGuard(alloc, EDetector(0.2, 0.5, bounds=(0, 1), alpha=0.1))
    assert [guard.observe("b", 1.0), guard.observe("b", 1.0)] == [False, True]
    arrays = alloc.policy.arrays
    assert arrays["alpha"][0].tolist() == [3.0, 2.0, 3.0]
    assert arrays["beta"][0].tolist() == [3.0, 3.0, 3.0]
    frame = guard.alarms_frame()
    assert frame["arm"].tolist() == ["b"] and frame["action"].tolist() == ["reset"]


def test_drift_guard_forwards_like_the_allocator_and_skips_duplicates():
    alloc = Allocator(["a", "b"], ThompsonSampling(), seed=3, mode="online")
    guard = DriftGuard(alloc, GaussianCUSUM(0.5, 0.5, sigma=0.5, arl=1000), per_arm=False)
    decision = alloc.choose()
    assert guard.update(decision, 1.0) is True
    assert guard.update(decision, 1.0) is False  # a duplicate reaches no detector
    assert guard.detectors[None].n == 1 and guard.step == 1
    with pytest.raises(InvalidArgumentError) as raised:
        guard.update("nope", 1.0)
    assert raised.value.argument == "decision"


# ---------------------------------------------------------------- (d) state


@pytest.mark.parametrize(
    "make",
    [
        lambda: EDetector((0.1, 0.2), 0.1, bounds=(0, 1), alternative="two-sided", kind="cusum"),
        lambda: EDetector(0.0, 0.5, sigma=2.0, delta_max=3.0),
        lambda: GaussianCUSUM(1.0, 0.5, sigma=2.0, arl=300, alternative="less"),
        lambda: GaussianCUSUM(0.0, 1.0, h=4.0, alternative="two-sided", calibration="lorden"),
    ],
)
def test_state_round_trip_continues_identically(make):
    rng = np.random.default_rng(16)
    first, rest = rng.random(150), rng.random(200) * 0.5 + 0.5
    detector = make()
    detector.update_many(first)
    restored = type(detector).from_state(json.loads(json.dumps(detector.state())))
    assert restored.state() == detector.state()
    assert restored.update_many(rest) == detector.update_many(rest)
    assert restored.statistic == detector.statistic
    assert restored.changepoint_estimate == detector.changepoint_estimate


def test_from_state_refuses_other_states():
    state = EDetector(0.0, 0.5, sigma=1.0).state()
    with pytest.raises(InvalidArgumentError, match="state"):
        GaussianCUSUM.from_state(state)
    with pytest.raises(InvalidArgumentError, match="corrupt"):
        EDetector.from_state({**state, "arrays": {**state["arrays"], "_log_sr": [1.0]}})


# ---------------------------------------------------------------- (e) bad input


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: EDetector(0.0, 0.5, sigma=1.0, alpha=0.0), "alpha"),
        (lambda: EDetector(0.0, 0.5, sigma=1.0, alpha=1.5), "alpha"),
        (lambda: EDetector(0.0, -0.5, sigma=1.0), "delta"),
        (lambda: EDetector(0.0, 0.5), "sigma"),
        (lambda: EDetector(0.5, 0.1, bounds=(1, 0)), "bounds"),
        (lambda: EDetector(1.5, 0.1, bounds=(0, 1)), "mu0"),
        (lambda: EDetector((0.3, 0.1), 0.1, sigma=1.0), "mu0"),
        (lambda: EDetector(0.9, 0.2, bounds=(0, 1)), "delta"),
        (lambda: EDetector(0.0, 0.5, sigma=1.0, kind="page"), "kind"),
        (lambda: EDetector(0.0, 0.5, sigma=1.0).update(float("nan")), "x"),
        (lambda: EDetector(0.0, 0.5, sigma=1.0).update("1"), "x"),
        (lambda: EDetector(0.5, 0.1, bounds=(0, 1)).update(2.0), "x"),
        (lambda: EDetector(0.0, 0.5, sigma=1.0).update_many([0.0, np.inf]), "xs"),
        (lambda: EDetector(0.0, 0.5, sigma=1.0).update_many(np.zeros((2, 2))), "xs"),
        (lambda: EDetector.from_baseline([], 0.1, bounds=(0, 1)), "baseline"),
        (lambda: EDetector.from_baseline([0.5], 0.1, bounds=(0, 1), beta=1.0), "beta"),
        (lambda: GaussianCUSUM(0.0, 1.0, arl=0.5), "arl"),
        (lambda: GaussianCUSUM(0.0, 1.0, arl=100, h=3.0), "h"),
        (lambda: GaussianCUSUM(0.0, 1.0, sigma=0.0), "sigma"),
        (lambda: GaussianCUSUM(0.0, 1.0, calibration="guess"), "calibration"),
        (lambda: GaussianCUSUM(0.0, 1.0).update(float("inf")), "x"),
        (lambda: detect_changes([1.0, float("nan")], GaussianCUSUM(0.0, 1.0)), "values"),
        (lambda: detect_changes([1.0], "cusum"), "detector"),
        (lambda: DriftGuard(object(), GaussianCUSUM(0.0, 1.0)), "allocator"),
        (lambda: DriftGuard(Allocator(["a"]), GaussianCUSUM(0.0, 1.0), action="x"), "action"),
        (lambda: DriftGuard(Allocator(["a"]), GaussianCUSUM(0.0, 1.0), discount=1.0), "discount"),
        (lambda: DriftGuard(Allocator(["a"]), 3), "detector"),
        (lambda: DriftGuard(Allocator(["a"]), GaussianCUSUM(0.0, 1.0), scope="some"), "scope"),
        (lambda: DriftGuard(Allocator(["a"]), GaussianCUSUM(0.0, 1.0), warmup=-1), "warmup"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(InvalidArgumentError) as raised:
        call()
    assert raised.value.argument == argument

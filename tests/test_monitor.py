from __future__ import annotations

import json

import numpy as np
import pytest

from splitlab import JointMoments, Moments
from splitlab.errors import (
    DegenerateDataWarning,
    InvalidArgumentError,
    ShapeMismatchError,
    UnknownOptionError,
)
from splitlab.sequential.confseq import confidence_sequence
from splitlab.sequential.monitor import SequentialMonitor
from splitlab.sequential.msprt import msprt

COMPARISONS = 4
LOOKS = 8


def streams(seed=0, effect=0.0):
    """Per-look increments of raw data for COMPARISONS comparisons at once."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(100, 300, LOOKS)
    control = [rng.normal(0.0, 1.0, (COMPARISONS, size)) for size in sizes]
    treatment = [rng.normal(effect, 1.0, (COMPARISONS, size)) for size in sizes]
    return control, treatment


def cumulative(chunks):
    return [
        Moments.from_samples(np.concatenate(chunks[: k + 1], axis=1)) for k in range(len(chunks))
    ]


def test_running_minimum_and_intersection_of_the_looks():
    control, treatment = streams(1, effect=0.08)
    monitor = SequentialMonitor("cs", alpha=0.1, n_star=1000)
    looks = []
    for c, t in zip(cumulative(control), cumulative(treatment), strict=True):
        result = monitor.update(c, t)
        direct = confidence_sequence(c, t, alpha=0.1, n_star=1000)
        np.testing.assert_array_equal(result.p_value, direct.p_value)
        looks.append(direct)
    p = np.array([look.p_value for look in looks])
    low = np.array([look.ci_low for look in looks])
    high = np.array([look.ci_high for look in looks])
    np.testing.assert_array_equal(monitor.p_value, p.min(axis=0))
    np.testing.assert_array_equal(monitor.ci_low, low.max(axis=0))
    np.testing.assert_array_equal(monitor.ci_high, high.min(axis=0))
    history = monitor.history
    assert len(history) == LOOKS * COMPARISONS and monitor.looks == LOOKS
    np.testing.assert_array_equal(
        history["running_p_value"].to_numpy().reshape(LOOKS, COMPARISONS),
        np.minimum.accumulate(p, axis=0),
    )
    expected = np.where(p.min(axis=0) <= 0.1, "reject", "continue")
    np.testing.assert_array_equal(monitor.decision, expected)
    assert list(history.columns[:4]) == ["look", "comparison", "n_control", "n_treatment"]


def test_rejection_sticks_when_a_later_look_is_less_extreme():
    monitor = SequentialMonitor("msprt", alpha=0.05, tau2=0.05)
    first = monitor.update(Moments(400, 0.0, 1.0), Moments(400, 0.4, 1.0))
    assert first.p_value < 0.05 and monitor.decision == "reject"
    second = monitor.update(Moments(800, 0.0, 1.0), Moments(800, 0.02, 1.0))
    assert second.p_value > 0.05
    assert monitor.decision == "reject" and monitor.p_value == first.p_value
    assert monitor.ci_low == first.ci_low and monitor.ci_high == second.ci_high


def test_intersection_may_become_empty_and_then_excludes_zero():
    monitor = SequentialMonitor("cs", n_star=500)
    monitor.update(Moments(1000, 0.0, 1.0), Moments(1000, 0.5, 1.0))
    monitor.update(Moments(2000, 0.0, 1.0), Moments(2000, -0.5, 1.0))
    assert monitor.ci_low > monitor.ci_high and monitor.decision == "reject"


def test_increments_and_cumulative_statistics_give_the_same_state():
    control, treatment = streams(2)
    by_increment = SequentialMonitor("cs", alpha=0.05, n_star=2000)
    by_merged_total = SequentialMonitor("cs", alpha=0.05, n_star=2000)
    by_recomputed_total = SequentialMonitor("cs", alpha=0.05, n_star=2000)
    total_c = total_t = None
    for k, (c, t) in enumerate(zip(control, treatment, strict=True)):
        inc_c, inc_t = Moments.from_samples(c), Moments.from_samples(t)
        by_increment.add(inc_c, inc_t)
        total_c = inc_c if total_c is None else total_c + inc_c
        total_t = inc_t if total_t is None else total_t + inc_t
        by_merged_total.update(total_c, total_t)
        by_recomputed_total.update(cumulative(control)[k], cumulative(treatment)[k])
    assert by_increment.state() == by_merged_total.state()
    a, b = by_increment.history, by_recomputed_total.history
    numeric = a.select_dtypes("number").columns
    np.testing.assert_allclose(a[numeric], b[numeric], rtol=1e-10, atol=1e-14)


def test_state_round_trips_through_json_and_monitoring_continues_identically():
    control, treatment = streams(3, effect=0.05)
    whole = SequentialMonitor("msprt", alpha=0.05, tau2=np.full(COMPARISONS, 0.004))
    half = SequentialMonitor("msprt", alpha=0.05, tau2=np.full(COMPARISONS, 0.004))
    for k in range(LOOKS):
        increments = Moments.from_samples(control[k]), Moments.from_samples(treatment[k])
        whole.add(*increments)
        if k == LOOKS // 2:
            half = SequentialMonitor.from_state(json.loads(json.dumps(half.state())))
        half.add(*increments)
    assert whole.state() == half.state()
    assert half.looks == LOOKS
    np.testing.assert_array_equal(whole.decision, half.decision)


def test_rows_without_a_result_leave_the_running_quantities_unchanged():
    monitor = SequentialMonitor("cs")
    with pytest.warns(DegenerateDataWarning):
        first = monitor.update(Moments([1, 500], 0.0, 1.0), Moments([1, 500], 0.1, 1.0))
    assert first.error[0] == "n < 2 in control"
    assert monitor.p_value[0] == 1.0 and monitor.ci_low[0] == -np.inf
    monitor.update(Moments([600, 600], 0.0, 1.0), Moments([600, 600], 0.1, 1.0))
    assert np.isfinite(monitor.ci_low).all() and monitor.history["error"].iloc[0] != ""


def test_joint_moments_with_cuped():
    rng = np.random.default_rng(5)
    x = rng.normal(10, 2, (2, 3000))
    y = x + rng.normal(0, 1, (2, 3000)) + np.array([[0.0], [0.1]])
    monitor = SequentialMonitor("cs", n_star=6000, kind="cuped")
    for stop in (1000, 2000, 3000):
        result = monitor.update(
            JointMoments.from_samples(y[0, :stop], x[0, :stop]),
            JointMoments.from_samples(y[1, :stop], x[1, :stop]),
        )
    assert monitor.looks == 3 and result.method == "cs"
    restored = SequentialMonitor.from_state(monitor.state())
    assert restored.state() == monitor.state()


def test_one_sided_sequence_keeps_an_infinite_side():
    monitor = SequentialMonitor("cs", alternative="greater")
    monitor.update(Moments(500, 0.0, 1.0), Moments(500, 0.3, 1.0))
    assert monitor.ci_high == np.inf and monitor.ci_low > 0


def test_msprt_monitor_matches_direct_calls():
    monitor = SequentialMonitor("msprt", alpha=0.1, tau2=0.02, relative=True)
    result = monitor.update(Moments(300, 10.0, 4.0), Moments(300, 10.4, 4.0))
    direct = msprt(Moments(300, 10.0, 4.0), Moments(300, 10.4, 4.0), alpha=0.1, tau2=0.02,
                   relative=True)  # fmt: skip
    assert result.p_value == direct.p_value and monitor.p_value == direct.p_value


def test_decreasing_cumulative_n_is_refused():
    monitor = SequentialMonitor("cs")
    monitor.update(Moments([500, 500], 0.0, 1.0), Moments([500, 500], 0.1, 1.0))
    with pytest.raises(InvalidArgumentError, match=r"^control: cumulative n decreased"):
        monitor.update(Moments([600, 400], 0.0, 1.0), Moments([600, 600], 0.1, 1.0))
    with pytest.raises(InvalidArgumentError, match=r"^treatment: cumulative n decreased"):
        monitor.update(Moments([600, 600], 0.0, 1.0), Moments([100, 600], 0.1, 1.0))
    assert monitor.looks == 1


def test_changing_shape_or_type_between_looks_is_refused():
    monitor = SequentialMonitor("cs")
    monitor.update(Moments([500, 500], 0.0, 1.0), Moments([500, 500], 0.1, 1.0))
    with pytest.raises(ShapeMismatchError, match="control"):
        monitor.update(Moments([600, 600, 600], 0.0, 1.0), Moments([600, 600], 0.1, 1.0))
    joint = JointMoments([600, 600], 1.0, 1.0, 2.0, 1.0, 0.5)
    with pytest.raises(InvalidArgumentError, match="control"):
        monitor.update(joint, joint)
    with pytest.raises(InvalidArgumentError, match="control_increment"):
        monitor.add(joint, joint)
    with pytest.raises(InvalidArgumentError, match="treatment"):
        monitor.update(Moments([600, 600], 0.0, 1.0), [1, 2])


def test_bad_construction_is_refused():
    with pytest.raises(UnknownOptionError, match="method"):
        SequentialMonitor("bayes")
    with pytest.raises(InvalidArgumentError, match="alpha"):
        SequentialMonitor("cs", alpha=1.0)
    with pytest.raises(InvalidArgumentError, match="n_star"):
        SequentialMonitor("cs", n_star=0)
    with pytest.raises(InvalidArgumentError, match="tau2"):
        SequentialMonitor("msprt")
    with pytest.raises(InvalidArgumentError, match="tau2"):
        SequentialMonitor("msprt", tau2=-1.0)
    with pytest.raises(InvalidArgumentError, match="tau2"):
        SequentialMonitor("cs", tau2=0.1)
    with pytest.raises(UnknownOptionError, match="kind"):
        SequentialMonitor("cs", kind="linear")


def test_corrupt_or_foreign_state_is_refused():
    state = SequentialMonitor("cs").state()
    with pytest.raises(InvalidArgumentError, match="state"):
        SequentialMonitor.from_state({**state, "version": 99})
    with pytest.raises(InvalidArgumentError, match="state"):
        SequentialMonitor.from_state(
            {key: value for key, value in state.items() if key != "method"}
        )
    with pytest.raises(InvalidArgumentError, match="state"):
        SequentialMonitor.from_state("not a dict")


def test_empty_monitor():
    monitor = SequentialMonitor("cs")
    assert monitor.looks == 0 and monitor.decision == "continue" and monitor.p_value == 1.0
    assert monitor.history.empty and "running_p_value" in monitor.history.columns

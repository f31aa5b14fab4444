"""The serving Allocator: decisions, rewards by id, hashing, persistence, replicas, SRM."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import threading
import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import splitlab as sl
from simulation_helpers import binomial_tolerance
from splitlab.allocator import Allocator, Decision
from splitlab.bandits import (
    EpsilonGreedy,
    FixedSplit,
    GaussianThompson,
    LinUCB,
    ThompsonSampling,
    TopTwoThompson,
)
from splitlab.errors import InvalidArgumentError
from splitlab.hashing import unit_uniform

ARMS = [f"arm{k}" for k in range(10)]


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def bernoulli_rewards(alloc: Allocator, steps: int, rates, seed: int = 0, unit=None) -> None:
    rng = np.random.default_rng(seed)
    for step in range(steps):
        decision = alloc.choose(unit=None if unit is None else f"{unit}{step}")
        alloc.update(decision.id, float(rng.random() < rates[decision.arm_index]))


# ---------------------------------------------------------------------- decisions


def test_decision_carries_exact_propensity_and_shared_readonly_probabilities():
    alloc = Allocator(ARMS[:3], FixedSplit([0.2, 0.3, 0.5]), seed=1)
    decision = alloc.choose()
    assert isinstance(decision, Decision)
    assert decision.arm == ARMS[decision.arm_index]
    np.testing.assert_allclose(decision.probabilities, [0.2, 0.3, 0.5], rtol=1e-15)
    assert decision.propensity == decision.probabilities[decision.arm_index]
    assert not decision.probabilities.flags.writeable
    assert decision.policy_version >= 1 and decision.unit is None and not decision.sticky


def test_choices_follow_the_served_probabilities():
    weights = np.array([0.2, 0.3, 0.5])
    alloc = Allocator(ARMS[:3], FixedSplit(weights), seed=3)
    counts = np.bincount([alloc.choose().arm_index for _ in range(20_000)], minlength=3)
    assert stats.chisquare(counts, weights * counts.sum()).pvalue > 1e-4


def test_hashed_units_split_by_the_weights():
    alloc = Allocator(["control", "treatment"], FixedSplit([0.7, 0.3]), salt="exp-1")
    n = 20_000
    treated = np.mean([alloc.choose(unit=f"user-{i}").arm == "treatment" for i in range(n)])
    assert abs(treated - 0.3) <= binomial_tolerance(0.3, n)


def test_default_policy_is_thompson_served_periodically():
    alloc = Allocator(["a", "b"])
    assert isinstance(alloc.policy, ThompsonSampling) and alloc.mode == "periodic"
    assert Allocator(["a", "b"], EpsilonGreedy()).mode == "online"
    assert sl.Allocator is Allocator


def test_available_arms_restrict_the_draw():
    alloc = Allocator(ARMS[:4], FixedSplit([1, 1, 1, 1]), seed=0)
    for _ in range(200):
        decision = alloc.choose(available=["arm1", "arm3"])
        assert decision.arm in ("arm1", "arm3")
        np.testing.assert_allclose(decision.probabilities, [0, 0.5, 0, 0.5])
    mask_decision = alloc.choose(available=np.array([False, False, True, False]))
    assert mask_decision.arm == "arm2" and mask_decision.propensity == 1.0


# ---------------------------------------------------------------------- hashing


def test_unit_uniform_is_the_documented_blake2b_construction():
    for salt, unit in [("exp-42", "user-1"), ("", "x"), ("s", 12345)]:
        digest = hashlib.blake2b(f"{salt}\x1f{unit}".encode(), digest_size=8).digest()
        expected = (int.from_bytes(digest, "big") >> 11) / 2**53
        assert unit_uniform(salt, unit) == expected


def test_hashed_uniforms_are_uniform_and_salt_dependent():
    values = np.array([unit_uniform("exp", f"u{i}") for i in range(20_000)])
    assert stats.kstest(values, "uniform").pvalue > 1e-4
    other = np.array([unit_uniform("exp2", f"u{i}") for i in range(20_000)])
    assert abs(np.corrcoef(values, other)[0, 1]) < 0.03


def test_assignment_is_stable_across_processes():
    units = [f"user-{i}" for i in range(50)]
    alloc = Allocator(ARMS[:3], FixedSplit([1, 2, 3]), salt="exp-7")
    here = [alloc.choose(unit=unit).arm for unit in units]
    code = (
        "import json, sys; from splitlab.allocator import Allocator; "
        "from splitlab.bandits import FixedSplit; "
        "a = Allocator(['arm0', 'arm1', 'arm2'], FixedSplit([1, 2, 3]), salt='exp-7'); "
        "print(json.dumps([a.choose(unit=u).arm for u in json.loads(sys.argv[1])]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(units)],
        capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )  # fmt: skip
    assert json.loads(result.stdout) == here


def test_same_unit_same_arm_while_probabilities_are_unchanged():
    alloc = Allocator(ARMS[:5], FixedSplit([1, 1, 1, 1, 1]), salt="s")
    first = {f"u{i}": alloc.choose(unit=f"u{i}").arm for i in range(500)}
    again = {f"u{i}": alloc.choose(unit=f"u{i}").arm for i in range(500)}
    assert first == again


def test_ramping_a_fixed_split_keeps_treated_units_treated():
    alloc = Allocator(["control", "treatment"], FixedSplit([0.9, 0.1]), salt="ramp")
    units = [f"user-{i}" for i in range(20_000)]
    before = {unit for unit in units if alloc.choose(unit=unit).arm == "treatment"}
    alloc.set_weights([0.8, 0.2])
    after = {unit for unit in units if alloc.choose(unit=unit).arm == "treatment"}
    assert before <= after
    assert abs(len(after) / len(units) - 0.2) <= binomial_tolerance(0.2, len(units))
    # ramping down moves units only back to control
    alloc.set_weights([0.95, 0.05])
    down = {unit for unit in units if alloc.choose(unit=unit).arm == "treatment"}
    assert down <= before


def test_sticky_units_keep_their_first_arm_after_weights_change():
    alloc = Allocator(["control", "treatment"], FixedSplit([0.5, 0.5]), salt="s", sticky=True)
    units = [f"u{i}" for i in range(2000)]
    first = {unit: alloc.choose(unit=unit) for unit in units}
    alloc.set_weights([0.05, 0.95])
    for unit in units:
        again = alloc.choose(unit=unit)
        assert again.arm == first[unit].arm and again.sticky
        assert again.propensity == first[unit].propensity
    plain = Allocator(["control", "treatment"], FixedSplit([0.05, 0.95]), salt="s")
    moved = sum(plain.choose(unit=unit).arm != first[unit].arm for unit in units)
    assert moved > 0  # without stickiness some units would have switched


def test_sticky_store_is_bounded_and_pluggable():
    class DictStore:
        def __init__(self):
            self.items = {}

        def get(self, unit):
            return self.items.get(unit)

        def set(self, unit, value):
            self.items[unit] = value

    store = DictStore()
    alloc = Allocator(["a", "b"], FixedSplit([1, 1]), sticky=True, sticky_store=store)
    decision = alloc.choose(unit="u1")
    assert store.items["u1"] == (decision.arm, decision.propensity)
    bounded = Allocator(["a", "b"], FixedSplit([1, 1]), sticky=True, sticky_capacity=10)
    for i in range(100):
        bounded.choose(unit=f"u{i}")
    assert len(bounded._sticky_store) == 10


# ---------------------------------------------------------------------- rewards by id


def test_update_by_id_by_decision_and_by_arm():
    alloc = Allocator(["a", "b"], EpsilonGreedy(epsilon=0.5), seed=0)
    first, second = alloc.choose(), alloc.choose()
    assert alloc.update(first.id, 1.0) and alloc.update(second, 0.0)
    assert alloc.update(arm="b", reward=1.0)
    table = alloc.stats()
    assert table["rewards"].sum() == 3 and table["reward_sum"].sum() == 2.0
    counts = alloc.policy.arrays["counts"][0]
    assert counts.sum() == 3 and counts[1] == 1 + (first.arm == "b") + (second.arm == "b")


def test_duplicate_rewards_are_ignored_and_counted():
    alloc = Allocator(["a", "b"], ThompsonSampling(), seed=0)
    decision = alloc.choose()
    assert alloc.update(decision, 1.0) is True
    assert alloc.update(decision, 1.0) is False and alloc.update(decision.id, 0.0) is False
    assert alloc.counters()["duplicates"] == 2
    assert alloc.policy.arrays["alpha"][0].sum() == 3.0  # prior 1 + 1 + one reward
    small = Allocator(["a", "b"], ThompsonSampling(), seed=0, dedupe_capacity=3)
    decisions = [small.choose() for _ in range(5)]
    for decision in decisions:
        small.update(decision, 1.0)
    assert small.update(decisions[-1], 1.0) is False
    with pytest.raises(InvalidArgumentError, match="no longer pending"):
        small.update(decisions[0], 1.0)  # remembered ids are bounded


def test_delayed_rewards_in_any_order():
    alloc = Allocator(ARMS[:3], EpsilonGreedy(), seed=2)
    decisions = [alloc.choose() for _ in range(300)]
    for decision in reversed(decisions):
        alloc.update(decision, 1.0)
    per_arm = np.bincount([d.arm_index for d in decisions], minlength=3)
    np.testing.assert_array_equal(alloc.policy.arrays["counts"][0], per_arm)
    np.testing.assert_array_equal(alloc.stats()["rewards"].to_numpy(), per_arm)


def test_exp3_weights_delayed_rewards_by_the_logged_propensity():
    alloc = Allocator(ARMS[:3], sl.bandits.EXP3(gamma=0.3), seed=0)
    rng = np.random.default_rng(0)
    expected = np.zeros(3)
    for _ in range(20):
        batch = [alloc.choose() for _ in range(10)]  # rewards arrive after 10 more decisions
        for decision in batch:
            reward = float(rng.random() < 0.5)
            alloc.update(decision, reward)
            expected[decision.arm_index] += reward / decision.propensity
    np.testing.assert_allclose(
        alloc.policy.arrays["estimated_reward_sums"][0], expected, rtol=1e-12
    )


def test_unknown_and_expired_ids_give_clear_errors():
    clock = FakeClock()
    alloc = Allocator(["a", "b"], attribution_window=60, clock=clock, seed=0)
    with pytest.raises(InvalidArgumentError, match="unknown decision id") as error:
        alloc.update("nope-1", 1.0)
    assert error.value.argument == "decision"
    decision = alloc.choose()
    clock.now += 61
    with pytest.raises(InvalidArgumentError, match="expired"):
        alloc.update(decision, 1.0)
    with pytest.raises(InvalidArgumentError, match="no longer pending"):
        alloc.update(decision, 1.0)
    assert alloc.counters()["expired"] == 1
    assert alloc.policy.arrays["alpha"][0].sum() == 2.0  # nothing was added


def test_pending_decisions_are_bounded():
    clock = FakeClock()
    alloc = Allocator(["a", "b"], max_pending=100, attribution_window=10, clock=clock, seed=0)
    decisions = [alloc.choose() for _ in range(150)]
    assert alloc.counters()["pending"] == 100 and alloc.counters()["evicted"] == 50
    with pytest.raises(InvalidArgumentError, match="no longer pending"):
        alloc.update(decisions[0], 1.0)
    assert alloc.update(decisions[-1], 1.0)


def test_expired_decisions_are_swept_from_memory():
    clock = FakeClock()
    alloc = Allocator(["a", "b"], attribution_window=10, clock=clock, seed=0)
    for _ in range(100):
        alloc.choose()
    clock.now += 11
    for _ in range(300):  # a sweep every few hundred decisions drops the expired ones
        alloc.choose()
    assert alloc.counters()["expired"] == 100 and alloc.counters()["pending"] == 300


def test_bad_rewards_change_nothing():
    alloc = Allocator(["a", "b"], ThompsonSampling(), seed=0)
    decision = alloc.choose()
    for bad in (2.0, float("nan"), "x"):
        with pytest.raises(InvalidArgumentError) as error:
            alloc.update(decision, bad)
        assert error.value.argument == "reward"
    assert alloc.counters()["pending"] == 1
    assert alloc.update(decision, 1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 19), st.sampled_from([0.0, 0.25, 1.0])), min_size=1, max_size=80
    )
)
def test_rewards_are_idempotent(events):
    alloc = Allocator(ARMS[:3], ThompsonSampling(), seed=5, mode="online")
    decisions = [alloc.choose() for _ in range(20)]
    applied: dict[int, float] = {}
    for position, reward in events:
        accepted = alloc.update(decisions[position], reward)
        assert accepted == (position not in applied)
        applied.setdefault(position, reward)
    alpha = np.ones(3)
    beta = np.ones(3)
    for position, reward in applied.items():
        alpha[decisions[position].arm_index] += reward
        beta[decisions[position].arm_index] += 1 - reward
    np.testing.assert_allclose(alloc.policy.arrays["alpha"][0], alpha, rtol=1e-14)
    np.testing.assert_allclose(alloc.policy.arrays["beta"][0], beta, rtol=1e-14)
    assert alloc.counters()["duplicates"] == len(events) - len(applied)


# ---------------------------------------------------------------------- threads


def test_many_threads_lose_no_update():
    threads, pairs = 16, 10_000
    alloc = Allocator(ARMS, ThompsonSampling(), seed=0, refresh_every=5000)
    errors = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for step in range(pairs):
                unit = f"t{seed}-{step}" if step % 2 else None
                decision = alloc.choose(unit=unit)
                alloc.update(decision.id, float(rng.random() < 0.3))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not errors
    total = threads * pairs
    table = alloc.stats()
    assert table["decisions"].sum() == total and table["rewards"].sum() == total
    state = alloc.policy.arrays
    assert state["alpha"][0].sum() + state["beta"][0].sum() == total + 2 * len(ARMS)
    np.testing.assert_allclose(state["alpha"][0] - 1, table["reward_sum"], rtol=1e-12)
    assert alloc.counters()["pending"] == 0


# ---------------------------------------------------------------------- serving modes


def test_periodic_mode_serves_frozen_weights_until_refresh():
    clock = FakeClock()
    alloc = Allocator(ARMS[:3], ThompsonSampling(), seed=0, refresh_every=50, clock=clock)
    served = alloc.choose().probabilities
    for _ in range(49):
        alloc.update(arm="arm2", reward=1.0)
    assert alloc.choose().probabilities is served  # same weights object: no recomputation
    alloc.update(arm="arm2", reward=1.0)
    refreshed = alloc.choose().probabilities
    np.testing.assert_allclose(refreshed, alloc.policy.probabilities(), rtol=1e-12)
    assert refreshed[2] > 0.9
    timed = Allocator(ARMS[:3], ThompsonSampling(), refresh_seconds=60, clock=clock, seed=0)
    first = timed.choose()
    timed.update(arm="arm0", reward=1.0)
    clock.now += 61
    assert timed.choose().policy_version > first.policy_version


def test_online_mode_serves_the_current_policy():
    alloc = Allocator(ARMS[:3], EpsilonGreedy(epsilon=0.2), seed=0)
    bernoulli_rewards(alloc, 300, [0.1, 0.5, 0.2])
    np.testing.assert_allclose(alloc.choose().probabilities, alloc.policy.probabilities())


def test_burn_in_is_uniform_until_every_arm_has_its_units():
    alloc = Allocator(ARMS[:3], ThompsonSampling(), seed=0, burn_in=50, refresh_every=10)
    for _ in range(20):
        alloc.update(arm="arm0", reward=1.0)
    decisions = []
    while min(alloc.stats()["decisions"]) < 50:
        decisions.append(alloc.choose())
    assert all(np.allclose(d.probabilities, 1 / 3) for d in decisions)
    after = alloc.choose().probabilities
    np.testing.assert_allclose(after, alloc.policy.probabilities(), rtol=1e-12)
    assert after[0] > 0.8


def test_weight_floor_mixes_with_uniform():
    alloc = Allocator(ARMS[:4], ThompsonSampling(), seed=0, min_weight=0.05, refresh_every=1)
    for _ in range(200):
        alloc.update(arm="arm1", reward=1.0)
    raw = alloc.policy.probabilities()
    served = alloc.choose().probabilities
    np.testing.assert_allclose(served, 0.05 + (1 - 4 * 0.05) * raw, rtol=1e-12)
    assert served.min() >= 0.05 - 1e-15 and served.sum() == pytest.approx(1.0)


def test_winner_threshold_sends_all_traffic_to_the_winner():
    alloc = Allocator(["a", "b", "c"], ThompsonSampling(), winner_threshold=0.95, refresh_every=100)
    rng = np.random.default_rng(0)
    for _ in range(100):
        for arm, rate in zip("abc", (0.05, 0.3, 0.05), strict=True):
            alloc.update(arm=arm, reward=float(rng.random() < rate))
    decision = alloc.choose()
    assert decision.arm == "b" and decision.propensity == 1.0
    with pytest.raises(InvalidArgumentError, match="Bayesian") as error:
        Allocator(["a", "b"], EpsilonGreedy(), winner_threshold=0.95)
    assert error.value.argument == "winner_threshold"
    assert Allocator(["a", "b"], TopTwoThompson(), winner_threshold=0.9).mode == "periodic"


def test_contextual_policy_is_served_with_its_context():
    rng = np.random.default_rng(0)
    alloc = Allocator(ARMS[:3], LinUCB(alpha=0.5), n_features=4, seed=0)
    theta = rng.normal(size=(3, 4))
    for _ in range(300):
        context = rng.normal(size=4)
        decision = alloc.choose(context=context)
        np.testing.assert_allclose(
            decision.probabilities, alloc.policy.probabilities(context), rtol=1e-12
        )
        alloc.update(decision, float(theta[decision.arm_index] @ context))
    assert alloc.policy.arrays["updates"][0].sum() == 300
    with pytest.raises(InvalidArgumentError) as error:
        alloc.choose(context=[1.0, 2.0])
    assert error.value.argument == "context"


# ---------------------------------------------------------------------- persistence


def _exercise(alloc: Allocator, steps: int = 400, contextual: bool = False) -> list[Decision]:
    rng = np.random.default_rng(1)
    pending = []
    for step in range(steps):
        context = rng.normal(size=3) if contextual else None
        decision = alloc.choose(context=context)
        if step % 3:
            alloc.update(decision, float(rng.random() < 0.4))
        else:
            pending.append(decision)
    return pending


@pytest.mark.parametrize(
    "policy, options",
    [
        (ThompsonSampling(), {"refresh_every": 37}),
        (EpsilonGreedy(epsilon=0.3), {}),
        (GaussianThompson(), {"mode": "online"}),
        (LinUCB(alpha=0.3), {"n_features": 3}),
        (FixedSplit([1, 2, 3]), {"sticky": True}),
    ],
    ids=["thompson-periodic", "epsilon-online", "gaussian-online", "linucb", "fixed-sticky"],
)
def test_restore_makes_the_same_next_decisions(policy, options):
    alloc = Allocator(ARMS[:3], policy, seed=11, salt="p", **options)
    contextual = policy.contextual
    pending = _exercise(alloc, contextual=contextual)
    restored = Allocator.restore(alloc.snapshot())
    rng = np.random.default_rng(9)
    for step in range(200):
        context = rng.normal(size=3) if contextual else None
        unit = f"u{step % 20}" if step % 4 == 0 else None
        ours, theirs = alloc.choose(unit, context), restored.choose(unit, context)
        assert (ours.arm, ours.propensity, ours.policy_version) == (
            theirs.arm, theirs.propensity, theirs.policy_version,
        )  # fmt: skip
        np.testing.assert_array_equal(ours.probabilities, theirs.probabilities)
        reward = float(rng.random() < 0.5)
        alloc.update(ours, reward)
        restored.update(theirs, reward)
        assert ours.id != theirs.id
    for decision in pending:  # decisions pending at the snapshot keep accepting rewards
        assert restored.update(decision.id, 1.0)
        alloc.update(decision.id, 1.0)
    for name, array in alloc.policy.arrays.items():
        np.testing.assert_allclose(restored.policy.arrays[name], array, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(restored.stats(), alloc.stats())


def test_snapshot_is_a_json_header_plus_arrays_not_pickle():
    alloc = Allocator(["a", "b"], ThompsonSampling(), seed=0, salt="exp")
    _exercise(alloc, 50)
    blob = alloc.snapshot()
    magic = b"SPLITLAB-ALLOCATOR\n"
    assert blob.startswith(magic) and b"pickle" not in blob
    (length,) = struct.unpack("<Q", blob[len(magic) : len(magic) + 8])
    header = json.loads(blob[len(magic) + 8 : len(magic) + 8 + length])
    assert header["format"] == 2 and header["kind"] == "snapshot"
    assert header["arms"] == ["a", "b"] and header["policy"] == "ThompsonSampling"
    assert header["splitlab"] == sl.__version__
    offset = header["arrays"]["policy.alpha"]["offset"]
    start = len(magic) + 8 + length + offset
    alpha = np.frombuffer(blob[start : start + 16], dtype="<f8")
    np.testing.assert_array_equal(alpha, alloc.policy.arrays["alpha"][0])


def _with_format(blob: bytes, version: int) -> bytes:
    """The same snapshot re-framed with another format number (length and CRC-32 redone)."""
    magic = b"SPLITLAB-ALLOCATOR\n"
    (length,) = struct.unpack("<Q", blob[len(magic) : len(magic) + 8])
    start = len(magic) + 8
    header = json.loads(blob[start : start + length])
    header["format"] = version
    text = json.dumps(header).encode()
    body = magic + struct.pack("<Q", len(text)) + text + blob[start + length : -4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_corrupt_truncated_and_unknown_snapshots_are_rejected():
    alloc = Allocator(["a", "b"], ThompsonSampling(), seed=0)
    _exercise(alloc, 30)
    blob = alloc.snapshot()
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    cases = {
        "corrupt": bytes(flipped),
        "truncated": blob[: len(blob) - 100],
        "not a splitlab": b"PK\x03\x04" + blob[4:],
        "format 99": _with_format(blob, 99),
        "format 1": _with_format(blob, 1),
        "is a delta": alloc.delta(),
    }
    assert Allocator.restore(_with_format(blob, 2)).stats().equals(alloc.stats())
    for message, bad in cases.items():
        with pytest.raises(InvalidArgumentError, match=message) as error:
            Allocator.restore(bad)
        assert error.value.argument == "blob"
    with pytest.raises(InvalidArgumentError, match="must be bytes"):
        Allocator.restore("not bytes")


def test_save_is_atomic(tmp_path, monkeypatch):
    alloc = Allocator(["a", "b"], ThompsonSampling(), seed=0)
    _exercise(alloc, 30)
    path = tmp_path / "alloc.snap"
    alloc.save(path)
    good = path.read_bytes()
    assert Allocator.load(path).stats()["rewards"].sum() == alloc.stats()["rewards"].sum()
    _exercise(alloc, 30)

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr("splitlab.allocator.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        alloc.save(path)
    assert path.read_bytes() == good  # the old snapshot is intact
    assert [p.name for p in tmp_path.iterdir()] == ["alloc.snap"]  # no temporary left
    with pytest.raises(InvalidArgumentError) as error:
        alloc.save(tmp_path / "missing" / "x.snap")
    assert error.value.argument == "path"


# ---------------------------------------------------------------------- replicas


def _assert_same_state(left: Allocator, right: Allocator) -> None:
    for name, array in left.policy.arrays.items():
        np.testing.assert_allclose(right.policy.arrays[name], array, rtol=1e-10, atol=1e-10)
    pd.testing.assert_frame_equal(
        left.stats().drop(columns="probability"), right.stats().drop(columns="probability")
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: ThompsonSampling(),
        lambda: EpsilonGreedy(epsilon=0.1),
        lambda: GaussianThompson(),
        lambda: LinUCB(alpha=1.0),
    ],
    ids=["thompson", "epsilon", "gaussian", "linucb"],
)
def test_replicas_exchanging_deltas_converge_to_one_allocator(make):
    rng = np.random.default_rng(0)
    replicas = [Allocator(ARMS[:4], make(), seed=k, n_features=3) for k in range(3)]
    single = Allocator(ARMS[:4], make(), seed=99, n_features=3)
    contextual = single.policy.contextual
    for _round in range(3):
        for replica in replicas:
            for _ in range(int(rng.integers(50, 150))):
                context = rng.normal(size=3) if contextual else None
                decision = replica.choose(context=context)
                reward = float(rng.random() < 0.3 + 0.1 * decision.arm_index)
                replica.update(decision, reward)
                single.update(arm=decision.arm, reward=reward, context=context)
                single._decisions[decision.arm_index] += 1  # the single saw the same decisions
        deltas = [replica.delta() for replica in replicas]
        for k, replica in enumerate(replicas):
            for j, delta in enumerate(deltas):
                assert replica.merge(delta) is (j != k)
    for replica in replicas:
        _assert_same_state(single, replica)
    assert not replicas[0].merge(deltas[1])  # merging a delta twice changes nothing
    _assert_same_state(single, replicas[0])


def test_merge_rejects_foreign_deltas():
    one = Allocator(["a", "b"], ThompsonSampling())
    other = Allocator(["a", "c"], ThompsonSampling())
    with pytest.raises(InvalidArgumentError, match="arms") as error:
        one.merge(other.delta())
    assert error.value.argument == "delta"
    with pytest.raises(InvalidArgumentError, match="hyperparameters"):
        one.merge(Allocator(["a", "b"], ThompsonSampling(prior=(2, 2))).delta())
    with pytest.raises(InvalidArgumentError, match="discounted"):
        Allocator(["a", "b"], ThompsonSampling(discount=0.9)).delta()
    with pytest.raises(InvalidArgumentError, match="is a snapshot"):
        one.merge(one.snapshot())


# ---------------------------------------------------------------------- decision log


def test_flush_writes_the_decision_log_schema(tmp_path):
    clock = FakeClock()
    alloc = Allocator(ARMS[:3], FixedSplit([1, 1, 2]), seed=0, salt="exp-9", clock=clock)
    decisions = []
    for step in range(30):
        clock.now += 1.5
        decisions.append(alloc.choose(unit=f"u{step}" if step % 2 else None))
    for decision in decisions[:20]:
        alloc.update(decision, 2.5)
    path = alloc.flush(tmp_path / "log.parquet")
    frame = pd.read_parquet(path)
    assert len(frame) == 20 and alloc.counters()["log_rows"] == 10  # pending rows stay
    assert list(frame.columns) == [
        "decision_id", "timestamp", "unit", "experiment", "arm", "action", "propensity",
        "prob_0", "prob_1", "prob_2", "policy_version", "period", "reward",
        "reward_timestamp", "sticky",
    ]  # fmt: skip
    first = decisions[0]
    row = frame.iloc[0]
    assert row["decision_id"] == first.id and row["arm"] == first.arm
    assert row["action"] == first.arm_index and row["propensity"] == first.propensity
    assert row["timestamp"] == pd.Timestamp(first.timestamp, unit="s", tz="UTC")
    np.testing.assert_allclose(frame[["prob_0", "prob_1", "prob_2"]], [[0.25, 0.25, 0.5]] * 20)
    assert (frame["reward"] == 2.5).all() and (frame["experiment"] == "exp-9").all()
    assert frame["unit"].isna().sum() == 10
    rest = alloc.flush(tmp_path / "rest.parquet", include_pending=True)
    assert pd.read_parquet(rest)["reward"].isna().all() and alloc.counters()["log_rows"] == 0


def test_flush_to_a_directory_makes_a_dataset_the_analyzer_reads(tmp_path):
    alloc = Allocator(["control", "treatment"], FixedSplit([1, 1]), seed=0, salt="exp-1")
    bernoulli_rewards(alloc, 400, [0.2, 0.3], unit="user")
    first = alloc.flush(tmp_path)
    bernoulli_rewards(alloc, 400, [0.2, 0.3], seed=1, unit="visitor")
    second = alloc.flush(tmp_path)
    assert first != second and alloc.flush(tmp_path) is None
    results = sl.Analyzer(
        str(tmp_path / "*.parquet"), experiment="experiment", variant="arm", control="control"
    ).analyze([sl.Metric("reward", kind="proportion")])
    stats_table = alloc.stats()
    assert results["n_control"].iloc[0] == stats_table.loc["control", "decisions"]
    assert results["mean_variant"].iloc[0] == pytest.approx(
        stats_table.loc["treatment", "mean_reward"], rel=1e-12
    )


def test_contextual_log_has_the_features(tmp_path):
    alloc = Allocator(["a", "b"], LinUCB(), n_features=2, seed=0)
    decision = alloc.choose(context=[0.5, -1.0])
    alloc.update(decision, 1.0)
    frame = pd.read_parquet(alloc.flush(tmp_path / "ctx.parquet"))
    assert frame[["x_0", "x_1"]].to_numpy().tolist() == [[0.5, -1.0]]


def test_failed_flush_loses_nothing(tmp_path, monkeypatch):
    alloc = Allocator(["a", "b"], FixedSplit([1, 1]), seed=0)
    bernoulli_rewards(alloc, 10, [0.5, 0.5])

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr("splitlab.allocator.os.replace", failing_replace)
    with pytest.raises(OSError):
        alloc.flush(tmp_path / "log.parquet")
    monkeypatch.undo()
    assert len(pd.read_parquet(alloc.flush(tmp_path / "log.parquet"))) == 10


def test_log_capacity_drops_oldest_rows_with_a_warning():
    alloc = Allocator(["a", "b"], FixedSplit([1, 1]), seed=0, log_capacity=5)
    with pytest.warns(sl.allocator.DecisionLogOverflowWarning):
        for _ in range(8):
            alloc.choose()
    assert alloc.counters()["log_rows"] == 5 and alloc.counters()["log_dropped"] == 3


# ---------------------------------------------------------------------- SRM guardrail


def test_srm_equals_scipy_chisquare_for_constant_weights():
    alloc = Allocator(ARMS[:3], FixedSplit([0.2, 0.3, 0.5]), seed=4)
    for _ in range(5000):
        alloc.choose()
    result = alloc.srm()
    counts = alloc.stats()["decisions"].to_numpy()
    expected = stats.chisquare(counts, np.array([0.2, 0.3, 0.5]) * counts.sum())
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9) and result.df == 2


def test_srm_sums_periods_with_their_own_weights():
    alloc = Allocator(["a", "b"], FixedSplit([0.5, 0.5]), seed=8)
    first = np.bincount([alloc.choose().arm_index for _ in range(1000)], minlength=2)
    alloc.set_weights([0.2, 0.8])
    second = np.bincount([alloc.choose().arm_index for _ in range(3000)], minlength=2)
    result = alloc.srm()
    statistic = (
        stats.chisquare(first, [500, 500]).statistic
        + stats.chisquare(second, [600, 2400]).statistic
    )
    assert result.statistic == pytest.approx(statistic, rel=1e-10) and result.df == 2
    assert list(result.periods["decisions"]) == [1000, 3000]


def test_srm_detects_served_counts_that_do_not_match_the_weights():
    alloc = Allocator(["a", "b"], FixedSplit([0.5, 0.5]), seed=0)
    for _ in range(2000):
        alloc.choose()
    for _ in range(500):  # traffic that bypassed the draw (a bug in serving code)
        alloc._srm_counts[0] += 1
        alloc._table_served += 1
    assert alloc.srm().p_value < 1e-6


@pytest.mark.validity
def test_srm_type_one_error_under_periodic_thompson():
    # the SRM p-value of correctly served traffic is uniform: its type-I error at 0.05
    alpha, replications = 0.05, 400
    rejections = 0
    for seed in range(replications):
        alloc = Allocator(["a", "b", "c"], ThompsonSampling(), seed=seed, refresh_every=50)
        bernoulli_rewards(alloc, 300, [0.1, 0.15, 0.2], seed=seed)
        rejections += alloc.srm().p_value < alpha
    rate = rejections / replications
    assert abs(rate - alpha) <= binomial_tolerance(alpha, replications)


# ---------------------------------------------------------------------- bad input


def test_bad_constructor_arguments_name_the_argument():
    cases = [
        ({"arms": "ab"}, "arms"),
        ({"arms": []}, "arms"),
        ({"arms": ["a", "a"]}, "arms"),
        ({"arms": ["a", ""]}, "arms"),
        ({"policy": "thompson"}, "policy"),
        ({"policy": FixedSplit([1, 1, 1])}, "policy"),
        ({"mode": "batch"}, "mode"),
        ({"refresh_every": 0}, "refresh_every"),
        ({"refresh_seconds": -1}, "refresh_seconds"),
        ({"burn_in": -1}, "burn_in"),
        ({"min_weight": 0.6}, "min_weight"),
        ({"winner_threshold": 1.5}, "winner_threshold"),
        ({"attribution_window": 0}, "attribution_window"),
        ({"max_pending": 0}, "max_pending"),
        ({"dedupe_capacity": 0}, "dedupe_capacity"),
        ({"clock": 3}, "clock"),
    ]
    for options, argument in cases:
        arguments = {"arms": ["a", "b"], **options}
        with pytest.raises(InvalidArgumentError) as error:
            Allocator(**arguments)
        assert error.value.argument == argument, options


def test_bad_calls_name_the_argument():
    alloc = Allocator(["a", "b"], FixedSplit([1, 1]), seed=0)
    decision = alloc.choose()
    cases = [
        (lambda: alloc.choose(available=["c"]), "available"),
        (lambda: alloc.choose(context=[1.0]), "context"),
        (lambda: alloc.update(decision), "reward"),
        (lambda: alloc.update(reward=1.0), "decision"),
        (lambda: alloc.update(arm="z", reward=1.0), "arm"),
        (lambda: alloc.update(decision, 1.0, arm="a"), "arm"),
        (lambda: alloc.update(42, 1.0), "decision"),
        (lambda: alloc.set_weights([1, 2, 3]), "weights"),
        (lambda: Allocator(["a"], ThompsonSampling()).set_weights([1]), "weights"),
        (lambda: Allocator(["a", "b"], log=False).flush("x.parquet"), "path"),
    ]
    for call, argument in cases:
        with pytest.raises(InvalidArgumentError) as error:
            call()
        assert error.value.argument == argument

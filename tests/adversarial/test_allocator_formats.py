"""Snapshots of format 1, written by splitlab before per-origin replica deltas, still load.

The fixtures in ``tests/data/allocator_format1/`` were written by the old code from the
scripted decisions and rewards in ``tests/data/make_allocator_format1.py`` (which says how).
Every check here is a closed form of that script — Beta posteriors, per-arm count, mean and
variance, LinUCB's A = λI + Σxxᵀ and b = Σrx, decision counts, SRM periods, generator draws —
never a number the old code printed. Corrupted format-1 fields (CRC recomputed) are refused
as ``InvalidArgumentError("blob")``.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from framing import leaves, pack, set_leaf, unpack

from splitlab.allocator import Allocator
from splitlab.bandits import EpsilonGreedy, GaussianThompson, ThompsonSampling
from splitlab.errors import InvalidArgumentError

DATA = Path(__file__).resolve().parents[1] / "data"
# the scripted decisions and rewards: constants only (the script writes files when run)
_spec = importlib.util.spec_from_file_location(
    "make_allocator_format1", DATA / "make_allocator_format1.py"
)
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)

NOW = script.START + 1000.0  # well inside the pending decisions' attribution window


def fixture_path(key: str) -> Path:
    return DATA / "allocator_format1" / script.FILES[key]


def load(key: str, now: float = NOW) -> Allocator:
    return Allocator.load(fixture_path(key), clock=lambda: now)


def raw(key: str) -> tuple[dict, dict[str, np.ndarray]]:
    return unpack(fixture_path(key).read_bytes())


def pending_ids(alloc: Allocator) -> list[str]:
    return unpack(alloc.snapshot())[0]["state"]["pending_ids"]


def rewarded(steps) -> list[tuple[str, float]]:
    return [(arm, reward) for _, arm, reward in steps if reward is not None]


def refreshed(pairs: list, settings: dict) -> list:
    """The rewards a periodic allocator's served weights had seen at its last refresh (one
    every ``refresh_every`` rewards)."""
    every = settings["refresh_every"]
    return pairs[: len(pairs) // every * every]


def per_arm(arms: list[str], pairs) -> dict[str, list]:
    out: dict[str, list] = {arm: [] for arm in arms}
    for arm, value in pairs:
        out[arm].append(value)
    return out


def draws_without_unit(steps) -> int:
    return sum(unit is None for unit, _, _ in steps)


def rng_after(seed: int, draws: int) -> dict:
    rng = np.random.default_rng(seed)
    rng.random(draws)
    return rng.bit_generator.state


def exact_moments(values: list[float]) -> tuple[int, Fraction, Fraction | None]:
    """Count, mean and sample variance (ddof = 1) in exact rational arithmetic."""
    exact = [Fraction(value) for value in values]
    n = len(exact)
    mean = sum(exact) / n
    variance = sum((value - mean) ** 2 for value in exact) / (n - 1) if n > 1 else None
    return n, mean, variance


# ---------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("key", list(script.FILES))
def test_the_fixture_is_format_1_and_loads_with_a_fresh_origin(key):
    header, _ = raw(key)
    assert header["format"] == 1 and "delta_sequence" in header["state"]
    first, second = load(key), load(key)
    assert first.origin != second.origin
    assert first.origin not in header["state"]["issued"]
    assert len(first.origin) == 16  # this version's origins, not format 1's 8-digit epochs


@pytest.mark.parametrize("key", list(script.FILES))
def test_a_resaved_copy_is_format_2_and_equal(key, tmp_path):
    alloc = load(key)
    path = alloc.save(tmp_path / "again.snap")
    saved, saved_arrays = unpack(path.read_bytes())
    assert saved["format"] == 2
    assert {"origin", "events", "seen"} <= set(saved["state"])
    assert not {"delta_sequence", "merged"} & set(saved["state"])
    again = Allocator.load(path, clock=lambda: NOW)
    header, arrays = unpack(again.snapshot())
    assert header["format"] == 2
    assert arrays.keys() == saved_arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(array, saved_arrays[name], err_msg=name)
    issued, saved_issued = header["state"].pop("issued"), saved["state"].pop("issued")
    assert issued == {**saved_issued, again.origin: 0}
    assert header["state"].pop("origin") == again.origin
    assert saved["state"].pop("origin") == alloc.origin
    assert header == saved
    assert again.stats().equals(alloc.stats()) and again.counters() == alloc.counters()
    for step in range(5):  # same generator, same weights: the same next decisions
        context = [1.0, step / 5, -step / 5] if alloc.policy.contextual else None
        assert again.choose(context=context).arm == alloc.choose(context=context).arm


# ---------------------------------------------------------------------- Thompson, periodic


def test_thompson_posteriors_are_the_prior_plus_successes_and_failures():
    arms, (prior_alpha, prior_beta) = script.THOMPSON["arms"], script.THOMPSON["prior"]
    rewards = per_arm(arms, rewarded(script.THOMPSON_STEPS))
    alloc = load("thompson")
    successes = np.array([sum(rewards[arm]) for arm in arms])
    failures = np.array([len(rewards[arm]) - sum(rewards[arm]) for arm in arms])
    np.testing.assert_array_equal(alloc.policy.arrays["alpha"][0], prior_alpha + successes)
    np.testing.assert_array_equal(alloc.policy.arrays["beta"][0], prior_beta + failures)
    stats = alloc.stats()
    decisions = Counter(arm for _, arm, _ in script.THOMPSON_STEPS)
    assert stats["decisions"].tolist() == [decisions[arm] for arm in arms]
    assert stats["rewards"].tolist() == [len(rewards[arm]) for arm in arms]
    assert stats["reward_sum"].tolist() == successes.tolist()
    # periodic: the served weights are the posterior at the last refresh
    fresh = ThompsonSampling(prior=script.THOMPSON["prior"], n_arms=len(arms))
    for arm, reward in refreshed(rewarded(script.THOMPSON_STEPS), script.THOMPSON):
        fresh.update(arms.index(arm), reward)
    np.testing.assert_allclose(stats["probability"], fresh.probabilities(), rtol=1e-9)


def test_thompson_counters_srm_periods_generator_and_sticky_units_are_kept():
    steps, every = script.THOMPSON_STEPS, script.THOMPSON["refresh_every"]
    arms = script.THOMPSON["arms"]
    alloc = load("thompson")
    n_rewards = len(rewarded(steps))
    counters = alloc.counters()
    assert counters["duplicates"] == script.THOMPSON_DUPLICATES
    assert counters["refreshes"] == n_rewards // every
    assert counters["pending"] == sum(reward is None for _, _, reward in steps)
    # a decision's period is the number of refreshes before it; a sticky repeat is no draw
    expected_periods: dict[int, Counter] = {}
    seen_units, rewards_before = set(), 0
    for unit, arm, reward in steps:
        if unit is None or unit not in seen_units:
            period = rewards_before // every
            expected_periods.setdefault(period, Counter())[arm] += 1
        seen_units.add(unit)
        rewards_before += reward is not None
    periods = alloc.srm().periods.set_index("period")
    assert sorted(periods.index) == sorted(expected_periods)
    for period, counts in expected_periods.items():
        assert [periods.loc[period, f"n_{arm}"] for arm in arms] == [counts[a] for a in arms]
        # every decision was forced onto one arm: its expected count is exactly that
        assert [periods.loc[period, f"expected_{arm}"] for arm in arms] == [counts[a] for a in arms]
    header, _ = unpack(alloc.snapshot())
    assert header["state"]["rng"] == rng_after(script.THOMPSON["seed"], draws_without_unit(steps))
    repeat = alloc.choose(unit="u2")  # u2's first arm, from the restored sticky store
    assert repeat.sticky and repeat.arm == "treatment"


def test_thompson_pending_decisions_take_their_rewards_and_duplicates_are_recognized():
    arms, steps = script.THOMPSON["arms"], script.THOMPSON_STEPS
    header, _ = raw("thompson")
    writer = list(header["state"]["issued"])[-1]
    alloc = load("thompson")
    alpha, beta = (alloc.policy.arrays[name][0].copy() for name in ("alpha", "beta"))
    pending_steps = [(index, arm) for index, (_, arm, r) in enumerate(steps) if r is None]
    ids = pending_ids(alloc)
    assert len(ids) == len(pending_steps)
    for decision_id, (index, arm) in zip(ids, pending_steps, strict=True):
        assert decision_id == f"{writer}-{index:x}"  # the old ids, counted from 0
        pending = alloc.pending_decision(decision_id)
        assert pending.arm == arm and pending.timestamp == script.START + index + 1
        assert pending.propensity == 1.0  # forced onto one arm
    for decision_id, (_, arm) in zip(ids, pending_steps, strict=True):
        assert alloc.update(decision_id, 1.0)
        alpha[arms.index(arm)] += 1.0
    np.testing.assert_array_equal(alloc.policy.arrays["alpha"][0], alpha)
    np.testing.assert_array_equal(alloc.policy.arrays["beta"][0], beta)
    assert alloc.counters()["pending"] == 0
    assert not alloc.update(f"{writer}-0", 1.0)  # rewarded before the snapshot
    assert alloc.counters()["duplicates"] == script.THOMPSON_DUPLICATES + 1


def test_pending_decisions_keep_their_timestamps():
    """Pending decisions expire by the time they were made, not the time they were loaded."""
    alloc = load("thompson", now=script.START + 2 * 86_400.0)
    decision_id = pending_ids(alloc)[0]
    with pytest.raises(InvalidArgumentError, match="expired") as error:
        alloc.update(decision_id, 1.0)
    assert error.value.argument == "decision"


# ---------------------------------------------------------------------- GaussianThompson


def _gaussian_rewards() -> dict[str, list[float]]:
    pairs = rewarded(script.GAUSSIAN_STEPS) + list(script.GAUSSIAN_ARM_REWARDS)
    return per_arm(script.GAUSSIAN["arms"], pairs)


def _assert_moments(policy: GaussianThompson, rewards: dict[str, list[float]]) -> None:
    counts, means, variances = policy.moments()
    for k, arm in enumerate(script.GAUSSIAN["arms"]):
        n, mean, variance = exact_moments(rewards[arm])
        assert counts[k] == n, arm
        assert means[k] == pytest.approx(float(mean), rel=1e-15, abs=0), arm
        if variance is None:
            assert math.isnan(variances[k]), arm
        else:
            assert variances[k] == pytest.approx(float(variance), rel=1e-12, abs=0), arm


def test_gaussian_thompson_sums_become_the_rewards_count_mean_and_variance():
    arms = script.GAUSSIAN["arms"]
    rewards = _gaussian_rewards()
    alloc = load("gaussian")
    _assert_moments(alloc.policy, rewards)
    stats = alloc.stats()
    decisions = Counter(arm for _, arm, _ in script.GAUSSIAN_STEPS)
    assert stats["decisions"].tolist() == [decisions[arm] for arm in arms]
    assert stats["rewards"].tolist() == [len(rewards[arm]) for arm in arms]
    assert stats["reward_sum"].tolist() == [sum(rewards[arm]) for arm in arms]
    # periodic: the served weights are the posterior at the last refresh
    in_order = rewarded(script.GAUSSIAN_STEPS) + list(script.GAUSSIAN_ARM_REWARDS)
    served = refreshed(in_order, script.GAUSSIAN)
    fresh = GaussianThompson(prior=script.GAUSSIAN["prior"], n_arms=len(arms))
    fresh.update_batch([arms.index(arm) for arm, _ in served], [reward for _, reward in served])
    np.testing.assert_allclose(stats["probability"], fresh.probabilities(), rtol=1e-9)


def test_gaussian_thompson_pending_decisions_update_the_moments():
    alloc = load("gaussian")
    rewards = _gaussian_rewards()
    late = {"b": 95.5, "c": 104.25}
    ids = pending_ids(alloc)
    assert [alloc.pending_decision(i).arm for i in ids] == [
        arm for _, arm, reward in script.GAUSSIAN_STEPS if reward is None
    ]
    for decision_id in ids:
        arm = alloc.pending_decision(decision_id).arm
        assert alloc.update(decision_id, late[arm])
        rewards[arm].append(late[arm])
    _assert_moments(alloc.policy, rewards)


# ---------------------------------------------------------------------- LinUCB


def _design(steps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A = λI + Σxxᵀ, b = Σrx and the update count per arm, in exact arithmetic."""
    arms, d, l2 = script.LINUCB["arms"], script.LINUCB["n_features"], script.LINUCB["l2"]
    design = [
        [[Fraction(l2) if i == j else Fraction(0) for j in range(d)] for i in range(d)]
        for _ in arms
    ]
    response = [[Fraction(0)] * d for _ in arms]
    updates = [0] * len(arms)
    for arm, context, reward in steps:
        k, x = arms.index(arm), [Fraction(value) for value in context]
        for i in range(d):
            response[k][i] += Fraction(reward) * x[i]
            for j in range(d):
                design[k][i][j] += x[i] * x[j]
        updates[k] += 1
    as_float = np.vectorize(float, otypes=[np.float64])
    return (
        as_float(np.array(design, dtype=object)),
        as_float(np.array(response, dtype=object)),
        (np.array(updates, dtype=np.float64)),
    )


def test_linucb_design_and_response_are_the_sums_over_the_scripted_contexts():
    steps = [step for step in script.LINUCB_STEPS if step[2] is not None]
    design, response, updates = _design(steps)
    alloc = load("linucb")
    np.testing.assert_array_equal(alloc.policy.arrays["A"][0], design)
    np.testing.assert_array_equal(alloc.policy.arrays["b"][0], response)
    np.testing.assert_array_equal(alloc.policy.arrays["updates"][0], updates)
    theta = np.stack([np.linalg.solve(design[k], response[k]) for k in range(len(design))])
    np.testing.assert_allclose(alloc.policy.arrays["theta"][0], theta, rtol=1e-12, atol=1e-14)
    decisions = Counter(arm for arm, _, _ in script.LINUCB_STEPS)
    arms = script.LINUCB["arms"]
    assert alloc.stats()["decisions"].tolist() == [decisions[arm] for arm in arms]
    header, _ = unpack(alloc.snapshot())
    assert header["state"]["rng"] == rng_after(script.LINUCB["seed"], len(script.LINUCB_STEPS))


def test_linucb_pending_decisions_keep_their_contexts_and_take_their_rewards():
    late_rewards = [0.5, -1.25]
    pending_steps = [step for step in script.LINUCB_STEPS if step[2] is None]
    alloc = load("linucb")
    ids = pending_ids(alloc)
    assert len(ids) == len(pending_steps) == len(late_rewards)
    completed = [step for step in script.LINUCB_STEPS if step[2] is not None]
    for decision_id, (arm, context, _), reward in zip(
        ids, pending_steps, late_rewards, strict=True
    ):
        pending = alloc.pending_decision(decision_id)
        assert pending.arm == arm
        np.testing.assert_array_equal(pending.context, context)
        assert alloc.update(decision_id, reward)
        completed.append((arm, context, reward))
    design, response, updates = _design(completed)
    np.testing.assert_array_equal(alloc.policy.arrays["A"][0], design)
    np.testing.assert_array_equal(alloc.policy.arrays["b"][0], response)
    np.testing.assert_array_equal(alloc.policy.arrays["updates"][0], updates)


# ---------------------------------------------------------------------- replicas


def _epsilon_replica(seed: int = 0) -> Allocator:
    settings = {k: v for k, v in script.EPSILON.items() if k != "epsilon"}
    return Allocator(policy=EpsilonGreedy(epsilon=script.EPSILON["epsilon"]), seed=seed, **settings)


def _tally(steps) -> tuple[list[int], list[int], list[float]]:
    arms = script.EPSILON["arms"]
    decisions = Counter(arm for _, arm, _ in steps)
    rewards = per_arm(arms, rewarded(steps))
    return (
        [decisions[arm] for arm in arms],
        [len(rewards[arm]) for arm in arms],
        [sum(rewards[arm]) for arm in arms],
    )


def _assert_tally(alloc: Allocator, steps) -> None:
    decisions, rewards, sums = _tally(steps)
    stats = alloc.stats()
    assert stats["decisions"].tolist() == decisions
    assert stats["rewards"].tolist() == rewards
    assert stats["reward_sum"].tolist() == sums
    np.testing.assert_array_equal(alloc.policy.arrays["counts"][0], rewards)
    np.testing.assert_array_equal(alloc.policy.arrays["reward_sums"][0], sums)


def test_epsilon_greedy_keeps_merged_and_own_statistics():
    everything = script.EPSILON_PEER_STEPS + script.EPSILON_SENT_STEPS
    everything += script.EPSILON_UNSENT_STEPS
    alloc = load("epsilon")
    _assert_tally(alloc, everything)
    assert alloc.counters()["merged_deltas"] == 1
    header, _ = unpack(alloc.snapshot())
    own = script.EPSILON_SENT_STEPS + script.EPSILON_UNSENT_STEPS
    assert header["state"]["rng"] == rng_after(script.EPSILON_SEED, draws_without_unit(own))


def test_only_the_unsent_part_of_a_format_1_replica_reaches_its_peers():
    """What format 1 had shipped (its delta) or merged (the peer's) is already with the
    other replicas; what it gathered after its last delta is shipped by the next one."""
    unsent = script.EPSILON_UNSENT_STEPS
    peer = _epsilon_replica()
    assert peer.merge(load("epsilon").delta())
    _assert_tally(peer, unsent)


def test_two_replicas_loaded_from_one_format_1_snapshot_ship_its_unsent_part_once():
    unsent = script.EPSILON_UNSENT_STEPS
    first, second = load("epsilon"), load("epsilon")
    peer = _epsilon_replica()
    assert peer.merge(first.delta())
    assert not peer.merge(second.delta())  # the same origin, nothing new
    _assert_tally(peer, unsent)
    later = ("late", "blue", 4.0)
    decision = second.choose(unit=later[0], available=[later[1]])
    assert second.update(decision, later[2])
    assert peer.merge(second.delta())
    _assert_tally(peer, [*unsent, later])


def test_a_format_1_delta_is_not_merged():
    source = _epsilon_replica(seed=1)
    source.update(source.choose(), 1.0)
    header, arrays = unpack(source.delta())
    header["format"] = 1
    receiver = _epsilon_replica(seed=2)
    with pytest.raises(InvalidArgumentError, match="reads delta format 2"):
        receiver.merge(pack(header, arrays))
    assert receiver.stats()["rewards"].sum() == 0


# ---------------------------------------------------------------------- corrupt format 1


HEADER_CORRUPTIONS = {
    "negative delta sequence": ("epsilon", ("state", "delta_sequence"), -1, "delta_sequence"),
    "merged delta repeated": (
        "epsilon",
        ("state", "merged"),
        [["an-origin", 1], ["an-origin", 1]],
        "state.merged",
    ),
    "merged deltas disagree with the counter": ("epsilon", ("state", "merged"), [], "merged"),
    "merged delta without a sequence": ("epsilon", ("state", "merged", 0), ["x"], "merged"),
    "no writer epoch": ("thompson", ("state", "issued"), {}, "state.issued"),
    "format 2 fields in a format 1 state": ("thompson", ("state", "seen"), [], "state"),
    "negative decisions": ("thompson", ("state", "decisions", 0), -1, "state.decisions"),
    "fractional rewards": ("gaussian", ("state", "rewards", 1), 2.5, "state.rewards"),
    "unknown GaussianThompson setting": (
        "gaussian",
        ("hyperparameters", "colour"),
        "red",
        "colour",
    ),
    "winner without a threshold": ("linucb", ("state", "winner"), 0, "state.winner"),
}


@pytest.mark.parametrize("case", list(HEADER_CORRUPTIONS), ids=list(HEADER_CORRUPTIONS))
def test_corrupt_format_1_header_fields_are_refused_as_blob(case):
    key, path, value, field = HEADER_CORRUPTIONS[case]
    header, arrays = raw(key)
    set_leaf(header, path, value)
    with pytest.raises(InvalidArgumentError, match=field) as error:
        Allocator.restore(pack(header, arrays))
    assert error.value.argument == "blob"
    assert "format 1 snapshot" in error.value.problem


ARRAY_CORRUPTIONS = {
    "sum of squares below the square of the sum": (
        "gaussian",
        "policy.reward_sums_sq",
        (0,),
        1.0,
        "below",
    ),
    "sum of squares no bounded rewards reach": (
        "gaussian",
        "policy.reward_sums_sq",
        (0,),
        1e300,
        "within",
    ),
    "negative served count": ("gaussian", "serving.counts", (1,), -1.0, "serving"),
    "sums for an arm without rewards": ("gaussian", "base.policy.reward_sums", (2,), 5.0, "base"),
    "base beyond the counters": ("epsilon", "base.decisions", (0,), 99.0, "state.decisions"),
    "fractional base rewards": ("epsilon", "base.rewards", (1,), 0.5, "base.rewards"),
    "negative Beta parameter": ("thompson", "serving.alpha", (0,), -1.0, "alpha"),
    "pending probabilities not summing to one": (
        "thompson",
        "pending.probabilities",
        (0, 0),
        0.5,
        "pending.probabilities",
    ),
    "NaN context": ("linucb", "pending.contexts", (0, 1), math.nan, "pending.contexts"),
    "indefinite design": ("linucb", "policy.A", (0, 0, 0), -50.0, "positive definite"),
}


@pytest.mark.parametrize("case", list(ARRAY_CORRUPTIONS), ids=list(ARRAY_CORRUPTIONS))
def test_corrupt_format_1_arrays_are_refused_as_blob(case):
    key, name, index, value, message = ARRAY_CORRUPTIONS[case]
    header, arrays = raw(key)
    arrays[name][index] = value
    with pytest.raises(InvalidArgumentError, match=message) as error:
        Allocator.restore(pack(header, arrays))
    assert error.value.argument == "blob"


def test_format_1_gaussian_thompson_arrays_of_format_2_are_refused():
    header, arrays = raw("gaussian")
    arrays["policy.means"] = arrays.pop("policy.reward_sums")
    with pytest.raises(InvalidArgumentError, match="reward_sums") as error:
        Allocator.restore(pack(header, arrays))
    assert error.value.argument == "blob"


BAD_VALUES = [None, -1, 0, 1.5, "x", True, [], {}, 10**30, math.nan]


@pytest.mark.parametrize("key", list(script.FILES))
def test_any_corrupted_format_1_field_raises_only_invalid_argument_blob(key):
    header, arrays = raw(key)
    outcomes = Counter()

    def attempt(mutated, changed):
        try:
            restored = Allocator.restore(pack(mutated, changed), clock=lambda: NOW)
        except InvalidArgumentError as error:
            assert error.argument == "blob", error
            outcomes["refused"] += 1
            return
        context = [1.0, 0.0, 0.0] if restored.policy.contextual else None
        restored.update(restored.choose(context=context), 0.0)  # accepted: then it works
        Allocator.restore(restored.snapshot())
        outcomes["accepted"] += 1

    for path in leaves(header):
        if path and path[0] != "splitlab":  # the writer's version string is not read
            for value in BAD_VALUES:
                mutated = copy.deepcopy(header)
                set_leaf(mutated, path, value)
                attempt(mutated, arrays)
    for name, array in arrays.items():
        for value in (math.nan, -1.0, 1e300):
            if array.size:
                changed = {**arrays, name: array.copy()}
                changed[name].flat[0] = value
                attempt(header, changed)
        attempt(header, {k: v for k, v in arrays.items() if k != name})
    assert outcomes["refused"] > 200 and outcomes["accepted"] > 5, outcomes

"""A hostile user against the Allocator's state: bad inputs at every entry point, corrupted
snapshots with valid checksums, snapshots taken under live traffic, and replicas that lose,
repeat, relay and replay deltas across restarts."""

from __future__ import annotations

import copy
import math
import sys
import threading
from collections import Counter

import numpy as np
import pytest
from framing import leaves, pack, set_leaf, unpack

from splitlab.allocator import Allocator
from splitlab.bandits import EpsilonGreedy, GaussianThompson, LinUCB, ThompsonSampling
from splitlab.errors import InvalidArgumentError

# ---------------------------------------------------------------------- framing, by hand


def state_of(alloc: Allocator) -> tuple:
    """Everything observable, to check that a refused call changed nothing."""
    stats = alloc.stats().drop(columns="probability")
    arrays = {name: array.tolist() for name, array in alloc.policy.arrays.items()}
    return stats.to_dict(), alloc.counters(), arrays


def rich_allocator() -> Allocator:
    """Pending decisions, sticky units, several SRM periods, a winner threshold and a merged
    replica (so the snapshot has every optional part)."""
    alloc = Allocator(["a", "b", "c"], ThompsonSampling(), seed=3, salt="exp", sticky=True,
                      refresh_every=5, winner_threshold=0.999)  # fmt: skip
    other = Allocator(["a", "b", "c"], ThompsonSampling(), seed=4, salt="exp")
    for step in range(12):
        other.update(other.choose(), float(step % 2))
    alloc.merge(other.delta())
    for step in range(30):
        decision = alloc.choose(unit=f"u{step % 7}")
        if step % 4:
            alloc.update(decision, float(step % 3 == 0))
    return Allocator.restore(alloc.snapshot())  # a restored one: its lineage is in `seen`


# ---------------------------------------------------------------------- bad inputs


def _constructor(**options):
    return lambda alloc, tmp_path: Allocator(**{"arms": ["a", "b"], **options})


def _merge_forged(mutate):
    def call(alloc, tmp_path):
        source = Allocator(["a", "b", "c"], ThompsonSampling(), seed=8)
        for step in range(10):
            source.update(source.choose(), float(step % 2))
        header, arrays = unpack(source.delta())
        mutate(header, arrays)
        return alloc.merge(pack(header, arrays))

    return call


_SOURCE: dict[str, Allocator] = {}


def _merge_backwards_setup(alloc: Allocator) -> None:
    source = _SOURCE["replica"] = Allocator(["a", "b", "c"], ThompsonSampling(), seed=8)
    for _ in range(10):
        source.update(source.choose(), 1.0)
    assert alloc.merge(source.delta())


def _backwards(alloc, tmp_path):
    header, arrays = unpack(_SOURCE["replica"].delta())
    header["contributions"][0]["events"] += 5  # "newer", yet fewer rewards
    arrays["0.rewards"][:] = 0
    return alloc.merge(pack(header, arrays))


def _write(tmp_path, data: bytes):
    path = tmp_path / "x.snap"
    path.write_bytes(data)
    return path


def _snapshot_of(**options):
    return Allocator(
        **{"arms": ["a", "b", "c"], "policy": ThompsonSampling(), **options}
    ).snapshot()


BAD_CALLS = {
    # constructor
    "arms-a-string": (_constructor(arms="ab"), "arms"),
    "arms-empty": (_constructor(arms=[]), "arms"),
    "arms-duplicated": (_constructor(arms=["a", "a"]), "arms"),
    "arms-not-strings": (_constructor(arms=["a", 3]), "arms"),
    "policy-a-name": (_constructor(policy="thompson"), "policy"),
    "policy-sized-for-3": (_constructor(policy=ThompsonSampling(n_arms=3)), "policy"),
    "mode-unknown": (_constructor(mode="batch"), "mode"),
    "refresh-every-zero": (_constructor(refresh_every=0), "refresh_every"),
    "refresh-every-fraction": (_constructor(refresh_every=1.5), "refresh_every"),
    "burn-in-negative": (_constructor(burn_in=-1), "burn_in"),
    "min-weight-too-big": (_constructor(min_weight=0.9), "min_weight"),
    "min-weight-nan": (_constructor(min_weight=math.nan), "min_weight"),
    "winner-threshold-low": (_constructor(winner_threshold=0.2), "winner_threshold"),
    "winner-threshold-epsilon": (
        _constructor(policy=EpsilonGreedy(), winner_threshold=0.9),
        "winner_threshold",
    ),
    "window-negative": (_constructor(attribution_window=-1), "attribution_window"),
    "window-infinite": (_constructor(attribution_window=math.inf), "attribution_window"),
    "max-pending-zero": (_constructor(max_pending=0), "max_pending"),
    "seed-negative": (_constructor(seed=-1), "seed"),
    "seed-a-string": (_constructor(seed="x"), "seed"),
    "seed-fraction": (_constructor(seed=1.5), "seed"),
    "salt-none": (_constructor(salt=None), "salt"),
    "salt-a-number": (_constructor(salt=42), "salt"),
    "clock-not-callable": (_constructor(clock=3), "clock"),
    "log-capacity-zero": (_constructor(log_capacity=0), "log_capacity"),
    # update
    "reward-nan": (lambda a, p: a.update(a.choose(), math.nan), "reward"),
    "reward-inf": (lambda a, p: a.update(arm="a", reward=math.inf), "reward"),
    "reward-minus-inf": (lambda a, p: a.update(arm="a", reward=-math.inf), "reward"),
    "reward-1e308": (lambda a, p: a.update(arm="a", reward=1e308), "reward"),
    "reward-beyond-limit": (lambda a, p: a.update(arm="a", reward=-1.5e100), "reward"),
    "reward-a-string": (lambda a, p: a.update(arm="a", reward="1.0"), "reward"),
    "reward-a-list": (lambda a, p: a.update(arm="a", reward=[1.0, 2.0]), "reward"),
    "reward-missing": (lambda a, p: a.update(a.choose()), "reward"),
    "reward-outside-beta-range": (lambda a, p: a.update(a.choose(), 2.0), "reward"),
    "decision-unknown": (lambda a, p: a.update("feed-1", 1.0), "decision"),
    "decision-not-an-id": (lambda a, p: a.update(42, 1.0), "decision"),
    "arm-unknown": (lambda a, p: a.update(arm="z", reward=1.0), "arm"),
    "arm-with-decision": (lambda a, p: a.update(a.choose(), 1.0, arm="a"), "arm"),
    "context-for-context-free": (
        lambda a, p: a.update(arm="a", reward=1.0, context=[1.0]),
        "context",
    ),
    # restore
    "restore-not-bytes": (lambda a, p: Allocator.restore("snapshot"), "blob"),
    "restore-empty": (lambda a, p: Allocator.restore(b""), "blob"),
    "restore-truncated": (lambda a, p: Allocator.restore(a.snapshot()[:-9]), "blob"),
    "restore-bit-flip": (
        lambda a, p: Allocator.restore(bytes(b ^ (i == 200) for i, b in enumerate(a.snapshot()))),
        "blob",
    ),
    "restore-a-delta": (lambda a, p: Allocator.restore(a.delta()), "blob"),
    "restore-expect-unknown-key": (
        lambda a, p: Allocator.restore(a.snapshot(), expect={"colour": "red"}),
        "expect",
    ),
    "restore-expect-not-a-dict": (
        lambda a, p: Allocator.restore(a.snapshot(), expect=["a", "b", "c"]),
        "expect",
    ),
    "restore-other-arms": (
        lambda a, p: Allocator.restore(a.snapshot(), expect={"arms": ["a", "b"]}),
        "blob",
    ),
    "restore-other-policy": (
        lambda a, p: Allocator.restore(a.snapshot(), expect={"policy": "EpsilonGreedy"}),
        "blob",
    ),
    "restore-other-prior": (
        lambda a, p: Allocator.restore(
            a.snapshot(), expect={"policy": ThompsonSampling(prior=(2, 2))}
        ),
        "blob",
    ),
    "restore-other-salt": (
        lambda a, p: Allocator.restore(a.snapshot(), expect={"salt": "other"}),
        "blob",
    ),
    "restore-clock-not-callable": (lambda a, p: Allocator.restore(a.snapshot(), clock=1), "clock"),
    # merge
    "merge-a-snapshot": (lambda a, p: a.merge(a.snapshot()), "blob"),
    "merge-garbage": (lambda a, p: a.merge(b"garbage"), "blob"),
    "merge-other-arms": (
        lambda a, p: a.merge(Allocator(["a", "b"], ThompsonSampling()).delta()),
        "delta",
    ),
    "merge-other-prior": (
        lambda a, p: a.merge(Allocator(["a", "b", "c"], ThompsonSampling(prior=(2, 1))).delta()),
        "delta",
    ),
    "merge-nan-statistics": (
        _merge_forged(lambda h, arrays: arrays["0.policy.alpha"].__setitem__(0, math.nan)),
        "delta",
    ),
    "merge-negative-decisions": (
        _merge_forged(lambda h, arrays: arrays["0.decisions"].__setitem__(1, -3.0)),
        "delta",
    ),
    "merge-negative-posterior": (
        _merge_forged(lambda h, arrays: arrays["0.policy.beta"].__setitem__(2, -50.0)),
        "delta",
    ),
    "merge-missing-array": (
        _merge_forged(lambda h, arrays: arrays.pop("0.reward_sums")),
        "delta",
    ),
    "merge-zero-events": (
        _merge_forged(lambda h, a: h["contributions"][0].__setitem__("events", 0)),
        "delta",
    ),
    "merge-origin-going-backwards": (_backwards, "delta", _merge_backwards_setup),
    # load
    "load-missing-file": (lambda a, p: Allocator.load(p / "nope.snap"), "path"),
    "load-a-directory": (lambda a, p: Allocator.load(p), "path"),
    "load-garbage": (lambda a, p: Allocator.load(_write(p, b"not a snapshot")), "blob"),
    "load-other-salt": (
        lambda a, p: Allocator.load(_write(p, _snapshot_of(salt="x")), expect={"salt": "y"}),
        "blob",
    ),
    "load-other-allocator": (
        lambda a, p: Allocator.load(_write(p, _snapshot_of(salt="x")), expect=a),
        "blob",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CALLS), ids=list(BAD_CALLS))
def test_bad_input_is_refused_naming_the_argument_and_changes_nothing(case, tmp_path):
    call, argument, *setup = BAD_CALLS[case]
    alloc = Allocator(["a", "b", "c"], ThompsonSampling(), seed=1, salt="exp")
    for step in range(20):
        alloc.update(alloc.choose(), float(step % 2))
    for prepare in setup:
        prepare(alloc)
    before = state_of(alloc)
    with pytest.raises(InvalidArgumentError) as error:
        call(alloc, tmp_path)
    assert error.value.argument == argument, error.value
    after = state_of(alloc)
    # a call that served a decision before failing added exactly that decision, no reward
    served = after[0]["decisions"]
    assert sum(served.values()) - sum(before[0]["decisions"].values()) in (0, 1)
    assert after[0]["rewards"] == before[0]["rewards"]
    assert after[0]["reward_sum"] == before[0]["reward_sum"]
    assert after[2] == before[2]
    assert after[1]["merged_deltas"] == before[1]["merged_deltas"]


def test_huge_rewards_never_make_a_sum_infinite_and_save_keeps_working(tmp_path):
    alloc = Allocator(["a", "b"], GaussianThompson(), seed=0, mode="online")
    accepted = [1e100, -1e100, 1e100]
    for reward in accepted:
        alloc.update(alloc.choose(), reward)
    for reward in (1e308, 1e308, 1.0000001e100):
        with pytest.raises(InvalidArgumentError, match="reward"):
            alloc.update(alloc.choose(), reward)
    assert alloc.stats()["reward_sum"].sum() == pytest.approx(sum(accepted))
    assert all(np.isfinite(array).all() for array in alloc.policy.arrays.values())
    restored = Allocator.load(alloc.save(tmp_path / "g.snap"))
    assert restored.stats()["rewards"].sum() == 3


# ---------------------------------------------------------------------- corrupted snapshots

BAD_VALUES = [None, -1, 0, 1.5, "x", "", True, [], {}, 10**30, math.nan, math.inf]


def _delete(document, path):
    node = document
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


def _usable(alloc: Allocator, pending: list[str]) -> None:
    """A restored allocator must work, not fail later with a misleading message."""
    for step in range(4):
        decision = alloc.choose(unit=f"probe-{step}")
        alloc.update(decision, 1.0)
    for decision_id in pending:
        try:
            alloc.update(decision_id, 0.0)
        except InvalidArgumentError as error:
            assert error.argument == "decision"
    alloc.stats(), alloc.srm(), alloc.counters()
    Allocator.restore(alloc.snapshot())


def _mutations(header, arrays):
    for path in leaves(header):
        if not path:
            continue
        for value in BAD_VALUES:
            mutated = copy.deepcopy(header)
            set_leaf(mutated, path, value)
            yield f"{path}={value!r}", mutated, arrays
        if isinstance(path[-1], str):
            mutated = copy.deepcopy(header)
            _delete(mutated, path)
            yield f"del {path}", mutated, arrays
    for name, array in arrays.items():
        for value in (math.nan, math.inf, -1.0, -1e300, 7.0, 0.5):
            if array.size:
                changed = {**arrays, name: array.copy()}
                changed[name].flat[0] = value
                yield f"{name}[0]={value}", header, changed
        yield f"{name} shortened", header, {**arrays, name: array.reshape(-1)[:-1]}
        yield f"{name} dropped", header, {k: v for k, v in arrays.items() if k != name}
    yield "extra array", header, {**arrays, "policy.extra": np.zeros(3)}


def test_corrupted_snapshots_with_valid_checksums_raise_only_invalid_argument_blob():
    blob = rich_allocator().snapshot()
    header, arrays = unpack(blob)
    pending = header["state"]["pending_ids"]
    outcomes = Counter()
    for label, mutated, changed in _mutations(header, arrays):
        try:
            restored = Allocator.restore(pack(mutated, changed))
        except InvalidArgumentError as error:
            assert error.argument == "blob", (label, error)
            outcomes["refused"] += 1
            continue
        _usable(restored, pending)  # accepted: then it must be a working allocator
        outcomes["accepted"] += 1
    assert outcomes["refused"] > 500 and outcomes["accepted"] > 10, outcomes


CORRUPTIONS = {
    "winner out of range": (("state", "winner"), 3, "state.winner"),
    "negative decisions": (("state", "decisions", 0), -4, "state.decisions[0]"),
    "fractional rewards count": (("state", "rewards", 1), 2.5, "state.rewards[1]"),
    "NaN reward sum": (("state", "reward_sums", 0), math.nan, "state.reward_sums[0]"),
    "negative counter": (("state", "counters", "duplicates"), -1, "state.counters.duplicates"),
    "version zero": (("state", "version"), 0, "state.version"),
    "unknown policy": (("policy",), "Pickle", "policy"),
    "unknown setting": (("settings", "colour"), "red", "settings"),
    "sticky as a string": (("settings", "sticky"), "yes", "settings.sticky"),
    "srm period beyond the current": (("state", "srm_periods", 0), 10**6, "state.srm_periods"),
    "seen with no observations": (("state", "seen", 0, 1), 0, "state.seen[0]"),
    "burning without burn_in": (("state", "burning"), True, "state.burning"),
    "sticky unit on an unknown arm": (("state", "sticky", 0, 1), "zz", "state.sticky[0]"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_corrupt_header_fields_are_named(case):
    path, value, field = CORRUPTIONS[case]
    header, arrays = unpack(rich_allocator().snapshot())
    set_leaf(header, path, value)
    with pytest.raises(InvalidArgumentError, match=field.replace("[", r"\[")) as error:
        Allocator.restore(pack(header, arrays))
    assert error.value.argument == "blob"


ARRAY_CORRUPTIONS = {
    "negative Beta parameter": ("policy.alpha", (1,), -2.0, "alpha"),
    "NaN posterior": ("serving.beta", (0,), math.nan, "serving.beta"),
    "pending arm out of range": ("pending.numbers", (0, 1), 5.0, "arm index"),
    "zero propensity": ("pending.numbers", (0, 2), 0.0, "propensity"),
    "pending probabilities not summing to one": (
        "pending.probabilities",
        (0, 0),
        0.9,
        "pending.probabilities",
    ),
    "negative SRM count": ("srm.counts", (0, 0), -1.0, "srm.counts"),
    "seen decisions beyond the counters": ("seen.0.decisions", (0,), 1e6, "state.decisions"),
}


@pytest.mark.parametrize("case", list(ARRAY_CORRUPTIONS), ids=list(ARRAY_CORRUPTIONS))
def test_corrupt_arrays_are_named(case):
    name, index, value, message = ARRAY_CORRUPTIONS[case]
    header, arrays = unpack(rich_allocator().snapshot())
    arrays[name][index] = value
    with pytest.raises(InvalidArgumentError, match=message) as error:
        Allocator.restore(pack(header, arrays))
    assert error.value.argument == "blob"


def test_linear_policy_snapshot_with_a_singular_design_is_refused():
    alloc = Allocator(["a", "b"], LinUCB(alpha=0.5), seed=0, n_features=2)
    for step in range(6):
        context = [1.0, step / 6]
        alloc.update(alloc.choose(context=context), 1.0)
    header, arrays = unpack(alloc.snapshot())
    arrays["policy.A"][0] = -np.eye(2)
    with pytest.raises(InvalidArgumentError) as error:
        Allocator.restore(pack(header, arrays))
    assert error.value.argument == "blob" and "positive definite" in str(error.value)


# ---------------------------------------------------------------------- torn snapshots


def test_snapshots_taken_under_live_traffic_are_consistent():
    """Four threads serve and reward while a fifth snapshots; with a tiny switch interval
    the threads interleave everywhere. Every snapshot must be one state: decisions =
    rewards + pending, SRM counts = decisions, and the Beta posterior = the rewards."""
    alloc = Allocator(["a", "b", "c"], ThompsonSampling(), seed=0, refresh_every=50)
    stop = threading.Event()

    def serve(worker: int) -> None:
        rng = np.random.default_rng(worker)
        while not stop.is_set():
            decision = alloc.choose()
            if rng.random() < 0.95:
                alloc.update(decision, float(rng.random() < 0.5))

    blobs = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=serve, args=(k,)) for k in range(4)]
        for worker in workers:
            worker.start()
        for _ in range(60):  # the unlocked encoding of the past tore ~12% of these
            blobs.append(alloc.snapshot())
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        sys.setswitchinterval(interval)
    totals = []
    for blob in blobs:
        restored = Allocator.restore(blob)
        stats = restored.stats()
        decisions, rewards = stats["decisions"].to_numpy(), stats["rewards"].to_numpy()
        assert decisions.sum() == rewards.sum() + restored.counters()["pending"]
        assert restored.srm().periods["decisions"].sum() == decisions.sum()
        alpha, beta = restored.policy.arrays["alpha"][0], restored.policy.arrays["beta"][0]
        np.testing.assert_array_equal(alpha + beta - 2, rewards)
        np.testing.assert_array_equal(alpha - 1, stats["reward_sum"].to_numpy())
        totals.append(decisions.sum())
    assert totals == sorted(totals) and totals[-1] > totals[0]  # traffic ran throughout


# ---------------------------------------------------------------------- replicas

ARMS = ["a", "b", "c"]


class World:
    """Replicas that serve Bernoulli rewards, and the truth: every reward once."""

    def __init__(self, make=ThompsonSampling, n_features=None):
        self.make, self.n_features = make, n_features
        self.truth = Allocator(ARMS, make(), seed=0, n_features=n_features)
        self.served = Counter()
        self.rng = np.random.default_rng(5)

    def replica(self, seed: int) -> Allocator:
        return Allocator(ARMS, self.make(), seed=seed, n_features=self.n_features)

    def serve(self, replica: Allocator, steps: int, truth: bool = True) -> None:
        for _ in range(steps):
            context = self.rng.normal(size=self.n_features) if self.n_features else None
            decision = replica.choose(context=context)
            reward = float(self.rng.random() < 0.2 + 0.2 * decision.arm_index)
            replica.update(decision, reward)
            if truth:
                self.served[decision.arm] += 1
                self.truth.update(arm=decision.arm, reward=reward, context=context)

    def assert_knows_everything(self, replica: Allocator) -> None:
        stats, truth = replica.stats(), self.truth.stats()
        assert stats["decisions"].to_dict() == {arm: self.served[arm] for arm in ARMS}
        np.testing.assert_array_equal(stats["rewards"], truth["rewards"])
        np.testing.assert_allclose(stats["reward_sum"], truth["reward_sum"], rtol=1e-12)
        for name, array in self.truth.policy.arrays.items():
            np.testing.assert_allclose(replica.policy.arrays[name], array, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "make, n_features",
    [(ThompsonSampling, None), (GaussianThompson, None), (lambda: LinUCB(alpha=0.5), 2)],
    ids=["thompson", "gaussian", "linucb"],
)
def test_a_lost_delta_is_made_good_by_the_next_one(make, n_features):
    world = World(make, n_features)
    sender, receiver = world.replica(1), world.replica(2)
    world.serve(sender, 150)
    lost = sender.delta()  # never arrives
    world.serve(sender, 120)
    assert receiver.merge(sender.delta())
    assert not receiver.merge(lost)  # arriving late (or re-sent) it adds nothing
    assert not receiver.merge(sender.delta())  # neither does a repeat
    world.assert_knows_everything(receiver)


def test_a_lost_delta_can_be_resent():
    world = World()
    sender, receiver = world.replica(1), world.replica(2)
    world.serve(sender, 200)
    sender.delta()  # lost in transit
    assert receiver.merge(sender.delta())  # delta() changes nothing: ask again
    world.assert_knows_everything(receiver)


def test_restored_replica_ignores_its_own_old_delta():
    world = World()
    replica = world.replica(1)
    world.serve(replica, 400)
    old_delta = replica.delta()
    restored = Allocator.restore(replica.snapshot())
    assert restored.origin != replica.origin
    assert not restored.merge(old_delta)
    assert restored.stats()["rewards"].sum() == 400  # not 800
    world.assert_knows_everything(restored)


def test_restored_replica_takes_only_the_unsaved_part_of_its_later_delta():
    world = World()
    replica = world.replica(1)
    world.serve(replica, 300)
    restored = Allocator.restore(replica.snapshot())
    world.serve(replica, 100)  # after the snapshot: the restored copy lost these
    assert restored.merge(replica.delta())
    assert restored.stats()["rewards"].sum() == 400
    world.assert_knows_everything(restored)


def test_a_restarted_replica_is_not_double_counted_by_its_peers():
    world = World()
    replica, peer = world.replica(1), world.replica(2)
    world.serve(replica, 200)
    saved = replica.snapshot()
    world.serve(replica, 50)
    peer.merge(replica.delta())  # the peer saw 250 of the replica's rewards
    restarted = Allocator.restore(saved)  # the replica crashed and lost 50 of them
    world.serve(restarted, 80)
    world.serve(peer, 60)
    assert peer.merge(restarted.delta())
    assert restarted.merge(peer.delta())
    world.assert_knows_everything(peer)
    world.assert_knows_everything(restarted)  # it recovers the 50 it lost, via the peer


def test_two_replicas_restored_from_one_snapshot_do_not_share_an_origin():
    world = World()
    original = world.replica(1)
    world.serve(original, 200)
    saved = original.snapshot()
    first, second = Allocator.restore(saved), Allocator.restore(saved)
    assert first.origin != second.origin
    world.serve(first, 70)
    world.serve(second, 90)
    assert first.merge(second.delta()) and second.merge(first.delta())
    world.assert_knows_everything(first)
    world.assert_knows_everything(second)


def test_deltas_relayed_through_another_replica_count_once():
    world = World()
    a, b, c = world.replica(1), world.replica(2), world.replica(3)
    world.serve(a, 120)
    world.serve(b, 80)
    world.serve(c, 60)
    b.merge(a.delta())  # a's delta to c is lost; b relays a's statistics
    assert c.merge(b.delta())
    assert c.merge(a.delta()) is False  # already seen through b
    a.merge(c.delta())
    b.merge(c.delta())
    for replica in (a, b, c):
        world.assert_knows_everything(replica)


def test_a_refused_delta_leaves_the_replica_unchanged():
    world = World()
    replica, source = world.replica(1), world.replica(2)
    world.serve(replica, 50)
    world.serve(source, 50, truth=False)
    header, arrays = unpack(source.delta())
    arrays["0.policy.alpha"][0] = -1e9  # makes the posterior invalid
    before = state_of(replica)
    with pytest.raises(InvalidArgumentError, match="policy invalid"):
        replica.merge(pack(header, arrays))
    assert state_of(replica) == before
    world.assert_knows_everything(replica)

"""The pending-decision and attribution store on its own (``splitlab.allocator.pending``)."""

import numpy as np
import pytest

from splitlab.allocator.pending import (
    PURGE_EVERY,
    REWARD,
    REWARD_TIME,
    PendingStore,
    UnknownDecision,
    new_row,
)
from splitlab.errors import InvalidArgumentError


class Clock:
    def __init__(self, now=0.0):
        self.now, self.calls = now, 0

    def __call__(self):
        self.calls += 1
        return self.now


def make_store(window=60.0, max_pending=100, dedupe=100, clock=None):
    counters = dict.fromkeys(("duplicates", "expired", "evicted"), 0)
    clock = clock or Clock()
    return PendingStore(window, max_pending, dedupe, counters, clock), counters, clock


def row(k, when=0.0, arm=0, context=None, probabilities=(0.5, 0.5), sticky=False):
    probabilities = np.array(probabilities)
    probabilities.flags.writeable = False
    propensity = float(probabilities[arm])
    return new_row(f"d-{k}", when, f"u{k}", arm, propensity, probabilities, 1, 0, context, sticky)


def test_the_oldest_pending_decisions_are_evicted_beyond_max_pending():
    store, counters, _ = make_store(max_pending=3)
    for k in range(5):
        store.add(row(k), now=0.0)
    assert list(store.rows) == ["d-2", "d-3", "d-4"] and counters["evicted"] == 2
    with pytest.raises(UnknownDecision):
        store.claim("d-0")


def test_a_reward_after_the_attribution_window_expires_the_decision():
    store, counters, clock = make_store(window=60.0)
    store.add(row(0, when=100.0), now=100.0)
    store.add(row(1, when=100.0), now=100.0)
    clock.now = 160.0  # exactly the window: still attributed
    claimed, now = store.claim("d-0")
    assert claimed[0] == "d-0" and now == 160.0
    clock.now = 160.5
    with pytest.raises(InvalidArgumentError, match="expired: its reward came 60 s after"):
        store.claim("d-1")
    assert "d-1" not in store and counters["expired"] == 1


def test_expired_decisions_are_swept_every_purge_every_decisions():
    store, counters, _ = make_store(window=10.0, max_pending=10 * PURGE_EVERY)
    for k in range(PURGE_EVERY - 1):
        store.add(row(k, when=float(k)), now=float(k))
    assert counters["expired"] == 0 and len(store) == PURGE_EVERY - 1
    last = PURGE_EVERY - 1
    store.add(row(last, when=float(last)), now=float(last))  # the sweep: age > 10 s goes
    assert counters["expired"] == last - 10 and len(store) == 11
    assert next(iter(store.rows)) == f"d-{last - 10}"


def test_no_window_means_no_expiry():
    store, counters, clock = make_store(window=None, max_pending=10 * PURGE_EVERY)
    for k in range(PURGE_EVERY):
        store.add(row(k), now=0.0)
    clock.now = 1e12
    assert store.claim("d-0") is not None and counters["expired"] == 0


def test_a_repeated_reward_is_a_duplicate_until_its_id_is_forgotten():
    store, counters, clock = make_store(dedupe=2)
    for k in range(3):
        store.add(row(k), now=0.0)
    clock.now = 5.0
    for k in range(3):
        claimed, now = store.claim(f"d-{k}")
        store.complete(claimed, reward=float(k), now=now)
        assert claimed[REWARD] == float(k) and claimed[REWARD_TIME] == 5.0
    assert store.claim("d-2") is None and store.claim("d-1") is None
    assert counters["duplicates"] == 2 and list(store.done) == ["d-1", "d-2"]
    with pytest.raises(UnknownDecision):  # beyond dedupe_capacity: no longer recognized
        store.claim("d-0")
    assert len(store) == 0


def test_a_claimed_decision_stays_pending_until_completed():
    # the allocator validates the reward between claim and complete; a refused one
    # must leave the decision pending
    store, _, _ = make_store()
    store.add(row(0), now=0.0)
    store.claim("d-0")
    assert "d-0" in store
    assert store.claim("d-0")[0][0] == "d-0"


def test_the_clock_is_read_only_for_a_pending_decision():
    store, _, clock = make_store()
    store.add(row(0), now=0.0)
    with pytest.raises(UnknownDecision):
        store.claim("nope")
    assert clock.calls == 0
    store.claim("d-0")
    assert clock.calls == 1


def test_decision_copies_the_context():
    store, _, _ = make_store()
    store.add(row(0, arm=1, context=[1.0, 2.0]), now=0.0)
    decision = store.decision("d-0", ["a", "b"])
    assert (decision.arm, decision.arm_index, decision.propensity) == ("b", 1, 0.5)
    decision.context[0] = 99.0
    assert store.rows["d-0"][8].tolist() == [1.0, 2.0]
    assert store.decision("missing", ["a", "b"]) is None


def test_snapshot_and_restore_give_the_same_rows():
    store, _, _ = make_store()
    store.add(row(0, when=1.5, arm=1, context=[0.5, -1.0], probabilities=(0.25, 0.75)), 1.5)
    store.add(row(1, when=2.5, arm=0, context=[2.0, 3.0], sticky=True), 2.5)
    store.add(row(2, when=3.0, context=[0.0, 0.0]), 3.0)
    claimed, now = store.claim("d-2")
    store.complete(claimed, 1.0, now)
    fields, arrays = store.snapshot(2, 2)
    assert fields["pending_ids"] == ["d-0", "d-1"] and fields["done"] == ["d-2"]
    assert arrays["pending.numbers"].tolist() == [[1.5, 1, 0.75, 1, 0, 0], [2.5, 0, 0.5, 1, 0, 1]]
    restored, _, _ = make_store()
    names = set()
    rows = restored.restore(fields, arrays, names, n_arms=2, n_features=2, version=1, period=0)
    assert names == {"pending.contexts"}
    assert [r[0] for r in rows] == ["d-0", "d-1"] and list(restored.done) == ["d-2"]
    for original, copy in zip(store.rows.values(), rows, strict=True):
        for a, b in zip(original, copy, strict=True):
            assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, a: f["pending_ids"].append("d-0"), "pending_units"),
        (lambda f, a: f["done"].append("d-0"), "still pending"),
        (lambda f, a: a["pending.numbers"].__setitem__((0, 2), 0.4), "not its arm's probability"),
        (lambda f, a: a["pending.numbers"].__setitem__((0, 1), 2), "impossible arm index"),
        (lambda f, a: a["pending.numbers"].__setitem__((0, 3), 7), "impossible policy version"),
    ],
)
def test_restore_refuses_inconsistent_rows(change, message):
    store, _, _ = make_store()
    store.add(row(0), 0.0)
    fields, arrays = store.snapshot(2, None)
    change(fields, arrays)
    restored, _, _ = make_store()
    with pytest.raises(InvalidArgumentError, match=message):
        restored.restore(fields, arrays, set(), n_arms=2, n_features=None, version=1, period=0)

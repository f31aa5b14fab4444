"""The serving object: a thread-safe, persistent, mergeable decision service in-process.

:class:`Allocator` wraps any policy of :mod:`splitlab.bandits` and adds what serving needs:
arm labels, assignment by hashing, pending decisions joined to rewards by id, a decision log
with exact propensities, snapshots, replica deltas and an SRM guardrail.

>>> import splitlab as sl
>>> alloc = sl.Allocator(arms=["control", "new-ranker"],
...                      policy=sl.bandits.ThompsonSampling(), seed=7, salt="exp-42")
>>> d = alloc.choose(unit="user-1")
>>> d.arm in ("control", "new-ranker"), round(d.propensity, 3)
(True, 0.5)
>>> alloc.update(d.id, reward=1.0)
True
>>> alloc.update(d.id, reward=1.0)      # a duplicate reward is ignored (and counted)
False
>>> restored = sl.Allocator.restore(alloc.snapshot())
>>> restored.choose().arm == alloc.choose().arm
True

**Serving modes.** ``mode="online"`` serves the policy's current probabilities, updated with
every reward. ``mode="periodic"`` (the default for Thompson-type policies, as in GrowthBook's
and Statsig's production bandits) serves frozen weights from a copy of the policy, refreshed
every ``refresh_every`` rewards or ``refresh_seconds``; the exact propensities (a quadrature
for Thompson sampling) are then computed once per refresh. In both modes ``burn_in`` serves
uniformly until every arm has that many decisions, ``min_weight`` mixes the probabilities
with the uniform distribution so that every available arm keeps at least that share, and
``winner_threshold`` (Bayesian policies) sends all traffic to an arm once its posterior
probability of being best reaches the threshold at a refresh.

The interval between two refreshes is a *period*: the decision log carries it (weights are
constant within a period in periodic mode) and :meth:`Allocator.srm` tests served counts
against served weights period by period.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
import time
import warnings
import zlib
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from splitlab._validation import check_integer
from splitlab.bandits import base as policy_base
from splitlab.bandits.base import Policy
from splitlab.bandits.linear import LinTS, LogisticTS
from splitlab.bandits.mab import (
    EXP3,
    FixedSplit,
    GaussianThompson,
    ThompsonSampling,
    TopTwoThompson,
)
from splitlab.errors import InvalidArgumentError, UnknownOptionError
from splitlab.hashing import unit_uniform

SNAPSHOT_FORMAT = 1
_MAGIC = b"SPLITLAB-ALLOCATOR\n"
_LENGTH = struct.Struct("<Q")
_CHECKSUM = struct.Struct("<I")
_THOMPSON_TYPE = (ThompsonSampling, GaussianThompson, LinTS, LogisticTS)
_PURGE_EVERY = 256  # decisions between sweeps for expired pending decisions
_FOLD_EVERY = 1024  # served weight vectors buffered before folding into SRM expectations
_new_tuple = tuple.__new__  # builds a Decision without the NamedTuple's Python-level __new__


class Decision(NamedTuple):
    """One served decision. ``probabilities`` is read-only and shared between decisions
    served from the same weights; ``propensity`` is ``probabilities[arm_index]`` (for a
    sticky repeat: the propensity of the unit's first assignment)."""

    id: str
    arm: str
    propensity: float
    probabilities: np.ndarray
    policy_version: int
    timestamp: float
    unit: str | None
    arm_index: int
    sticky: bool = False


class PendingDecision(NamedTuple):
    """A decision still waiting for its reward (see :meth:`Allocator.pending_decision`)."""

    id: str
    arm: str
    arm_index: int
    propensity: float
    timestamp: float
    unit: str | None
    context: np.ndarray | None


class StickyStore(Protocol):
    """Where ``sticky=True`` keeps each unit's first (arm, propensity): any object with
    ``get(unit) -> tuple | None`` and ``set(unit, value)`` (e.g. a Redis adapter)."""

    def get(self, unit: str) -> tuple[str, float] | None: ...

    def set(self, unit: str, value: tuple[str, float]) -> None: ...


class BoundedStore:
    """The default sticky store: in memory, least recently used units evicted beyond
    ``capacity``.

    >>> store = BoundedStore(capacity=2)
    >>> store.set("a", ("x", 0.5)); store.set("b", ("y", 0.5)); store.set("c", ("x", 0.5))
    >>> store.get("a") is None, store.get("c")
    (True, ('x', 0.5))
    """

    def __init__(self, capacity: int = 1_000_000):
        self.capacity = check_integer("sticky_capacity", capacity)
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, unit: str) -> tuple[str, float] | None:
        value = self._items.get(unit)
        if value is not None:
            self._items.move_to_end(unit)
        return value

    def set(self, unit: str, value: tuple[str, float]) -> None:
        self._items[unit] = value
        self._items.move_to_end(unit)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class AllocatorSRM(NamedTuple):
    """Sample-ratio check of served counts against served weights: Pearson's chi-square
    summed over periods (degrees of freedom summed too)."""

    statistic: float
    df: int
    p_value: float
    periods: pd.DataFrame


class DecisionLogOverflowWarning(UserWarning):
    """The decision log reached ``log_capacity`` before a flush; the oldest rows were
    dropped (counted in ``Allocator.counters()['log_dropped']``)."""


# A pending decision and its decision-log row are one list (the reward is filled in place).
_ID, _TIME, _UNIT, _ARM, _PROPENSITY, _PROBABILITIES, _VERSION, _PERIOD = range(8)
_CONTEXT, _REWARD, _REWARD_TIME, _STICKY = range(8, 12)


class Allocator:
    """A policy served to many threads, with decisions logged and rewards joined by id.

    Parameters
    ----------
    arms : sequence of str
        Arm labels, in the order that fixes hashing buckets (put the control first).
    policy : a ``splitlab.bandits`` policy, default ``ThompsonSampling()``
        Sized here if built without ``n_arms`` (and ``n_features`` for contextual ones).
    seed : int, optional
        Seeds the generator of decisions made without ``unit``.
    salt : str
        Mixed into the hash of a unit, so experiments bucket independently.
    mode : "online" | "periodic", optional
        Default: periodic for Thompson-type policies, online otherwise.
    refresh_every, refresh_seconds : refresh the served weights after that many rewards or
        that much time (periodic mode); both also end a period for ``srm`` and the log.
    burn_in : uniform serving until each arm has this many decisions.
    min_weight : floor on each available arm's probability (at most 1 / number of arms).
    winner_threshold : P(best) at which all traffic goes to the best arm (Bayesian policies).
    sticky, sticky_store, sticky_capacity : keep a unit on its first arm; the store is
        ``BoundedStore(sticky_capacity)`` unless one is given.
    attribution_window : seconds a decision waits for its reward before it expires.
    max_pending : pending decisions kept; the oldest expire beyond it.
    dedupe_capacity : ids of rewarded decisions remembered to recognize duplicate rewards
        (older duplicates are reported as expired).
    log, log_capacity : keep a decision log (flushed by :meth:`flush`) of at most
        ``log_capacity`` rows.
    n_features : context size, to size an unsized contextual policy.
    clock : function returning the time in seconds (default ``time.time``).
    """

    def __init__(
        self,
        arms: Sequence[str],
        policy: Policy | None = None,
        *,
        seed: int | None = None,
        salt: str = "",
        mode: str | None = None,
        refresh_every: int = 1000,
        refresh_seconds: float | None = None,
        burn_in: int = 0,
        min_weight: float = 0.0,
        winner_threshold: float | None = None,
        sticky: bool = False,
        sticky_store: StickyStore | None = None,
        sticky_capacity: int = 1_000_000,
        attribution_window: float = 86_400.0,
        max_pending: int = 1_000_000,
        dedupe_capacity: int = 100_000,
        log: bool = True,
        log_capacity: int = 1_000_000,
        n_features: int | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.arms = _check_arms(arms)
        self._arm_index = {label: index for index, label in enumerate(self.arms)}
        policy = ThompsonSampling() if policy is None else policy
        if not isinstance(policy, Policy):
            raise InvalidArgumentError(
                "policy", f"must be a splitlab.bandits policy, got {type(policy).__name__}"
            )
        if policy.sized:
            if policy.n_arms != len(self.arms):
                raise InvalidArgumentError(
                    "policy", f"has {policy.n_arms} arms but {len(self.arms)} labels were given"
                )
        else:
            policy.resize(len(self.arms), n_features)
        self.policy = policy
        self._importance_weighted = isinstance(policy, EXP3)
        if mode is None:
            mode = "periodic" if isinstance(policy, _THOMPSON_TYPE) else "online"
        if mode not in ("online", "periodic"):
            raise UnknownOptionError("mode", mode, ("online", "periodic"))
        self.mode = mode
        self.salt = str(salt)
        self.seed = seed
        self.refresh_every = check_integer("refresh_every", refresh_every)
        self.refresh_seconds = _optional_positive("refresh_seconds", refresh_seconds)
        self.burn_in = check_integer("burn_in", burn_in, minimum=0)
        self.min_weight = _probability("min_weight", min_weight, 0.0, 1.0 / len(self.arms))
        if winner_threshold is not None:
            winner_threshold = _probability("winner_threshold", winner_threshold, 0.5, 1.0)
            if policy.contextual or not isinstance(policy, (ThompsonSampling, GaussianThompson)):
                raise InvalidArgumentError(
                    "winner_threshold",
                    "needs a Bayesian context-free policy (ThompsonSampling, TopTwoThompson, "
                    f"GaussianThompson), not {type(policy).__name__}",
                )
        self.winner_threshold = winner_threshold
        self.sticky = bool(sticky)
        self._sticky_store = sticky_store if sticky_store is not None else (
            BoundedStore(sticky_capacity) if self.sticky else None
        )  # fmt: skip
        self.attribution_window = _optional_positive("attribution_window", attribution_window)
        self.max_pending = check_integer("max_pending", max_pending)
        self.dedupe_capacity = check_integer("dedupe_capacity", dedupe_capacity)
        self.log_enabled = bool(log)
        self.log_capacity = check_integer("log_capacity", log_capacity)
        if not callable(clock):
            raise InvalidArgumentError("clock", "must be a function returning seconds")
        self._clock = clock
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self._epoch = os.urandom(4).hex()
        self._counter = 0  # decisions issued under this epoch
        self._issued: dict[str, int] = {}  # decisions issued under earlier (restored) epochs
        self._pending: OrderedDict[str, list] = OrderedDict()
        self._done: OrderedDict[str, None] = OrderedDict()
        self._log: deque[list] | None = deque() if self.log_enabled else None
        self._counters = dict.fromkeys(
            (
                "duplicates",
                "expired",
                "evicted",
                "log_dropped",
                "merged_deltas",
                "refreshes",
                "flushes",
            ),
            0,
        )
        n_arms = len(self.arms)
        self._decisions = [0] * n_arms
        self._rewards = [0] * n_arms
        self._reward_sums = [0.0] * n_arms
        self._serving = self._copy_policy(policy) if mode == "periodic" else policy
        self._burning = self.burn_in > 0
        self._winner: int | None = None
        self._period = 0
        self._version = 1
        self._rewards_since_refresh = 0
        self._refreshed_at = clock()
        self._since_purge = 0
        self._stale = True
        self._table: tuple = ()
        # SRM accumulators: closed-form per period (counts, expected counts); the current
        # period's counts and (decisions served, probabilities) parts are folded in lazily
        self._srm_periods: dict[int, list[np.ndarray]] = {}
        self._srm_counts = [0] * n_arms
        self._table_served = 0
        self._expected_parts: list[tuple[int, np.ndarray]] = []
        self._delta_base = self._sufficient_statistics()
        self._delta_sequence = 0
        self._merged: set[tuple[str, int]] = set()

    # ------------------------------------------------------------------ serving

    def choose(
        self, unit: object = None, context: object = None, available: object = None
    ) -> Decision:
        """Serve one decision. With ``unit``, the draw is the unit's hash (stable across
        processes while the probabilities are unchanged); without, the seeded generator."""
        unit_key = None if unit is None else str(unit)
        with self._lock:
            now = self._clock()
            if (
                self.refresh_seconds is not None
                and now - self._refreshed_at >= self.refresh_seconds
            ):
                self._refresh(now)
            if self._sticky_store is not None and unit_key is not None:
                remembered = self._sticky_store.get(unit_key)
                if remembered is not None and remembered[0] in self._arm_index:
                    index = self._arm_index[remembered[0]]
                    probabilities = self._probabilities(context, available)
                    if probabilities[index] > 0:
                        return self._record(
                            now, unit_key, index, float(remembered[1]), probabilities,
                            context, True,
                        )  # fmt: skip
            uniform = self._rng.random() if unit_key is None else unit_uniform(self.salt, unit_key)
            if context is None and available is None and not self.policy.contextual:
                table = self._refresh_table() if self._stale else self._table
                index = min(bisect_right(table[0], uniform * table[1]), table[3])
                propensity, probabilities = table[2][index], table[4]
                self._srm_counts[index] += 1
                self._table_served += 1
            else:
                probabilities = self._probabilities(context, available)
                index, propensity = _draw(probabilities.tolist(), uniform)
                self._srm_counts[index] += 1
                self._expected_parts.append((1, probabilities))
                if len(self._expected_parts) >= _FOLD_EVERY:
                    self._settle_srm()
            if self._sticky_store is not None and unit_key is not None:
                self._sticky_store.set(unit_key, (self.arms[index], propensity))
            return self._record(now, unit_key, index, propensity, probabilities, context, False)

    def _record(self, now, unit, index, propensity, probabilities, context, sticky) -> Decision:
        counter = self._counter
        self._counter = counter + 1
        decision_id = f"{self._epoch}-{counter:x}"
        version = self._version
        row = [
            decision_id, now, unit, index, propensity, probabilities, version, self._period,
            None if context is None else np.array(context, dtype=np.float64), None, None, sticky,
        ]  # fmt: skip
        pending = self._pending
        pending[decision_id] = row
        if len(pending) > self.max_pending:
            pending.popitem(last=False)
            self._counters["evicted"] += 1
        log = self._log
        if log is not None:
            if len(log) >= self.log_capacity:
                self._drop_log_row()
            log.append(row)
        decisions = self._decisions
        decisions[index] += 1
        if self._burning and decisions[index] == self.burn_in and min(decisions) >= self.burn_in:
            self._burning = False
            self._refresh(now)
        self._since_purge += 1
        if self._since_purge >= _PURGE_EVERY:
            self._purge_expired(now)
        return _new_tuple(
            Decision,
            (decision_id, self.arms[index], propensity, probabilities, version, now, unit, index,
             sticky),
        )  # fmt: skip

    def _drop_log_row(self) -> None:
        self._log.popleft()  # type: ignore[union-attr]
        self._counters["log_dropped"] += 1
        if self._counters["log_dropped"] == 1:
            warnings.warn(
                f"the decision log reached log_capacity={self.log_capacity}; the oldest rows "
                "are dropped until flush() is called",
                DecisionLogOverflowWarning,
                stacklevel=4,
            )

    def update(
        self,
        decision: Decision | str | None = None,
        reward: object = None,
        *,
        arm: str | None = None,
        context: object = None,
    ) -> bool:
        """Join a reward to a decision (by :class:`Decision` or its id), or add a reward for
        ``arm=`` (with ``context=`` for contextual policies) that was not served here.

        Returns False, and counts a duplicate, when the decision already had its reward.
        """
        if reward is None:
            raise InvalidArgumentError("reward", "is required")
        if decision is None:
            if arm is None:
                raise InvalidArgumentError("decision", "give a decision, its id, or arm=")
            index = self._check_label(arm)
            with self._lock:
                self.policy.update(index, reward, context)
                self._count_reward(index, reward)
            return True
        if arm is not None or context is not None:
            raise InvalidArgumentError(
                "arm", "a decision carries its own arm and context; do not pass arm= or context="
            )
        decision_id = decision.id if isinstance(decision, Decision) else decision
        if not isinstance(decision_id, str):
            raise InvalidArgumentError(
                "decision", f"must be a Decision or a decision id, got {type(decision).__name__}"
            )
        with self._lock:
            row = self._pending.get(decision_id)
            if row is None:
                if decision_id in self._done:
                    self._counters["duplicates"] += 1
                    return False
                raise InvalidArgumentError("decision", self._missing(decision_id))
            now = self._clock()
            window = self.attribution_window
            if window is not None and now - row[_TIME] > window:
                del self._pending[decision_id]
                self._counters["expired"] += 1
                raise InvalidArgumentError(
                    "decision",
                    f"{decision_id!r} expired: its reward came {now - row[_TIME]:.0f} s after "
                    f"the decision (attribution_window={window:g} s)",
                )
            index = row[_ARM]
            weight = 1.0
            if self._importance_weighted:
                # EXP3 divides by the arm's probability at update time; rescale so that the
                # estimate divides by the propensity the decision was actually drawn with
                current = self.policy._cached_probabilities()[index]
                weight = float(current) / row[_PROPENSITY]
            self.policy.update(index, reward, row[_CONTEXT], weight)  # validates first
            del self._pending[decision_id]
            row[_REWARD], row[_REWARD_TIME] = float(reward), now  # type: ignore[arg-type]
            done = self._done
            done[decision_id] = None
            if len(done) > self.dedupe_capacity:
                done.popitem(last=False)
            self._count_reward(index, row[_REWARD])
        return True

    def pending_decision(self, decision_id: str) -> PendingDecision | None:
        """The decision ``decision_id`` if it is still waiting for its reward, else None."""
        with self._lock:
            row = self._pending.get(decision_id)
            if row is None:
                return None
            return PendingDecision(
                row[_ID], self.arms[row[_ARM]], row[_ARM], row[_PROPENSITY], row[_TIME],
                row[_UNIT], None if row[_CONTEXT] is None else row[_CONTEXT].copy(),
            )  # fmt: skip

    def _count_reward(self, index: int, reward: object) -> None:
        self._rewards[index] += 1
        self._reward_sums[index] += float(reward)  # type: ignore[arg-type]
        self._rewards_since_refresh += 1
        if self.mode == "online":
            self._version += 1
            self._stale = True
        if self._rewards_since_refresh >= self.refresh_every:
            self._refresh(self._clock())

    def _missing(self, decision_id: str) -> str:
        epoch, _, counter = decision_id.rpartition("-")
        issued = self._counter if epoch == self._epoch else self._issued.get(epoch)
        try:
            known = issued is not None and int(counter, 16) < issued
        except ValueError:
            known = False
        if known:
            return (
                f"{decision_id!r} is no longer pending: it expired (attribution_window="
                f"{self.attribution_window} s, max_pending={self.max_pending})"
            )
        return f"unknown decision id {decision_id!r}"

    # ------------------------------------------------------------------ weights

    def _probabilities(self, context: object, available: object) -> np.ndarray:
        mask = self._available_mask(available)
        if context is None and mask is None and not self.policy.contextual:
            table = self._refresh_table() if self._stale else self._table
            return table[4]
        raw = self._serving.probabilities(context, mask)
        shaped = self._shape(raw, mask)
        shaped.flags.writeable = False
        return shaped

    def _available_mask(self, available: object) -> np.ndarray | None:
        if available is None:
            return None
        if isinstance(available, np.ndarray) and available.dtype == bool:
            return available
        values = [available] if isinstance(available, str) else list(available)  # type: ignore[call-overload]
        if values and all(isinstance(value, (bool, np.bool_)) for value in values):
            return np.asarray(values, dtype=bool)
        mask = np.zeros(len(self.arms), dtype=bool)
        for value in values:
            mask[self._check_label(value, "available")] = True
        return mask

    def _shape(self, probabilities: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Burn-in, winner and floor applied to the policy's probabilities. The policy's own
        array is returned when nothing applies: callers freeze it, and policies build a new
        array for every probability computation."""
        if self._winner is None and not self._burning and self.min_weight == 0:
            return probabilities
        allowed = np.ones(len(self.arms), dtype=bool) if mask is None else mask
        if self._winner is not None and allowed[self._winner]:
            out = np.zeros(len(self.arms))
            out[self._winner] = 1.0
            return out
        if self._burning:
            return allowed / allowed.sum()
        count = int(allowed.sum())
        return self.min_weight * allowed + (1.0 - self.min_weight * count) * probabilities

    def _refresh_table(self) -> tuple:
        """Rebuild the context-free draw table (CDF as Python lists for bisect)."""
        if self._table_served:
            self._expected_parts.append((self._table_served, self._table[4]))
            self._table_served = 0
            if len(self._expected_parts) >= _FOLD_EVERY:
                self._settle_srm()
        serving = self._serving
        if self.winner_threshold is not None and self._winner is None and not self._burning:
            prob_best = _prob_best(serving)
            if prob_best.max() >= self.winner_threshold:
                self._winner = int(np.argmax(prob_best))
        probabilities = self._shape(serving._cached_probabilities(), None)
        probabilities.flags.writeable = False
        propensities = probabilities.tolist()
        cumulative, last = _cdf(propensities)
        self._table = (cumulative, cumulative[-1], propensities, last, probabilities)
        self._stale = False
        return self._table

    def _settle_srm(self) -> None:
        """Fold the current period's pending SRM counts and expected counts into arrays."""
        if self._table_served:
            self._expected_parts.append((self._table_served, self._table[4]))
            self._table_served = 0
        period = self._srm_periods.get(self._period)
        if period is None:
            n_arms = len(self.arms)
            period = self._srm_periods[self._period] = [np.zeros(n_arms), np.zeros(n_arms)]
        period[0] += self._srm_counts
        self._srm_counts = [0] * len(self.arms)
        parts = self._expected_parts
        if parts:
            served = np.array([count for count, _ in parts], dtype=np.float64)
            period[1] += served @ np.stack([probabilities for _, probabilities in parts])
            self._expected_parts = []

    def _refresh(self, now: float) -> None:
        """End the period; in periodic mode serve the learner's current weights."""
        self._settle_srm()
        self._period += 1
        self._version += 1
        self._rewards_since_refresh = 0
        self._refreshed_at = now
        self._counters["refreshes"] += 1
        if self.mode == "periodic":
            for name, array in self.policy.arrays.items():
                self._serving.arrays[name] = array.copy()
            self._serving._touch()
        self._stale = True

    def refresh(self) -> None:
        """Refresh the served weights now (and start a new period)."""
        with self._lock:
            self._refresh(self._clock())

    def set_weights(self, weights: Sequence[float]) -> None:
        """Ramp a :class:`~splitlab.bandits.FixedSplit`: serve new weights from now on
        (a new period starts). Units move only toward the arms that grew."""
        if not isinstance(self.policy, FixedSplit):
            raise InvalidArgumentError(
                "weights",
                f"set_weights needs a FixedSplit policy, not {type(self.policy).__name__}",
            )
        ramped = FixedSplit(weights, discount=self.policy.discount)
        if len(ramped.weights) != len(self.arms):  # type: ignore[arg-type]
            raise InvalidArgumentError(
                "weights", f"need one weight per arm ({len(self.arms)}), got {len(ramped.weights)}"
            )
        ramped.resize(len(self.arms))
        with self._lock:
            for name, array in self.policy.arrays.items():
                ramped.arrays[name] = array.copy()
            self.policy = ramped
            self._serving = self._copy_policy(ramped) if self.mode == "periodic" else ramped
            self._refresh(self._clock())

    # ------------------------------------------------------------------ bookkeeping

    def _purge_expired(self, now: float) -> None:
        self._since_purge = 0
        window = self.attribution_window
        if window is None:
            return
        pending = self._pending
        while pending:
            decision_id, row = next(iter(pending.items()))
            if now - row[_TIME] <= window:
                break
            del pending[decision_id]
            self._counters["expired"] += 1

    def counters(self) -> dict[str, int]:
        """Operational counts: duplicates ignored, decisions expired or evicted before their
        reward, log rows dropped, deltas merged, refreshes, and pending decisions."""
        with self._lock:
            return {
                **self._counters,
                "pending": len(self._pending),
                "log_rows": len(self._log or ()),
            }

    def stats(self) -> pd.DataFrame:
        """Per arm: decisions, rewards, reward_sum, mean_reward and the probability now
        served (NaN for contextual policies, whose probabilities depend on the context)."""
        with self._lock:
            if self.policy.contextual:
                probability = np.full(len(self.arms), np.nan)
            else:
                probability = np.array(self._probabilities(None, None))
            rewards = np.array(self._rewards, dtype=np.int64)
            sums = np.array(self._reward_sums)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(rewards > 0, sums / np.maximum(rewards, 1), np.nan)
            frame = pd.DataFrame(
                {
                    "decisions": np.array(self._decisions, dtype=np.int64),
                    "rewards": rewards,
                    "reward_sum": sums,
                    "mean_reward": mean,
                    "probability": probability,
                },
                index=pd.Index(self.arms, name="arm"),
            )
        return frame

    def srm(self, alpha: float = 0.001) -> AllocatorSRM:
        """Served counts against served weights, per period: Pearson's chi-square with the
        expected count of arm k = Σ over decisions of its probability. Exact when weights are
        constant within a period (periodic mode); conservative when they vary within it,
        since Var(n_k) = Σ p_k(1 − p_k) is then below the constant-weight variance. Sticky
        repeats are not draws and are left out; so are arms with zero expected count."""
        with self._lock:
            self._settle_srm()
            periods = {
                key: [value[0].copy(), value[1].copy()] for key, value in self._srm_periods.items()
            }
        rows = []
        total_statistic, total_df = 0.0, 0
        for period, (counts, expected) in sorted(periods.items()):
            positive = expected > 1e-12
            with np.errstate(divide="ignore", invalid="ignore"):
                statistic = float(
                    np.sum((counts[positive] - expected[positive]) ** 2 / expected[positive])
                )
            if np.any(counts[~positive] > 0):
                statistic = math.inf
            df = int(positive.sum()) - 1
            if df > 0:
                total_statistic += statistic
                total_df += df
            p_value = float(scipy_stats.chi2.sf(statistic, df)) if df > 0 else math.nan
            row = {"period": period, "decisions": int(counts.sum()), "statistic": statistic,
                   "df": df, "p_value": p_value}  # fmt: skip
            for label, count, expectation in zip(self.arms, counts, expected, strict=True):
                row[f"n_{label}"] = round(count)
                row[f"expected_{label}"] = float(expectation)
            rows.append(row)
        p_value = float(scipy_stats.chi2.sf(total_statistic, total_df)) if total_df else math.nan
        frame = pd.DataFrame(rows)
        frame.attrs["alpha"] = alpha
        frame.attrs["flagged"] = bool(p_value < alpha) if total_df else False
        return AllocatorSRM(total_statistic, total_df, p_value, frame)

    # ------------------------------------------------------------------ decision log

    def flush(self, path: str | os.PathLike, *, include_pending: bool = False) -> Path | None:
        """Write the logged decisions that are complete (rewarded or expired) to Parquet and
        drop them from the buffer; pending ones stay (all of them with ``include_pending``).

        ``path`` is a ``.parquet`` file (replaced atomically) or an existing directory, which
        receives a new part file per call (a dataset the Analyzer and ``splitlab.ope`` read).
        Returns the file written, or None when a directory flush had nothing to write.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = Path(path)
        if self._log is None:
            raise InvalidArgumentError("path", "this allocator keeps no decision log (log=False)")
        with self._lock:
            rows, kept = [], deque()
            for row in self._log:
                if include_pending or row[_ID] not in self._pending:
                    rows.append(row)
                else:
                    kept.append(row)
            if target.is_dir():
                if not rows:
                    return None
                target = target / f"decisions-{self._epoch}-{self._counters['flushes']:06d}.parquet"
            self._counters["flushes"] += 1
            self._log = kept
        try:  # serving goes on while the file is written
            table = self._log_table(rows, pa)
            _atomic_write(target, lambda handle: pq.write_table(table, handle))
        except BaseException:
            with self._lock:  # nothing is lost: the rows go back to the front of the buffer
                self._log = deque([*rows, *self._log])
            raise
        return target

    def _log_table(self, rows: list[list], pa: Any) -> Any:
        n_arms = len(self.arms)
        count = len(rows)
        probabilities = (
            np.stack([row[_PROBABILITIES] for row in rows]) if count else np.empty((0, n_arms))
        )
        timestamps = np.array([row[_TIME] for row in rows], dtype=np.float64)
        reward_times = [row[_REWARD_TIME] for row in rows]
        columns: dict[str, Any] = {
            "decision_id": pa.array([row[_ID] for row in rows], pa.string()),
            "timestamp": _timestamps(timestamps, pa),
            "unit": pa.array([row[_UNIT] for row in rows], pa.string()),
            "experiment": pa.array([self.salt] * count, pa.string()),
            "arm": pa.array([self.arms[row[_ARM]] for row in rows], pa.string()),
            "action": pa.array([row[_ARM] for row in rows], pa.int64()),
            "propensity": pa.array([row[_PROPENSITY] for row in rows], pa.float64()),
        }
        for k in range(n_arms):
            columns[f"prob_{k}"] = pa.array(probabilities[:, k], pa.float64())
        if self.policy.contextual:
            contexts = (
                np.stack([row[_CONTEXT] for row in rows])
                if count
                else np.empty((0, self.policy.n_features))
            )
            for j in range(self.policy.n_features):  # type: ignore[arg-type]
                columns[f"x_{j}"] = pa.array(contexts[:, j], pa.float64())
        columns["policy_version"] = pa.array([row[_VERSION] for row in rows], pa.int64())
        columns["period"] = pa.array([row[_PERIOD] for row in rows], pa.int64())
        columns["reward"] = pa.array([row[_REWARD] for row in rows], pa.float64())
        columns["reward_timestamp"] = _timestamps(
            np.array([math.nan if t is None else t for t in reward_times]), pa
        )
        columns["sticky"] = pa.array([row[_STICKY] for row in rows], pa.bool_())
        table = pa.table(columns)
        metadata = {
            "splitlab_version": _version(),
            "arms": self.arms,
            "policy": type(self.policy).__name__,
            "hyperparameters": self.policy._hyperparameters(),
            "mode": self.mode,
            "salt": self.salt,
        }
        return table.replace_schema_metadata({"splitlab": json.dumps(metadata)})

    # ------------------------------------------------------------------ replicas

    def _sufficient_statistics(self) -> dict[str, np.ndarray]:
        arrays = {f"policy.{k}": v for k, v in self.policy.additive_statistics().items()}
        arrays["decisions"] = np.array(self._decisions, dtype=np.float64)
        arrays["rewards"] = np.array(self._rewards, dtype=np.float64)
        arrays["reward_sums"] = np.array(self._reward_sums)
        return arrays

    def delta(self) -> bytes:
        """The sufficient statistics gathered here since the last delta (merged deltas
        excluded), as bytes for another replica's :meth:`merge`."""
        if self.policy.discount < 1.0:
            raise InvalidArgumentError(
                "policy", "replicas merge by addition; a discounted policy's statistics do not add"
            )
        with self._lock:
            current = self._sufficient_statistics()
            difference = {name: current[name] - self._delta_base[name] for name in current}
            self._delta_base = current
            self._delta_sequence += 1
            header = {
                "kind": "delta",
                "origin": self._epoch,
                "sequence": self._delta_sequence,
                **self._identity(),
            }
        return _pack(header, difference)

    def merge(self, delta: bytes) -> bool:
        """Add another replica's delta. Returns False (and changes nothing) for a delta
        merged before; N replicas exchanging deltas converge to one allocator's state."""
        header, arrays = _unpack(delta, "delta")
        identity = self._identity()
        for key, value in identity.items():
            if header.get(key) != value:
                raise InvalidArgumentError(
                    "delta", f"comes from an allocator with another {key}: {header.get(key)!r}"
                )
        key = (str(header["origin"]), int(header["sequence"]))
        with self._lock:
            if key in self._merged or key[0] == self._epoch:
                return False
            current = self._sufficient_statistics()
            for name, value in arrays.items():
                if name not in current or current[name].shape != value.shape:
                    raise InvalidArgumentError(
                        "delta", f"array {name!r} does not fit this allocator"
                    )
            self.policy.add_statistics(
                {name[7:]: value for name, value in arrays.items() if name.startswith("policy.")}
            )
            for name, value in arrays.items():
                self._delta_base[name] = self._delta_base[name] + value
            for k in range(len(self.arms)):
                self._decisions[k] += round(arrays["decisions"][k])
                self._rewards[k] += round(arrays["rewards"][k])
                self._reward_sums[k] += float(arrays["reward_sums"][k])
            self._merged.add(key)
            self._counters["merged_deltas"] += 1
            burn_in_ended = self._burning and min(self._decisions) >= self.burn_in
            self._rewards_since_refresh += round(arrays["rewards"].sum())
            if self.mode == "online":
                self._version += 1
                self._stale = True
            if burn_in_ended or self._rewards_since_refresh >= self.refresh_every:
                self._burning = False
                self._refresh(self._clock())
        return True

    def _identity(self) -> dict[str, Any]:
        return {
            "arms": self.arms,
            "policy": type(self.policy).__name__,
            "hyperparameters": self.policy._hyperparameters(),
            "n_features": self.policy.n_features,
        }

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> bytes:
        """Everything needed to resume: a JSON header (format, version, settings, counters,
        generator state, pending decisions) plus the state arrays; never pickle."""
        with self._lock:
            self._settle_srm()
            arrays = {f"policy.{k}": v[0].copy() for k, v in self.policy.arrays.items()}
            if self.mode == "periodic":
                arrays.update(
                    {f"serving.{k}": v[0].copy() for k, v in self._serving.arrays.items()}
                )
            arrays.update({f"base.{k}": v.copy() for k, v in self._delta_base.items()})
            periods = sorted(self._srm_periods)
            if periods:
                arrays["srm.counts"] = np.stack([self._srm_periods[p][0] for p in periods])
                arrays["srm.expected"] = np.stack([self._srm_periods[p][1] for p in periods])
            pending = list(self._pending.values())
            n_arms = len(self.arms)
            numbers = [_TIME, _ARM, _PROPENSITY, _VERSION, _PERIOD, _STICKY]
            arrays["pending.numbers"] = np.array(
                [[row[k] for k in numbers] for row in pending], dtype=np.float64
            ).reshape(len(pending), len(numbers))
            arrays["pending.probabilities"] = (
                np.stack([row[_PROBABILITIES] for row in pending])
                if pending
                else np.empty((0, n_arms))
            )
            if self.policy.contextual:
                arrays["pending.contexts"] = (
                    np.stack([row[_CONTEXT] for row in pending])
                    if pending
                    else np.empty((0, self.policy.n_features))
                )
            header = {
                "kind": "snapshot",
                **self._identity(),
                "settings": self._settings(),
                "state": {
                    "rng": self._rng.bit_generator.state,
                    "issued": {**self._issued, self._epoch: self._counter},
                    "counters": self._counters,
                    "decisions": self._decisions,
                    "rewards": self._rewards,
                    "reward_sums": self._reward_sums,
                    "burning": self._burning,
                    "winner": self._winner,
                    "period": self._period,
                    "version": self._version,
                    "rewards_since_refresh": self._rewards_since_refresh,
                    "seconds_since_refresh": self._clock() - self._refreshed_at,
                    "srm_periods": periods,
                    "delta_sequence": self._delta_sequence,
                    "merged": sorted([list(key) for key in self._merged]),
                    "pending_ids": [row[_ID] for row in pending],
                    "pending_units": [row[_UNIT] for row in pending],
                    "done": list(self._done),
                    "sticky": self._sticky_items(),
                },
            }
        return _pack(header, arrays)

    def _settings(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "salt": self.salt,
            "mode": self.mode,
            "refresh_every": self.refresh_every,
            "refresh_seconds": self.refresh_seconds,
            "burn_in": self.burn_in,
            "min_weight": self.min_weight,
            "winner_threshold": self.winner_threshold,
            "sticky": self.sticky,
            "sticky_capacity": getattr(self._sticky_store, "capacity", 1_000_000),
            "attribution_window": self.attribution_window,
            "max_pending": self.max_pending,
            "dedupe_capacity": self.dedupe_capacity,
            "log": self.log_enabled,
            "log_capacity": self.log_capacity,
        }

    def _sticky_items(self) -> list | None:
        if isinstance(self._sticky_store, BoundedStore):
            return [
                [unit, arm, propensity]
                for unit, (arm, propensity) in self._sticky_store._items.items()
            ]
        return None

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`snapshot` atomically (temporary file, then rename)."""
        blob = self.snapshot()
        target = Path(path)
        _atomic_write(target, lambda handle: handle.write(blob))
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, **options: Any) -> Allocator:
        """:meth:`restore` from a file written by :meth:`save`."""
        try:
            blob = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidArgumentError("path", f"cannot read {str(path)!r}: {exc}") from exc
        return cls.restore(blob, **options)

    @classmethod
    def restore(
        cls,
        blob: bytes,
        *,
        sticky_store: StickyStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Allocator:
        """Rebuild an allocator from :meth:`snapshot`; with the same seed it makes the same
        next decisions. Decision ids get a new prefix (no clash with ids issued before)."""
        header, arrays = _unpack(blob, "snapshot")
        try:
            return cls._from_snapshot(header, arrays, sticky_store, clock)
        except InvalidArgumentError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidArgumentError(
                "blob", f"snapshot content is inconsistent: {exc!r}"
            ) from exc

    @classmethod
    def _from_snapshot(cls, header, arrays, sticky_store, clock) -> Allocator:
        from splitlab import bandits

        name = header["policy"]
        policy_class = getattr(bandits, name, None)
        if not (isinstance(policy_class, type) and issubclass(policy_class, Policy)):
            raise InvalidArgumentError("blob", f"unknown policy {name!r} in the snapshot")

        def policy_from(prefix: str) -> Policy:
            state = {
                "policy": name,
                "format": policy_base.STATE_FORMAT,
                "hyperparameters": header["hyperparameters"],
                "n_arms": len(header["arms"]),
                "n_features": header["n_features"],
                "arrays": {k: arrays[f"{prefix}.{k}"] for k in policy_class._statistics},
            }
            return policy_class.from_state(state)

        settings = header["settings"]
        alloc = cls(
            header["arms"], policy_from("policy"), n_features=header["n_features"],
            sticky_store=sticky_store, clock=clock, **settings,
        )  # fmt: skip
        state = header["state"]
        if settings["mode"] == "periodic":
            alloc._serving = policy_from("serving")
        alloc._rng.bit_generator.state = state["rng"]
        alloc._issued.update(state["issued"])
        alloc._counters.update(state["counters"])
        alloc._decisions = [int(v) for v in state["decisions"]]
        alloc._rewards = [int(v) for v in state["rewards"]]
        alloc._reward_sums = [float(v) for v in state["reward_sums"]]
        alloc._burning = bool(state["burning"])
        alloc._winner = state["winner"]
        alloc._period = int(state["period"])
        alloc._version = int(state["version"])
        alloc._rewards_since_refresh = int(state["rewards_since_refresh"])
        alloc._refreshed_at = clock() - float(state["seconds_since_refresh"])
        for index, period in enumerate(state["srm_periods"]):
            alloc._srm_periods[int(period)] = [
                arrays["srm.counts"][index].copy(),
                arrays["srm.expected"][index].copy(),
            ]
        alloc._delta_base = {k[5:]: v.copy() for k, v in arrays.items() if k.startswith("base.")}
        alloc._delta_sequence = int(state["delta_sequence"])
        alloc._merged = {(str(origin), int(sequence)) for origin, sequence in state["merged"]}
        numbers = arrays["pending.numbers"]
        for position, decision_id in enumerate(state["pending_ids"]):
            when, arm, propensity, version, period, sticky = numbers[position]
            context = (
                arrays["pending.contexts"][position].copy() if alloc.policy.contextual else None
            )
            probabilities = arrays["pending.probabilities"][position].copy()
            probabilities.flags.writeable = False
            row = [
                decision_id, float(when), state["pending_units"][position], int(arm),
                float(propensity), probabilities, int(version), int(period), context,
                None, None, bool(sticky),
            ]  # fmt: skip
            alloc._pending[decision_id] = row
            if alloc._log is not None:
                alloc._log.append(row)
        alloc._done.update(dict.fromkeys(state["done"]))
        if state["sticky"] is not None and isinstance(alloc._sticky_store, BoundedStore):
            for unit, arm, propensity in state["sticky"]:
                alloc._sticky_store.set(unit, (arm, float(propensity)))
        alloc._stale = True
        return alloc

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _copy_policy(policy: Policy) -> Policy:
        """An independent policy with the same settings and statistics (the served copy)."""
        return type(policy).from_state(policy.state())

    def _check_label(self, label: object, argument: str = "arm") -> int:
        index = self._arm_index.get(label)  # type: ignore[arg-type]
        if index is None:
            raise InvalidArgumentError(argument, f"unknown arm {label!r} (arms: {self.arms})")
        return index

    def __repr__(self) -> str:
        return (
            f"Allocator(arms={self.arms!r}, policy={self.policy!r}, mode={self.mode!r}, "
            f"salt={self.salt!r})"
        )


# ---------------------------------------------------------------------- module helpers


def _cdf(propensities: list[float]) -> tuple[list[float], int]:
    """Running sums (sequential, as np.cumsum) and the last arm that can be drawn."""
    last = len(propensities) - 1
    while propensities[last] <= 0:
        last -= 1
    return list(accumulate(propensities)), last


def _draw(propensities: list[float], uniform: float) -> tuple[int, float]:
    """Inverse-CDF draw as ``draw_from``, on a Python list (no numpy calls for ~10 arms)."""
    cumulative, last = _cdf(propensities)
    index = min(bisect_right(cumulative, uniform * cumulative[-1]), last)
    return index, propensities[index]


def _prob_best(policy: Policy) -> np.ndarray:
    """Posterior probability that each arm is best (the Thompson probabilities)."""
    if isinstance(policy, TopTwoThompson):
        return policy._prob_best(None)
    return policy.probabilities()


def _check_arms(arms: object) -> list[str]:
    if isinstance(arms, str) or not isinstance(arms, Sequence):
        raise InvalidArgumentError("arms", "must be a list of arm labels")
    labels = list(arms)
    if len(labels) < 1:
        raise InvalidArgumentError("arms", "needs at least one arm")
    if not all(isinstance(label, str) and label for label in labels):
        raise InvalidArgumentError("arms", "labels must be non-empty strings")
    if len(set(labels)) != len(labels):
        raise InvalidArgumentError("arms", f"labels must be unique, got {labels}")
    return labels


def _optional_positive(name: str, value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a positive number, got {value!r}") from exc
    if not (math.isfinite(number) and number > 0):
        raise InvalidArgumentError(name, f"must be a positive number, got {value!r}")
    return number


def _probability(name: str, value: object, low: float, high: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a number, got {value!r}") from exc
    if not (math.isfinite(number) and low <= number <= high):
        raise InvalidArgumentError(name, f"must be in [{low:g}, {high:g}], got {value!r}")
    return number


def _timestamps(seconds: np.ndarray, pa: Any) -> Any:
    missing = np.isnan(seconds)
    micros = np.where(missing, 0, np.round(np.where(missing, 0, seconds) * 1e6)).astype(np.int64)
    return pa.array(micros, pa.timestamp("us", tz="UTC"), mask=missing)


def _version() -> str:
    from splitlab import __version__

    return __version__


def _atomic_write(target: Path, write: Callable[[Any], Any]) -> None:
    """Write through a temporary file in the same directory, then rename over ``target``."""
    if not target.parent.exists():
        raise InvalidArgumentError("path", f"directory {str(target.parent)!r} does not exist")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _pack(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """MAGIC | header length | JSON header | little-endian float64 arrays | CRC-32."""
    layout, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, dtype="<f8")
        layout[name] = {"offset": offset, "shape": list(data.shape)}
        chunks.append(data.tobytes())
        offset += data.nbytes
    document = {"format": SNAPSHOT_FORMAT, "splitlab": _version(), **header, "arrays": layout}
    text = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    body = b"".join([_MAGIC, _LENGTH.pack(len(text)), text, *chunks])
    return body + _CHECKSUM.pack(zlib.crc32(body))


def _unpack(blob: object, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError("blob", f"must be bytes, got {type(blob).__name__}")
    data = bytes(blob)
    if not data.startswith(_MAGIC):
        raise InvalidArgumentError("blob", f"is not a splitlab allocator {kind}")
    if len(data) < len(_MAGIC) + _LENGTH.size + _CHECKSUM.size:
        raise InvalidArgumentError("blob", f"is truncated ({len(data)} bytes)")
    body, (checksum,) = data[: -_CHECKSUM.size], _CHECKSUM.unpack(data[-_CHECKSUM.size :])
    if zlib.crc32(body) != checksum:
        raise InvalidArgumentError(
            "blob", f"is corrupt or truncated (checksum mismatch, {len(data)} bytes)"
        )
    start = len(_MAGIC) + _LENGTH.size
    (length,) = _LENGTH.unpack(body[len(_MAGIC) : start])
    try:
        header = json.loads(body[start : start + length])
    except ValueError as exc:
        raise InvalidArgumentError("blob", "has an unreadable header") from exc
    if header.get("format") != SNAPSHOT_FORMAT:
        raise InvalidArgumentError(
            "blob",
            f"has format {header.get('format')!r}; this splitlab ({_version()}) reads format "
            f"{SNAPSHOT_FORMAT}",
        )
    if header.get("kind") != kind:
        raise InvalidArgumentError("blob", f"is a {header.get('kind')}, not a {kind}")
    payload = body[start + length :]
    arrays = {}
    for name, spec in header["arrays"].items():
        shape = tuple(spec["shape"])
        count = math.prod(shape)
        begin = spec["offset"]
        if begin + 8 * count > len(payload):
            raise InvalidArgumentError("blob", f"array {name!r} runs past the end")
        arrays[name] = (
            np.frombuffer(payload, dtype="<f8", count=count, offset=begin).reshape(shape).copy()
        )
    return header, arrays

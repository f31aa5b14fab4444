"""The serving object: a thread-safe, persistent, mergeable decision service in-process.

:class:`Allocator` wraps any policy of :mod:`splitlab.bandits` and adds what serving needs:
arm labels, assignment by hashing, pending decisions joined to rewards by id, a decision log
with exact propensities, snapshots, replica deltas and an SRM guardrail. Each of those is a
module of this package (:mod:`~splitlab.allocator.assignment`,
:mod:`~splitlab.allocator.pending`, :mod:`~splitlab.allocator.log`,
:mod:`~splitlab.allocator.persistence`, :mod:`~splitlab.allocator.srm`, and
:mod:`~splitlab.allocator.serving` for the modes below); this one composes them under one
lock, keeps the counts and the replica bookkeeping, and reads snapshots back.

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

**What a crash loses.** An allocator lives in memory; :meth:`Allocator.save` (or
:meth:`Allocator.snapshot`) is its only durable form. A process that dies loses everything
since its last save: the decisions served (their counts, their pending state — a later
reward for one is an unknown id — and their log rows not yet flushed), the rewards joined,
and the deltas merged. A save itself is atomic: a process killed while saving leaves the
previous snapshot intact at the path, and its temporary file is removed by the next
:meth:`~Allocator.save`, :meth:`~Allocator.flush` or :meth:`~Allocator.load` in that
directory. A service that must not lose acknowledged rewards journals them before
acknowledging (as ``examples/service.py`` does).

**Replicas.** Each allocator has an :attr:`~Allocator.origin`, a random id new with every
construction and every restore (so two replicas restored from one snapshot never share
one). :meth:`~Allocator.delta` returns, per origin, the *cumulative* statistics this replica
knows from it — its own since it was built, its earlier incarnations' up to the snapshot it
was restored from, and those it merged — tagged with the number of observations behind
them; :meth:`~Allocator.merge` applies only the part it has not seen yet. This is a
state-based replicated counter (one grow-only vector per origin, Shapiro et al., "Conflict-
free replicated data types", SSS 2011): deltas may be lost, repeated, reordered or relayed
through other replicas, and any later delta carries everything an earlier one did.
"""

from __future__ import annotations

import math
import os
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from splitlab._validation import check_integer
from splitlab.allocator.assignment import BoundedStore, StickyStore, check_arms, draw
from splitlab.allocator.log import DecisionLog, decision_table
from splitlab.allocator.pending import (
    ARM,
    CONTEXT,
    PROPENSITY,
    REWARD,
    PendingDecision,
    PendingStore,
    UnknownDecision,
)
from splitlab.allocator.persistence import (
    COUNT_RULES,
    SETTING_FIELDS,
    SNAPSHOT_FORMAT,
    STATE_FIELDS,
    as_bool,
    as_dict,
    as_float,
    as_int,
    as_json,
    as_list,
    as_str,
    atomic_write,
    check_expected,
    checked_array,
    corrupt,
    field,
    from_format1,
    int_list,
    pack,
    policy_problem,
    read_contributions,
    remove_stale_temporaries,
    unpack,
)
from splitlab.allocator.serving import (
    check_min_weight,
    check_winner_threshold,
    copy_policy,
    draw_table,
    find_winner,
    serve_learned,
    served_probabilities,
    serving_mode,
)
from splitlab.allocator.srm import AllocatorSRM, SRMAccumulator, srm_result
from splitlab.bandits import base as policy_base
from splitlab.bandits.base import REWARD_LIMIT, Policy
from splitlab.bandits.mab import (
    EXP3,
    FixedSplit,
    ThompsonSampling,
)
from splitlab.errors import InvalidArgumentError
from splitlab.hashing import unit_uniform

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


class Allocator:
    """A policy served to many threads, with decisions logged and rewards joined by id.

    Parameters
    ----------
    arms : sequence of str
        Arm labels, in the order that fixes hashing buckets (put the control first).
    policy : a ``splitlab.bandits`` policy, default ``ThompsonSampling()``
        Sized here if built without ``n_arms`` (and ``n_features`` for contextual ones).
    seed : int, optional
        Seeds the generator of decisions made without ``unit`` (a non-negative integer).
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
        self.arms = check_arms(arms)
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
        self.mode = mode = serving_mode(mode, policy)
        if not isinstance(salt, str):
            raise InvalidArgumentError("salt", f"must be a string, got {type(salt).__name__}")
        self.salt = salt
        self.seed = None if seed is None else check_integer("seed", seed, minimum=0)
        self.refresh_every = check_integer("refresh_every", refresh_every)
        self.refresh_seconds = _optional_positive("refresh_seconds", refresh_seconds)
        self.burn_in = check_integer("burn_in", burn_in, minimum=0)
        self.min_weight = check_min_weight(min_weight, len(self.arms))
        self.winner_threshold = check_winner_threshold(winner_threshold, policy)
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
        self._rng = np.random.default_rng(self.seed)
        self._epoch = os.urandom(8).hex()  # the origin: decision ids and replica deltas
        self._counter = 0  # decisions issued under this epoch
        self._issued: dict[str, int] = {}  # decisions issued under earlier (restored) epochs
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
        self._log = DecisionLog(self.log_capacity, self._counters) if self.log_enabled else None
        self._pending = PendingStore(
            self.attribution_window, self.max_pending, self.dedupe_capacity, self._counters, clock
        )
        n_arms = len(self.arms)
        self._decisions = [0] * n_arms
        self._rewards = [0] * n_arms
        self._reward_sums = [0.0] * n_arms
        self._serving = copy_policy(policy) if mode == "periodic" else policy
        self._burning = self.burn_in > 0
        self._winner: int | None = None
        self._period = 0
        self._version = 1
        self._rewards_since_refresh = 0
        self._refreshed_at = clock()
        self._stale = True
        self._table: tuple = ()
        self._srm = SRMAccumulator(n_arms)
        # replicas: statistics present at construction are nobody's contribution; ``_seen``
        # holds, per other origin, (observations, cumulative statistics) applied from it
        self._events = 0  # decisions and rewards recorded here under this origin
        self._base = self._sufficient_statistics()
        self._seen: dict[str, tuple[int, dict[str, np.ndarray]]] = {}

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
                if self._stale and self._served_as_is():
                    index, propensity, probabilities = self._draw_fresh(uniform)
                else:
                    table = self._table
                    if self._stale or table[0] is None:
                        table = self._refresh_table()
                    index = min(bisect_right(table[0], uniform * table[1]), table[3])
                    propensity, probabilities = table[2][index], table[4]
                srm = self._srm  # a table draw, inline (see SRMAccumulator)
                srm.counts[index] += 1
                srm.table_served += 1
            else:
                probabilities = self._probabilities(context, available)
                index, propensity = draw(probabilities.tolist(), uniform)
                self._srm.served(index, probabilities, self._period)
            if self._sticky_store is not None and unit_key is not None:
                self._sticky_store.set(unit_key, (self.arms[index], propensity))
            return self._record(now, unit_key, index, propensity, probabilities, context, False)

    def _record(self, now, unit, index, propensity, probabilities, context, sticky) -> Decision:
        counter = self._counter
        self._counter = counter + 1
        self._events += 1
        decision_id = f"{self._epoch}-{counter:x}"
        version = self._version
        row = [  # pending.new_row, spelled out: a call costs a tenth of a choose
            decision_id, now, unit, index, propensity, probabilities, version, self._period,
            None if context is None else np.array(context, dtype=np.float64), None, None, sticky,
        ]  # fmt: skip
        self._pending.add(row, now)
        log = self._log
        if log is not None:  # DecisionLog's append, inline
            if len(log.rows) >= log.capacity:
                log.drop_oldest()
            log.rows.append(row)
        decisions = self._decisions
        decisions[index] += 1
        if self._burning and decisions[index] == self.burn_in and min(decisions) >= self.burn_in:
            self._burning = False
            self._refresh(now)
        return _new_tuple(
            Decision,
            (decision_id, self.arms[index], propensity, probabilities, version, now, unit, index,
             sticky),
        )  # fmt: skip

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
        A reward must be a finite number with ``|reward| <= REWARD_LIMIT`` (1e100, so that
        no sum of rewards or of their squares can overflow) inside the policy's range; a
        refused reward changes nothing.
        """
        if reward is None:
            raise InvalidArgumentError("reward", "is required")
        reward = _reward_value(reward)
        if decision is None:
            if arm is None:
                raise InvalidArgumentError("decision", "give a decision, its id, or arm=")
            index = self._check_label(arm)
            if context is not None and not self.policy.contextual:
                raise InvalidArgumentError(
                    "context", f"{type(self.policy).__name__} takes no context"
                )
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
            try:
                claimed = self._pending.claim(decision_id)
            except UnknownDecision:
                raise InvalidArgumentError("decision", self._missing(decision_id)) from None
            if claimed is None:
                return False
            row, now = claimed
            index = row[ARM]
            weight = 1.0
            if self._importance_weighted:
                # EXP3 divides by the arm's probability at update time; rescale so that the
                # estimate divides by the propensity the decision was actually drawn with
                current = self.policy._cached_probabilities()[index]
                weight = float(current) / row[PROPENSITY]
            self.policy.update(index, reward, row[CONTEXT], weight)  # validates first
            self._pending.complete(row, reward, now)
            self._count_reward(index, row[REWARD])
        return True

    def pending_decision(self, decision_id: str) -> PendingDecision | None:
        """The decision ``decision_id`` if it is still waiting for its reward, else None."""
        with self._lock:
            return self._pending.decision(decision_id, self.arms)

    def _count_reward(self, index: int, reward: float) -> None:
        self._events += 1
        self._rewards[index] += 1
        self._reward_sums[index] += reward
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
            return (self._refresh_table() if self._stale else self._table)[4]
        raw = self._serving.probabilities(context, mask)
        shaped = served_probabilities(raw, mask, self._burning, self._winner, self.min_weight)
        shaped.setflags(write=False)  # half the cost of flags.writeable = False
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

    def _refresh_table(self) -> tuple:
        """Rebuild the context-free draw table (CDF as Python lists for bisect)."""
        if not self._stale:  # the probabilities are served already, only the lists are new
            self._table = draw_table(self._table[4])
            return self._table
        serving = self._serving
        if self.winner_threshold is not None and self._winner is None and not self._burning:
            self._winner = find_winner(serving, self.winner_threshold)
        probabilities = served_probabilities(
            serving._cached_probabilities(), None, self._burning, self._winner, self.min_weight
        )
        self._table = draw_table(probabilities)
        self._srm.new_table(probabilities, self._period)
        self._stale = False
        return self._table

    def _served_as_is(self) -> bool:
        """Whether the served probabilities are the policy's own (no winner to look for,
        no burn-in, no floor)."""
        return (
            self.winner_threshold is None
            and self._winner is None
            and not self._burning
            and self.min_weight == 0
        )

    def _draw_fresh(self, uniform: float) -> tuple[int, float, np.ndarray]:
        """The first draw from new probabilities served as the policy computes them: the
        policy computes and draws in one step (``Policy._draw_fresh``); the table's lists,
        which an update before every choice would never use, wait for a second draw."""
        serving = self._serving
        index, propensity = serving._draw_fresh(uniform)
        probabilities = serving._cache
        probabilities.setflags(write=False)  # type: ignore[union-attr]
        self._table = (None, None, None, None, probabilities)
        self._srm.new_table(probabilities, self._period)  # type: ignore[arg-type]
        self._stale = False
        return index, propensity, probabilities  # type: ignore[return-value]

    def _refresh(self, now: float) -> None:
        """End the period; in periodic mode serve the learner's current weights."""
        self._srm.settle(self._period)
        self._period += 1
        self._version += 1
        self._rewards_since_refresh = 0
        self._refreshed_at = now
        self._counters["refreshes"] += 1
        if self.mode == "periodic":
            serve_learned(self.policy, self._serving)
        self._stale = True

    def refresh(self) -> None:
        """Refresh the served weights now (and start a new period)."""
        with self._lock:
            self._refresh(self._clock())

    def edit_policy(self, edit: Callable[[Policy], None]) -> None:
        """Run ``edit(policy)`` under the allocator's lock (no choose or update interleaves
        with it), then serve the edited statistics at once: for a drift guard that resets
        an arm's statistics to the prior (:class:`~splitlab.allocator.drift.DriftGuard`).

        >>> from splitlab.bandits import ThompsonSampling
        >>> alloc = Allocator(["a", "b"], policy=ThompsonSampling(), seed=0)
        >>> alloc.edit_policy(lambda policy: setattr(policy, "discount", 0.99))
        >>> alloc.policy.discount
        0.99
        """
        with self._lock:
            edit(self.policy)
            self.policy.synchronize()
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
            self._serving = copy_policy(ramped) if self.mode == "periodic" else ramped
            self._refresh(self._clock())

    # ------------------------------------------------------------------ bookkeeping

    def counters(self) -> dict[str, int]:
        """Operational counts: duplicates ignored, decisions expired or evicted before their
        reward, log rows dropped, deltas merged, refreshes, and pending decisions."""
        with self._lock:
            return {
                **self._counters,
                "pending": len(self._pending),
                "log_rows": 0 if self._log is None else len(self._log),
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
            periods = self._srm.settled(self._period)
        return srm_result(periods, self.arms, alpha)

    # ------------------------------------------------------------------ decision log

    def flush(self, path: str | os.PathLike, *, include_pending: bool = False) -> Path | None:
        """Write the logged decisions that are complete (rewarded or expired) to Parquet and
        drop them from the buffer; pending ones stay (all of them with ``include_pending``).

        ``path`` is a ``.parquet`` file (replaced atomically) or an existing directory, which
        receives a new part file per call (a dataset the Analyzer and ``splitlab.ope`` read).
        Returns the file written, or None when a directory flush had nothing to write.
        """
        import pyarrow.parquet as pq

        target = Path(path)
        if self._log is None:
            raise InvalidArgumentError("path", "this allocator keeps no decision log (log=False)")
        with self._lock:
            rows = self._log.take(() if include_pending else self._pending)
            if target.is_dir():
                if not rows:
                    return None
                target = target / f"decisions-{self._epoch}-{self._counters['flushes']:06d}.parquet"
            self._counters["flushes"] += 1
        try:  # serving goes on while the file is written
            table = decision_table(rows, self.arms, self.salt, self.policy, self.mode)
            atomic_write(target, lambda handle: pq.write_table(table, handle))
        except BaseException:
            with self._lock:  # nothing is lost: the rows go back to the front of the buffer
                self._log.put_back(rows)
            raise
        return target

    # ------------------------------------------------------------------ replicas

    @property
    def origin(self) -> str:
        """This replica's id in deltas (and the prefix of its decision ids): random, new with
        every construction and every :meth:`restore`.

        >>> a = Allocator(["x", "y"], seed=0)
        >>> b = Allocator.restore(a.snapshot())
        >>> len(a.origin), a.origin != b.origin
        (16, True)
        """
        return self._epoch

    def _sufficient_statistics(self) -> dict[str, np.ndarray]:
        arrays = {f"policy.{k}": v for k, v in self.policy.additive_statistics().items()}
        arrays["decisions"] = np.array(self._decisions, dtype=np.float64)
        arrays["rewards"] = np.array(self._rewards, dtype=np.float64)
        arrays["reward_sums"] = np.array(self._reward_sums)
        return arrays

    def _own_contribution(self) -> dict[str, np.ndarray]:
        """What this origin added: current statistics less the base and what was merged."""
        own = {
            name: value - self._base[name] for name, value in self._sufficient_statistics().items()
        }
        for _, seen in self._seen.values():
            for name, value in seen.items():
                own[name] -= value
        return own

    def delta(self) -> bytes:
        """What this replica knows, per origin, as bytes for another replica's
        :meth:`merge`: the cumulative statistics of its own decisions and rewards, of its
        earlier incarnations (up to the snapshot it was restored from) and of every origin it
        merged, each tagged with the number of observations behind it.

        A delta changes nothing here, so a lost one is simply re-sent (or superseded by the
        next), and one delta brings the receiver up to date with everything the sender knew.
        Its size grows with the number of origins, not with traffic. Discounted policies
        cannot be replicated (their statistics do not add).

        >>> a, b = Allocator(["x", "y"], seed=1), Allocator(["x", "y"], seed=2)
        >>> a.update(a.choose(), 1.0)
        True
        >>> lost = a.delta()
        >>> a.update(a.choose(), 0.0)
        True
        >>> b.merge(a.delta()), b.merge(lost), int(b.stats()["rewards"].sum())
        (True, False, 2)
        """
        if self.policy.discount < 1.0:
            raise InvalidArgumentError(
                "policy", "replicas merge by addition; a discounted policy's statistics do not add"
            )
        with self._lock:
            entries = [(self._epoch, self._events, self._own_contribution())]
            entries += [(origin, events, seen) for origin, (events, seen) in self._seen.items()]
        contributions, arrays = [], {}
        for position, (origin, events, statistics) in enumerate(
            entry for entry in entries if entry[1] > 0
        ):
            contributions.append({"origin": origin, "events": events})
            arrays.update({f"{position}.{name}": value for name, value in statistics.items()})
        header = {
            "kind": "delta",
            "origin": self._epoch,
            "contributions": contributions,
            **self._identity(),
        }
        return pack(header, arrays)

    def merge(self, delta: bytes) -> bool:
        """Apply another replica's :meth:`delta`: for each origin in it, the part beyond what
        this replica has already seen from that origin (nothing for its own origin, nothing
        for an older delta). Returns whether anything changed; N replicas exchanging deltas
        converge to one allocator's state. A delta that does not fit (other arms, policy or
        settings; corrupt; an origin going backwards) raises and changes nothing."""
        header, arrays = unpack(delta, "delta")
        identity = self._identity()
        for key, value in identity.items():
            if header.get(key) != value:
                raise InvalidArgumentError(
                    "delta", f"comes from an allocator with another {key}: {header.get(key)!r}"
                )
        shapes = {name: value.shape for name, value in self._base.items()}
        incoming = read_contributions(header, arrays, shapes)
        with self._lock:
            increments = {name: np.zeros(shape) for name, shape in shapes.items()}
            applied: dict[str, tuple[int, dict[str, np.ndarray]]] = {}
            for origin, (events, statistics) in incoming.items():
                seen = self._seen.get(origin)
                if origin == self._epoch or (seen is not None and events <= seen[0]):
                    continue
                for name, value in statistics.items():
                    step = value if seen is None else value - seen[1][name]
                    if name in ("decisions", "rewards") and np.any(step < 0):
                        raise InvalidArgumentError(
                            "delta", f"origin {origin!r} has fewer {name} than already merged"
                        )
                    increments[name] += step
                applied[origin] = (events, statistics)
            if not applied:
                return False
            self._add_statistics(increments)
            self._seen.update(applied)
            self._counters["merged_deltas"] += 1
            burn_in_ended = self._burning and min(self._decisions) >= self.burn_in
            self._rewards_since_refresh += round(increments["rewards"].sum())
            if self.mode == "online":
                self._version += 1
                self._stale = True
            if burn_in_ended or self._rewards_since_refresh >= self.refresh_every:
                self._burning = False
                self._refresh(self._clock())
        return True

    def _add_statistics(self, increments: dict[str, np.ndarray]) -> None:
        """Add merged statistics, all or nothing: the policy's go through a trial copy that
        must stay a valid posterior before anything here changes."""
        sums = np.array(self._reward_sums) + increments["reward_sums"]
        if not np.isfinite(sums).all():
            raise InvalidArgumentError("delta", "its reward sums overflow this allocator's")
        trial = copy_policy(self.policy)
        try:
            trial.add_statistics(
                {
                    name[7:]: value
                    for name, value in increments.items()
                    if name.startswith("policy.")
                }
            )
        except InvalidArgumentError as exc:
            raise InvalidArgumentError("delta", f"does not fit the policy: {exc}") from exc
        problem = policy_problem(trial)
        if problem is not None:
            raise InvalidArgumentError("delta", f"would leave the policy invalid: {problem}")
        for name, array in trial.arrays.items():
            self.policy.arrays[name] = array
        self.policy._touch()
        for k in range(len(self.arms)):
            self._decisions[k] += round(increments["decisions"][k])
            self._rewards[k] += round(increments["rewards"][k])
        self._reward_sums = sums.tolist()

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
        generator state, pending decisions, replica bookkeeping) plus the state arrays;
        never pickle. Everything is copied under the lock, so a snapshot taken while other
        threads serve is one consistent state (it is encoded after the lock is released)."""
        with self._lock:
            self._srm.settle(self._period)
            # a sync point: from here on this allocator and any restored copy compute (and
            # serve) bit-identical probabilities, whatever grid the quadrature had cached
            self.policy.synchronize()
            self._serving.synchronize()
            self._stale = True
            arrays = {f"policy.{k}": v[0].copy() for k, v in self.policy.arrays.items()}
            if self.mode == "periodic":
                arrays.update(
                    {f"serving.{k}": v[0].copy() for k, v in self._serving.arrays.items()}
                )
            arrays.update({f"base.{k}": v.copy() for k, v in self._base.items()})
            for position, (_, seen) in enumerate(self._seen.values()):
                arrays.update({f"seen.{position}.{k}": v for k, v in seen.items()})
            srm_periods = self._srm.periods
            periods = sorted(srm_periods)
            if periods:
                arrays["srm.counts"] = np.stack([srm_periods[p][0] for p in periods])
                arrays["srm.expected"] = np.stack([srm_periods[p][1] for p in periods])
            pending, pending_arrays = self._pending.snapshot(
                len(self.arms), self.policy.n_features if self.policy.contextual else None
            )
            arrays.update(pending_arrays)
            header = {
                "kind": "snapshot",
                **self._identity(),
                "settings": self._settings(),
                "state": {
                    "rng": self._rng.bit_generator.state,
                    "issued": {**self._issued, self._epoch: self._counter},
                    "counters": dict(self._counters),
                    "decisions": list(self._decisions),
                    "rewards": list(self._rewards),
                    "reward_sums": list(self._reward_sums),
                    "burning": self._burning,
                    "winner": self._winner,
                    "period": self._period,
                    "version": self._version,
                    "rewards_since_refresh": self._rewards_since_refresh,
                    "seconds_since_refresh": self._clock() - self._refreshed_at,
                    "srm_periods": periods,
                    "origin": self._epoch,
                    "events": self._events,
                    "seen": [[origin, events] for origin, (events, _) in self._seen.items()],
                    **pending,
                    "sticky": self._sticky_items(),
                },
            }
        return pack(header, arrays)

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
        """Write :meth:`snapshot` atomically: to a temporary file in the same directory
        (fsynced, then renamed over ``path``, then the directory fsynced). A process killed
        while saving leaves the previous snapshot at ``path``; the temporary files of
        killed saves in that directory are removed by the next save, flush or load there.

        What a crash loses is everything since the last save (see the module docstring)."""
        blob = self.snapshot()
        target = Path(path)
        atomic_write(target, lambda handle: handle.write(blob))
        return target

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        expect: Allocator | dict[str, Any] | None = None,
        **options: Any,
    ) -> Allocator:
        """:meth:`restore` from a file written by :meth:`save` (``expect`` and the other
        options as there): snapshot formats 2 and 1 (converted as :meth:`restore` says).
        Temporary files that killed saves left in the directory are removed first."""
        target = Path(path)
        remove_stale_temporaries(target.parent)
        try:
            blob = target.read_bytes()
        except OSError as exc:
            raise InvalidArgumentError("path", f"cannot read {str(path)!r}: {exc}") from exc
        return cls.restore(blob, expect=expect, **options)

    @classmethod
    def restore(
        cls,
        blob: bytes,
        *,
        expect: Allocator | dict[str, Any] | None = None,
        sticky_store: StickyStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Allocator:
        """Rebuild an allocator from :meth:`snapshot`; with the same seed it makes the same
        next decisions. It gets a new :attr:`origin` (decision ids get a new prefix, and its
        deltas a new origin); what the snapshot's origin had contributed is remembered as
        seen, so its own earlier deltas are not counted twice.

        ``expect`` refuses a snapshot of another experiment: a dict with any of ``arms``
        (list of labels), ``policy`` (a policy class name, class, or instance — an
        instance also fixes the hyperparameters) and ``salt``; or an Allocator, whose
        arms, policy (with hyperparameters and ``n_features``) and salt must all match.

        Every field is checked (types, shapes, finite values, ranges, arm and winner
        indices, valid posteriors, counters that agree); anything wrong raises
        :class:`~splitlab.errors.InvalidArgumentError` for ``blob`` naming the field.

        **Formats read**: 2, which :meth:`snapshot` writes, and 1, written by splitlab
        before per-origin deltas, converted on reading and checked as strictly (a
        snapshot taken afterwards is format 2). In a format-1 snapshot the
        statistics beyond its delta base (its own decisions and rewards since its last
        :meth:`delta`, never shipped) become the contribution of an earlier incarnation
        under the origin ``"<writer epoch>:<deltas it had sent>"``, so the next delta
        ships them, once even from two replicas restored from that one snapshot; what it
        had sent or merged is common to the replicas already and stays out of deltas.
        Format-1 deltas themselves cannot be merged. A GaussianThompson's sums (n, Σr,
        Σr²) become count, mean and centred M2 (:meth:`GaussianThompson.from_state
        <splitlab.bandits.GaussianThompson.from_state>`).

        >>> alloc = Allocator(["a", "b"], seed=0, salt="exp-1")
        >>> blob = alloc.snapshot()
        >>> Allocator.restore(blob, expect={"arms": ["a", "b"], "salt": "exp-1"}).arms
        ['a', 'b']
        >>> try:
        ...     Allocator.restore(blob, expect={"salt": "exp-2"})
        ... except ValueError as error:
        ...     print(error)
        blob: is a snapshot of another experiment: salt is 'exp-1', expected 'exp-2'
        """
        expected = _expectations(expect)
        if not callable(clock):
            raise InvalidArgumentError("clock", "must be a function returning seconds")
        header, arrays = unpack(blob, "snapshot")
        try:
            if header["format"] == 1:
                header, arrays = from_format1(header, arrays)
            return cls._from_snapshot(header, arrays, sticky_store, clock, expected)
        except Exception as exc:  # the checks below are meant to be complete; this is the net
            converted = header["format"] != SNAPSHOT_FORMAT
            if isinstance(exc, InvalidArgumentError):
                if exc.argument == "blob" and not converted:
                    raise
                problem = (
                    f"{exc.argument}: {exc.problem}" if exc.argument != "blob" else exc.problem
                )
            else:
                problem = f"snapshot content is inconsistent: {exc!r}"
            if converted:
                problem += f" (in a format {header['format']} snapshot)"
            raise InvalidArgumentError("blob", problem) from exc

    @classmethod
    def _from_snapshot(cls, header, arrays, sticky_store, clock, expected) -> Allocator:
        from splitlab import bandits

        arms = check_arms(field(header, "arms", ""))
        n_arms = len(arms)
        name = as_str(field(header, "policy", ""), "policy")
        if name not in bandits.__all__ or name == "Policy":
            raise corrupt("policy", f"names no splitlab policy: {name!r}")
        policy_class = getattr(bandits, name)
        hyperparameters = as_dict(field(header, "hyperparameters", ""), "hyperparameters")
        n_features = field(header, "n_features", "")
        if n_features is not None:
            n_features = as_int(n_features, "n_features", minimum=1)
        settings = as_dict(field(header, "settings", ""), "settings", set(SETTING_FIELDS))
        for key in ("sticky", "log"):
            as_bool(settings[key], f"settings.{key}")
        check_expected(expected, arms, name, hyperparameters, n_features, settings["salt"])
        prior = policy_class(**hyperparameters)
        prior.resize(n_arms, n_features)
        shapes = {key: value.shape[1:] for key, value in prior.arrays.items()}
        statistic_shapes = {f"policy.{k}": v.shape for k, v in prior.additive_statistics().items()}
        statistic_shapes.update(dict.fromkeys(("decisions", "rewards", "reward_sums"), (n_arms,)))

        def policy_from(prefix: str) -> Policy:
            state = {
                "policy": name,
                "format": policy_base.STATE_FORMAT,
                "hyperparameters": hyperparameters,
                "n_arms": n_arms,
                "n_features": n_features,
                "arrays": {
                    k: checked_array(arrays, f"{prefix}.{k}", shape) for k, shape in shapes.items()
                },
            }
            policy = policy_class.from_state(state)
            problem = policy_problem(policy)
            if problem is not None:
                raise corrupt(prefix, problem)
            return policy

        alloc = cls(
            arms, policy_from("policy"), n_features=n_features, sticky_store=sticky_store,
            clock=clock, **settings,
        )  # fmt: skip
        state = as_dict(field(header, "state", ""), "state", set(STATE_FIELDS))
        names = {f"policy.{k}" for k in shapes} | {f"base.{k}" for k in statistic_shapes}
        names |= {"pending.numbers", "pending.probabilities"}
        if alloc.mode == "periodic":
            alloc._serving = policy_from("serving")
            names |= {f"serving.{k}" for k in shapes}
        rng = as_dict(state["rng"], "state.rng")
        if rng.get("bit_generator") != type(alloc._rng.bit_generator).__name__:
            raise corrupt("state.rng", f"is not a {type(alloc._rng.bit_generator).__name__} state")
        try:
            alloc._rng.bit_generator.state = rng
        except Exception as exc:
            raise corrupt("state.rng", f"is not a valid generator state ({exc})") from exc
        issued = as_dict(state["issued"], "state.issued")
        for epoch, count in issued.items():
            as_int(count, f"state.issued.{epoch}")
        alloc._issued.update(issued)
        counters = as_dict(state["counters"], "state.counters", set(alloc._counters))
        for key, value in counters.items():
            alloc._counters[key] = as_int(value, f"state.counters.{key}")
        decisions = int_list(state["decisions"], "state.decisions", n_arms)
        rewards = int_list(state["rewards"], "state.rewards", n_arms)
        reward_sums = [
            as_float(v, f"state.reward_sums[{k}]")
            for k, v in enumerate(as_list(state["reward_sums"], "state.reward_sums", n_arms))
        ]
        for k in range(n_arms):
            if abs(reward_sums[k]) > REWARD_LIMIT * rewards[k]:
                raise corrupt(
                    f"state.reward_sums[{k}]", f"is impossible for {rewards[k]} reward(s)"
                )
        alloc._decisions, alloc._rewards, alloc._reward_sums = decisions, rewards, reward_sums
        alloc._burning = as_bool(state["burning"], "state.burning")
        if alloc._burning and min(decisions) >= alloc.burn_in:
            raise corrupt("state.burning", f"is true but every arm has burn_in={alloc.burn_in}")
        if state["winner"] is not None:
            if alloc.winner_threshold is None:
                raise corrupt("state.winner", "is set but there is no winner_threshold")
            alloc._winner = as_int(state["winner"], "state.winner", maximum=n_arms - 1)
        alloc._period = as_int(state["period"], "state.period")
        alloc._version = as_int(state["version"], "state.version", minimum=1)
        alloc._rewards_since_refresh = as_int(
            state["rewards_since_refresh"], "state.rewards_since_refresh"
        )
        elapsed = as_float(state["seconds_since_refresh"], "state.seconds_since_refresh")
        alloc._refreshed_at = clock() - elapsed
        periods = as_list(state["srm_periods"], "state.srm_periods")
        for position, period in enumerate(periods):
            as_int(period, f"state.srm_periods[{position}]", maximum=alloc._period)
        if sorted(set(periods)) != periods:
            raise corrupt("state.srm_periods", "must be distinct and increasing")
        if periods:
            names |= {"srm.counts", "srm.expected"}
            counts = checked_array(
                arrays, "srm.counts", (len(periods), n_arms), minimum=0, whole=True
            )
            expected_counts = checked_array(
                arrays, "srm.expected", (len(periods), n_arms), minimum=0
            )
            for position, period in enumerate(periods):
                alloc._srm.periods[period] = [counts[position], expected_counts[position]]
        alloc._base = {
            key: checked_array(arrays, f"base.{key}", shape, **COUNT_RULES.get(key, {}))
            for key, shape in statistic_shapes.items()
        }
        origin = as_str(state["origin"], "state.origin")
        seen_entries = as_list(state["seen"], "state.seen")
        for position, entry in enumerate(seen_entries):
            where = f"state.seen[{position}]"
            pair = as_list(entry, where, 2)
            seen_origin = as_str(pair[0], where)
            if seen_origin == origin or seen_origin in alloc._seen:
                raise corrupt(where, f"repeats origin {seen_origin!r}")
            alloc._seen[seen_origin] = (
                as_int(pair[1], where, minimum=1),
                {
                    key: checked_array(
                        arrays, f"seen.{position}.{key}", shape, **COUNT_RULES.get(key, {})
                    )
                    for key, shape in statistic_shapes.items()
                },
            )
            names |= {f"seen.{position}.{key}" for key in statistic_shapes}
        events = as_int(state["events"], "state.events")
        own = alloc._own_contribution()
        for key in ("decisions", "rewards"):
            if np.any(own[key] < 0):
                raise corrupt(
                    f"state.{key}", "are fewer than the replica contributions they include"
                )
        if events > 0:  # the snapshot's origin is an earlier incarnation of this replica
            alloc._seen[origin] = (events, own)
        rows = alloc._pending.restore(
            state, arrays, names, n_arms,
            alloc.policy.n_features if alloc.policy.contextual else None,
            alloc._version, alloc._period,
        )  # fmt: skip
        if alloc._log is not None:
            alloc._log.extend(rows)
        extra = set(arrays) - names
        if extra:
            raise InvalidArgumentError("blob", f"has unexpected array(s) {sorted(extra)}")
        if state["sticky"] is not None:
            if not alloc.sticky:
                raise corrupt("state.sticky", "holds units but the allocator is not sticky")
            entries = []
            for position, item in enumerate(as_list(state["sticky"], "state.sticky")):
                where = f"state.sticky[{position}]"
                unit, arm, propensity = as_list(item, where, 3)
                as_str(unit, where)
                if arm not in alloc._arm_index:
                    raise corrupt(where, f"names an unknown arm {arm!r}")
                entries.append(
                    (unit, arm, as_float(propensity, where, low=0.0, high=1.0, open_low=True))
                )
            if isinstance(alloc._sticky_store, BoundedStore):
                for unit, arm, propensity in entries:
                    alloc._sticky_store.set(unit, (arm, propensity))
        alloc._stale = True
        return alloc

    # ------------------------------------------------------------------ helpers

    @property
    def _srm_counts(self) -> list[int]:
        """The current period's draw counts not yet folded (tests inject draws here)."""
        return self._srm.counts

    @property
    def _table_served(self) -> int:
        return self._srm.table_served

    @_table_served.setter
    def _table_served(self, value: int) -> None:
        self._srm.table_served = value

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


def _reward_value(reward: object) -> float:
    """A reward as a float: a number (bools count as 0/1), finite, within REWARD_LIMIT."""
    if isinstance(reward, (str, bytes)):
        raise InvalidArgumentError("reward", f"must be a number, got {reward!r}")
    try:
        value = float(reward)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("reward", f"must be a number, got {reward!r}") from exc
    if not math.isfinite(value):
        raise InvalidArgumentError("reward", f"must be finite, got {reward!r}")
    if abs(value) > REWARD_LIMIT:
        raise InvalidArgumentError(
            "reward",
            f"must be at most {REWARD_LIMIT:g} in magnitude (so that sums of rewards and of "
            f"their squares stay finite), got {reward!r}",
        )
    return value


# ---------------------------------------------------------------------- snapshot checks

_EXPECTABLE = ("arms", "policy", "salt")


def _expectations(expect: object) -> dict[str, Any]:
    """``expect=`` as {field: value}: arms, policy (name, or (name, hyperparameters)),
    n_features, salt."""
    if expect is None:
        return {}
    if isinstance(expect, Allocator):
        return {
            "arms": list(expect.arms),
            "policy": (type(expect.policy).__name__, as_json(expect.policy._hyperparameters())),
            "n_features": expect.policy.n_features,
            "salt": expect.salt,
        }
    if not isinstance(expect, dict):
        raise InvalidArgumentError(
            "expect", f"must be a dict or an Allocator, got {type(expect).__name__}"
        )
    unknown = sorted(set(expect) - set(_EXPECTABLE))
    if unknown:
        raise InvalidArgumentError("expect", f"unknown key(s) {unknown}; use {list(_EXPECTABLE)}")
    out: dict[str, Any] = {}
    if "arms" in expect:
        out["arms"] = check_arms(expect["arms"])
    if "salt" in expect:
        if not isinstance(expect["salt"], str):
            raise InvalidArgumentError("expect", "salt must be a string")
        out["salt"] = expect["salt"]
    if "policy" in expect:
        policy = expect["policy"]
        if isinstance(policy, Policy):
            out["policy"] = (type(policy).__name__, as_json(policy._hyperparameters()))
        elif isinstance(policy, type) and issubclass(policy, Policy):
            out["policy"] = (policy.__name__, None)
        elif isinstance(policy, str):
            out["policy"] = (policy, None)
        else:
            raise InvalidArgumentError("expect", "policy must be a policy name, class or instance")
    return out

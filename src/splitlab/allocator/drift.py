"""Guard a serving Allocator against reward drift: detect, then forget or discount.

:class:`DriftGuard` sits in front of :meth:`Allocator.update`. Each reward it forwards is
also fed to a change detector (:mod:`splitlab.sequential.changepoint`) — one per arm, or
one for the pooled stream — and when a detector alarms, the guard

- ``action="reset"``: puts the alarmed arm's learned statistics (all arms' when
  ``per_arm=False`` or ``scope="all"``) back to the policy's prior, so that the policy
  explores it again; the new statistics are built by the policy's own
  ``state()``/``from_state()`` from a fresh policy of the same class and hyperparameters;
- ``action="discount"``: switches the policy to discounting (``policy.discount =
  discount``, the same exponential forgetting as ``ThompsonSampling(discount=...)``),
  so that old rewards fade from then on;

and logs the alarm (``DriftGuard.alarms``, and a warning on the
``splitlab.allocator.drift`` logger). The alarmed detector then starts again (after its
warm-up). The false-alarm guarantee is the detector's, per arm: under no change in an
arm's reward mean, that arm's alarms are on average at least the detector's ARL rewards
apart (e-detectors need no independence: a bandit's rewards qualify as long as their
conditional mean given the past is the arm's mean).

Limits: only rewards of the arms that are played are seen, so a change in an arm the
policy has abandoned is found only once it is played again; and a reset or discounting
removes statistics that replicas' deltas count, so a guarded allocator should not exchange
:meth:`Allocator.delta` with replicas (the Allocator already refuses deltas of discounted
policies for that reason).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from splitlab._validation import as_float_array, check_bool, check_choice, check_integer
from splitlab.allocator.allocator import Allocator, Decision
from splitlab.errors import InvalidArgumentError
from splitlab.sequential.changepoint import EDetector, GaussianCUSUM

__all__ = ["DriftAlarm", "DriftGuard"]

ACTIONS = ("reset", "discount")
SCOPES = ("arm", "all")
LOGGER = logging.getLogger(__name__)
POOLED = None  # the detector key of the pooled stream (per_arm=False)

DetectorFactory = Callable[[str | None, np.ndarray], Any]


class DriftAlarm(NamedTuple):
    """One alarm: when (``time`` by the guard's clock, ``step`` = rewards the guard had
    seen), on which ``arm`` (None for the pooled stream), the detector's ``statistic``,
    the ``observations`` it had seen since it started, ``since_change`` — how many of
    them came at or after its change-point estimate (None without one) — and the
    ``action`` taken."""

    time: float
    step: int
    arm: str | None
    statistic: float
    observations: int
    since_change: int | None
    action: str


class DriftGuard:
    """Forward rewards to an Allocator and act on a change in their mean.

    Parameters
    ----------
    allocator : Allocator
        The allocator to guard; send its rewards through :meth:`update` from now on.
    detector : EDetector | GaussianCUSUM | callable
        A detector to copy for each arm, or ``factory(arm, warmup_rewards) -> detector``
        called when an arm has had ``warmup`` rewards since the start or its last
        alarm (``arm`` is None when ``per_arm=False``); a factory that raises
        InvalidArgumentError is asked again when the warm-up has doubled; e.g.
        ``lambda arm, rewards: EDetector.from_baseline(rewards, 0.2, bounds=(0, 1))``,
        which learns the arm's pre-change mean from the warm-up.
    action : "reset" | "discount"
        What an alarm does (module docstring).
    discount : float
        The discount factor in (0, 1) that ``action="discount"`` switches to.
    per_arm : bool
        One detector per arm (and an alarm resets that arm), or one on the pooled reward
        stream (an alarm resets every arm). The pooled stream's mean moves whenever the
        policy shifts traffic, so per-arm detectors are the ones with a clean guarantee.
    scope : "arm" | "all"
        Whether a per-arm alarm resets only that arm or every arm. Resetting all costs the
        other arms' evidence but helps when an arm that was judged poor on few rewards
        has become the best: the policy would otherwise hardly play it again.
    warmup : int
        Rewards an arm's detector waits for (and hands to a factory) before it starts.
    clock : callable, optional
        Time of an alarm, in seconds (default ``time.time``).

    Examples
    --------
    Arm "a" pays 0.8, then 0.2 from reward 300 on; the guard notices and resets it:

    >>> from splitlab.bandits import ThompsonSampling
    >>> alloc = Allocator(["a", "b"], ThompsonSampling(), seed=0, mode="online")
    >>> guard = DriftGuard(
    ...     alloc,
    ...     lambda arm, rewards: EDetector.from_baseline(rewards, 0.3, bounds=(0, 1)),
    ...     warmup=50,
    ... )
    >>> rng = np.random.default_rng(1)
    >>> for step in range(600):
    ...     d = alloc.choose()
    ...     rate = (0.8 if step < 300 else 0.2) if d.arm == "a" else 0.5
    ...     _ = guard.update(d, float(rng.random() < rate))
    >>> [(alarm.arm, alarm.action) for alarm in guard.alarms]
    [('a', 'reset')]
    >>> 300 < guard.alarms[0].step < 400
    True
    """

    def __init__(
        self,
        allocator: Allocator,
        detector: EDetector | GaussianCUSUM | DetectorFactory,
        *,
        action: str = "reset",
        discount: float = 0.99,
        per_arm: bool = True,
        scope: str = "arm",
        warmup: int = 0,
        clock: Callable[[], float] | None = None,
    ):
        if not isinstance(allocator, Allocator):
            raise InvalidArgumentError(
                "allocator", f"must be a splitlab Allocator, got {type(allocator).__name__}"
            )
        if isinstance(detector, (EDetector, GaussianCUSUM)):
            template = detector.copy()
            template.reset()
            self._factory: DetectorFactory = lambda arm, rewards: template.copy()
        elif callable(detector):
            self._factory = detector
        else:
            raise InvalidArgumentError(
                "detector",
                "must be an EDetector, a GaussianCUSUM or a factory(arm, warmup_rewards), "
                f"got {type(detector).__name__}",
            )
        self.allocator = allocator
        self.action = check_choice("action", action, ACTIONS)
        discount = float(as_float_array("discount", discount))
        if not 0.0 < discount < 1.0:
            raise InvalidArgumentError("discount", f"must be in (0, 1), got {discount!r}")
        self.discount = discount
        self.per_arm = check_bool("per_arm", per_arm)
        self.scope = check_choice("scope", scope, SCOPES)
        self.warmup = check_integer("warmup", warmup, minimum=0)
        if clock is not None and not callable(clock):
            raise InvalidArgumentError("clock", "must be a function returning seconds")
        self._clock = time.time if clock is None else clock
        self._lock = threading.Lock()
        self.alarms: list[DriftAlarm] = []
        self.step = 0
        keys = list(allocator.arms) if self.per_arm else [POOLED]
        self.detectors: dict[str | None, Any] = dict.fromkeys(keys)
        self._warmup: dict[str | None, list[float]] = {key: [] for key in keys}
        self._needed = dict.fromkeys(keys, self.warmup)
        for key in keys:
            self._start_detector(key)

    def _start_detector(self, key: str | None) -> None:
        """A new detector for ``key`` once its warm-up is complete (now, if none)."""
        rewards = self._warmup[key]
        if len(rewards) < self._needed[key]:
            self.detectors[key] = None
            return
        try:
            made = self._factory(key, np.asarray(rewards, dtype=np.float64))
        except InvalidArgumentError:
            # e.g. a baseline interval too wide for the shift: a longer warm-up narrows it,
            # and a reward that the allocator took must not fail because of the detector
            self._needed[key] = 2 * max(len(rewards), 1)
            self.detectors[key] = None
            return
        if not isinstance(made, (EDetector, GaussianCUSUM)):
            raise InvalidArgumentError(
                "detector", f"the factory returned {type(made).__name__}, not a detector"
            )
        self.detectors[key] = made
        self._needed[key] = self.warmup
        rewards.clear()

    def update(
        self,
        decision: Decision | str | None = None,
        reward: object = None,
        *,
        arm: str | None = None,
        context: object = None,
    ) -> bool:
        """:meth:`Allocator.update` (same arguments and result), then the reward goes to
        the detector of its arm; a refused or duplicate reward reaches no detector."""
        label = arm
        if decision is not None:
            decision_id = decision.id if isinstance(decision, Decision) else decision
            pending = (
                self.allocator.pending_decision(decision_id)
                if isinstance(decision_id, str)
                else None
            )
            label = None if pending is None else pending.arm
        accepted = self.allocator.update(decision, reward, arm=arm, context=context)
        if accepted and label is not None:
            self.observe(label, float(reward))  # type: ignore[arg-type]
        return accepted

    def observe(self, arm: str, reward: float) -> bool:
        """Feed one (arm, reward) pair the allocator has already learned from, and act on
        an alarm; True if this reward raised one. :meth:`update` calls it."""
        if arm not in self.allocator.arms:
            raise InvalidArgumentError("arm", f"unknown arm {arm!r}")
        key = arm if self.per_arm else POOLED
        with self._lock:
            self.step += 1
            detector = self.detectors[key]
            if detector is None:
                self._warmup[key].append(float(reward))
                if len(self._warmup[key]) >= self._needed[key]:
                    self._start_detector(key)
                return False
            if not detector.update(reward):
                return False
            estimate = detector.changepoint_estimate
            alarm = DriftAlarm(
                time=float(self._clock()),
                step=self.step,
                arm=key,
                statistic=float(detector.statistic),
                observations=detector.n,
                since_change=None if estimate is None else detector.n - estimate,
                action=self.action,
            )
            self.alarms.append(alarm)
            LOGGER.warning(
                "reward drift on arm %r at step %d (statistic %.4g after %d rewards): %s",
                key, self.step, alarm.statistic, alarm.observations, self.action,
            )  # fmt: skip
            if self.action == "reset":
                self._reset_arms(None if key is POOLED or self.scope == "all" else [key])
            else:
                self._switch_to_discounting()
            self._start_detector(key)
        self.allocator.refresh()  # serve the forgotten or discounted statistics at once
        return True

    def _reset_arms(self, arms: list[str] | None) -> None:
        """Put the statistics of ``arms`` (None: all) back to the policy's prior."""
        allocator = self.allocator
        indices = range(len(allocator.arms)) if arms is None else [
            allocator.arms.index(label) for label in arms
        ]  # fmt: skip

        def reset(policy) -> None:
            state = policy.state()
            fresh = type(policy)(**state["hyperparameters"])
            fresh.resize(state["n_arms"], state["n_features"])
            prior = fresh.state()["arrays"]
            arrays = {name: np.array(value, copy=True) for name, value in state["arrays"].items()}
            for name, value in arrays.items():
                for index in indices:
                    value[index] = prior[name][index]
            restored = type(policy).from_state({**state, "arrays": arrays})
            for name, value in restored.arrays.items():
                policy.arrays[name] = value

        # under the allocator's lock: no update interleaves with the swap of arrays
        allocator.edit_policy(reset)

    def _switch_to_discounting(self) -> None:
        policy = self.allocator.policy
        if policy.discount > self.discount:
            policy.discount = self.discount

    def alarms_frame(self):
        """The alarms as a pandas DataFrame, one row each.

        >>> from splitlab.bandits import UCB1
        >>> guard = DriftGuard(Allocator(["a", "b"], UCB1()), EDetector(0.5, 0.2, sigma=0.5))
        >>> list(guard.alarms_frame().columns)[:3]
        ['time', 'step', 'arm']
        """
        import pandas as pd

        return pd.DataFrame(self.alarms, columns=list(DriftAlarm._fields))

    def __repr__(self) -> str:
        return (
            f"DriftGuard(action={self.action!r}, per_arm={self.per_arm}, "
            f"warmup={self.warmup}, alarms={len(self.alarms)})"
        )

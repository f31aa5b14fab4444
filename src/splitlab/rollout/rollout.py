"""A staged safe rollout: ramp a new arm 1% → 5% → … → 100%, roll it back on harm.

:class:`Rollout` serves a two-arm :class:`~splitlab.bandits.FixedSplit` through an
:class:`~splitlab.allocator.Allocator` (hashed assignment: a unit's arm is a function of
``salt`` and the unit id, so it keeps its arm across stages unless its arm shrank, and
every unit is back on control after a rollback). Serving code calls :meth:`Rollout.choose`
and feeds outcomes with :meth:`Rollout.record` (one unit) or :meth:`Rollout.record_moments`
(a batch as summary statistics); a scheduler calls :meth:`Rollout.check`, which returns a
:class:`RolloutDecision`:

- **rollback** as soon as a guardrail is harmed — the always-valid one-sided test of the
  treatment − control difference in its harmful direction beyond ``tolerance`` rejects
  "no harm" — or the sequential sample-ratio-mismatch test rejects. The weights become
  (1, 0) for good;
- **advance** to the next stage when the stage has ``min_units`` new-arm units and has lasted
  ``min_duration``, and nothing is harmed; at the last stage this is **complete**;
- **hold** otherwise.

**The test, and why it stays valid while the split changes.** Within a period of constant
weights (a stage) the split is fixed and assignment is a hash of the unit, independent of
its outcome, so the stage's difference in means d_s with variance v_s is, in information time
I_s = 1/v_s, asymptotically a Brownian motion with drift θ: Z_s = d_s / v_s. A new stage
starts a new Z from 0 while the earlier ones are frozen, so S = Σ_s Z_s is a martingale in
the total information I = Σ_s I_s with quadratic variation I, whatever the stage lengths
and whichever stopping rule moved the ramp (the weights depend only on the past). The
estimate is the precision-weighted stratified difference θ̂ = S / I with se = I^(−1/2).
Each v_s uses the variance of the stage's units with both arms merged (the variance under
"no difference", as a pooled z-test): at a 1% stage the new arm has a few dozen units and
its own variance moves with its mean — a proportion with no successes has none — which
made per-arm (Welch) variances roll back harmless changes at twice the nominal rate in
simulation.
Pooling the arms' raw means across stages would not be: with weights that change, the
pooled score's coefficients on past sums change too (it is not a martingale), and a trend
shared by both arms (traffic growth raising latency) would load onto the arm that grew:
in simulation a shared rise of 15 ms per stage rolled back every harmless run pooled, and
none beyond α stratified (``tests/test_rollout.py``).

Two always-valid boundaries are offered on (θ̂, se):

- ``method="cs"``: the one-sided asymptotic confidence sequence of Waudby-Smith, Arbour,
  Sinha, Kennedy & Ramdas (arXiv 2103.06476v7, eq. 134; the normal-mixture boundary of
  Howard, Ramdas, McAuliffe & Sekhon, Ann. Statist. 49(2), 2021), via
  :func:`~splitlab.sequential.confidence_sequence_from_estimate`. Its time is the
  balanced-equivalent sample size N = 4 σ̂² I (σ̂² the metric's variance within stages, arms
  merged), which equals the number of units at a 50/50 split; with σ̂² converging, the
  mixture is fixed in information time, which is what makes the boundary valid under any
  sequence of splits. ``n_star`` (default 10 × ``min_units``) is the N at which it is
  tightest;
- ``method="msprt"``: the normal-mixture SPRT of Johari, Koomen, Pekelis & Walsh (KDD 2017),
  via :func:`~splitlab.sequential.msprt_from_estimate`, with a mixing variance ``tau2``
  per guardrail fixed in advance (e.g. :func:`~splitlab.sequential.msprt_tau2`); its
  likelihood ratio is a martingale in information time directly. It is two-sided; only
  its harmful side acts, so it spends at most α (about α/2) on false rollbacks.

Each guardrail is tested at ``alpha / len(guardrails)`` (Bonferroni), so a harmless change
is rolled back with probability at most ``alpha`` over all guardrails and all checks, plus
at most ``srm_alpha`` for the SRM test. A stage enters a guardrail's test once both arms
have 30 units with outcomes in it (so its variances are estimated); the choice depends on
counts only, never on outcomes.

**Sample-ratio mismatch.** Units recorded in a stage are tested against the stage's split
with the Dirichlet-multinomial Bayes factor of Lindon & Malek (NeurIPS 2022,
:func:`~splitlab.sequential.sequential_srm`); each stage's factor is a test martingale that
starts at 1 when the stage does, so their product over stages is one too and
p = min(1, 1 / Π BF_s) is always valid (Ville's inequality).

**What is counted.** A unit counts once per guardrail it reports: :meth:`~Rollout.record`
does not deduplicate (keeping every unit id would take memory linear in traffic), so report
each unit's outcome once, after its exposure, to the stage (period) it was assigned in —
pass the :class:`Assignment` :meth:`~Rollout.choose` returned, or a unit id recorded in the
stage it was served in. ``min_units`` counts new-arm units recorded in the current stage.

**What a crash loses.** Each decision is appended to a JSON-lines log, flushed and fsynced
before :meth:`~Rollout.check` returns; :meth:`~Rollout.save` writes the state atomically
(temporary file, fsync, rename) with the log position. :meth:`~Rollout.load` resumes from
the last save and replays the stage changes logged after it (a rollback logged after the
last save stays a rollback), so no logged decision is lost; outcomes recorded since the last
save are. A log line cut short by a crash is dropped on load.

>>> import splitlab as sl
>>> from splitlab.rollout import Guardrail, Rollout
>>> now = [0.0]
>>> rollout = Rollout(guardrails=[Guardrail("latency_ms", higher_is_better=False)],
...                   min_units=100, min_duration=60, salt="ranker-v2",
...                   clock=lambda: now[0])
>>> rollout.record_moments("treatment", {"latency_ms": sl.Moments(100, 101.0, 400.0)})
>>> rollout.record_moments("control", {"latency_ms": sl.Moments(9900, 100.0, 400.0)})
>>> rollout.check().action                      # 100 units, but not yet 60 s
'hold'
>>> now[0] = 60.0
>>> decision = rollout.check()
>>> decision.action, decision.stage_before, decision.stage_after
('advance', 0.01, 0.05)
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from splitlab._validation import check_alpha, check_choice, check_integer
from splitlab.allocator import Allocator, Decision
from splitlab.allocator.assignment import draw
from splitlab.allocator.persistence import atomic_write, remove_stale_temporaries
from splitlab.bandits.mab import FixedSplit
from splitlab.errors import InvalidArgumentError
from splitlab.hashing import unit_uniform
from splitlab.sequential.confseq import confidence_sequence_from_estimate
from splitlab.sequential.msprt import msprt_from_estimate
from splitlab.sequential.srm import sequential_srm
from splitlab.stats.moments import Moments

__all__ = ["Assignment", "Guardrail", "Rollout", "RolloutDecision"]

METHODS = ("cs", "msprt")
ACTIONS = ("advance", "hold", "rollback", "complete")
STAGE_MIN_UNITS = 30  # per arm, before a stage's difference enters a guardrail's test
_FORMAT = 1
_KIND = "splitlab-rollout"


@dataclass(frozen=True)
class Guardrail:
    """A metric the new arm must not harm.

    ``higher_is_better`` says which direction is harm (latency: False, or
    ``lower_is_better=True`` as for a :class:`~splitlab.analyzer.metrics.Metric`);
    ``tolerance`` is the harm allowed before a rollback, in the metric's units (a latency
    tolerance of 2.0 rolls back only when latency is shown to be more than 2 ms worse).

    >>> Guardrail("latency_ms", higher_is_better=False, tolerance=2.0)
    Guardrail(name='latency_ms', higher_is_better=False, tolerance=2.0)
    >>> Guardrail("latency_ms", lower_is_better=True).higher_is_better
    False
    """

    name: str
    higher_is_better: bool = True
    tolerance: float = 0.0
    lower_is_better: bool | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError("name", f"must be a non-empty string, got {self.name!r}")
        if not isinstance(self.higher_is_better, (bool, np.bool_)):
            raise InvalidArgumentError(
                "higher_is_better", f"must be True or False, got {self.higher_is_better!r}"
            )
        tolerance = _finite("tolerance", self.tolerance)
        if tolerance < 0:
            raise InvalidArgumentError("tolerance", f"must be non-negative, got {tolerance!r}")
        lower = self.lower_is_better
        if lower is not None:
            if not isinstance(lower, (bool, np.bool_)):
                raise InvalidArgumentError(
                    "lower_is_better", f"must be True or False, got {lower!r}"
                )
            if not lower and not self.higher_is_better:
                raise InvalidArgumentError(
                    "lower_is_better", "lower_is_better=False contradicts higher_is_better=False"
                )
            object.__setattr__(self, "higher_is_better", not lower)
        object.__setattr__(self, "higher_is_better", bool(self.higher_is_better))
        object.__setattr__(self, "lower_is_better", not self.higher_is_better)
        object.__setattr__(self, "tolerance", tolerance)


class Assignment(NamedTuple):
    """What :meth:`Rollout.choose` served: the arm, the new arm's weight then, the period
    (one per stage served, counted from 0) and the allocator's :class:`~splitlab.allocator.
    Decision` (id, propensity). Pass it back to :meth:`Rollout.record`.

    >>> from splitlab.rollout import Rollout
    >>> Rollout(salt="s").choose("user-1")._fields[:4]
    ('unit', 'arm', 'weight', 'period')
    """

    unit: str | None
    arm: str
    weight: float
    period: int
    decision: Decision


@dataclass(frozen=True)
class RolloutDecision:
    """One decision of :meth:`Rollout.check` (or of a manual :meth:`~Rollout.advance_to` /
    :meth:`~Rollout.rollback`), as appended to the decision log.

    ``stage_before``/``stage_after`` are the new arm's weight before and after (0.0 after a
    rollback), ``stage_index_*`` their positions in the schedule. ``guardrails`` maps each
    metric to its statistics: ``effect`` (treatment − control, stratified by stage),
    ``ci_low``/``ci_high`` (the always-valid interval; one-sided for ``method="cs"``, the
    open side infinite), ``p_value`` (always valid, of "no harm beyond tolerance"),
    ``n_control``/``n_treatment`` and ``harmed``. ``srm_p_value`` is the sequential SRM
    p-value; ``exposures`` the units recorded per arm in the stage decided on, ``elapsed``
    its age in seconds.

    >>> from splitlab.rollout import Rollout
    >>> decision = Rollout(salt="s", clock=lambda: 5.0).check()
    >>> decision.action, decision.seq, decision.time, decision.srm_p_value
    ('hold', 0, 5.0, 1.0)
    """

    seq: int
    time: float
    action: str
    stage_before: float
    stage_after: float
    stage_index_before: int
    stage_index_after: int
    reason: str
    guardrails: dict[str, dict[str, Any]]
    srm_p_value: float
    exposures: dict[str, int]
    elapsed: float
    stages: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The log line's content (non-finite numbers as None, as JSON has no NaN)."""
        record = {name: getattr(self, name) for name in self.__dataclass_fields__}
        record["exposures"] = dict(self.exposures)
        record["stages"] = list(self.stages)
        record["guardrails"] = {
            name: {key: _json_number(value) for key, value in stats.items()}
            for name, stats in self.guardrails.items()
        }
        record["srm_p_value"] = _json_number(self.srm_p_value)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> RolloutDecision:
        """Read a log line back (None becomes NaN, or ±inf for a one-sided bound)."""
        guardrails = {}
        for name, stats in record["guardrails"].items():
            stats = dict(stats)
            for key, missing in (("ci_low", -math.inf), ("ci_high", math.inf)):
                if stats.get(key) is None:
                    stats[key] = missing
            for key in ("effect", "p_value"):
                if stats.get(key) is None:
                    stats[key] = math.nan
            guardrails[name] = stats
        srm = record["srm_p_value"]
        return cls(
            seq=int(record["seq"]),
            time=float(record["time"]),
            action=str(record["action"]),
            stage_before=float(record["stage_before"]),
            stage_after=float(record["stage_after"]),
            stage_index_before=int(record["stage_index_before"]),
            stage_index_after=int(record["stage_index_after"]),
            reason=str(record["reason"]),
            guardrails=guardrails,
            srm_p_value=math.nan if srm is None else float(srm),
            exposures={str(k): int(v) for k, v in record["exposures"].items()},
            elapsed=float(record["elapsed"]),
            stages=[float(s) for s in record.get("stages", [])],
        )


class _Period:
    """A span of constant weights: a stage served, or the control-only tail of a rollback.
    ``moments[metric][arm] = [n, mean, M2]``; ``units[arm]`` counts units recorded."""

    __slots__ = ("index", "moments", "started_at", "units", "weight")

    def __init__(self, weight: float, index: int, started_at: float):
        self.weight = weight
        self.index = index  # position in the schedule, -1 for the rollback tail
        self.started_at = started_at
        self.units = [0, 0]
        self.moments: dict[str, list[list[float]]] = {}

    def to_json(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "index": self.index,
            "started_at": self.started_at,
            "units": list(self.units),
            "moments": self.moments,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], metrics: Iterable[str]) -> _Period:
        period = cls(float(data["weight"]), int(data["index"]), float(data["started_at"]))
        period.units = [int(u) for u in data["units"]]
        known = set(metrics)
        for metric, arms in data["moments"].items():
            if metric not in known:
                raise InvalidArgumentError("path", f"holds moments of an unknown metric {metric!r}")
            period.moments[metric] = [[float(v) for v in arm] for arm in arms]
        return period


_OPEN_END = {"ci_low": -math.inf, "ci_high": math.inf}


class Rollout:
    """A staged rollout of ``arms[1]`` against ``arms[0]`` that decides for itself.

    Parameters
    ----------
    arms : (control, new arm) labels.
    stages : strictly increasing new-arm weights in (0, 1]; the first is served at once.
    guardrails : sequence of :class:`Guardrail` (or metric names, higher is better).
    min_units : new-arm units recorded in a stage before it may advance (positive).
    min_duration : seconds (or a ``timedelta``) a stage lasts before it may advance.
    alpha : the chance of rolling back a harmless change, shared by the guardrails.
    method : "cs" (confidence sequence) or "msprt"; see the module docstring.
    n_star : balanced-equivalent units at which the "cs" boundary is tightest
        (default 10 × ``min_units``).
    tau2 : the "msprt" mixing variance: a number, or one per guardrail as a dict.
    srm_alpha : level of the sequential sample-ratio-mismatch test.
    salt, seed : the allocator's (hashing of units; the generator for anonymous draws).
    log : the decision log's path; by default ``<save path>.decisions.jsonl`` from the
        first :meth:`save` on, decisions before it are kept in memory and written then.
    clock : function returning the time in seconds (default ``time.time``).

    Notes
    -----
    The decision rule, why it is valid across stages and what a crash loses are in the
    module docstring (:mod:`splitlab.rollout.rollout`).

    Examples
    --------
    >>> rollout = Rollout(stages=(0.1, 1.0), salt="exp-7", clock=lambda: 0.0)
    >>> rollout.weights, rollout.stage
    ([0.9, 0.1], 0.1)
    """

    def __init__(
        self,
        arms: Sequence[str] = ("control", "treatment"),
        stages: Sequence[float] = (0.01, 0.05, 0.25, 0.5, 1.0),
        guardrails: Sequence[Guardrail | str] = (),
        *,
        min_units: int = 1000,
        min_duration: float | timedelta = 0.0,
        alpha: float = 0.05,
        method: str = "cs",
        n_star: float | None = None,
        tau2: float | Mapping[str, float] | None = None,
        srm_alpha: float = 0.001,
        salt: str = "",
        seed: int | None = None,
        log: str | os.PathLike | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if isinstance(arms, str) or len(list(arms)) != 2:
            raise InvalidArgumentError("arms", f"must be two labels (control, new), got {arms!r}")
        self.arms = [str(arm) for arm in arms]
        if self.arms[0] == self.arms[1]:
            raise InvalidArgumentError("arms", f"must be two different labels, got {arms!r}")
        self._stages = _check_stages("stages", stages, above=0.0)
        self.guardrails = _check_guardrails(guardrails)
        self.min_units = check_integer("min_units", min_units)
        self.min_duration = _check_duration(min_duration)
        self.alpha = check_alpha(alpha)
        self.method = check_choice("method", method, METHODS)
        if self.method == "cs" and self.alpha / max(len(self.guardrails), 1) >= 0.5:
            raise InvalidArgumentError("alpha", "must be below 0.5 for a one-sided sequence")
        if n_star is None:
            n_star = 10.0 * self.min_units
        self.n_star = _finite("n_star", n_star)
        if self.n_star <= 0:
            raise InvalidArgumentError("n_star", f"must be positive, got {n_star!r}")
        self.tau2 = self._check_tau2(tau2)
        self.srm_alpha = check_alpha(srm_alpha, "srm_alpha")
        if not callable(clock):
            raise InvalidArgumentError("clock", "must be a function returning seconds")
        self._clock = clock
        self._lock = threading.RLock()  # the state; held briefly, serving takes it
        self._deciding = threading.Lock()  # one decision (and its fsync) or save at a time
        self._metric_index = {g.name: g for g in self.guardrails}
        self._log_path = None if log is None else Path(log)
        self._records: list[dict[str, Any]] = []
        self._saved_position = 0
        self._finished: str | None = None  # "rollback" | "complete"
        self._index = 0
        self._periods = [_Period(self._stages[0], 0, float(clock()))]
        self._allocator = Allocator(
            self.arms, FixedSplit(_weights(self._stages[0])), seed=seed, salt=salt, log=False,
            max_pending=1, dedupe_capacity=1, clock=clock,
        )  # fmt: skip
        self.salt, self.seed = self._allocator.salt, self._allocator.seed

    # ------------------------------------------------------------------ state

    @property
    def stages(self) -> list[float]:
        """The schedule of new-arm weights (past, current and upcoming)."""
        return list(self._stages)

    @property
    def stage(self) -> float:
        """The new arm's weight now served (0.0 after a rollback)."""
        return self._periods[-1].weight

    @property
    def stage_index(self) -> int:
        """The current stage's position in :attr:`stages` (kept after a rollback)."""
        return self._index

    @property
    def weights(self) -> list[float]:
        """The served split, [control, new arm]."""
        return _weights(self.stage)

    @property
    def finished(self) -> str | None:
        """None while ramping, else "rollback" or "complete"."""
        return self._finished

    @property
    def allocator(self) -> Allocator:
        """The allocator serving the split (read it; change weights through the rollout)."""
        return self._allocator

    def _check_tau2(self, tau2: object) -> dict[str, float] | None:
        if tau2 is None:
            if self.method == "msprt" and self.guardrails:
                raise InvalidArgumentError(
                    "tau2",
                    "is required with method='msprt': fix the mixing variance of each "
                    "guardrail in advance, e.g. tau2=msprt_tau2(planned_n_per_arm, sd)",
                )
            return None
        if isinstance(tau2, Mapping):
            unknown = sorted(set(tau2) - {g.name for g in self.guardrails})
            if unknown:
                raise InvalidArgumentError("tau2", f"names unknown guardrail(s) {unknown}")
            missing = [g.name for g in self.guardrails if g.name not in tau2]
            if missing:
                raise InvalidArgumentError("tau2", f"has no value for guardrail(s) {missing}")
            values = {name: _finite("tau2", value) for name, value in tau2.items()}
        else:
            value = _finite("tau2", tau2)
            values = {g.name: value for g in self.guardrails}
        if any(value <= 0 for value in values.values()):
            raise InvalidArgumentError("tau2", f"must be positive, got {tau2!r}")
        return values

    # ------------------------------------------------------------------ serving

    def choose(self, unit: object = None) -> Assignment:
        """Assign ``unit`` (hashed with ``salt``: the same arm in every process while the
        stage holds, and across stages unless its arm shrank; control after a rollback).
        Without a unit the seeded generator draws.

        >>> rollout = Rollout(stages=(0.5, 1.0), salt="exp-7")
        >>> first = rollout.choose("user-42")
        >>> first.arm == rollout.choose("user-42").arm, first.weight, first.period
        (True, 0.5, 0)
        """
        with self._lock:
            decision = self._allocator.choose(unit)
            period = self._periods[-1]
            return Assignment(decision.unit, decision.arm, period.weight, len(self._periods) - 1,
                              decision)  # fmt: skip

    def record(self, unit: Assignment | object, outcomes: Mapping[str, object]) -> None:
        """Record one unit's guardrail outcomes, ``{metric: value}`` (a subset is fine).

        ``unit`` is the :class:`Assignment` :meth:`choose` returned (its arm and stage are
        used) or a unit id, attributed to the arm and stage it is assigned now. Report each
        unit once; outcomes are not deduplicated (see the module docstring).

        >>> rollout = Rollout(guardrails=["conversion"], stages=(0.5, 1.0), salt="e")
        >>> rollout.record(rollout.choose("u1"), {"conversion": 1.0})
        >>> rollout.record("u2", {"conversion": 0.0})
        >>> sum(rollout.status()["exposures"].values())
        2
        """
        values = self._check_outcomes(outcomes)
        with self._lock:
            if isinstance(unit, Assignment):
                arm, position = self._check_arm("unit", unit.arm), unit.period
                if not 0 <= position < len(self._periods):
                    raise InvalidArgumentError("unit", f"names an unknown period {position}")
            else:
                if unit is None:
                    raise InvalidArgumentError("unit", "give a unit id or an Assignment")
                arm = draw(self.weights, unit_uniform(self.salt, str(unit)))[0]
                position = len(self._periods) - 1
            period = self._periods[position]
            period.units[arm] += 1
            for metric, value in values.items():
                moments = _period_moments(period, metric)[arm]
                n = moments[0] + 1.0
                delta = value - moments[1]
                moments[1] += delta / n
                moments[2] += delta * (value - moments[1])
                moments[0] = n

    def record_moments(
        self,
        arm: str,
        moments: Mapping[str, Moments | tuple[float, float, float]],
        *,
        units: int | None = None,
        period: int | None = None,
    ) -> None:
        """Record a batch of units of one arm as summary statistics per metric: a scalar
        :class:`~splitlab.stats.moments.Moments` or ``(n, mean, var)`` (ddof 1).

        ``units`` is the number of units in the batch (default: the largest n given);
        ``period`` the stage period they were assigned in (default: the current one).
        Merged exactly (Chan, Golub & LeVeque), so a batch equals its units one by one.

        >>> import splitlab as sl
        >>> rollout = Rollout(guardrails=["conversion"], stages=(0.5, 1.0), salt="e")
        >>> rollout.record_moments("treatment",
        ...                        {"conversion": sl.Moments.from_proportions(30, 100)})
        >>> rollout.status()["exposures"]
        {'control': 0, 'treatment': 100}
        """
        index = self._check_arm("arm", arm)
        batch = {}
        if not isinstance(moments, Mapping):
            raise InvalidArgumentError("moments", "must be a dict {metric: Moments}")
        for metric, value in moments.items():
            self._check_metric(metric, "moments")
            batch[metric] = _as_summary(metric, value)
        largest = max((n for n, _, _ in batch.values()), default=0.0)
        if units is None:
            count = int(largest)
        else:
            count = check_integer("units", units, minimum=0)
            if count < largest:
                raise InvalidArgumentError(
                    "units", f"is {count} but a metric has {int(largest)} units"
                )
        with self._lock:
            position = len(self._periods) - 1 if period is None else period
            if (
                isinstance(position, bool)
                or not isinstance(position, (int, np.integer))
                or not 0 <= position < len(self._periods)
            ):
                raise InvalidArgumentError("period", f"names no period served: {period!r}")
            target = self._periods[position]
            target.units[index] += count
            for metric, (n, mean, m2) in batch.items():
                if n == 0:
                    continue
                current = _period_moments(target, metric)[index]
                total = current[0] + n
                delta = mean - current[1]
                current[2] += m2 + delta * delta * current[0] * n / total
                current[1] += delta * n / total
                current[0] = total

    def _check_arm(self, name: str, arm: object) -> int:
        if arm not in self.arms:
            raise InvalidArgumentError(name, f"unknown arm {arm!r} (arms: {self.arms})")
        return self.arms.index(arm)  # type: ignore[arg-type]

    def _check_metric(self, metric: object, name: str) -> None:
        if metric not in self._metric_index:
            raise InvalidArgumentError(
                name,
                f"unknown guardrail metric {metric!r} (guardrails: {list(self._metric_index)})",
            )

    def _check_outcomes(self, outcomes: object) -> dict[str, float]:
        if not isinstance(outcomes, Mapping):
            raise InvalidArgumentError("outcomes", "must be a dict {metric: value}")
        values = {}
        for metric, value in outcomes.items():
            self._check_metric(metric, "outcomes")
            if isinstance(value, (str, bytes)):
                raise InvalidArgumentError("outcomes", f"{metric}: must be a number, got {value!r}")
            values[metric] = _finite("outcomes", value)
        return values

    # ------------------------------------------------------------------ deciding

    def guardrail_statistics(self) -> dict[str, dict[str, Any]]:
        """Each guardrail's effect, always-valid interval, p-value, n per arm and whether it
        is harmed, on everything recorded so far (no decision is made or logged).

        >>> rollout = Rollout(guardrails=["conversion"], salt="e")
        >>> rollout.guardrail_statistics()["conversion"]["n_control"]
        0
        """
        with self._lock:
            level = self.alpha / max(len(self.guardrails), 1)
            return {g.name: self._test(g, level) for g in self.guardrails}

    def _test(self, guardrail: Guardrail, level: float) -> dict[str, Any]:
        score = information = m2 = dof = 0.0
        n = [0, 0]
        for period in self._periods:
            arms = period.moments.get(guardrail.name)
            if arms is None:
                continue
            (n_c, mean_c, m2_c), (n_t, mean_t, m2_t) = arms
            n[0] += int(n_c)
            n[1] += int(n_t)
            if n_c < STAGE_MIN_UNITS or n_t < STAGE_MIN_UNITS:
                continue
            # the variance of the stage's merged units, as under "no difference": a small
            # new arm's own variance moves with its mean (a proportion with no successes
            # has none) and would make the test anti-conservative exactly when it looks bad
            stage_n = n_c + n_t
            difference = mean_t - mean_c
            stage_m2 = m2_c + m2_t + n_c * n_t / stage_n * difference * difference
            unit_variance = stage_m2 / (stage_n - 1)
            variance = unit_variance * (1.0 / n_c + 1.0 / n_t)
            if variance > 0:
                score += difference / variance
                information += 1.0 / variance
                m2 += stage_m2
                dof += stage_n - 1
        result = {
            "effect": math.nan,
            "ci_low": -math.inf,
            "ci_high": math.inf,
            "p_value": 1.0,
            "n_control": n[0],
            "n_treatment": n[1],
            "harmed": False,
        }
        if information == 0:
            return result
        effect = score / information
        se = information**-0.5
        sign = 1.0 if not guardrail.higher_is_better else -1.0
        excess = sign * effect - guardrail.tolerance  # harm beyond tolerance, > 0 is harm
        if self.method == "cs":
            balanced_units = 4.0 * (m2 / dof) * information
            low, high, p = confidence_sequence_from_estimate(
                excess, se, balanced_units, alpha=level, n_star=self.n_star,
                alternative="greater",
            )  # fmt: skip
        else:
            low, high, p = msprt_from_estimate(
                excess, se, alpha=level, tau2=self.tau2[guardrail.name]
            )  # type: ignore[index]
            if excess <= 0:
                p = np.float64(1.0)
        low, high = float(low) + guardrail.tolerance, float(high) + guardrail.tolerance
        if sign < 0:
            low, high = -high, -low
        p_value = float(p)
        result.update(
            effect=effect, ci_low=low, ci_high=high, p_value=p_value, harmed=p_value <= level
        )
        return result

    def srm_p_value(self) -> float:
        """The always-valid SRM p-value: recorded units per stage against the stage's split,
        the stages' Bayes factors multiplied (see the module docstring).

        >>> Rollout(salt="e").srm_p_value()
        1.0
        """
        with self._lock:
            tested = [p for p in self._periods if 0.0 < p.weight < 1.0 and sum(p.units) > 0]
            if not tested:
                return 1.0
            counts = np.array([p.units for p in tested], dtype=np.float64)
            weights = np.array([_weights(p.weight) for p in tested])
            log_bf = float(np.sum(sequential_srm(counts, weights).log_bayes_factor))
            return float(min(1.0, math.exp(-log_bf))) if log_bf > 0 else 1.0

    def check(self) -> RolloutDecision:
        """Decide: rollback, advance, complete or hold (the rule is in the module
        docstring), apply it, append it to the decision log (flushed and fsynced before
        returning) and return it. On a finished rollout, returns the decision that
        finished it and logs nothing.

        >>> rollout = Rollout(stages=(0.5, 1.0), min_units=1, salt="e", clock=lambda: 0.0)
        >>> rollout.check().reason
        'hold: 0 of 1 treatment units, 0 of 0 s at stage 0.5; no guardrail harmed'
        """
        return self._logged(self._check)

    def _check(self) -> tuple[RolloutDecision, bool]:
        if self._finished is not None:
            return RolloutDecision.from_dict(self._records[-1]), False
        now = float(self._clock())
        period = self._periods[-1]
        statistics = self.guardrail_statistics()
        srm_p = self.srm_p_value()
        elapsed = now - period.started_at
        exposures = dict(zip(self.arms, period.units, strict=True))
        treated = period.units[1]
        harmed = [name for name, stats in statistics.items() if stats["harmed"]]
        level = self.alpha / max(len(self.guardrails), 1)
        before = self._index
        if harmed or srm_p <= self.srm_alpha:
            action = "rollback"
            causes = [
                f"{name} harmed (effect {statistics[name]['effect']:.6g}, always-valid "
                f"p {statistics[name]['p_value']:.3g} <= {level:.3g}, tolerance "
                f"{self._metric_index[name].tolerance:g})"
                for name in harmed
            ]
            if srm_p <= self.srm_alpha:
                causes.append(
                    f"sample-ratio mismatch (sequential p {srm_p:.3g} <= {self.srm_alpha:g})"
                )
            reason = "rollback: " + "; ".join(causes)
        elif treated >= self.min_units and elapsed >= self.min_duration:
            last = self._index == len(self._stages) - 1
            action = "complete" if last else "advance"
            reason = (
                f"{action}: {treated} >= {self.min_units} {self.arms[1]} units and "
                f"{elapsed:g} s >= {self.min_duration:g} s at stage {period.weight:g}, "
                "no guardrail harmed"
            )
        else:
            action = "hold"
            reason = (
                f"hold: {treated} of {self.min_units} {self.arms[1]} units, {elapsed:g} "
                f"of {self.min_duration:g} s at stage {period.weight:g}; no guardrail harmed"
            )
        return self._decide(
            action, reason, now, before, statistics, srm_p, exposures, elapsed
        ), True

    def _decide(self, action, reason, now, before, statistics, srm_p, exposures, elapsed):
        weight_before = self.stage
        self._apply(action, self._index + 1 if action == "advance" else self._index, now)
        decision = RolloutDecision(
            seq=len(self._records), time=now, action=action, stage_before=weight_before,
            stage_after=self.stage, stage_index_before=before, stage_index_after=self._index,
            reason=reason, guardrails=statistics, srm_p_value=srm_p, exposures=exposures,
            elapsed=elapsed, stages=list(self._stages),
        )  # fmt: skip
        return decision

    def _apply(self, action: str, index: int, now: float) -> None:
        """A stage change, in memory and at the allocator (also replayed by :meth:`load`)."""
        if action == "advance":
            self._index = index
            self._periods.append(_Period(self._stages[index], index, now))
            self._allocator.set_weights(_weights(self._stages[index]))
        elif action == "rollback":
            self._finished = "rollback"
            self._periods.append(_Period(0.0, -1, now))
            self._allocator.set_weights(_weights(0.0))
        elif action == "complete":
            self._finished = "complete"

    def advance_to(self, stage: float, reason: str = "manual") -> RolloutDecision:
        """Move to a later stage of the schedule now (logged as an "advance").

        >>> rollout = Rollout(salt="e", clock=lambda: 0.0)
        >>> rollout.advance_to(0.25).stage_after
        0.25
        >>> try:
        ...     rollout.advance_to(0.05)
        ... except ValueError as error:
        ...     print(error)
        stage: must be a later stage than the current 0.25, got 0.05
        """
        return self._logged(self._advance_to, stage, reason)

    def _advance_to(self, stage: float, reason: str = "manual") -> tuple[RolloutDecision, bool]:
        self._check_running("stage")
        value = _finite("stage", stage)
        if value <= self.stage:
            raise InvalidArgumentError(
                "stage", f"must be a later stage than the current {self.stage:g}, got {stage!r}"
            )
        if value not in self._stages:
            raise InvalidArgumentError("stage", f"{stage!r} is not in the stages {self._stages}")
        now = float(self._clock())
        period = self._periods[-1]
        before = self._index
        weight_before = self.stage
        self._apply("advance", self._stages.index(value), now)
        decision = RolloutDecision(
            seq=len(self._records), time=now, action="advance", stage_before=weight_before,
            stage_after=self.stage, stage_index_before=before, stage_index_after=self._index,
            reason=f"advance: {reason} advance_to({value:g})",
            guardrails=self.guardrail_statistics(), srm_p_value=self.srm_p_value(),
            exposures=dict(zip(self.arms, period.units, strict=True)),
            elapsed=now - period.started_at, stages=list(self._stages),
        )  # fmt: skip
        return decision, True

    def rollback(self, reason: str = "manual") -> RolloutDecision:
        """Roll back now, for good (logged).

        >>> rollout = Rollout(salt="e", clock=lambda: 0.0)
        >>> rollout.rollback("pager").action, rollout.weights
        ('rollback', [1.0, 0.0])
        """
        return self._logged(self._rollback, reason)

    def _rollback(self, reason: str = "manual") -> tuple[RolloutDecision, bool]:
        self._check_running("reason")
        now = float(self._clock())
        period = self._periods[-1]
        decision = self._decide(
            "rollback", f"rollback: {reason}", now, self._index, self.guardrail_statistics(),
            self.srm_p_value(), dict(zip(self.arms, period.units, strict=True)),
            now - period.started_at,
        )  # fmt: skip
        return decision, True

    def _logged(self, decide: Callable[..., tuple[RolloutDecision, bool]], *args: Any):
        """Decide under the state lock, then log outside it: serving (:meth:`choose`)
        never waits for an fsync. Deciders are serialized, so log order is seq order. A
        stage change stands even if its line cannot be written (a rollback must)."""
        with self._deciding:
            with self._lock:
                decision, new = decide(*args)
            if new:
                record = decision.to_dict()
                if self._log_path is not None:
                    _append_line(self._log_path, record)
                with self._lock:
                    self._records.append(record)
            return decision

    def set_stages(self, stages: Sequence[float]) -> None:
        """Replace the upcoming stages (those after the current one); each must be above
        the current stage, strictly increasing, at most 1. An empty list makes the current
        stage the last.

        >>> rollout = Rollout(salt="e")
        >>> rollout.set_stages([0.1, 1.0]); rollout.stages
        [0.01, 0.1, 1.0]
        """
        with self._lock:
            self._check_running("stages")
            upcoming = [] if len(stages) == 0 else _check_stages("stages", stages, above=self.stage)
            self._stages = self._stages[: self._index + 1] + upcoming

    def _check_running(self, name: str) -> None:
        if self._finished is not None:
            raise InvalidArgumentError(name, f"the rollout is finished ({self._finished})")

    # ------------------------------------------------------------------ reading

    def status(self) -> dict[str, Any]:
        """Where the rollout stands: stage, weights, units per arm (recorded in the stage;
        ``served`` counts decisions since the allocator was built or restored), each
        guardrail's statistics, the SRM p-value and the last decision (as a dict).

        >>> status = Rollout(salt="e").status()
        >>> status["stage"], status["weights"], status["finished"]
        (0.01, [0.99, 0.01], None)
        """
        with self._lock:
            period = self._periods[-1]
            served = self._allocator.stats()["decisions"]
            return {
                "stage": self.stage,
                "stage_index": self._index,
                "stages": list(self._stages),
                "weights": self.weights,
                "finished": self._finished,
                "stage_started_at": period.started_at,
                "exposures": dict(zip(self.arms, period.units, strict=True)),
                "total_exposures": {
                    arm: sum(p.units[k] for p in self._periods) for k, arm in enumerate(self.arms)
                },
                "served": {arm: int(served[arm]) for arm in self.arms},
                "guardrails": self.guardrail_statistics(),
                "srm_p_value": self.srm_p_value(),
                "last_decision": dict(self._records[-1]) if self._records else None,
            }

    def decisions(self) -> pd.DataFrame:
        """The decision log as a frame: one row per decision, a guardrail's statistics in
        columns ``<metric>.effect``, ``<metric>.ci_low``, … (NaN where the guardrail was not
        tested yet; the open end of a one-sided interval −inf or inf).

        >>> rollout = Rollout(guardrails=["conversion"], salt="e", clock=lambda: 0.0)
        >>> _ = rollout.check()
        >>> list(rollout.decisions().columns[:4]), rollout.decisions().shape[0]
        (['seq', 'time', 'action', 'stage_before'], 1)
        """
        with self._lock:
            rows = []
            for record in self._records:
                row = {
                    key: value
                    for key, value in record.items()
                    if key not in ("guardrails", "exposures", "stages")
                }
                for arm, count in record["exposures"].items():
                    row[f"exposures.{arm}"] = count
                for metric, stats in record["guardrails"].items():
                    tested = stats.get("effect") is not None
                    for key, value in stats.items():
                        if value is None:  # a tested one-sided interval's open end is ±inf
                            value = _OPEN_END.get(key, np.nan) if tested else np.nan
                        row[f"{metric}.{key}"] = value
                rows.append(row)
        columns = [f.name for f in RolloutDecision.__dataclass_fields__.values()]
        columns = [c for c in columns if c not in ("guardrails", "exposures", "stages")]
        frame = pd.DataFrame(rows)
        return frame if rows else pd.DataFrame(columns=columns)

    # ------------------------------------------------------------------ the log

    @property
    def log_path(self) -> Path | None:
        """Where decisions are appended (None until the first :meth:`save` by default)."""
        return self._log_path

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> Path:
        """Write the state atomically (the allocator's snapshot, the stage, every period's
        units and guardrail moments, the log position); the decision log goes beside it
        (``<path>.decisions.jsonl``) unless ``log=`` named one.

        >>> import tempfile, pathlib
        >>> directory = pathlib.Path(tempfile.mkdtemp())
        >>> rollout = Rollout(salt="e", clock=lambda: 0.0)
        >>> _ = rollout.check()
        >>> saved = rollout.save(directory / "rollout.json")
        >>> Rollout.load(saved).decisions().shape[0]
        1
        """
        target = Path(path)
        with self._deciding, self._lock:
            if self._log_path is None:
                self._log_path = target.with_name(target.name + ".decisions.jsonl")
                lines = b"".join(_encode(record) for record in self._records)
                atomic_write(self._log_path, lambda handle: handle.write(lines))
            blob = self._allocator.snapshot()
            document = {
                "kind": _KIND,
                "format": _FORMAT,
                "config": {
                    "arms": self.arms,
                    "guardrails": [asdict(g) for g in self.guardrails],
                    "min_units": self.min_units,
                    "min_duration": self.min_duration,
                    "alpha": self.alpha,
                    "method": self.method,
                    "n_star": self.n_star,
                    "tau2": self.tau2,
                    "srm_alpha": self.srm_alpha,
                    "salt": self.salt,
                    "seed": self.seed,
                },
                "state": {
                    "stages": self._stages,
                    "index": self._index,
                    "finished": self._finished,
                    "periods": [p.to_json() for p in self._periods],
                },
                "log": {
                    "path": _stored_log_path(self._log_path, target),
                    "position": len(self._records),
                },
                "allocator": base64.b64encode(blob).decode("ascii"),
            }
            text = json.dumps(document, allow_nan=False).encode()
            atomic_write(target, lambda handle: handle.write(text))
            self._saved_position = len(self._records)
        return target

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        log: str | os.PathLike | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Rollout:
        """Resume from :meth:`save`: the saved state, then the stage changes logged after
        it (``log`` overrides the log path the save recorded). A log line cut short by a
        crash is dropped (and truncated from the file).

        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.json"
        >>> _ = Rollout(salt="e").save(path)
        >>> Rollout.load(path).stage
        0.01
        """
        target = Path(path)
        remove_stale_temporaries(target.parent)
        try:
            document = json.loads(target.read_bytes())
        except OSError as exc:
            raise InvalidArgumentError("path", f"cannot read {str(path)!r}: {exc}") from exc
        except ValueError as exc:
            raise InvalidArgumentError("path", f"{str(path)!r} is not a rollout state") from exc
        if not isinstance(document, dict) or document.get("kind") != _KIND:
            raise InvalidArgumentError("path", f"{str(path)!r} is not a rollout state")
        if document.get("format") != _FORMAT:
            raise InvalidArgumentError("path", f"has format {document.get('format')!r}")
        try:
            config, state = document["config"], document["state"]
            rollout = cls(
                config["arms"], state["stages"],
                [Guardrail(**g) for g in config["guardrails"]],
                min_units=config["min_units"], min_duration=config["min_duration"],
                alpha=config["alpha"], method=config["method"], n_star=config["n_star"],
                tau2=config["tau2"], srm_alpha=config["srm_alpha"], salt=config["salt"],
                seed=config["seed"], clock=clock,
                log=log if log is not None else target.parent / document["log"]["path"],
            )  # fmt: skip
            rollout._allocator = Allocator.restore(
                base64.b64decode(document["allocator"]),
                expect={"arms": rollout.arms, "salt": rollout.salt, "policy": "FixedSplit"},
                clock=clock,
            )
            rollout._index = int(state["index"])
            rollout._finished = state["finished"]
            metrics = [g.name for g in rollout.guardrails]
            rollout._periods = [_Period.from_json(p, metrics) for p in state["periods"]]
            position = int(document["log"]["position"])
        except InvalidArgumentError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidArgumentError(
                "path", f"holds an inconsistent rollout state: {exc!r}"
            ) from exc
        records = _read_log(rollout._log_path)  # type: ignore[arg-type]
        if len(records) < position:
            raise InvalidArgumentError(
                "log", f"has {len(records)} decisions but the state was saved after {position}"
            )
        rollout._records = records
        rollout._saved_position = position
        for record in records[position:]:  # decided after the last save: replay the stage
            if rollout._finished is not None:
                break
            rollout._stages = [float(s) for s in record["stages"]]
            rollout._apply(
                record["action"], int(record["stage_index_after"]), float(record["time"])
            )
        if rollout._allocator.policy.weights != rollout.weights:  # type: ignore[attr-defined]
            rollout._allocator.set_weights(rollout.weights)
        return rollout

    def __repr__(self) -> str:
        return (
            f"Rollout(arms={self.arms!r}, stage={self.stage:g}, stages={self._stages!r}, "
            f"finished={self._finished!r})"
        )


# ---------------------------------------------------------------------- helpers


def _stored_log_path(log: Path, state: Path) -> str:
    """Beside the state: its name, so the pair can be moved together; else absolute."""
    if log.parent.resolve() == state.parent.resolve():
        return log.name
    return str(log.resolve())


def _weights(stage: float) -> list[float]:
    return [1.0 - stage, stage]


def _finite(name: str, value: object) -> float:
    if isinstance(value, (str, bytes, bool)):
        raise InvalidArgumentError(name, f"must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise InvalidArgumentError(name, f"must be finite, got {value!r}")
    return number


def _check_stages(name: str, stages: object, *, above: float) -> list[float]:
    if isinstance(stages, (str, bytes)) or not isinstance(stages, Iterable):
        raise InvalidArgumentError(name, f"must be a sequence of weights, got {stages!r}")
    values = [_finite(name, stage) for stage in stages]
    if not values:
        raise InvalidArgumentError(name, "must not be empty")
    previous = above
    for value in values:
        if value <= previous or value > 1.0:
            raise InvalidArgumentError(
                name,
                f"must be strictly increasing in ({above:g}, 1], got {list(values)}",
            )
        previous = value
    return values


def _check_guardrails(guardrails: object) -> list[Guardrail]:
    if isinstance(guardrails, (str, Guardrail)):
        guardrails = [guardrails]
    if not isinstance(guardrails, Iterable):
        raise InvalidArgumentError("guardrails", f"must be a list of Guardrail, got {guardrails!r}")
    out = []
    for item in guardrails:
        if isinstance(item, str):
            item = Guardrail(item)
        if not isinstance(item, Guardrail):
            raise InvalidArgumentError("guardrails", f"must hold Guardrail objects, got {item!r}")
        out.append(item)
    names = [g.name for g in out]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("guardrails", f"repeat a metric: {names}")
    return out


def _check_duration(value: object) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    number = _finite("min_duration", seconds)
    if number < 0:
        raise InvalidArgumentError("min_duration", f"must be non-negative, got {value!r}")
    return number


def _as_summary(metric: str, value: object) -> tuple[float, float, float]:
    """(n, mean, M2) of one scalar batch."""
    if not isinstance(value, Moments):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
            raise InvalidArgumentError(
                "moments", f"{metric}: must be a Moments or (n, mean, var), got {value!r}"
            )
        try:
            value = Moments(*value)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError("moments", f"{metric}: {exc}") from exc
    if value.n.shape != ():
        raise InvalidArgumentError("moments", f"{metric}: must be one group (scalar Moments)")
    n = float(value.n)
    if n == 0:
        return 0.0, 0.0, 0.0
    return n, float(value.mean), float(value.m2)


def _period_moments(period: _Period, metric: str) -> list[list[float]]:
    arms = period.moments.get(metric)
    if arms is None:
        arms = period.moments[metric] = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    return arms


def _json_number(value: object) -> object:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _encode(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    """One write of one whole line, then fsync: a decision is durable once check returns."""
    data = _encode(record)
    created = not path.exists()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InvalidArgumentError("log", f"cannot open {str(path)!r}: {exc}") from exc
    try:
        view = memoryview(data)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if created:  # the new file's directory entry must survive a crash too
        try:
            directory = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(directory)
        except OSError:
            pass
        finally:
            os.close(directory)


def _read_log(path: Path) -> list[dict[str, Any]]:
    """The complete lines of the log; a torn last line (a crash mid-write) is cut off."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InvalidArgumentError("log", f"cannot read {str(path)!r}: {exc}") from exc
    records, offset = [], 0
    for line in data.splitlines(keepends=True):
        try:
            record = json.loads(line) if line.endswith(b"\n") else None
        except ValueError:
            record = None
        if record is None or record.get("seq") != len(records):
            if data[offset + len(line) :].strip():
                raise InvalidArgumentError(
                    "log", f"{str(path)!r} has an unreadable decision at byte {offset}"
                )
            break
        records.append(record)
        offset += len(line)
    if offset < len(data):
        os.truncate(path, offset)
    return records

"""Look-by-look monitoring of always-valid tests.

A confidence sequence covers the effect at every look simultaneously with probability
≥ 1 − α, and an always-valid p-value stays above α at every look with probability ≥ 1 − α
under the null. The quantities that carry the guarantee are therefore the running ones:
the intersection of all intervals so far and the minimum of all p-values so far (Johari
et al. 2017, §4; Howard et al. 2021, §1). :class:`SequentialMonitor` keeps them for any
number of comparisons at once and says "reject" once the running p-value is ≤ α — which
the running interval then shows by excluding 0 — and "continue" before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from splitlab._validation import check_alpha, check_alternative, check_choice
from splitlab.errors import InvalidArgumentError, ShapeMismatchError
from splitlab.sequential.confseq import (
    SequentialResult,
    check_kind,
    check_positive,
    confidence_sequence,
)
from splitlab.sequential.msprt import msprt
from splitlab.stats.moments import JointMoments, Moments
from splitlab.stats.results import scalarize

__all__ = ["SequentialMonitor"]

STATE_VERSION = 1
METHODS = {"cs": confidence_sequence, "msprt": msprt}
OPTIONS = {
    "cs": ("n_star", "relative", "alternative", "kind"),
    "msprt": ("tau2", "relative", "kind"),
}
HISTORY_FIELDS = ("effect", "se", "ci_low", "ci_high", "p_value", "error")
RUNNING_FIELDS = ("running_p_value", "running_ci_low", "running_ci_high")
MOMENT_FIELDS = {
    "Moments": ("n", "mean", "var"),
    "JointMoments": ("n", "mean_y", "var_y", "mean_x", "var_x", "cov"),
}


def _check_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    for name in options:
        if name not in OPTIONS[method]:
            raise InvalidArgumentError(
                name,
                f"is not an option of method {method!r}; expected {', '.join(OPTIONS[method])}",
            )
    if "n_star" in options:
        check_positive("n_star", options["n_star"])
    if "alternative" in options:
        check_alternative(options["alternative"])
    check_kind(options.get("kind"))
    if method == "msprt":
        if options.get("tau2") is None:
            raise InvalidArgumentError(
                "tau2", "is required for method 'msprt' (see splitlab.sequential.msprt_tau2)"
            )
        check_positive("tau2", options["tau2"])
    return dict(options)


def _plain(value: Any) -> Any:
    return np.asarray(value).tolist() if isinstance(value, np.ndarray | np.generic) else value


def _moments_to_dict(moments: Moments | JointMoments) -> dict[str, Any]:
    kind = type(moments).__name__
    plain = {name: getattr(moments, name).tolist() for name in MOMENT_FIELDS[kind]}
    plain["type"] = kind
    if isinstance(moments, Moments):
        plain["ddof"] = moments.ddof
    return plain


def _moments_from_dict(plain: dict[str, Any]) -> Moments | JointMoments:
    kind = plain["type"]
    values = [plain[name] for name in MOMENT_FIELDS[kind]]
    if kind == "Moments":
        return Moments(*values, ddof=plain["ddof"])
    return JointMoments(*values)


class SequentialMonitor:
    """Always-valid monitoring of one or many comparisons, look by look.

    ``method`` is "cs" (:func:`~splitlab.sequential.confseq.confidence_sequence`, options
    ``n_star``, ``relative``, ``alternative``, ``kind``) or "msprt"
    (:func:`~splitlab.sequential.msprt.msprt`, options ``tau2`` — required —,
    ``relative``, ``kind``). Feed it cumulative statistics with :meth:`update` or
    increments with :meth:`add`; both give the same state. ``p_value``, ``ci_low``,
    ``ci_high`` are the running minimum and intersection, shaped like the comparisons;
    rows whose look had no result (an ``error``) leave them unchanged.

    >>> monitor = SequentialMonitor("cs", alpha=0.05, n_star=2000)
    >>> look = monitor.update(Moments(500, 10.0, 4.0), Moments(500, 10.1, 4.0))
    >>> monitor.decision
    'continue'
    >>> look = monitor.add(Moments(500, 10.0, 4.0), Moments(500, 10.6, 4.0))
    >>> monitor.looks, monitor.decision, bool(monitor.ci_low > 0)
    (2, 'reject', True)
    """

    def __init__(self, method: str = "cs", alpha: float = 0.05, **method_options: Any):
        self.method = check_choice("method", method, tuple(METHODS))
        self.alpha = check_alpha(alpha)
        self.options = _check_options(self.method, method_options)
        self._control: Moments | JointMoments | None = None
        self._treatment: Moments | JointMoments | None = None
        self._shape: tuple[int, ...] | None = None
        self._p_value: np.ndarray | None = None
        self._ci_low: np.ndarray | None = None
        self._ci_high: np.ndarray | None = None
        self._history: list[dict[str, np.ndarray]] = []

    @property
    def looks(self) -> int:
        return len(self._history)

    @property
    def p_value(self) -> Any:
        """Running minimum of the looks' p-values (1 before any look)."""
        return scalarize(self._running(self._p_value, 1.0))

    @property
    def ci_low(self) -> Any:
        """Running maximum of the looks' lower bounds (−inf before any look)."""
        return scalarize(self._running(self._ci_low, -np.inf))

    @property
    def ci_high(self) -> Any:
        """Running minimum of the looks' upper bounds (+inf before any look)."""
        return scalarize(self._running(self._ci_high, np.inf))

    @property
    def decision(self) -> Any:
        """ "reject" where the running p-value is ≤ alpha, "continue" elsewhere."""
        rejected = self._running(self._p_value, 1.0) <= self.alpha
        return scalarize(np.where(rejected, "reject", "continue").astype(object))

    def _running(self, value: np.ndarray | None, initial: float) -> np.ndarray:
        return np.asarray(initial) if value is None else value.copy()

    def update(
        self, control: Moments | JointMoments, treatment: Moments | JointMoments
    ) -> SequentialResult:
        """Analyse a look from cumulative statistics (all units since the start)."""
        for name, value in (("control", control), ("treatment", treatment)):
            if not isinstance(value, Moments | JointMoments):
                raise InvalidArgumentError(
                    name, f"must be splitlab.Moments or JointMoments, got {type(value).__name__}"
                )
        if self._shape is not None:
            self._check_continues("control", control, self._control)
            self._check_continues("treatment", treatment, self._treatment)
        result = METHODS[self.method](control, treatment, alpha=self.alpha, **self.options)
        shape = np.shape(result.effect)
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise ShapeMismatchError(
                "control/treatment", f"look shape {shape} differs from the earlier {self._shape}"
            )
        self._control, self._treatment = control, treatment
        self._record(result, control, treatment)
        return result

    def add(
        self,
        control_increment: Moments | JointMoments,
        treatment_increment: Moments | JointMoments,
    ) -> SequentialResult:
        """Analyse a look from the units since the previous look, merged into the totals."""
        if self._control is None:
            return self.update(control_increment, treatment_increment)
        merged = []
        for name, total, increment in (
            ("control_increment", self._control, control_increment),
            ("treatment_increment", self._treatment, treatment_increment),
        ):
            if type(increment) is not type(total):
                raise InvalidArgumentError(
                    name, f"must be {type(total).__name__} like the earlier looks"
                )
            merged.append(total + increment)
        return self.update(*merged)

    def _check_continues(self, name: str, value, before) -> None:
        if type(value) is not type(before):
            raise InvalidArgumentError(
                name, f"must be {type(before).__name__} like the earlier looks"
            )
        try:
            n_now = np.broadcast_to(value.n, self._shape)
        except ValueError as exc:
            raise ShapeMismatchError(
                name, f"shape {value.shape} does not fit the earlier looks' {self._shape}"
            ) from exc
        n_before = np.broadcast_to(before.n, self._shape)
        decreased = np.ravel(n_now < n_before)
        if decreased.any():
            row = int(np.flatnonzero(decreased)[0])
            raise InvalidArgumentError(
                name,
                f"cumulative n decreased from {np.ravel(n_before)[row]:g} to "
                f"{np.ravel(n_now)[row]:g} (comparison {row}) at look {self.looks + 1}; "
                "update() takes totals since the start, add() takes increments",
            )

    def _record(self, result: SequentialResult, control, treatment) -> None:
        shape = self._shape
        look = {name: np.array(np.broadcast_to(getattr(result, name), shape)) for name in
                HISTORY_FIELDS}  # fmt: skip
        look["n_control"] = np.array(np.broadcast_to(control.n, shape), dtype=float)
        look["n_treatment"] = np.array(np.broadcast_to(treatment.n, shape), dtype=float)
        self._p_value = np.fmin(self._running(self._p_value, 1.0), look["p_value"])
        self._ci_low = np.fmax(self._running(self._ci_low, -np.inf), look["ci_low"])
        self._ci_high = np.fmin(self._running(self._ci_high, np.inf), look["ci_high"])
        look["running_p_value"] = self._p_value
        look["running_ci_low"] = self._ci_low
        look["running_ci_high"] = self._ci_high
        self._history.append(look)

    @property
    def history(self) -> pd.DataFrame:
        """One row per (look, comparison): the look's result and the running quantities."""
        columns = ("look", "comparison", "n_control", "n_treatment", *HISTORY_FIELDS,
                   *RUNNING_FIELDS, "decision")  # fmt: skip
        frames = []
        for number, look in enumerate(self._history, start=1):
            frame = pd.DataFrame({name: np.ravel(value) for name, value in look.items()})
            frame.insert(0, "comparison", np.arange(len(frame)))
            frame.insert(0, "look", number)
            frame["decision"] = np.where(
                frame["running_p_value"] <= self.alpha, "reject", "continue"
            )
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=list(columns))
        return pd.concat(frames, ignore_index=True)[list(columns)]

    def state(self) -> dict[str, Any]:
        """Everything needed to resume monitoring, as plain (JSON-ready) dicts and lists."""
        return {
            "version": STATE_VERSION,
            "method": self.method,
            "alpha": self.alpha,
            "options": {name: _plain(value) for name, value in self.options.items()},
            "shape": None if self._shape is None else list(self._shape),
            "control": None if self._control is None else _moments_to_dict(self._control),
            "treatment": None if self._treatment is None else _moments_to_dict(self._treatment),
            "history": [
                {name: value.tolist() for name, value in look.items()} for look in self._history
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SequentialMonitor:
        """A monitor restored from :meth:`state`."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            version = state.get("version") if isinstance(state, dict) else None
            raise InvalidArgumentError(
                "state", f"is not a SequentialMonitor state of version {STATE_VERSION} "
                f"(version {version!r})"
            )  # fmt: skip
        try:
            monitor = cls(state["method"], state["alpha"], **state["options"])
            if state["control"] is not None:
                monitor._control = _moments_from_dict(state["control"])
                monitor._treatment = _moments_from_dict(state["treatment"])
                monitor._shape = tuple(state["shape"])
            for plain in state["history"]:
                look = {
                    name: np.array(value, dtype=object if name == "error" else float)
                    for name, value in plain.items()
                }
                monitor._history.append(look)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError("state", f"is corrupt: {exc!r}") from exc
        if monitor._history:
            last = monitor._history[-1]
            monitor._p_value = last["running_p_value"]
            monitor._ci_low = last["running_ci_low"]
            monitor._ci_high = last["running_ci_high"]
        return monitor

    def __repr__(self) -> str:
        return (
            f"SequentialMonitor(method={self.method!r}, alpha={self.alpha!r}, "
            f"looks={self.looks}, shape={self._shape})"
        )

"""Metric definitions: what to aggregate per unit and how to compare it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from splitlab._validation import check_choice
from splitlab.errors import InvalidArgumentError

METRIC_KINDS = ("mean", "proportion", "ratio", "quantile")


@dataclass(frozen=True)
class Metric:
    """One metric of an experiment readout.

    - ``kind="mean"``: the per-unit mean of ``column`` (default: ``name``); missing values
      count as 0, as for a user who did not purchase.
    - ``kind="proportion"``: ``column`` holds 0/1 per unit; variance p(1 − p) as in
      GrowthBook and Statsig.
    - ``kind="ratio"``: Σ ``numerator`` / Σ ``denominator`` per group (clicks per session),
      analysed by the delta method with the unit as the randomization unit.

    - ``kind="quantile"``: the ``quantile``-th quantile of ``column`` (0.5 the median, 0.9
      the p90) compared between arms with the order-statistics interval of GrowthBook's
      quantile metrics; missing values are left out (a missing latency is no latency).

    ``covariate`` names a pre-period column for CUPED, or several columns (a list or tuple:
    pre-period metrics, a model's prediction as in CUPAC) for a regression adjustment on
    all of them, θ pooled over the arms (:func:`~splitlab.stats.regression.regression_test`).
    A ratio metric's covariate is its pre-period (numerator, denominator) pair: the ratio
    is adjusted by the pre-period ratio
    (:func:`~splitlab.stats.ratio_adjustment.ratio_cuped_test`, GrowthBook's
    regression-adjusted ratio).
    ``winsorize=(lower_q, upper_q)`` clips unit values at those quantiles, computed per
    experiment in the engine. ``lower_is_better=True`` (latency, churn, cost; the same as
    ``higher_is_better=False``) says a decrease is the good direction: effects keep their
    sign, but chance-to-win, the risks, the decision, the direction of one-sided tests
    (``analyze(alternative="better")``) and the report's colours follow it. A
    ``guardrail`` metric is reported but kept out of the multiple-testing family.

    >>> Metric("revenue", covariate="pre_revenue").columns
    ('revenue', 'pre_revenue')
    >>> Metric("revenue", covariate=["pre_revenue", "predicted"]).covariates
    ('pre_revenue', 'predicted')
    >>> Metric("ctr", kind="ratio", numerator="clicks", denominator="sessions").columns
    ('clicks', 'sessions')
    >>> Metric("ctr", kind="ratio", numerator="clicks", denominator="sessions",
    ...        covariate=("pre_clicks", "pre_sessions")).xs
    ('sessions', 'pre_clicks', 'pre_sessions')
    >>> Metric("latency_p90", column="latency", kind="quantile", quantile=0.9).y
    'latency'
    >>> Metric("latency", lower_is_better=True).higher_is_better
    False
    """

    name: str
    column: str | None = None
    kind: str = "mean"
    numerator: str | None = None
    denominator: str | None = None
    covariate: str | tuple[str, ...] | None = None
    winsorize: tuple[float, float] | None = None
    higher_is_better: bool = True
    guardrail: bool = False
    quantile: float | None = None
    lower_is_better: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError("name", f"must be a non-empty string, got {self.name!r}")
        check_choice("kind", self.kind, METRIC_KINDS)
        self._orient()
        object.__setattr__(self, "covariate", _covariate_columns(self.name, self.covariate))
        self._check_quantile()
        if self.kind == "ratio":
            if not (self.numerator and self.denominator):
                raise InvalidArgumentError(
                    "numerator",
                    f"metric {self.name!r}: a ratio metric needs numerator= and denominator=",
                )
            covariates = self.covariates
            if covariates and len(covariates) != 2:
                missing = (
                    f"one column {covariates[0]!r} without its denominator"
                    if len(covariates) == 1
                    else f"{len(covariates)} columns"
                )
                raise InvalidArgumentError(
                    "covariate",
                    f"metric {self.name!r}: a ratio metric's covariate is the pre-period "
                    f"(numerator, denominator) pair, e.g. covariate=('pre_clicks', "
                    f"'pre_sessions'); got {missing}",
                )
        elif self.numerator or self.denominator:
            raise InvalidArgumentError(
                "numerator", f"metric {self.name!r}: numerator/denominator need kind='ratio'"
            )
        if self.winsorize is not None:
            try:
                lower, upper = (float(q) for q in self.winsorize)
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(
                    "winsorize", f"metric {self.name!r}: expected (lower_q, upper_q)"
                ) from exc
            if not 0.0 <= lower < upper <= 1.0:
                raise InvalidArgumentError(
                    "winsorize",
                    f"metric {self.name!r}: need 0 <= lower_q < upper_q <= 1, got {self.winsorize}",
                )
            object.__setattr__(self, "winsorize", (lower, upper))

    def _orient(self) -> None:
        """``higher_is_better`` and ``lower_is_better`` as one direction, stated once."""
        higher = self.higher_is_better
        if not isinstance(higher, (bool, np.bool_)):
            raise InvalidArgumentError(
                "higher_is_better", f"metric {self.name!r}: must be True or False, got {higher!r}"
            )
        lower = self.lower_is_better
        if lower is None:
            lower = not higher
        elif not isinstance(lower, (bool, np.bool_)):
            raise InvalidArgumentError(
                "lower_is_better", f"metric {self.name!r}: must be True or False, got {lower!r}"
            )
        elif not lower and not higher:
            raise InvalidArgumentError(
                "lower_is_better",
                f"metric {self.name!r}: lower_is_better=False contradicts higher_is_better=False",
            )
        object.__setattr__(self, "lower_is_better", bool(lower))
        object.__setattr__(self, "higher_is_better", not lower)

    def _check_quantile(self) -> None:
        if self.kind != "quantile":
            if self.quantile is not None:
                raise InvalidArgumentError(
                    "quantile", f"metric {self.name!r}: quantile= needs kind='quantile'"
                )
            return
        level = self.quantile
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            raise InvalidArgumentError(
                "quantile", f"metric {self.name!r}: kind='quantile' needs quantile= in (0, 1)"
            )
        if not 0.0 < float(level) < 1.0:
            raise InvalidArgumentError(
                "quantile", f"metric {self.name!r}: must lie strictly in (0, 1), got {level!r}"
            )
        if self.covariate is not None or self.winsorize is not None:
            raise InvalidArgumentError(
                "covariate" if self.covariate is not None else "winsorize",
                f"metric {self.name!r}: a quantile metric takes no covariate or winsorizing",
            )
        object.__setattr__(self, "quantile", float(level))

    @property
    def y(self) -> str:
        """The column whose per-unit mean (or ratio numerator) is compared."""
        if self.kind == "ratio":
            return self.numerator  # type: ignore[return-value]
        return self.column or self.name

    @property
    def covariates(self) -> tuple[str, ...]:
        """The regression-adjustment columns, in the order given (empty without any)."""
        if self.covariate is None:
            return ()
        return (self.covariate,) if isinstance(self.covariate, str) else self.covariate

    @property
    def x(self) -> str | None:
        """The second column: the ratio's denominator or the one CUPED covariate (None with
        several covariates: see :attr:`xs`)."""
        if self.kind == "ratio":
            return self.denominator
        return self.covariate if isinstance(self.covariate, str) else None

    @property
    def xs(self) -> tuple[str, ...]:
        """Every column reduced beside y: the ratio's denominator (then its pre-period
        numerator and denominator), or the covariates."""
        if self.kind == "ratio":
            return (self.denominator, *self.covariates)  # type: ignore[return-value]
        return self.covariates

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.y, *self.xs)

    def with_covariate(self, covariate: str | Sequence[str] | None) -> Metric:
        from dataclasses import replace

        return replace(self, covariate=covariate)


def _covariate_columns(name: str, covariate: object) -> str | tuple[str, ...] | None:
    """One covariate as its column name, several as a tuple of distinct names."""
    if covariate is None or isinstance(covariate, str):
        if covariate == "":
            raise InvalidArgumentError("covariate", f"metric {name!r}: empty column name")
        return covariate
    try:
        columns = tuple(covariate)  # type: ignore[call-overload]
    except TypeError as exc:
        raise InvalidArgumentError(
            "covariate", f"metric {name!r}: a column name or a list of them, got {covariate!r}"
        ) from exc
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise InvalidArgumentError(
            "covariate", f"metric {name!r}: a column name or a list of them, got {covariate!r}"
        )
    if len(set(columns)) < len(columns):
        raise InvalidArgumentError("covariate", f"metric {name!r}: repeated columns {columns}")
    return columns[0] if len(columns) == 1 else columns


def as_metrics(metrics: object) -> list[Metric]:
    """Metrics given as Metric objects or plain column names (mean metrics)."""
    if isinstance(metrics, (str, Metric)):
        metrics = [metrics]
    try:
        items = list(metrics)  # type: ignore[call-overload]
    except TypeError as exc:
        raise InvalidArgumentError("metrics", "must be a metric, a column name or a list") from exc
    if not items:
        raise InvalidArgumentError("metrics", "at least one metric is needed")
    result = []
    for item in items:
        if isinstance(item, str):
            result.append(Metric(item))
        elif isinstance(item, Metric):
            result.append(item)
        else:
            raise InvalidArgumentError(
                "metrics", f"expected Metric or column name, got {type(item).__name__}"
            )
    names = [metric.name for metric in result]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise InvalidArgumentError("metrics", f"duplicate metric names: {', '.join(duplicated)}")
    return result

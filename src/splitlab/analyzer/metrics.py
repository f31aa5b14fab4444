"""Metric definitions: what to aggregate per unit and how to compare it."""

from __future__ import annotations

from dataclasses import dataclass

from splitlab._validation import check_choice
from splitlab.errors import InvalidArgumentError

METRIC_KINDS = ("mean", "proportion", "ratio")


@dataclass(frozen=True)
class Metric:
    """One metric of an experiment readout.

    - ``kind="mean"``: the per-unit mean of ``column`` (default: ``name``); missing values
      count as 0, as for a user who did not purchase.
    - ``kind="proportion"``: ``column`` holds 0/1 per unit; variance p(1 − p) as in
      GrowthBook and Statsig.
    - ``kind="ratio"``: Σ ``numerator`` / Σ ``denominator`` per group (clicks per session),
      analysed by the delta method with the unit as the randomization unit.

    ``covariate`` names a pre-period column for CUPED. ``winsorize=(lower_q, upper_q)``
    clips unit values at those quantiles, computed per experiment in the engine.
    ``higher_is_better`` orients the decision; a ``guardrail`` metric is reported but kept
    out of the multiple-testing family.

    >>> Metric("revenue", covariate="pre_revenue").columns
    ('revenue', 'pre_revenue')
    >>> Metric("ctr", kind="ratio", numerator="clicks", denominator="sessions").columns
    ('clicks', 'sessions')
    """

    name: str
    column: str | None = None
    kind: str = "mean"
    numerator: str | None = None
    denominator: str | None = None
    covariate: str | None = None
    winsorize: tuple[float, float] | None = None
    higher_is_better: bool = True
    guardrail: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError("name", f"must be a non-empty string, got {self.name!r}")
        check_choice("kind", self.kind, METRIC_KINDS)
        if self.kind == "ratio":
            if not (self.numerator and self.denominator):
                raise InvalidArgumentError(
                    "numerator",
                    f"metric {self.name!r}: a ratio metric needs numerator= and denominator=",
                )
            if self.covariate is not None:
                raise InvalidArgumentError(
                    "covariate", f"metric {self.name!r}: CUPED is not available for ratio metrics"
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

    @property
    def y(self) -> str:
        """The column whose per-unit mean (or ratio numerator) is compared."""
        if self.kind == "ratio":
            return self.numerator  # type: ignore[return-value]
        return self.column or self.name

    @property
    def x(self) -> str | None:
        """The second column: the ratio's denominator or the CUPED covariate."""
        return self.denominator if self.kind == "ratio" else self.covariate

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.y,) if self.x is None else (self.y, self.x)

    def with_covariate(self, covariate: str | None) -> Metric:
        from dataclasses import replace

        return replace(self, covariate=covariate)


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

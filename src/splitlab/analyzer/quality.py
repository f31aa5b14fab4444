"""Data-quality checks of logged experiment data, computed where the data lives.

Each check is a narwhals group-by run by the engine that holds the rows (DuckDB, polars,
Spark); only a few summary rows per (experiment, variant[, day]) come back, and the tests
run on them in numpy. The table has one row per (check, experiment and, where they apply,
variant, column and day) with the columns of ``COLUMNS``:

``check``
    one of ``CHECKS``;
``experiment``, ``variant``, ``metric``, ``day``
    what the row is about (``variant`` a non-control arm compared with its control,
    ``metric`` the column checked — a metric's column or a covariate —, ``day`` the
    exposure day); None (NaT for ``day``) where the check does not split by it;
``value``, ``control_value``
    the row's number (see each check) and the same quantity in the control arm;
``threshold``, ``p_value``
    the limit the row is held to and the test's p-value;
``flag``
    whether the row shows a problem; ``detail`` says so in a sentence with the numbers.

The checks (``α`` is ``QUALITY_ALPHA`` = 0.001 per test unless said otherwise):

``multiple_exposure`` (needs ``unit``)
    units whose rows carry more than one variant of an experiment; ``value`` is their share
    of the experiment's units, ``threshold`` 0, flagged when any exists. Without ``unit``
    each row is its own unit and the row says it was not checked.
``missing_values``
    per metric column, the share of units without a value (null or NaN; with ``unit``, a
    unit none of whose rows has one) in a variant (``value``) and in its control
    (``control_value``); flagged when the two-sided exact conditional test of equal shares
    (the smaller hypergeometric tail of Fisher's exact test, doubled) gives p < α. Missing
    values themselves are legal (a mean metric counts them as 0): a missing share that
    differs between arms is the problem, as when one arm's logging drops values.
``daily_exposure`` (needs ``date``)
    per exposure day (a unit's first day with ``unit``), the chi-square test of that day's
    counts per variant against the planned split (:func:`~splitlab.stats.srm.srm_test`);
    ``value`` is the day's exposures, ``threshold`` α / (days of the experiment), a
    Bonferroni split so that a healthy experiment flags some day with probability below α.
    A day on which an arm has no exposures while others have some is flagged too when the
    chance of that under the planned split, (1 − share)^exposures, is below the threshold.
``extreme_values``
    per metric column (not proportions), the share of units above the experiment's pooled
    99.9th percentile (``EXTREME_QUANTILE``, linear interpolation, computed in the
    engine over every arm) in a variant and its control, compared by the same exact test at
    α. A real effect on a heavy tail moves this share too: a flag says to look at the
    outliers before trusting the mean.
``covariate_balance``
    per pre-period covariate, the standardized mean difference
    (x̄_variant − x̄_control) / sqrt((s²_variant + s²_control) / 2) (``value``) and Welch's
    t-test p-value; flagged when |SMD| > ``SMD_LIMIT`` (0.1, the usual rule) or p < α.
    Randomization balances covariates in expectation; an imbalance means the assignment
    or the pre-period join is broken.
``srm``
    the Analyzer's sample-ratio check (chi-square of the unit counts against the planned
    weights): ``value`` is the statistic, ``threshold`` 0.001.

Rows are treated as independent units; with ``cluster=`` they are not, and the tests'
p-values are then too small (flags err on the side of caution).

>>> import pandas as pd
>>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 500,
...                      "revenue": [1.0, 2.0, 0.0, None] * 250})
>>> from splitlab import Analyzer
>>> table = Analyzer(data).quality(["revenue"])
>>> row = table[table["check"] == "missing_values"].iloc[0]
>>> row["variant"], float(row["value"]), float(row["control_value"]), bool(row["flag"])
('b', 0.5, 0.0, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import narwhals as nw
import numpy as np
import pandas as pd
from scipy import stats

from splitlab.analyzer.metrics import Metric
from splitlab.analyzer.readout import SRM_ALPHA
from splitlab.errors import DegenerateDataWarning, EngineError, SplitlabError
from splitlab.stats.frequentist import ttest
from splitlab.stats.moments import Moments
from splitlab.stats.srm import srm_test

QUALITY_ALPHA = 0.001  # per test; the daily check splits it over the days (Bonferroni)
SMD_LIMIT = 0.1  # |standardized mean difference| above this is an imbalance
EXTREME_QUANTILE = 0.999  # the pooled quantile above which a value is extreme
CHECKS = (
    "multiple_exposure",
    "missing_values",
    "daily_exposure",
    "extreme_values",
    "covariate_balance",
    "srm",
)
COLUMNS = [
    "check", "experiment", "variant", "metric", "day", "value", "control_value",
    "threshold", "p_value", "flag", "detail",
]  # fmt: skip
SUMMARY_FIELDS = ("check", "experiment", "variant", "metric", "day", "value", "p_value", "detail")


def quality_checks(
    frame: nw.LazyFrame,
    *,
    experiment: str,
    variant: str,
    is_control: Callable[[object, object], bool],
    srm: pd.DataFrame,
    weights_for: Callable[[object, Sequence[object]], np.ndarray],
    metrics: Sequence[Metric] = (),
    covariates: Sequence[str] = (),
    unit: str | None = None,
    date: str | None = None,
) -> pd.DataFrame:
    """Run every check on ``frame`` (see the module docstring) and return the table.

    ``is_control(experiment, label)`` tells an experiment's control label;
    ``srm`` is the Analyzer's sample-ratio table (one row per experiment with
    ``variants``, ``counts``, ``expected_share``, ``statistic``, ``p_value``, ``mismatch``,
    ``error``), whose variants are the arms every check reports; ``weights_for(experiment,
    variants)`` gives the planned split. :meth:`Analyzer.quality
    <splitlab.analyzer.analyzer.Analyzer.quality>` supplies them.

    >>> import pandas as pd
    >>> from splitlab import Analyzer
    >>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 50,
    ...                      "user": list(range(99)) + [0], "revenue": 1.0})
    >>> table = Analyzer(data, unit="user").quality(["revenue"])
    >>> row = table[table["check"] == "multiple_exposure"].iloc[0]
    >>> bool(row["flag"]), row["detail"][:60]
    (True, "1 of 99 units (1.01%) of experiment 'e1' were exposed to mor")
    """
    arms = {record.experiment: list(record.variants) for record in srm.itertuples(index=False)}
    controls = {
        name: next((v for v in variants if is_control(name, v)), None)
        for name, variants in arms.items()
    }
    outcome_columns = list(dict.fromkeys(c for m in metrics for c in m.columns))
    extreme_columns = list(dict.fromkeys(m.y for m in metrics if m.kind != "proportion"))
    covariates = list(dict.fromkeys(covariates))
    checked = list(dict.fromkeys([*outcome_columns, *covariates]))
    aliases = {column: f"__q{index}" for index, column in enumerate(checked)}
    units = _unit_values(frame, experiment, variant, unit, date, aliases)
    rows: list[dict[str, Any]] = []
    rows += _multiple_exposure(frame, experiment, variant, unit, arms)
    groups = _group_summaries(units, aliases, outcome_columns, extreme_columns, covariates)
    rows += _missing_values(groups, aliases, outcome_columns, arms, controls, unit)
    rows += _daily_exposure(units, date, arms, weights_for, unit)
    rows += _extreme_values(groups, aliases, extreme_columns, arms, controls, unit)
    rows += _covariate_balance(groups, aliases, covariates, arms, controls)
    rows += _srm_rows(srm)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["day"] = pd.to_datetime(table["day"]).astype("datetime64[ns]")
    for name in ("value", "control_value", "threshold", "p_value"):
        table[name] = table[name].astype(float)
    table["flag"] = table["flag"].astype(bool)
    order = {name: index for index, name in enumerate(CHECKS)}
    table = table.iloc[np.argsort(table["check"].map(order).to_numpy(), kind="stable")].reset_index(
        drop=True
    )
    return table


def summary(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The flagged rows of a quality table as plain Python values (a compact, JSON-ready
    list for ``results.attrs["quality"]``); an empty list when nothing is flagged.

    >>> table = pd.DataFrame([{"check": "srm", "experiment": "e1", "variant": None,
    ...     "metric": None, "day": pd.NaT, "value": 15.0, "p_value": 1e-4, "flag": True,
    ...     "detail": "split off"}])
    >>> summary(table)[0]["check"], summary(table)[0]["day"]
    ('srm', None)
    """
    flagged = table[table["flag"].astype(bool)]
    return [
        {name: _plain(getattr(record, name)) for name in SUMMARY_FIELDS}
        for record in flagged.itertuples(index=False)
    ]


# ---------------------------------------------------------------------- engine queries


def _collect(lazy: nw.LazyFrame) -> pd.DataFrame:
    try:
        return lazy.collect().to_pandas()
    except SplitlabError:
        raise
    except Exception as exc:  # the engine's own error, whatever its library
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EngineError(
            "source", f"the engine could not run the data-quality checks: {first_line}"
        ) from exc


def _missing(expression: nw.Expr) -> nw.Expr:
    """NaN as a missing value (pandas NaN reaches DuckDB as NULL; polars keeps NaN)."""
    return nw.when(expression.is_nan()).then(None).otherwise(expression)


def _unit_values(frame, experiment, variant, unit, date, aliases) -> nw.LazyFrame:
    """One row per unit (per row without ``unit``): experiment ``__e``, variant ``__v``,
    first exposure ``__d`` and each checked column's value (null when missing; with
    ``unit``, the sum of the unit's values, null when it has none)."""
    schema = frame.collect_schema()
    selection = [nw.col(experiment).alias("__e"), nw.col(variant).alias("__v")]
    if unit is not None:
        identifier = nw.col(unit)
        if schema[unit] in (nw.Float32, nw.Float64):
            identifier = _missing(identifier)
        selection.append(identifier.alias("__u"))
    if date is not None:
        selection.append(nw.col(date).alias("__d"))
    for column, alias in aliases.items():
        selection.append(_missing(nw.col(column).cast(nw.Float64)).alias(alias))
    lazy = frame.select(*selection)
    if unit is None:
        return lazy
    lazy = lazy.filter(~nw.col("__u").is_null())
    aggregations = [nw.col("__d").min().alias("__d")] if date is not None else []
    for alias in aliases.values():
        aggregations += [
            nw.col(alias).sum().alias(f"{alias}_sum"),
            nw.col(alias).count().alias(f"{alias}_count"),
        ]
    if not aggregations:
        aggregations = [nw.len().alias("__rows")]
    per_unit = lazy.group_by("__e", "__v", "__u").agg(*aggregations)
    if not aliases:
        return per_unit
    # engines sum no values to 0 (polars) or to null (DuckDB): a unit without one is missing
    return per_unit.with_columns(
        *(
            nw.when(nw.col(f"{alias}_count") > 0)
            .then(nw.col(f"{alias}_sum"))
            .otherwise(None)
            .alias(alias)
            for alias in aliases.values()
        )
    )


def _group_summaries(units, aliases, outcomes, extremes, covariates) -> pd.DataFrame:
    """Per (experiment, variant): units, missing values per column, values above the
    pooled extreme quantile per column (and that quantile), and the covariates' count,
    mean and variance — one engine pass (with the quantiles as a joined sub-query)."""
    lazy = units
    if extremes:
        limits = units.group_by("__e").agg(
            *(
                nw.col(aliases[c]).quantile(EXTREME_QUANTILE, interpolation="linear")
                .alias(f"{aliases[c]}_limit")
                for c in extremes
            )
        )  # fmt: skip
        lazy = units.join(limits, on="__e", how="left")
    aggregations = [nw.len().alias("__n")]
    for column in outcomes:
        alias = aliases[column]
        aggregations.append(
            nw.when(nw.col(alias).is_null()).then(1).otherwise(0).sum().alias(f"{alias}_missing")
        )
    for column in extremes:
        alias = aliases[column]
        limit = nw.col(f"{alias}_limit")
        aggregations += [
            nw.when(nw.col(alias) > limit).then(1).otherwise(0).sum().alias(f"{alias}_above"),
            nw.col(alias).count().alias(f"{alias}_values"),
            limit.max().alias(f"{alias}_limit"),
        ]
    for column in covariates:
        alias = aliases[column]
        aggregations += [
            nw.col(alias).count().alias(f"{alias}_count"),
            nw.col(alias).mean().alias(f"{alias}_mean"),
            nw.col(alias).var(ddof=1).alias(f"{alias}_var"),
        ]
    return _collect(lazy.group_by("__e", "__v").agg(*aggregations))


def _lookup(groups: pd.DataFrame, experiment: object, variant: object) -> pd.Series | None:
    match = groups[_equal(groups["__e"], experiment) & _equal(groups["__v"], variant)]
    return None if match.empty else match.iloc[0]


def _equal(column: pd.Series, value: object) -> np.ndarray:
    return np.array([_same(item, value) for item in column], dtype=bool)


def _same(a: object, b: object) -> bool:
    if isinstance(a, (pd.Timestamp, np.datetime64)) or isinstance(b, (pd.Timestamp, np.datetime64)):
        try:
            return pd.Timestamp(a) == pd.Timestamp(b)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------- the checks


def _row(check: str, experiment: object, detail: str, **fields: Any) -> dict[str, Any]:
    row = {name: None for name in COLUMNS}
    row.update(
        check=check, experiment=experiment, day=pd.NaT, value=np.nan, control_value=np.nan,
        threshold=np.nan, p_value=np.nan, flag=False, detail=detail,
    )  # fmt: skip
    row.update(fields)
    return row


def _multiple_exposure(frame, experiment, variant, unit, arms) -> list[dict[str, Any]]:
    if unit is None:
        return [
            _row(
                "multiple_exposure",
                name,
                "Not checked: each row is its own unit; give Analyzer(..., unit=COLUMN) to "
                "check that no unit saw two variants.",
            )
            for name in arms
        ]
    schema = frame.collect_schema()
    identifier = nw.col(unit)
    if schema[unit] in (nw.Float32, nw.Float64):
        identifier = _missing(identifier)
    per_unit = (
        frame.select(
            nw.col(experiment).alias("__e"), nw.col(variant).alias("__v"), identifier.alias("__u")
        )
        .filter(~nw.col("__u").is_null())
        .group_by("__e", "__u")
        .agg(nw.col("__v").n_unique().alias("__k"))
    )
    counts = _collect(
        per_unit.group_by("__e").agg(
            nw.len().alias("__units"),
            nw.when(nw.col("__k") > 1).then(1).otherwise(0).sum().alias("__multiple"),
        )
    )
    rows = []
    for name in arms:
        found = counts[_equal(counts["__e"], name)]
        total = int(found["__units"].sum()) if len(found) else 0
        multiple = int(found["__multiple"].sum()) if len(found) else 0
        share = multiple / total if total else np.nan
        rows.append(
            _row(
                "multiple_exposure",
                name,
                f"{multiple:,} of {total:,} units ({_share(share)}) of experiment {name!r} "
                "were exposed to more than one variant"
                + (" (each is counted in every arm it saw)." if multiple else "."),
                value=share,
                threshold=0.0,
                flag=multiple > 0,
            )
        )
    return rows


def _exact_test(k_t, n_t, k_c, n_c) -> float:
    """Two-sided exact conditional test of equal shares k_t/n_t and k_c/n_c: given the
    k_t + k_c events, k_t is hypergeometric; the smaller tail, doubled."""
    if n_t <= 0 or n_c <= 0:
        return float("nan")
    total, events = n_t + n_c, k_t + k_c
    if events == 0 or events == total:
        return 1.0
    below = stats.hypergeom.cdf(k_t, total, events, n_t)
    above = stats.hypergeom.sf(k_t - 1, total, events, n_t)
    return float(min(1.0, 2.0 * min(below, above)))


def _comparisons(arms, controls):
    """(experiment, variant, control) of every non-control arm."""
    for name, variants in arms.items():
        control = controls.get(name)
        for label in variants:
            if control is not None and not _same(label, control):
                yield name, label, control


def _missing_values(groups, aliases, columns, arms, controls, unit) -> list[dict[str, Any]]:
    noun = "units" if unit is not None else "rows"
    rows = []
    for column in columns:
        alias = aliases[column]
        for name, label, control in _comparisons(arms, controls):
            side_t, side_c = _lookup(groups, name, label), _lookup(groups, name, control)
            n_t = int(side_t["__n"]) if side_t is not None else 0
            n_c = int(side_c["__n"]) if side_c is not None else 0
            k_t = int(side_t[f"{alias}_missing"]) if side_t is not None else 0
            k_c = int(side_c[f"{alias}_missing"]) if side_c is not None else 0
            share_t = k_t / n_t if n_t else np.nan
            share_c = k_c / n_c if n_c else np.nan
            p = _exact_test(k_t, n_t, k_c, n_c)
            flag = bool(p < QUALITY_ALPHA)
            detail = (
                f"Column {column!r}: {_share(share_t)} of {noun} in {label!r} have no value "
                f"({k_t:,} of {n_t:,}) against {_share(share_c)} in {control!r} "
                f"({k_c:,} of {n_c:,}); exact test {_p(p)}"
                + (f", below α = {QUALITY_ALPHA:g}." if flag else ".")
            )
            rows.append(
                _row(
                    "missing_values",
                    name,
                    detail,
                    variant=label,
                    metric=column,
                    value=share_t,
                    control_value=share_c,
                    threshold=QUALITY_ALPHA,
                    p_value=p,
                    flag=flag,
                )
            )
    return rows


def _daily_exposure(units, date, arms, weights_for, unit) -> list[dict[str, Any]]:
    if date is None:
        return [
            _row(
                "daily_exposure",
                name,
                "Not checked: give Analyzer(..., date=COLUMN) to check the split day by day.",
            )
            for name in arms
        ]
    noun = "units" if unit is not None else "rows"
    daily = _collect(
        units.filter(~nw.col("__d").is_null())
        .with_columns(nw.col("__d").cast(nw.Date).alias("__p"))
        .group_by("__e", "__v", "__p")
        .agg(nw.len().alias("__n"))
    )
    daily = daily.rename(columns={"__e": "experiment", "__v": "variant", "__p": "day", "__n": "n"})
    daily["day"] = pd.to_datetime(daily["day"])
    rows = []
    for name, variants in arms.items():
        own = daily[_equal(daily["experiment"], name)]
        days = list(pd.DatetimeIndex(own["day"].unique()).sort_values())
        if not days:
            continue
        counts = np.zeros((len(days), len(variants)))
        position = {day: index for index, day in enumerate(days)}
        for record in own.itertuples(index=False):
            column = next((i for i, v in enumerate(variants) if _same(record.variant, v)), None)
            if column is not None:
                counts[position[record.day], column] += record.n
        weights = np.asarray(weights_for(name, variants), dtype=float)
        share = weights / weights.sum()
        threshold = QUALITY_ALPHA / len(days)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            result = srm_test(counts, weights)
        p_values = np.atleast_1d(np.asarray(result.p_value, dtype=float))
        for index, day in enumerate(days):
            day_counts = counts[index]
            total = day_counts.sum()
            # an arm planned to get traffic that got none while others did
            empty = [
                (variants[i], (1.0 - share[i]) ** total)
                for i in range(len(variants))
                if share[i] > 0 and day_counts[i] == 0 and total > 0
            ]
            empty_flagged = [(label, chance) for label, chance in empty if chance < threshold]
            p = float(p_values[index])
            flag = bool(p < threshold) or bool(empty_flagged)
            split = ", ".join(
                f"{v!r} {int(c):,}" for v, c in zip(variants, day_counts, strict=True)
            )
            planned = "/".join(f"{s:.0%}" for s in share)
            detail = (
                f"{pd.Timestamp(day):%Y-%m-%d}: {split} {noun} exposed (planned {planned}); "
                f"chi-square {_p(p)} against the split"
                + (f", below α = {QUALITY_ALPHA:g}/{len(days)} days" if p < threshold else "")
            )
            for label, chance in empty_flagged:
                detail += (
                    f"; no exposures in {label!r} although {int(total):,} reached the other "
                    f"arms (chance {chance:.2g} under the planned split)"
                )
            rows.append(
                _row(
                    "daily_exposure",
                    name,
                    detail + ".",
                    day=pd.Timestamp(day),
                    value=total,
                    threshold=threshold,
                    p_value=p,
                    flag=flag,
                )
            )
    return rows


def _extreme_values(groups, aliases, columns, arms, controls, unit) -> list[dict[str, Any]]:
    noun = "units" if unit is not None else "rows"
    rows = []
    for column in columns:
        alias = aliases[column]
        for name, label, control in _comparisons(arms, controls):
            side_t, side_c = _lookup(groups, name, label), _lookup(groups, name, control)
            if side_t is None or side_c is None:
                continue
            limit = float(side_t[f"{alias}_limit"]) if not _na(side_t[f"{alias}_limit"]) else np.nan
            n_t, n_c = int(side_t[f"{alias}_values"]), int(side_c[f"{alias}_values"])
            k_t, k_c = int(side_t[f"{alias}_above"]), int(side_c[f"{alias}_above"])
            share_t = k_t / n_t if n_t else np.nan
            share_c = k_c / n_c if n_c else np.nan
            p = _exact_test(k_t, n_t, k_c, n_c) if np.isfinite(limit) else np.nan
            flag = bool(p < QUALITY_ALPHA)
            detail = (
                f"Column {column!r}: {_share(share_t)} of {noun} with a value in {label!r} "
                f"({k_t:,} of {n_t:,}) lie above the pooled {EXTREME_QUANTILE:.1%} quantile "
                f"{_number(limit)} against {_share(share_c)} in {control!r} ({k_c:,} of "
                f"{n_c:,}); exact test {_p(p)}"
                + (f", below α = {QUALITY_ALPHA:g}." if flag else ".")
            )
            rows.append(
                _row(
                    "extreme_values",
                    name,
                    detail,
                    variant=label,
                    metric=column,
                    value=share_t,
                    control_value=share_c,
                    threshold=QUALITY_ALPHA,
                    p_value=p,
                    flag=flag,
                )
            )
    return rows


def _covariate_balance(groups, aliases, covariates, arms, controls) -> list[dict[str, Any]]:
    rows = []
    for column in covariates:
        alias = aliases[column]
        for name, label, control in _comparisons(arms, controls):
            side_t, side_c = _lookup(groups, name, label), _lookup(groups, name, control)
            if side_t is None or side_c is None:
                continue
            n = [float(side[f"{alias}_count"]) for side in (side_c, side_t)]
            mean = [_float(side[f"{alias}_mean"]) for side in (side_c, side_t)]
            var = [_float(side[f"{alias}_var"]) for side in (side_c, side_t)]
            difference = mean[1] - mean[0]
            spread = math.sqrt((var[0] + var[1]) / 2) if all(map(math.isfinite, var)) else np.nan
            if not math.isfinite(difference) or not math.isfinite(spread):
                smd = np.nan
            elif spread > 0:
                smd = difference / spread
            else:
                smd = 0.0 if difference == 0 else math.copysign(math.inf, difference)
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", DegenerateDataWarning)
                arms_moments = [
                    Moments(n[i], mean[i] if math.isfinite(mean[i]) else 0.0,
                            var[i] if math.isfinite(var[i]) else 0.0)
                    for i in range(2)
                ]  # fmt: skip
                p = float(ttest(*arms_moments).p_value) if min(n) >= 2 else np.nan
            flag = bool(abs(smd) > SMD_LIMIT) or bool(p < QUALITY_ALPHA)
            detail = (
                f"Covariate {column!r}: mean {_number(mean[1])} in {label!r} (n = {int(n[1]):,}) "
                f"against {_number(mean[0])} in {control!r} (n = {int(n[0]):,}); standardized "
                f"difference {_number(smd, 3)} (limit ±{SMD_LIMIT:g}), Welch t-test {_p(p)} "
                f"(α = {QUALITY_ALPHA:g})."
            )
            rows.append(
                _row(
                    "covariate_balance",
                    name,
                    detail,
                    variant=label,
                    metric=column,
                    value=smd,
                    threshold=SMD_LIMIT,
                    p_value=p,
                    flag=flag,
                )
            )
    return rows


def _srm_rows(srm: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for record in srm.itertuples(index=False):
        split = ", ".join(
            f"{v!r} {int(c):,}" for v, c in zip(record.variants, record.counts, strict=True)
        )
        planned = "/".join(f"{s:.0%}" for s in record.expected_share)
        if record.error:
            detail = f"Counts {split} (planned {planned}): no test, {record.error}."
        else:
            detail = (
                f"Counts {split} against the planned {planned}: chi-square = "
                f"{_number(record.statistic)}, {_p(record.p_value)}"
                + (f", below {SRM_ALPHA:g}: sample-ratio mismatch." if record.mismatch else ".")
            )
        rows.append(
            _row(
                "srm",
                record.experiment,
                detail,
                value=record.statistic,
                threshold=SRM_ALPHA,
                p_value=record.p_value,
                flag=bool(record.mismatch),
            )
        )
    return rows


# ---------------------------------------------------------------------- formatting


def _na(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _float(value: object) -> float:
    return float("nan") if _na(value) else float(value)  # type: ignore[arg-type]


def _share(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.2%}"


def _number(value: float, digits: int = 4) -> str:
    return "—" if not np.isfinite(value) and not np.isinf(value) else f"{value:.{digits}g}"


def _p(value: float) -> str:
    if not np.isfinite(value):
        return "p = —"
    return "p < 0.0001" if value < 1e-4 else f"p = {value:.4f}"


def _plain(value: object) -> object:
    """A JSON-ready Python value: numpy scalars unwrapped, timestamps as ISO dates, NaN and
    NaT as None."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    return value

"""Analyzer: logged outcomes -> a tidy results table.

The heavy step — reducing rows to sufficient statistics — runs inside the engine that holds
the data (:mod:`splitlab.analyzer.aggregate`); everything after it works on a table of a few
rows per (experiment, segment, variant) and calls the vectorized tests of
:mod:`splitlab.stats` once per metric.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import narwhals as nw
import numpy as np
import pandas as pd

import splitlab
from splitlab._validation import check_alpha, check_bool, check_choice
from splitlab.analyzer.aggregate import (
    COUNT,
    EXPERIMENT,
    FREQUENCIES,
    PERIOD,
    VARIANT,
    Query,
    _label,
    build_query,
    by_column,
    co_moments,
    cumulate,
    explain,
    merge_groups,
    second_columns,
    variables,
)
from splitlab.analyzer.metrics import Metric, as_metrics
from splitlab.analyzer.readout import ALL_UNITS, SRM_ALPHA, Readout
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, SplitlabError
from splitlab.sequential.confseq import confidence_sequence_from_estimate
from splitlab.sequential.group import GroupSequentialDesign
from splitlab.sequential.msprt import msprt_from_estimate, msprt_mixing_ratio
from splitlab.sources import Source, open_source
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.bayesian import _normal_prior, gaussian_posterior
from splitlab.stats.frequentist import Difference, ratio_test, ttest
from splitlab.stats.moments import JointMoments, Moments
from splitlab.stats.multiplicity import adjust_pvalues
from splitlab.stats.results import EffectResult, RowErrors
from splitlab.stats.srm import srm_test

METHODS = ("ttest", "bayes", "cs", "msprt", "gst", "aipw")
SEQUENTIAL = ("cs", "msprt", "gst")
METHOD_OPTIONS = {
    "ttest": (),
    "bayes": ("prior",),
    "cs": ("n_star",),
    "msprt": ("tau2", "n_plan"),
    "gst": ("planned_n", "spending"),
    # the decision log's column names can be overridden as options
    "aipw": (
        "weights",
        "floor_decay",
        "action",
        "propensity",
        "probabilities",
        "timestamp",
        "period",
        "context",
    ),
}
CORRECTIONS = ("bonferroni", "holm", "bh", "by")
ALTERNATIVES = ("two-sided", "better", "worse")
CORRECTION_SCOPES = ("metric", "experiment")

RESULT_COLUMNS = [
    "experiment", "segment", "metric", "variant", "n_control", "n_variant",
    "mean_control", "mean_variant", "effect", "relative_effect", "se", "ci_low", "ci_high",
    "p_value", "p_adjusted", "significant", "decision", "method", "scale", "srm_p_value",
    "srm_mismatch", "guardrail", "error",
]  # fmt: skip


def _fingerprint(table: pd.DataFrame) -> str:
    """A hash of the sufficient statistics, to 12 significant digits so that the order in
    which an engine summed the rows does not change it."""
    digest = hashlib.sha256(",".join(map(str, table.columns)).encode())
    for column in table.columns:
        values = table[column].to_numpy()
        if values.dtype.kind == "f":
            values = np.char.mod("%.12g", values)
        digest.update("\x1f".join(map(str, values)).encode())
    return digest.hexdigest()[:16]


class Analyzer:
    """Experiment readouts from logged outcomes.

    ``source`` is a pandas/polars/pyarrow frame, a DuckDB relation, a polars LazyFrame, a
    PySpark DataFrame, or Parquet/CSV paths and globs. Rows are units, or events when
    ``unit`` names the unit column (events are then summed per unit in the engine).
    ``control`` is the control label, or a mapping experiment -> label. ``date`` names the
    exposure timestamp column used by :meth:`timeline`. ``weights`` is the planned split
    for the SRM check: None (equal), a mapping variant -> weight, or a mapping
    experiment -> {variant: weight}.

    ``cluster`` names the randomization unit when it is not the analysis unit: rows are
    sessions or page views (or, with ``unit``, units such as sessions built from events)
    of users who were randomized, or members of randomized clusters. Every mean or
    proportion metric is then the ratio of its per-cluster sum to the per-cluster count,
    with the delta-method variance over clusters, which stays valid when rows of one
    cluster are correlated; ``n_control``/``n_variant`` and the SRM check count clusters.

    >>> import pandas as pd
    >>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 50,
    ...                      "revenue": [1.0, 2.0, 0.0, 2.5] * 25})
    >>> row = Analyzer(data).analyze(["revenue"]).iloc[0]
    >>> row["variant"], float(row["effect"])
    ('b', 1.75)
    """

    def __init__(
        self,
        source: object,
        experiment: str = "experiment",
        variant: str = "variant",
        control: str | Mapping[str, str] = "control",
        unit: str | None = None,
        *,
        date: str | None = None,
        weights: Mapping | None = None,
        cluster: str | None = None,
    ):
        self.source: Source = open_source(source)
        self.experiment = experiment
        self.variant = variant
        self.control = control
        self.unit = unit
        self.date = date
        self.weights = weights
        self.cluster = cluster
        self._schema = self.source.columns
        for argument, column in (
            ("experiment", experiment),
            ("variant", variant),
            ("unit", unit),
            ("date", date),
            ("cluster", cluster),
        ):
            if column is not None:
                self._require_column(argument, column)
        if variant == experiment:
            raise InvalidArgumentError(
                "variant", f"column {variant!r} is also the experiment column; they must differ"
            )
        if unit is not None and unit in (experiment, variant):
            raise InvalidArgumentError(
                "unit", f"column {unit!r} is the experiment or variant column; it must differ"
            )
        if cluster is not None and cluster in (experiment, variant, unit):
            raise InvalidArgumentError(
                "cluster",
                f"column {cluster!r} is the experiment, variant or unit column; it must differ",
            )
        if date is not None and not (
            self._schema[date] == nw.Date or self._schema[date] == nw.Datetime
        ):
            raise InvalidArgumentError(
                "date",
                f"column {date!r} must hold dates or timestamps, but its type is "
                f"{self._schema[date]}",
            )
        self._controls: dict[object, object] = {}

    # ------------------------------------------------------------------ validation

    def _require_column(self, argument: str, column: str, numeric: bool = False) -> None:
        if not isinstance(column, str) or column not in self._schema:
            available = ", ".join(map(str, self._schema))
            raise InvalidArgumentError(
                argument, f"column {column!r} is not in the source (columns: {available})"
            )
        dtype = self._schema[column]
        if numeric and not (dtype.is_numeric() or dtype == nw.Boolean):
            raise InvalidArgumentError(
                argument, f"column {column!r} must be numeric, but its type is {dtype}"
            )

    def _resolve_metrics(self, metrics: object, cuped: object) -> list[Metric]:
        resolved = as_metrics(metrics)
        if cuped is False:
            resolved = [m.with_covariate(None) if m.kind != "ratio" else m for m in resolved]
        elif isinstance(cuped, Mapping):
            names = {m.name for m in resolved}
            unknown = sorted(set(cuped) - names)
            if unknown:
                raise InvalidArgumentError("cuped", f"unknown metrics {unknown}")
            resolved = [m.with_covariate(cuped[m.name]) if m.name in cuped else m for m in resolved]
        elif cuped not in (None, True):
            raise InvalidArgumentError(
                "cuped", "must be None, True, False or a mapping metric -> covariate column"
            )
        for metric in resolved:
            for column in metric.columns:
                self._require_column("metrics", column, numeric=True)
            several = len(metric.covariates) > 1 and metric.kind != "ratio"
            if self.cluster is not None and several:
                raise InvalidArgumentError(
                    "cuped" if cuped not in (None, True) else "metrics",
                    f"metric {metric.name!r}: with cluster= a metric is a ratio of cluster "
                    "sums, adjusted by one covariate's ratio; several covariates are not "
                    "available",
                )
        return resolved

    def _control_label(self, experiment: object) -> object:
        if experiment in self._controls:
            return self._controls[experiment]
        if isinstance(self.control, Mapping):
            if experiment not in self.control:
                raise InvalidArgumentError(
                    "control", f"no control label given for experiment {experiment!r}"
                )
            return self.control[experiment]
        return self.control

    def _check_groups(self, table: pd.DataFrame) -> None:
        """Null labels and unit ids, unknown control labels, experiments without a
        treatment; records each experiment's control label as the engine returned it."""
        for column, argument, name in (
            (EXPERIMENT, "experiment", self.experiment),
            (VARIANT, "variant", self.variant),
        ):
            missing = table[column].isna()
            if missing.any():
                where = sorted(map(str, table.loc[missing, EXPERIMENT].dropna().unique()))
                place = f" in experiment(s) {', '.join(where)}" if where else ""
                count = int(table.loc[missing, COUNT].sum())
                raise InvalidArgumentError(
                    argument, f"column {name!r} has {count} null value(s){place}"
                )
        if "__null_clusters" in table and table["__null_clusters"].sum() > 0:
            count = int(table["__null_clusters"].sum())
            raise InvalidArgumentError(
                "cluster",
                f"column {self.cluster!r} has {count} row(s) without a cluster id (null or "
                "NaN): they cannot be assigned to a randomization unit; drop or fill them",
            )
        if "__null_units" in table and table["__null_units"].sum() > 0:
            count = int(table["__null_units"].sum())
            raise InvalidArgumentError(
                "unit",
                f"column {self.unit!r} has {count} row(s) without a unit id (null or NaN): "
                "they cannot be assigned to a unit; drop or fill them",
            )
        if table.empty:
            raise InvalidArgumentError("source", "the source has no rows")
        for experiment, labels in table.groupby(EXPERIMENT, sort=False)[VARIANT]:
            wanted = self._control_label(experiment)
            present = list(dict.fromkeys(labels))
            matches = [label for label in present if _same_label(label, wanted)]
            if not matches:
                raise InvalidArgumentError(
                    "control",
                    f"label {wanted!r} is not a variant of experiment {experiment!r} "
                    f"(column {self.variant!r} has {', '.join(sorted(map(repr, present)))})",
                )
            if len(present) < 2:
                raise InvalidArgumentError(
                    "source", f"experiment {experiment!r} has no variant besides the control"
                )
            self._controls[experiment] = matches[0]

    # ------------------------------------------------------------------ queries

    def _query(self, metrics: list[Metric], by: Sequence[str] = (), frequency=None) -> Query:
        return build_query(
            self.source.frame,
            experiment=self.experiment,
            variant=self.variant,
            metrics=metrics,
            unit=self.unit,
            by=by,
            date=self.date if frequency else None,
            frequency=frequency,
            cluster=self.cluster,
        )

    def _statistics(
        self, metrics: list[Metric], segments: Sequence[str], strata: str | None = None
    ) -> pd.DataFrame:
        """Sufficient statistics with a ``segment`` column: "all", then "column=value";
        with ``strata``, one row per stratum too (its value in a ``stratum`` column)."""
        within = [strata] if strata is not None else []
        stratum_key = by_column(1) if strata is not None else None
        if not segments:
            table = self._query(metrics, by=within).collect()
            self._check_groups(table)
            table.insert(1, "segment", ALL_UNITS)
            if stratum_key is not None:
                table = table.rename(columns={by_column(0): "stratum"})
            return table
        parts = []
        key = by_column(0)
        for position, column in enumerate(segments):
            table = self._query(metrics, by=[column, *within]).collect()
            if stratum_key is not None:
                table = table.rename(columns={stratum_key: "stratum"})
            if position == 0:
                self._check_groups(table)
                # the overall statistics pool one segmentation's groups exactly
                groups = [EXPERIMENT, VARIANT, *(["stratum"] if strata is not None else [])]
                overall = merge_groups(table.drop(columns=[key]), groups, metrics)
                overall.insert(1, "segment", ALL_UNITS)
                parts.append(overall)
            labels = table.pop(key)
            table.insert(1, "segment", [f"{column}={value}" for value in labels])
            parts.append(table)
        return pd.concat(parts, ignore_index=True)

    # ------------------------------------------------------------------ SRM

    def _weights_for(self, experiment: object, variants: Sequence[object]) -> np.ndarray:
        weights = self.weights
        if weights is None:
            return np.ones(len(variants))
        if (
            isinstance(weights, Mapping)
            and experiment in weights
            and isinstance(weights[experiment], Mapping)
        ):
            weights = weights[experiment]
        if isinstance(weights, Mapping):
            unknown = [v for v in variants if v not in weights]
            if unknown:
                raise InvalidArgumentError(
                    "weights", f"no weight for variant(s) {unknown} of experiment {experiment!r}"
                )
            split = [weights[v] for v in variants]
            if not all(
                isinstance(w, (int, float, np.integer, np.floating))
                and not isinstance(w, bool)
                and np.isfinite(w)
                and w >= 0
                for w in split
            ):
                raise InvalidArgumentError(
                    "weights",
                    f"must be non-negative numbers, got {split} for experiment {experiment!r}",
                )
            return np.array(split, dtype=float)
        raise InvalidArgumentError(
            "weights", "must be a mapping variant -> weight or experiment -> {variant: weight}"
        )

    def _srm_table(self, statistics: pd.DataFrame) -> pd.DataFrame:
        overall = statistics[statistics["segment"] == ALL_UNITS]
        rows = []
        for experiment, group in overall.groupby(EXPERIMENT, sort=True):
            variants = list(group[VARIANT])
            counts = group[COUNT].to_numpy()
            weights = self._weights_for(experiment, variants)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateDataWarning)
                result = srm_test(counts, weights)
            rows.append(
                {
                    "experiment": experiment,
                    "variants": variants,
                    "counts": [int(c) for c in counts],
                    "expected_share": [float(w) for w in weights / weights.sum()],
                    "statistic": float(result.statistic),
                    "p_value": float(result.p_value),
                    "mismatch": bool(result.p_value < SRM_ALPHA),
                    "error": str(result.error),
                }
            )
        return pd.DataFrame(rows)

    def srm(self) -> pd.DataFrame:
        """Sample-ratio mismatch per experiment: chi-square of unit counts against the
        planned weights (equal by default); ``mismatch`` is p < 0.001."""
        statistics = self._statistics([], ())
        table = self._srm_table(statistics)
        table.attrs.update(self._provenance("srm", {"weights": self.weights}, statistics))
        return table

    def quality(self, metrics: object = None, covariates: object = None) -> pd.DataFrame:
        """Data-quality checks, each a group-by run in the engine (only summaries return).

        One row per (check, experiment and, where they apply, variant, column, day) with ``check``,
        ``experiment``, ``variant`` (a non-control arm, compared with its control),
        ``metric`` (the column checked), ``day``, ``value``, ``control_value``,
        ``threshold``, ``p_value``, ``flag`` and ``detail`` (a sentence with the numbers).
        The checks, at α = 0.001 per test:

        - ``multiple_exposure`` (needs ``unit``): units seen in more than one variant,
          flagged when any exists;
        - ``missing_values``: share of units without a value (null or NaN) of each metric
          column per variant against its control, flagged when an exact test of equal
          shares gives p < α;
        - ``daily_exposure`` (needs ``date``): each exposure day's split against the
          planned one (chi-square), flagged when p < α / days, or when an arm got no
          exposures on a day whose traffic makes that improbable (below α / days);
        - ``extreme_values``: share of units above the experiment's pooled 99.9th
          percentile of each metric column (not proportions), per variant against its
          control, flagged when an exact test gives p < α;
        - ``covariate_balance``: standardized mean difference and Welch p-value of each
          covariate (the metrics' CUPED covariates, or ``covariates``), flagged when
          |SMD| > 0.1 or p < α;
        - ``srm``: the sample-ratio check of :meth:`srm`.

        ``metrics`` as in :meth:`analyze` (None: no per-metric checks); ``covariates`` a
        column or a list of columns, None for the metrics' covariates.

        >>> import pandas as pd
        >>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 50,
        ...                      "revenue": [1.0, 2.0, 0.0, 2.5] * 25})
        >>> table = Analyzer(data).quality(["revenue"])
        >>> list(table["check"].unique()), bool(table["flag"].any())
        (['multiple_exposure', 'missing_values', 'daily_exposure', 'extreme_values', 'srm'], False)
        """
        resolved = self._resolve_metrics(metrics, None) if metrics is not None else []
        if covariates is None:
            columns = list(dict.fromkeys(c for m in resolved for c in m.covariates))
        else:
            columns = [covariates] if isinstance(covariates, str) else covariates
            if not isinstance(columns, (list, tuple)):
                raise InvalidArgumentError(
                    "covariates", f"must be a column name or a list of them, got {covariates!r}"
                )
            for column in columns:
                self._require_column("covariates", column, numeric=True)
        statistics = self._statistics([], ())
        table = self._quality_table(resolved, list(columns), self._srm_table(statistics))
        parameters = {"metrics": [vars(m) for m in resolved], "covariates": list(columns)}
        table.attrs.update(self._provenance("quality", parameters, statistics))
        return table

    def _quality_table(
        self, metrics: list[Metric], covariates: list[str], srm: pd.DataFrame
    ) -> pd.DataFrame:
        from splitlab.analyzer.quality import quality_checks

        return quality_checks(
            self.source.frame, experiment=self.experiment, variant=self.variant,
            is_control=lambda e, label: _same_label(label, self._control_label(e)),
            srm=srm, weights_for=self._weights_for, metrics=metrics, covariates=covariates,
            unit=self.unit, date=self.date,
        )  # fmt: skip

    def summary(self, metrics: object, segments: Sequence[str] | str | None = None) -> pd.DataFrame:
        """Per-group descriptive statistics: one row per (experiment, segment, variant,
        metric) with ``n``, ``mean``, ``var`` (sample variance of the unit values; p(1 − p)
        for proportions) and, for metrics with a second column (CUPED covariate, ratio
        denominator), ``mean_x``, ``var_x`` and ``cov``. These are the numbers every test
        starts from, reduced stably in the engine (see :mod:`splitlab.analyzer.aggregate`);
        ``error`` names a group the reduction could not make precise (more than 256 groups
        needing a shift of their own), which the tests then refuse.

        >>> import pandas as pd
        >>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 3,
        ...                      "revenue": [1.0, 2.0, 3.0, 4.0, 5.0, 9.0]})
        >>> table = Analyzer(data).summary("revenue")
        >>> table[["variant", "n", "mean", "var"]].to_string(index=False)
        'variant  n  mean  var\\n      b  3   5.0 13.0\\ncontrol  3   3.0  4.0'
        """
        segment_columns = _segment_columns(segments)
        for column in segment_columns:
            self._require_column("segments", column)
        resolved = self._resolve_metrics(metrics, None)
        quantiles = [m.name for m in resolved if m.kind == "quantile"]
        if quantiles:
            raise InvalidArgumentError(
                "metrics",
                f"summary() describes moments; quantile metric(s) {quantiles} are "
                "summarised by analyze()",
            )
        statistics = self._statistics(resolved, segment_columns)
        n = statistics[COUNT].to_numpy(float)
        frames = []
        for metric in resolved:
            prefix = f"{metric.name}."
            ddof = 0 if metric.kind == "proportion" else 1
            frame = pd.DataFrame(
                {
                    "experiment": statistics[EXPERIMENT],
                    "segment": statistics["segment"],
                    "variant": statistics[VARIANT],
                    "metric": metric.name,
                    "n": n.astype(np.int64),
                    "mean": statistics[f"{prefix}origin_y"] + statistics[f"{prefix}mean_y"],
                    "var": _variance(n, statistics[f"{prefix}m2_y"].to_numpy(float), ddof),
                }
            )
            if second_columns(statistics, metric) == 1:
                frame["mean_x"] = statistics[f"{prefix}origin_x"] + statistics[f"{prefix}mean_x"]
                frame["var_x"] = _variance(n, statistics[f"{prefix}m2_x"].to_numpy(float), ddof)
                frame["cov"] = _variance(n, statistics[f"{prefix}c_xy"].to_numpy(float), ddof)
            imprecise = statistics[f"{prefix}imprecise"].to_numpy(bool)
            frame["error"] = np.where(
                imprecise, "values too far from their mean for the engine's float sums", ""
            )
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        parameters = {"metrics": [vars(m) for m in resolved], "segments": segment_columns}
        table.attrs.update(self._provenance("summary", parameters, statistics))
        return table

    # ------------------------------------------------------------------ analysis

    def analyze(
        self,
        metrics: object,
        method: str = "ttest",
        relative: bool = False,
        cuped: object = None,
        correction: str | None = None,
        correction_scope: str = "metric",
        segments: Sequence[str] | str | None = None,
        alpha: float = 0.05,
        method_options: Mapping[str, Any] | None = None,
        strata: str | None = None,
        quality: bool = False,
        alternative: str = "two-sided",
    ) -> pd.DataFrame:
        """One row per (experiment, segment, metric, variant ≠ control).

        ``method`` is "ttest" (Welch; CUPED where a metric has a covariate; the delta
        method for ratio metrics) or "bayes" (Gaussian posterior of the same estimate,
        flat prior unless ``method_options={"prior": (mean, sd)}`` or ``{"prior":
        {metric: (mean, sd)}}`` on the analysed scale; adds ``chance_to_win``,
        ``risk_control``, ``risk_variant``).
        ``cuped``: None uses the covariates the metrics name, False ignores them, a
        mapping metric -> column sets them. ``correction`` adjusts p-values within each
        (experiment, segment, metric) family (``correction_scope="metric"``) or across
        all non-guardrail metrics of an (experiment, segment) (``"experiment"``).
        ``segments`` adds rows per value of each segment column after the overall rows.
        ``strata`` names a pre-experiment column (country, platform, a pre-period bucket)
        whose values post-stratify every mean, proportion, CUPED and ratio metric
        (GrowthBook's estimator, :func:`~splitlab.stats.stratification.poststratified_test`):
        the effect is the strata's effects weighted by their shares of units, with the
        variance of estimated shares; a stratum where an arm has fewer than 2 units is
        merged into the largest, as the ``note`` column says. Quantile metrics and metrics
        with several covariates are not post-stratified (their rows say so in ``error``).

        Quantile metrics (``Metric(kind="quantile", quantile=0.9)``) compare the quantile
        of unit values (event values clustered by unit with ``cluster=``) by GrowthBook's
        order-statistics interval, computed in the engine
        (:mod:`splitlab.analyzer.quantiles`); their ``n_control``/``n_variant`` count the
        values, missing values left out.

        Sequential methods stay valid however often the analysis is repeated:
        ``"cs"`` — asymptotic confidence sequence (``method_options={"n_star": 5000}``);
        ``"msprt"`` — mixture SPRT with ``{"tau2": value or {metric: value}}``, or
        ``{"n_plan": units per arm}`` to set τ² = r*·se²·n/n_plan (the rule of
        :func:`~splitlab.sequential.msprt.msprt_tau2` with the variance estimated from the
        data, a plug-in); ``"gst"`` — a group-sequential design with
        ``{"planned_n": units per comparison (both arms), "spending": "obf"}`` whose looks
        are the exposure days (needs ``date``); its rows report the efficacy boundary,
        the repeated confidence interval and ``decision``, and no p-value.

        ``"aipw"`` reads a bandit decision log (``Allocator.flush``: ``variant`` holds the
        arm label, with columns ``action``, ``propensity``, ``prob_0`` … and ``timestamp``)
        and reports adaptively weighted AIPW arm values (``mean_*``) and contrasts against
        the control arm, valid although the bandit shifted traffic (Hadad et al., PNAS 2021;
        :mod:`splitlab.ope.adaptive`); options ``{"weights": "stable_var" | "two_point",
        "floor_decay": 0.7}`` and the log's column names. Rows with a null reward are
        dropped (counted in ``excluded``); there is no SRM check.

        ``alternative``: "two-sided" (default), or a one-sided test in each metric's own
        direction: "better" (the variant improves the metric: greater, or less for a
        ``Metric(lower_is_better=True)``) or "worse" (it degrades it, the direction of a
        guardrail's harm). Effects keep their sign; p-values, intervals and the
        multiple-testing correction are the one-sided ones, for methods "ttest" and "cs".
        A lower-is-better metric also flips ``chance_to_win`` (the probability that the
        variant is lower) and the risks, and its ``decision`` is a win when it decreased;
        the ``lower_is_better`` column says which metrics these are.

        ``quality=True`` also runs the data-quality checks of :meth:`quality` on the
        metrics and their covariates and stores the flagged checks in
        ``results.attrs["quality"]`` (a list of dicts: check, experiment, variant,
        metric, day, value, p_value, detail; empty when nothing is flagged). It is off by
        default because the checks are extra engine passes that cost more than the
        analysis itself (measured on 10⁶ rows with DuckDB: 1.5 to 3 times the analysis's
        time added, 4 to 5 times with ``unit`` and ``date``); :meth:`readout` and
        :meth:`report` always run them.
        """
        quality = check_bool("quality", quality)
        if quality and method == "aipw":
            raise InvalidArgumentError("quality", "checks are not available with method='aipw'")
        method = check_choice("method", method, METHODS)
        options = _method_options(method, method_options)
        alpha = check_alpha(alpha)
        relative = check_bool("relative", relative)
        alternative = check_choice("alternative", alternative, ALTERNATIVES)
        if alternative != "two-sided" and method not in ("ttest", "cs"):
            raise InvalidArgumentError(
                "alternative",
                f"one-sided tests ({alternative!r}) are available with method 'ttest' or "
                f"'cs', not {method!r}",
            )
        if correction is not None:
            correction = check_choice("correction", correction, CORRECTIONS)
        correction_scope = check_choice("correction_scope", correction_scope, CORRECTION_SCOPES)
        segment_columns = _segment_columns(segments)
        for column in segment_columns:
            self._require_column("segments", column)
        resolved = self._resolve_metrics(metrics, cuped)
        if strata is not None:
            self._require_column("strata", strata)
            if strata in segment_columns or strata in (self.experiment, self.variant):
                raise InvalidArgumentError(
                    "strata", f"column {strata!r} is a segment, experiment or variant column"
                )
            if method in ("gst", "aipw"):
                raise InvalidArgumentError("strata", f"are not available with method={method!r}")
        if method in ("gst", "aipw") and segment_columns:
            raise InvalidArgumentError("segments", f"are not available with method={method!r}")
        if method == "aipw":
            return self._aipw(resolved, relative, correction, correction_scope, alpha, options)
        moment_metrics = [m for m in resolved if m.kind != "quantile"]
        quantile_metrics = [m for m in resolved if m.kind == "quantile"]
        if strata is None:
            statistics = self._statistics(moment_metrics, segment_columns)
        else:
            stratified = self._statistics(moment_metrics, segment_columns, strata=strata)
            statistics = merge_groups(
                stratified.drop(columns=["stratum"]),
                [EXPERIMENT, "segment", VARIANT],
                moment_metrics,
            )
        srm = self._srm_table(statistics).set_index("experiment")

        quantiles = (
            self._quantile_statistics(quantile_metrics, segment_columns)
            if quantile_metrics and method != "gst"
            else {}
        )
        frames = []
        for metric in resolved:
            if method == "gst":
                frames.append(self._group_sequential(metric, relative, alpha, options))
                continue
            if metric.kind == "quantile":
                table = quantiles[metric.name]
                test = _quantile_test if strata is None else _quantile_not_stratified
            elif strata is not None:
                table, test = stratified, _stratified_test
            else:
                table, test = statistics, _metric_test
            frames.append(
                self._compare(
                    table, metric, method=method, relative=relative, alpha=alpha,
                    options=options, test=test, alternative=alternative,
                )
            )  # fmt: skip
        results = pd.concat(frames, ignore_index=True)
        results["srm_p_value"] = results["experiment"].map(srm["p_value"]).astype(float)
        results["srm_mismatch"] = results["experiment"].map(srm["mismatch"]).astype(bool)
        results = self._adjust(results, method, correction, correction_scope, alpha)
        parameters = {
            "method": method,
            "relative": relative,
            "cuped": cuped if not isinstance(cuped, Mapping) else dict(cuped),
            "correction": correction,
            "correction_scope": correction_scope,
            "segments": segment_columns,
            "alpha": alpha,
            "method_options": options,
            "strata": strata,
            "quality": quality,
            "alternative": alternative,
            "metrics": [vars(m) for m in resolved],
        }
        results.attrs.update(self._provenance("analyze", parameters, statistics))
        if quality:
            from splitlab.analyzer.quality import summary

            covariates = list(dict.fromkeys(c for m in resolved for c in m.covariates))
            checks = self._quality_table(resolved, covariates, srm.reset_index())
            results.attrs["quality"] = summary(checks)
        bad = results["error"] != ""
        if bad.any():
            warnings.warn(
                f"{int(bad.sum())} of {len(results)} result rows have no result; "
                "see the `error` column",
                DegenerateDataWarning,
                stacklevel=2,
            )
        return results

    def _aipw(self, metrics, relative, correction, scope, alpha, options) -> pd.DataFrame:
        """Arm values and contrasts from an Allocator decision log by adaptively weighted
        AIPW (:mod:`splitlab.ope.adaptive`): valid after the bandit moved traffic."""
        from splitlab.ope.adaptive import aipw_readout

        results = aipw_readout(
            self.source, experiment=self.experiment, variant=self.variant,
            control=self._control_label, metrics=metrics, alpha=alpha, relative=relative,
            **options,
        )  # fmt: skip
        results["srm_p_value"] = np.nan  # a bandit's split is not planned: no SRM check
        results["srm_mismatch"] = False
        results = self._adjust(results, "aipw", correction, scope, alpha)
        parameters = {"method": "aipw", "relative": relative, "correction": correction,
                      "correction_scope": scope, "alpha": alpha, "method_options": options,
                      "metrics": [vars(m) for m in metrics]}  # fmt: skip
        results.attrs.update(self._provenance("analyze", parameters, results))
        return results

    def _pairs(self, statistics: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        """Each non-control row beside its experiment's control row (suffixes _c, _t)."""
        controls = statistics[EXPERIMENT].map(self._control_label)
        is_control = np.array(
            [
                _same_label(label, wanted)
                for label, wanted in zip(statistics[VARIANT], controls, strict=True)
            ],
            dtype=bool,
        )
        control = statistics[is_control]
        treatment = statistics[~is_control]
        return treatment.merge(control, on=keys, suffixes=("_t", "_c"), sort=False)

    def _strata_pairs(self, statistics: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        """One row per comparison (``keys``: experiment, segment[, period]; variant ≠
        control) with its pooled counts; ``attrs["cells"]`` holds each side's statistics
        per stratum as arrays (comparisons × strata × columns), a stratum an arm lacks as
        zeros, and ``attrs["labels"]`` each comparison's stratum values."""
        controls = statistics[EXPERIMENT].map(self._control_label)
        is_control = np.array(
            [_same_label(v, c) for v, c in zip(statistics[VARIANT], controls, strict=True)],
            dtype=bool,
        )
        table = statistics.reset_index(drop=True)
        position = np.empty(len(table), dtype=np.int64)
        group_of = np.empty(len(table), dtype=np.int64)
        values_of: list[list] = []
        for number, rows in enumerate(table.groupby(keys, sort=False).indices.values()):
            codes, uniques = pd.factorize(table["stratum"].iloc[rows], use_na_sentinel=False)
            position[rows] = codes
            group_of[rows] = number
            values_of.append(list(uniques))
        size = int(position.max()) + 1 if len(table) else 0
        names = [c for c in table.columns if c == COUNT or "." in c]
        values = table[names].to_numpy(dtype=float)
        groups = [*keys, VARIANT]
        treated = table[~is_control]
        comparisons = treated[groups].drop_duplicates().reset_index(drop=True)
        comparison_of = pd.MultiIndex.from_frame(comparisons)
        cells = {side: np.zeros((len(comparisons), size, len(names))) for side in "ct"}
        t_rows = np.flatnonzero(~is_control)
        r = comparison_of.get_indexer(pd.MultiIndex.from_frame(treated[groups]))
        cells["t"][r, position[t_rows]] = values[t_rows]
        # each comparison's group, then the control rows of that group by stratum
        comparison_group = np.empty(len(comparisons), dtype=np.int64)
        comparison_group[r] = group_of[t_rows]
        control_rows = {
            (int(group_of[row]), int(position[row])): row for row in np.flatnonzero(is_control)
        }
        for index, group in enumerate(comparison_group):
            for stratum in range(size):
                row = control_rows.get((int(group), stratum))
                if row is not None:
                    cells["c"][index, stratum] = values[row]
        count = names.index(COUNT)
        pairs = comparisons.rename(columns={VARIANT: f"{VARIANT}_t"})
        pairs["n_c"] = cells["c"][:, :, count].sum(axis=1)
        pairs["n_t"] = cells["t"][:, :, count].sum(axis=1)
        pairs.attrs["cells"] = cells
        pairs.attrs["names"] = names
        pairs.attrs["labels"] = [values_of[group] for group in comparison_group]
        return pairs

    def _quantile_statistics(
        self, metrics: list[Metric], segments: Sequence[str]
    ) -> dict[str, pd.DataFrame]:
        """The quantile summaries of quantile metrics per (experiment, segment, variant),
        reduced in the engine (:func:`~splitlab.analyzer.quantiles.quantile_tables`): the
        levels of one column share its passes."""
        from splitlab.analyzer.quantiles import quantile_tables

        by_column: dict[str, list[Metric]] = {}
        for metric in metrics:
            by_column.setdefault(metric.y, []).append(metric)
        parts: dict[str, list[pd.DataFrame]] = {metric.name: [] for metric in metrics}
        for column in [None, *segments]:
            keys = ["__e", "__v", *(["__b0"] if column else [])]
            for shared in by_column.values():
                frame = self._quantile_frame(shared[0], column)
                tables = quantile_tables(
                    frame, keys=keys, value="__q", nus=[m.quantile for m in shared],
                    cluster="__k" if self.cluster else None,
                )  # fmt: skip
                for metric, table in zip(shared, tables, strict=True):
                    table = table.rename(columns={"__e": EXPERIMENT, "__v": VARIANT})
                    labels = table.pop("__b0") if column else None
                    table.insert(1, "segment", ALL_UNITS if column is None else [
                        f"{column}={value}" for value in labels  # type: ignore[union-attr]
                    ])  # fmt: skip
                    parts[metric.name].append(table)
        return {name: pd.concat(tables, ignore_index=True) for name, tables in parts.items()}

    def _quantile_frame(self, metric: Metric, segment: str | None) -> nw.LazyFrame:
        """The rows whose values a quantile metric ranks: the metric column (summed per
        unit with ``unit``), the keys, and the cluster id."""
        selection = [nw.col(self.experiment).alias("__e"), nw.col(self.variant).alias("__v")]
        if segment:
            selection.append(nw.col(segment).alias("__b0"))
        if self.cluster:
            selection.append(nw.col(self.cluster).alias("__k"))
        value = nw.col(metric.y).cast(nw.Float64)
        # NaN is a missing value, as pandas NaN (NULL in DuckDB) already is
        selection.append(nw.when(value.is_nan()).then(None).otherwise(value).alias("__q"))
        if not self.unit:
            return self.source.frame.select(*selection)
        selection.append(nw.col(self.unit).alias("__u"))
        groups = ["__e", "__v", *(["__b0"] if segment else []), *(["__k"] if self.cluster else [])]
        per_unit = (
            self.source.frame.select(*selection)
            .group_by(*groups, "__u")
            .agg(nw.col("__q").sum().alias("__sum"), nw.col("__q").count().alias("__values"))
        )
        # a unit with no value has no quantile value (engines sum nothing to 0 or to null)
        kept = nw.when(nw.col("__values") > 0).then(nw.col("__sum")).otherwise(None)
        return per_unit.with_columns(kept.alias("__q"))

    def _compare(
        self,
        statistics: pd.DataFrame,
        metric: Metric,
        *,
        method: str,
        relative: bool,
        alpha: float,
        options: Mapping[str, Any],
        keys: Sequence[str] = (),
        test=None,
        alternative: str = "two-sided",
    ) -> pd.DataFrame:
        keys = [EXPERIMENT, "segment", *keys]
        if test is _stratified_test:
            pairs = self._strata_pairs(statistics, keys)
        else:
            pairs = self._pairs(statistics, keys)
        frame = pd.DataFrame(
            {
                "experiment": pairs[EXPERIMENT].to_numpy(),
                "segment": pairs["segment"].to_numpy(),
                **{key: pairs[key].to_numpy() for key in keys[2:]},
                "metric": metric.name,
                "variant": pairs[f"{VARIANT}_t"].to_numpy(),
                "n_control": pairs["n_c"].to_numpy(dtype=np.int64),
                "n_variant": pairs["n_t"].to_numpy(dtype=np.int64),
            }
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateDataWarning)
                columns = (test or _metric_test)(
                    pairs, metric, method, relative, alpha, options,
                    _directed(alternative, metric),
                )  # fmt: skip
        except (SplitlabError, ValueError, ArithmeticError) as exc:
            columns = {"error": np.full(len(frame), f"{type(exc).__name__}: {exc}", object)}
        for name, values in columns.items():
            frame[name] = values
        for name in RESULT_COLUMNS:
            if name not in frame:
                frame[name] = np.nan
        frame["guardrail"] = metric.guardrail
        frame["higher_is_better"] = metric.higher_is_better
        frame["lower_is_better"] = not metric.higher_is_better
        frame["error"] = frame["error"].fillna("").astype(str)
        return frame

    def _adjust(
        self, results: pd.DataFrame, method: str, correction, scope: str, alpha: float
    ) -> pd.DataFrame:
        results["p_adjusted"] = results["p_value"]
        if method in ("ttest", "cs", "msprt", "aipw") and correction is not None and len(results):
            family = ["experiment", "segment"] + (["metric"] if scope == "metric" else [])
            primary = ~results["guardrail"].astype(bool)
            for _, index in results[primary].groupby(family, sort=False).groups.items():
                results.loc[index, "p_adjusted"] = adjust_pvalues(
                    results.loc[index, "p_value"].to_numpy(dtype=float), method=correction
                )
        if method in ("ttest", "cs", "msprt", "aipw"):
            significant = results["p_adjusted"] < alpha
        elif method == "gst":
            significant = results.pop("gst_decision") == "reject"
        else:
            significant = (results["ci_low"] > 0) | (results["ci_high"] < 0)
        results["significant"] = significant.fillna(False).astype(bool)
        better = (results["effect"] > 0) == results.pop("higher_is_better").astype(bool)
        decision = np.where(
            results["error"] != "",
            "error",
            np.where(
                ~results["significant"],
                "inconclusive",
                np.where(
                    better, "win", np.where(results["guardrail"], "guardrail violated", "loss")
                ),
            ),
        )
        results["decision"] = decision
        extra = [c for c in results.columns if c not in RESULT_COLUMNS]
        return results[RESULT_COLUMNS + extra]

    # ------------------------------------------------------------------ power

    def power(
        self,
        metrics: object,
        mde: float | Mapping[str, float],
        *,
        target_power: float = 0.8,
        method: str = "ttest",
        relative: bool = False,
        cuped: object = None,
        segments: Sequence[str] | str | None = None,
        strata: str | None = None,
        alpha: float = 0.05,
        alternative: str = "two-sided",
        method_options: Mapping[str, Any] | None = None,
        tests: int = 1,
    ) -> pd.DataFrame:
        """Mid-experiment power: for each comparison, the chance of detecting ``mde`` with
        the variance and exposure observed so far, and the units still needed for
        ``target_power`` (:func:`~splitlab.stats.power_now.power_now`, GrowthBook's
        mid-experiment power).

        The standard error comes from :meth:`analyze`'s fixed-horizon estimate with the
        same ``relative``, ``cuped``, ``segments`` and ``strata`` (so CUPED's and
        post-stratification's smaller variance counts), and is assumed to shrink as
        1/√n. ``mde`` is the planned effect on the analysed scale (a relative lift with
        ``relative=True``), one number or a mapping metric → number. ``method`` is the
        analysis the power is for: "ttest" (fixed horizon), "cs" (the confidence sequence,
        ``method_options={"n_star": ...}``) or "bayes" (``{"prior": (mean, sd)}`` on the
        effect; flat without). With a one-sided ``alternative`` ("better", "worse", as in
        :meth:`analyze`) ``mde`` is the size of the effect in that direction of each
        metric. ``tests`` splits ``alpha`` as a Bonferroni correction would.

        One row per comparison: the keys, ``n_control``, ``n_variant``, ``se``, ``mde``,
        ``power`` (now), ``target_power``, ``units_needed`` (both arms),
        ``additional_units``, ``already_powered``, ``method`` and ``error`` (a comparison
        without a standard error, e.g. a metric with no variance, has NaN and the reason).

        >>> import pandas as pd
        >>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 500,
        ...                      "revenue": [1.0, 2.0, 0.0, 2.5] * 250})
        >>> row = Analyzer(data).power("revenue", mde=0.05).iloc[0]
        >>> round(float(row["power"]), 3), int(row["additional_units"])
        (0.515, 967)
        """
        from splitlab.stats.power_now import power_now

        method = check_choice("method", method, ("ttest", "cs", "bayes"))
        options = _method_options(method, method_options)
        alternative = check_choice("alternative", alternative, ALTERNATIVES)
        resolved = self._resolve_metrics(metrics, cuped)
        planned = _planned_effects(mde, resolved)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            results = self.analyze(
                resolved, relative=relative, segments=segments, strata=strata,
                alpha=alpha,
            )  # fmt: skip
        directions = {m.name: m for m in resolved}
        frame = results[["experiment", "segment", "metric", "variant", "n_control"]].copy()
        frame["n_variant"] = results["n_variant"]
        frame["se"] = results["se"]
        power = np.full(len(frame), np.nan)
        needed = np.full(len(frame), np.nan)
        errors = results["error"].to_numpy(dtype=object).copy()
        signed = np.full(len(frame), np.nan)
        for name, rows in frame.groupby("metric", sort=False).groups.items():
            metric = directions[name]
            side = _directed(alternative, metric)
            size = abs(planned[name]) if side != "two-sided" else planned[name]
            effect = -size if side == "less" else size
            index = frame.index.get_indexer(rows)
            signed[index] = effect
            usable = index[errors[index] == ""]
            if not usable.size:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateDataWarning)
                found = power_now(
                    frame["se"].to_numpy(float)[usable],
                    (frame["n_control"] + frame["n_variant"]).to_numpy(float)[usable],
                    mde=effect, relative=relative, alpha=alpha, target_power=target_power,
                    alternative=side, method={"ttest": "fixed"}.get(method, method),
                    n_star=options.get("n_star", 5000.0), prior=_prior_for(metric, options),
                    tests=tests,
                )  # fmt: skip
            power[usable] = found.power
            needed[usable] = found.units_needed
            messages = np.atleast_1d(np.asarray(found.error, dtype=object))
            errors[usable] = [f"metric {name!r}: {m}" if m else "" for m in messages]
        frame["mde"] = signed
        frame["power"] = power
        frame["target_power"] = float(target_power)
        frame["units_needed"] = needed
        observed = (frame["n_control"] + frame["n_variant"]).to_numpy(float)
        frame["additional_units"] = np.where(
            np.isfinite(needed), np.ceil(np.maximum(needed - observed, 0.0)), np.nan
        )
        frame["already_powered"] = power > float(target_power)
        frame["method"] = method
        frame["error"] = errors.astype(str)
        parameters = {
            "mde": dict(planned), "target_power": target_power, "method": method,
            "relative": relative, "cuped": cuped if not isinstance(cuped, Mapping) else dict(cuped),
            "segments": _segment_columns(segments), "strata": strata, "alpha": alpha,
            "alternative": alternative, "method_options": options, "tests": tests,
            "metrics": [vars(m) for m in resolved],
        }  # fmt: skip
        frame.attrs.update(self._provenance("power", parameters, frame))
        bad = frame["error"] != ""
        if bad.any():
            warnings.warn(
                f"{int(bad.sum())} of {len(frame)} power rows have no result; see the "
                "`error` column",
                DegenerateDataWarning,
                stacklevel=2,
            )
        return frame

    # ------------------------------------------------------------------ timeline

    def timeline(
        self,
        metric: object,
        freq: str = "D",
        method: str = "ttest",
        relative: bool = False,
        cuped: object = None,
        alpha: float = 0.05,
        method_options: Mapping[str, Any] | None = None,
        strata: str | None = None,
    ) -> pd.DataFrame:
        """Cumulative results by exposure period: row k uses every unit first exposed in
        periods 1..k (sums are additive, so one group-by by period is enough); with
        ``strata``, each look is post-stratified as in :meth:`analyze`.

        With a sequential ``method`` the bands are always valid: for "cs" and "msprt"
        ``ci_low``/``ci_high`` are the running intersection of the intervals and
        ``p_value`` the running minimum, the quantities whose guarantee holds under
        continuous monitoring; for "gst" they are the repeated confidence intervals of the
        design, with the efficacy ``boundary`` and the design's decision at each look.
        """
        if self.date is None:
            raise InvalidArgumentError("date", "timeline needs Analyzer(..., date=COLUMN)")
        freq = check_choice("freq", freq, tuple(FREQUENCIES))
        method = check_choice("method", method, METHODS)
        options = _method_options(method, method_options)
        alpha = check_alpha(alpha)
        relative = check_bool("relative", relative)
        (resolved,) = self._resolve_metrics(
            [metric] if not isinstance(metric, list) else metric, cuped
        )
        if resolved.kind == "quantile":
            raise InvalidArgumentError(
                "metric",
                f"metric {resolved.name!r}: a quantile metric has no timeline (quantiles of "
                "periods do not pool into the quantile of their union); analyze a date range",
            )
        if strata is not None:
            self._require_column("strata", strata)
            if strata in (self.experiment, self.variant):
                raise InvalidArgumentError(
                    "strata", f"column {strata!r} is the experiment or variant column"
                )
            if method == "gst":
                raise InvalidArgumentError("strata", "are not available with method='gst'")
        by = [strata] if strata is not None else []
        table = self._query([resolved], by=by, frequency=freq).collect()
        self._check_groups(table)
        if strata is not None:
            table = table.rename(columns={by_column(0): "stratum"})
        if table[PERIOD].isna().any():
            raise InvalidArgumentError("date", f"column {self.date!r} has null values")
        table = table.sort_values(PERIOD, kind="stable")
        # every (experiment, variant[, stratum]) gets every period of its experiment, then
        # cumulate
        paths = [EXPERIMENT, VARIANT, *(["stratum"] if strata is not None else [])]
        index = (
            table[[EXPERIMENT, PERIOD]]
            .drop_duplicates()
            .merge(table[paths].drop_duplicates(), on=EXPERIMENT)
        )
        table = index.merge(table, how="left", on=[*paths, PERIOD])
        flags = [c for c in table.columns if c.endswith(".imprecise")]
        table[flags] = table[flags].fillna(False).astype(bool)
        numbers = [c for c in table.columns if c == COUNT or c.startswith(f"{resolved.name}.")]
        numbers = [c for c in numbers if c not in flags]
        table[numbers] = table[numbers].fillna(0.0)
        table = table.sort_values([*paths, PERIOD], kind="stable")
        table = cumulate(table, paths, PERIOD, [resolved])
        table.insert(1, "segment", ALL_UNITS)
        look_method = "ttest" if method == "gst" else method
        frame = self._compare(
            table, resolved, method=look_method, relative=relative, alpha=alpha,
            options=options, keys=[PERIOD],
            test=_stratified_test if strata is not None else None,
        )  # fmt: skip
        frame = frame.sort_values(["experiment", "variant", PERIOD], kind="stable")
        frame = frame.drop(columns=["p_adjusted", "decision", "srm_p_value", "srm_mismatch"])
        frame = frame.drop(columns=["higher_is_better", "lower_is_better"])
        frame = frame.reset_index(drop=True)
        paths = frame.groupby(["experiment", "variant"], sort=False)
        if method in ("cs", "msprt"):
            frame["ci_low"] = paths["ci_low"].cummax()
            frame["ci_high"] = paths["ci_high"].cummin()
            frame["p_value"] = paths["p_value"].cummin()
        if method == "gst":
            frame = _apply_design(frame, alpha, options)
            frame["significant"] = frame["gst_decision"] == "reject"
        elif method == "bayes":
            frame["significant"] = (frame["ci_low"] > 0) | (frame["ci_high"] < 0)
        else:
            frame["significant"] = frame["p_value"] < alpha
        parameters = {
            "metric": vars(resolved),
            "freq": freq,
            "method": method,
            "relative": relative,
            "alpha": alpha,
            "method_options": options,
            "strata": strata,
        }
        frame.attrs.update(self._provenance("timeline", parameters, table))
        return frame

    def _group_sequential(
        self, metric: Metric, relative: bool, alpha: float, options: Mapping[str, Any]
    ) -> pd.DataFrame:
        """The latest look of each comparison's group-sequential path, as analyze rows."""
        if self.date is None:
            raise InvalidArgumentError(
                "date", "method='gst' takes its looks from Analyzer(..., date=COLUMN)"
            )
        path = self.timeline(
            metric, method="gst", relative=relative, alpha=alpha, method_options=options
        )
        latest = path.groupby(["experiment", "variant"], sort=False).tail(1)
        latest = latest.drop(columns=[PERIOD, "significant"]).reset_index(drop=True)
        latest["higher_is_better"] = metric.higher_is_better
        latest["lower_is_better"] = not metric.higher_is_better
        return latest

    # ------------------------------------------------------------------ explain, report

    def explain(self, metrics: object = None, segments: Sequence[str] | None = None) -> str:
        """The sufficient-statistics query the engine runs (SQL for DuckDB)."""
        resolved = self._resolve_metrics(metrics, None) if metrics is not None else []
        by = [segments] if isinstance(segments, str) else list(segments or [])[:1]
        return explain(self._query(resolved, by=by), self.source.engine)

    def readout(
        self,
        metrics: object,
        *,
        freq: str = "D",
        bands: str = "always-valid",
        **analyze_options: Any,
    ) -> Readout:
        """Everything a report shows, computed once: :meth:`analyze` of ``metrics`` with
        ``analyze_options``, :meth:`srm`, and — when a ``date`` column is known — each
        metric's cumulative :meth:`timeline` (periods of ``freq``) with the same
        ``relative``, ``cuped``, ``alpha`` and ``strata`` (a metric whose timeline cannot
        be computed gets the reason instead), and the data-quality table of :meth:`quality`
        (its flagged checks also in ``results.attrs["quality"]``; None with method "aipw").

        A timeline is read again every day, so its bands are always valid by default
        (``bands="always-valid"``): those of the analysis's sequential method ("cs",
        "msprt", "gst", with its ``method_options``), or a confidence sequence ("cs")
        when the analysis is fixed-horizon ("ttest", "bayes"). ``bands="fixed"`` draws
        the analysis method's own fixed-horizon intervals, which overstate certainty when
        read repeatedly. ``Readout.bands`` names the timelines' method.

        >>> import pandas as pd
        >>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 50,
        ...                      "revenue": [1.0, 2.0, 0.0, 2.5] * 25})
        >>> readout = Analyzer(data).readout(["revenue"])
        >>> len(readout.results), readout.control_of("e1"), readout.mismatched
        (1, 'control', set())
        """
        # the quality table is computed once here, not again inside analyze
        bands = check_choice("bands", bands, ("always-valid", "fixed"))
        results = self.analyze(metrics, **{**analyze_options, "quality": False})
        srm = self.srm()
        quality = None
        if analyze_options.get("method") != "aipw":
            from splitlab.analyzer.quality import summary

            checked = self._resolve_metrics(metrics, analyze_options.get("cuped"))
            covariates = list(dict.fromkeys(c for m in checked for c in m.covariates))
            quality = self._quality_table(checked, covariates, srm)
            results.attrs["quality"] = summary(quality)
        timelines: dict[str, pd.DataFrame | str] = {}
        method = analyze_options.get("method", "ttest")
        timeline_method = method
        if bands == "always-valid" and method in ("ttest", "bayes"):
            timeline_method = "cs"
        if self.date is not None:
            shared = {
                key: analyze_options[key]
                for key in ("relative", "alpha", "strata")
                if key in analyze_options
            }
            shared["method"] = timeline_method
            if timeline_method == method and "method_options" in analyze_options:
                shared["method_options"] = analyze_options["method_options"]
            cuped = analyze_options.get("cuped")
            for metric in as_metrics(metrics):
                own = (
                    {k: v for k, v in cuped.items() if k == metric.name}
                    if isinstance(cuped, Mapping)
                    else cuped
                )
                try:
                    timelines[metric.name] = self.timeline(metric, freq, cuped=own, **shared)
                except SplitlabError as exc:
                    timelines[metric.name] = str(exc)
        controls = {e: self._control_label(e) for e in dict.fromkeys(results["experiment"])}
        return Readout(results, srm, timelines, controls, quality, bands=timeline_method)

    def report(
        self,
        path,
        metrics: object,
        *,
        title: str | None = None,
        freq: str = "D",
        bands: str = "always-valid",
        **options: Any,
    ):
        """Write a self-contained HTML report of :meth:`readout` to ``path``, atomically
        (:func:`~splitlab.analyzer.report.write_report`); returns the path written."""
        from splitlab.analyzer.report import write_report

        readout = self.readout(metrics, freq=freq, bands=bands, **options)
        return write_report(readout, path, title=title)

    def _provenance(
        self, what: str, parameters: dict[str, Any], statistics: pd.DataFrame
    ) -> dict[str, Any]:
        return {
            "splitlab_version": splitlab.__version__,
            "call": what,
            "parameters": parameters,
            "columns": {
                "experiment": self.experiment,
                "variant": self.variant,
                "control": dict(self.control)
                if isinstance(self.control, Mapping)
                else self.control,
                "unit": self.unit,
                "date": self.date,
                "cluster": self.cluster,
            },
            "source": {"engine": self.source.engine, **self.source.description},
            "input_fingerprint": _fingerprint(statistics),
        }


def _same_label(label: object, wanted: object) -> bool:
    """Whether a variant label from the engine is the label a user gave: equal values of
    the same kind (``True`` is not ``1``), dates equal to timestamps at midnight."""
    if isinstance(label, (bool, np.bool_)) != isinstance(wanted, (bool, np.bool_)):
        return False
    if isinstance(label, (pd.Timestamp, np.datetime64, datetime.date)):
        try:
            return pd.Timestamp(label) == pd.Timestamp(wanted)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
    try:
        return bool(label == wanted)
    except (TypeError, ValueError):
        return False


def _second_columns(pairs: pd.DataFrame, metric: Metric) -> int:
    prefix = f"{metric.name}.origin_x"
    return sum(1 for c in pairs.columns if c.startswith(prefix) and c.endswith("_c"))


def _side(pairs: pd.DataFrame, metric: Metric, side: str, k: int) -> dict[str, np.ndarray]:
    """One side's statistics of every pair: n and the metric's centred moments (y and its
    ``k`` second columns, see :func:`~splitlab.analyzer.aggregate.variables`)."""
    prefix = f"{metric.name}."
    names = [f"{part}_{v}" for v in variables(k) for part in ("origin", "mean", "m2")]
    names += [name for _, _, name in (co_moments(k) if k else [])]
    if metric.kind == "proportion":
        names += ["min_y", "max_y"]
    values = {name: pairs[f"{prefix}{name}_{side}"].to_numpy(dtype=float) for name in names}
    # sums past float64's range (values near 1e154 and up): flagged, then kept harmless
    finite = np.logical_and.reduce([np.isfinite(v) for v in values.values()])
    values = {name: np.where(finite, v, 0.0) for name, v in values.items()}
    values["overflow"] = ~finite
    values["imprecise"] = pairs[f"{prefix}imprecise_{side}"].to_numpy(dtype=bool)
    values["n"] = pairs[f"{COUNT}_{side}"].to_numpy(dtype=float)
    return values


def _variance(n: np.ndarray, m2: np.ndarray, ddof: int) -> np.ndarray:
    return m2 / np.maximum(n - ddof, 1.0)


def _joint(side: dict[str, np.ndarray], mean_y, mean_x, ddof: int) -> JointMoments:
    n = side["n"]
    # the engine's co-moment obeys Cauchy–Schwarz up to rounding
    bound = np.sqrt(side["m2_y"]) * np.sqrt(side["m2_x"])
    c_xy = np.clip(side["c_xy"], -bound, bound)
    return JointMoments(
        n, mean_y, _variance(n, side["m2_y"], ddof), mean_x, _variance(n, side["m2_x"], ddof),
        _variance(n, c_xy, ddof), ddof=ddof,
    )  # fmt: skip


def _cross(side: dict[str, np.ndarray], means: list[np.ndarray], k: int, ddof: int):
    """The y and covariate moments of one side as :class:`CrossMoments` (several
    covariates), means as given (offsets from the control's origins)."""
    from splitlab.stats.regression import CrossMoments

    names = variables(k)
    m2 = np.empty((len(side["n"]), k + 1, k + 1))
    for i, name in enumerate(names):
        m2[:, i, i] = side[f"m2_{name}"]
    for a, b, column in co_moments(k):
        i, j = names.index(a), names.index(b)
        m2[:, i, j] = m2[:, j, i] = side[column]
    return CrossMoments.from_centred(side["n"], np.stack(means, axis=-1), m2, ddof=ddof)


def _metric_test(
    pairs: pd.DataFrame,
    metric: Metric,
    method: str,
    relative: bool,
    alpha: float,
    options: Mapping[str, Any],
    alternative: str = "two-sided",
) -> dict[str, np.ndarray]:
    """Run the metric's test on every pair at once; returns result columns.

    Means are offsets from each row's origin (see :mod:`splitlab.analyzer.aggregate`); the
    treatment's are moved to the control's origin, so a difference of means is a
    difference of small offsets, exact however large the values.
    """
    k = _second_columns(pairs, metric)
    # with cluster=, a mean or proportion is the ratio of cluster sums to cluster sizes
    clustered = k == 1 and metric.kind in ("mean", "proportion") and not metric.covariates
    # a ratio (or, with cluster=, a mean) adjusted by its pre-period ratio: y, its
    # denominator, the pre-period numerator and denominator
    ratio_adjusted = k == 3 and (metric.kind == "ratio" or len(metric.covariates) == 1)
    clustered |= ratio_adjusted and metric.kind != "ratio"
    control, treatment = _side(pairs, metric, "c", k), _side(pairs, metric, "t", k)
    extra: dict[str, np.ndarray] = {}
    errors = RowErrors((len(pairs),))
    columns_named = (
        repr(metric.y)
        if clustered or not metric.xs
        else f"{metric.y!r}/" + "/".join(map(repr, metric.xs))
    )
    for side, sums in (("control", control), ("variant", treatment)):
        errors.flag(
            sums["overflow"],
            f"column(s) {columns_named} in {side}: sums of squares overflow floating point",
        )
        errors.flag(
            sums["imprecise"],
            f"column(s) {columns_named} in {side}: values too far from their mean for the "
            "engine's floating-point sums",
        )
    ddof = 0 if metric.kind == "proportion" and not clustered else 1
    if metric.kind == "proportion":
        for side, sums in (("control", control), ("variant", treatment)):
            not_binary = (sums["min_y"] < 0) | (sums["max_y"] > 1)
            if not clustered:  # cluster sums are counts: only their rows are 0/1
                p = sums["origin_y"] + sums["mean_y"]
                bernoulli_m2 = sums["n"] * p * (1.0 - p)
                not_binary |= ~np.isclose(sums["m2_y"], bernoulli_m2, rtol=1e-9, atol=1e-9)
            errors.flag(
                not_binary & (sums["n"] > 0),
                f"column {metric.y!r} has values other than 0 and 1 in {side}",
            )
    origin = control["origin_y"]
    mean_c = control["mean_y"]
    mean_t = (treatment["origin_y"] - origin) + treatment["mean_y"]
    level_c, level_t = origin + mean_c, origin + mean_t
    if ratio_adjusted:
        from splitlab.stats.ratio_adjustment import ratio_cuped_test

        arms = [
            _cross(side, [side[f"origin_{v}"] + side[f"mean_{v}"] for v in variables(k)], k, 1)
            for side in (control, treatment)
        ]
        result = ratio_cuped_test(*arms, alpha=alpha, relative=relative, alternative=alternative)
        means = [
            a.mean[..., 0] / np.where(a.mean[..., 1] == 0, np.nan, a.mean[..., 1]) for a in arms
        ]
        extra = {"variance_reduction": result.variance_reduction, "theta": result.theta}
    elif metric.kind == "ratio" or clustered:
        arms = [
            _joint(side, side["origin_y"] + side["mean_y"], side["origin_x"] + side["mean_x"], 1)
            for side in (control, treatment)
        ]
        result: EffectResult = ratio_test(
            *arms, alpha=alpha, relative=relative, alternative=alternative
        )
        means = [a.mean_y / np.where(a.mean_x == 0, np.nan, a.mean_x) for a in arms]
    elif metric.x is not None:
        mean_x_t = (treatment["origin_x"] - control["origin_x"]) + treatment["mean_x"]
        arms = [
            _joint(control, mean_c, control["mean_x"], ddof),
            _joint(treatment, mean_t, mean_x_t, ddof),
        ]
        result = cuped_test(
            *arms, alpha=alpha, relative=relative, origin=origin, alternative=alternative
        )
        means = [level_c, level_t]
        extra = {"variance_reduction": result.variance_reduction, "theta": result.theta}
    elif k >= 2:
        from splitlab.stats.regression import regression_test

        offsets_t = [mean_t]
        offsets_c = [mean_c]
        for name in variables(k)[1:]:
            offsets_c.append(control[f"mean_{name}"])
            offsets_t.append(
                (treatment[f"origin_{name}"] - control[f"origin_{name}"])
                + treatment[f"mean_{name}"]
            )
        arms = [_cross(control, offsets_c, k, ddof), _cross(treatment, offsets_t, k, ddof)]
        result = regression_test(
            *arms, alpha=alpha, relative=relative, origin=origin, alternative=alternative
        )
        means = [level_c, level_t]
        extra = {"variance_reduction": result.variance_reduction}
    else:
        if metric.kind == "proportion":
            arms = [
                Moments.from_proportions(np.round(s["n"] * level), s["n"])
                for s, level in ((control, level_c), (treatment, level_t))
            ]
            result = ttest(*arms, alpha=alpha, relative=relative, alternative=alternative)
        else:
            arms = [
                Moments(s["n"], mean, _variance(s["n"], s["m2_y"], 1))
                for s, mean in ((control, mean_c), (treatment, mean_t))
            ]
            result = ttest(
                *arms, alpha=alpha, relative=relative, origin=origin, alternative=alternative
            )
        means = [level_c, level_t]
    return _result_columns(
        result, means, extra, errors, columns_named, metric, method, relative, alpha, options,
        control["n"] + treatment["n"], alternative,
    )  # fmt: skip


def _result_columns(
    result: EffectResult,
    means: list[np.ndarray],
    extra: dict[str, np.ndarray],
    errors: RowErrors,
    columns_named: str,
    metric: Metric,
    method: str,
    relative: bool,
    alpha: float,
    options: Mapping[str, Any],
    n_total: np.ndarray,
    alternative: str = "two-sided",
) -> dict[str, np.ndarray]:
    """Result columns of a fixed-horizon estimate: the Bayesian posterior or the
    sequential interval of the same effect and se where ``method`` asks for them."""
    if method == "bayes":
        difference = Difference(
            np.asarray(result.effect, dtype=float),
            np.asarray(result.se, dtype=float),
            None,
            RowErrors.from_messages(np.atleast_1d(result.error)),
        )
        result = gaussian_posterior(
            difference, prior=_prior_for(metric, options), alpha=alpha, relative=relative,
            higher_is_better=metric.higher_is_better,
        )  # fmt: skip
        extra.update(
            chance_to_win=result.chance_to_win,
            risk_control=result.risk_control,
            risk_variant=result.risk_treatment,
        )
    method_name = result.method
    if method in ("cs", "msprt"):
        ci_low, ci_high, p_value = _sequential_interval(
            method,
            metric,
            np.atleast_1d(np.asarray(result.effect, dtype=float)),
            np.atleast_1d(np.asarray(result.se, dtype=float)),
            n_total,
            alpha,
            options,
            alternative,
        )
        result = EffectResult(
            effect=result.effect, se=result.se, ci_low=ci_low, ci_high=ci_high,
            p_value=p_value, statistic=result.statistic, error=result.error,
            method=result.method, scale=result.scale,
        )  # fmt: skip
        method_name = f"{method}/{method_name}"
    error = np.atleast_1d(np.asarray(result.error, dtype=object)).copy()
    error = np.array(
        [f"column(s) {columns_named}: {message}" if message else "" for message in error],
        dtype=object,
    )
    own = errors.messages
    error = np.where(own != "", own, error)
    mean_c, mean_t = (np.atleast_1d(np.asarray(m, dtype=float)) for m in means)
    effect = np.atleast_1d(np.asarray(result.effect, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative_effect = effect if relative else effect / np.abs(mean_c)
    columns = {
        "mean_control": mean_c,
        "mean_variant": mean_t,
        "effect": effect,
        "relative_effect": relative_effect,
        "se": result.se,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value if result.p_value is not None else np.nan,
        "method": method_name,
        "scale": result.scale,
        "error": error,
        **extra,
    }
    bad = error != ""
    if bad.any():
        for name in ("effect", "relative_effect", "se", "ci_low", "ci_high", "p_value"):
            values = np.array(np.broadcast_to(columns[name], bad.shape), dtype=float)
            values[bad] = np.nan
            columns[name] = values
    return columns


def _quantile_test(
    pairs: pd.DataFrame,
    metric: Metric,
    method: str,
    relative: bool,
    alpha: float,
    options: Mapping[str, Any],
    alternative: str = "two-sided",
) -> dict[str, np.ndarray]:
    """The quantile metric's test on every pair (GrowthBook's quantile statistic)."""
    from splitlab.stats.quantile import QuantileSummary, quantile_test

    fields = ["n", "nu", "quantile", "lower", "upper", "n_star"]
    clustered = "n_clusters_c" in pairs
    if clustered:
        fields += [
            "n_clusters", "sum_below", "sum_below_sq", "sum_events", "sum_events_sq",
            "sum_below_events",
        ]  # fmt: skip
    arms = [
        QuantileSummary(**{name: pairs[f"{name}_{side}"].to_numpy(dtype=float) for name in fields})
        for side in ("c", "t")
    ]
    result = quantile_test(*arms, alpha=alpha, relative=relative, alternative=alternative)
    means = [arm.quantile for arm in arms]
    return _result_columns(
        result, means, {}, RowErrors((len(pairs),)), repr(metric.y), metric, method, relative,
        alpha, options, arms[0].n + arms[1].n, alternative,
    )  # fmt: skip


def _quantile_not_stratified(pairs, metric, *_) -> dict[str, np.ndarray]:
    raise InvalidArgumentError(
        "strata", f"metric {metric.name!r}: quantile metrics are not post-stratified"
    )


def _stratified_test(
    pairs: pd.DataFrame,
    metric: Metric,
    method: str,
    relative: bool,
    alpha: float,
    options: Mapping[str, Any],
    alternative: str = "two-sided",
) -> dict[str, np.ndarray]:
    """The post-stratified test of every comparison, from its per-stratum statistics."""
    from splitlab.stats.stratification import poststratified_test

    cells, names = pairs.attrs["cells"], pairs.attrs["names"]
    prefix = f"{metric.name}."
    k = sum(1 for name in names if name.startswith(f"{prefix}origin_x"))
    if k >= 2:
        raise InvalidArgumentError(
            "strata",
            f"metric {metric.name!r}: several covariates, and a ratio adjusted by its "
            "pre-period ratio, are not post-stratified",
        )
    clustered = k == 1 and metric.kind in ("mean", "proportion") and not metric.covariates
    errors = RowErrors((len(pairs),))
    sides = []
    for side, label in (("c", "control"), ("t", "variant")):
        cell = {
            name[len(prefix) :]: cells[side][:, :, names.index(name)]
            for name in names
            if name.startswith(prefix)
        }
        n = cells[side][:, :, names.index(COUNT)]
        errors.flag(
            (cell["imprecise"] > 0).any(axis=1),
            f"column {metric.y!r} in {label}: values too far from their mean for the "
            "engine's floating-point sums",
        )
        level = {v: cell[f"origin_{v}"] + cell[f"mean_{v}"] for v in variables(k)}
        if metric.kind == "proportion" and not clustered:
            p = level["y"]
            errors.flag(
                ((cell["min_y"] < 0) | (cell["max_y"] > 1)).any(axis=1)
                | ~np.isclose(cell["m2_y"], n * p * (1 - p), rtol=1e-9, atol=1e-9).all(axis=1),
                f"column {metric.y!r} has values other than 0 and 1 in {label}",
            )
            sides.append(Moments.from_proportions(np.round(n * p), n))
            continue
        if k == 0:
            sides.append(Moments(n, level["y"], _variance(n, cell["m2_y"], 1)))
            continue
        bound = np.sqrt(cell["m2_y"]) * np.sqrt(cell["m2_x"])
        sides.append(
            JointMoments(
                n, level["y"], _variance(n, cell["m2_y"], 1), level["x"],
                _variance(n, cell["m2_x"], 1),
                _variance(n, np.clip(cell["c_xy"], -bound, bound), 1),
            )
        )  # fmt: skip
    kind = None if k == 0 else ("ratio" if metric.kind == "ratio" or clustered else "cuped")
    result = poststratified_test(
        *sides, alpha=alpha, relative=relative, kind=kind, alternative=alternative
    )
    if kind == "ratio":
        means = [side.sum_y.sum(axis=-1) / side.sum_x.sum(axis=-1) for side in sides]
    else:
        means = [
            (side.n * side.mean_y).sum(axis=-1) / side.n.sum(axis=-1)
            if k
            else (side.n * side.mean).sum(axis=-1) / side.n.sum(axis=-1)
            for side in sides
        ]
    notes = np.atleast_1d(np.asarray(result.note, dtype=object))
    extra = {
        "note": np.array(
            [
                _name_strata(str(note), stratum_labels)
                for note, stratum_labels in zip(notes, pairs.attrs["labels"], strict=True)
            ],
            dtype=object,
        )
    }
    return _result_columns(
        result, means, extra, errors, repr(metric.y), metric, method, relative, alpha,
        options, pairs["n_c"].to_numpy(float) + pairs["n_t"].to_numpy(float), alternative,
    )  # fmt: skip


def _name_strata(text: str, labels: list) -> str:
    """A note of :func:`~splitlab.stats.stratification.poststratified_test` with the
    strata's values in place of their positions ("stratum 2" -> "stratum 'FR'")."""

    def named(positions: str) -> str:
        return ", ".join(repr(_label(labels[int(i)])) for i in positions.split(", "))

    text = re.sub(r"\b(stratum|strata) (\d+(?:, \d+)*)", lambda m: f"{m[1]} {named(m[2])}", text)
    return re.sub(r"largest stratum \((\d+)\)", lambda m: f"largest stratum ({named(m[1])})", text)


def _planned_effects(mde: object, metrics: list[Metric]) -> dict[str, float]:
    """The planned effect of every metric: one number for all, or metric -> number."""
    if isinstance(mde, Mapping):
        missing = [m.name for m in metrics if m.name not in mde]
        unknown = sorted(set(mde) - {m.name for m in metrics})
        if missing or unknown:
            raise InvalidArgumentError(
                "mde", f"needs every metric and no other: missing {missing}, unknown {unknown}"
            )
        values = {m.name: mde[m.name] for m in metrics}
    else:
        values = {m.name: mde for m in metrics}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidArgumentError("mde", f"metric {name!r}: must be a number, got {value!r}")
        if not np.isfinite(value) or value == 0:
            raise InvalidArgumentError(
                "mde", f"metric {name!r}: must be a finite nonzero effect, got {value!r}"
            )
    return {name: float(value) for name, value in values.items()}


def _directed(alternative: str, metric: Metric) -> str:
    """The scipy-style alternative of a metric's one-sided test in its own direction."""
    if alternative == "two-sided":
        return alternative
    increase = (alternative == "better") == metric.higher_is_better
    return "greater" if increase else "less"


def _segment_columns(segments: object) -> list[str]:
    if segments is None:
        return []
    if isinstance(segments, str):
        return [segments]
    if isinstance(segments, (list, tuple)) and all(isinstance(s, str) for s in segments):
        return list(segments)
    raise InvalidArgumentError(
        "segments", f"must be a column name or a list of column names, got {segments!r}"
    )


def _positive_number(name: str, value: object) -> float:
    """A finite positive number given as a method option."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError("method_options", f"{name!r} must be a number, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise InvalidArgumentError("method_options", f"{name!r} must be positive, got {value!r}")
    return float(value)


def _method_options(method: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the options of a method: known names, the ones each method needs, and that
    the numbers are numbers."""
    if options is not None and not isinstance(options, Mapping):
        raise InvalidArgumentError(
            "method_options", f"must be a mapping of option names to values, got {options!r}"
        )
    options = {key: value for key, value in (options or {}).items() if value is not None}
    unknown = sorted(set(options) - set(METHOD_OPTIONS[method]))
    if unknown:
        allowed = ", ".join(METHOD_OPTIONS[method]) or "none"
        raise InvalidArgumentError(
            "method_options", f"unknown for method {method!r}: {unknown} (allowed: {allowed})"
        )
    if method == "msprt" and not ("tau2" in options or "n_plan" in options):
        raise InvalidArgumentError(
            "method_options", "method='msprt' needs 'tau2' (a value or {metric: value}) or 'n_plan'"
        )
    if method == "gst":
        if "planned_n" not in options:
            raise InvalidArgumentError(
                "method_options", "method='gst' needs 'planned_n' (units per comparison)"
            )
        _positive_number("planned_n", options["planned_n"])
        GroupSequentialDesign(k=1, spending=options.get("spending", "obf"))  # validates it
    prior = options.get("prior")
    for pair in prior.values() if isinstance(prior, Mapping) else [] if prior is None else [prior]:
        _normal_prior(pair, ())
    for name in ("n_star", "n_plan"):
        if name in options:
            _positive_number(name, options[name])
    tau2 = options.get("tau2")
    for value in tau2.values() if isinstance(tau2, Mapping) else [] if tau2 is None else [tau2]:
        _positive_number("tau2", value)
    return options


def _prior_for(metric: Metric, options: Mapping[str, Any]):
    """The (mean, sd) normal prior of this metric's effect, on the scale analysed: one
    pair for every metric, or a mapping metric -> pair (a metric left out gets a flat
    prior)."""
    prior = options.get("prior")
    if isinstance(prior, Mapping):
        return prior.get(metric.name)
    return prior


def _sequential_interval(
    method: str,
    metric: Metric,
    effect: np.ndarray,
    se: np.ndarray,
    n_total: np.ndarray,
    alpha: float,
    options: Mapping[str, Any],
    alternative: str = "two-sided",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Always-valid (ci_low, ci_high, p_value) of this look's estimates."""
    if method == "cs":
        return confidence_sequence_from_estimate(
            effect, se, n_total, alpha=alpha, n_star=options.get("n_star", 5000.0),
            alternative=alternative,
        )  # fmt: skip
    tau2 = options.get("tau2")
    if isinstance(tau2, Mapping):
        if metric.name not in tau2:
            raise InvalidArgumentError("method_options", f"no tau2 for metric {metric.name!r}")
        tau2 = tau2[metric.name]
    if tau2 is None:
        # τ² = r*·V_plan with V_plan = se²·n/n_plan: the variance at the planned size
        tau2 = msprt_mixing_ratio(alpha) * se * se * n_total / (2.0 * float(options["n_plan"]))
    return msprt_from_estimate(effect, se, alpha=alpha, tau2=tau2)


def _apply_design(frame: pd.DataFrame, alpha: float, options: Mapping[str, Any]) -> pd.DataFrame:
    """Efficacy boundaries, repeated confidence intervals and decisions of each path,
    recomputed at the observed information n / planned_n (Lan & DeMets)."""
    design = GroupSequentialDesign(
        k=1, alpha=alpha, spending=options.get("spending", "obf"), sides=2
    )
    planned = float(options["planned_n"])
    frame = frame.copy()
    frame["boundary"] = np.nan
    frame["statistic"] = np.nan
    frame["gst_decision"] = "continue"
    frame["p_value"] = np.nan
    for _, rows in frame.groupby(["experiment", "variant"], sort=False):
        fractions = ((rows["n_control"] + rows["n_variant"]) / planned).to_numpy(float)
        se = rows["se"].to_numpy(float)
        usable = np.isfinite(se) & (se > 0) & (rows["error"] == "").to_numpy()
        usable &= np.r_[True, np.diff(fractions) > 0]
        reached = np.flatnonzero(usable & (fractions >= 1.0))
        if reached.size:
            usable[reached[0] + 1 :] = False
        looks = rows.index[usable]
        carried = ["effect", "relative_effect", "se", "boundary", "statistic", "ci_low", "ci_high"]
        carried.append("gst_decision")
        # a look without new information (or after the final one) repeats the last analysis
        frame.loc[rows.index, ["ci_low", "ci_high"]] = np.nan
        if looks.empty:
            continue
        observed = np.minimum(fractions[usable], 1.0)
        z = rows.loc[looks, "effect"].to_numpy(float) / se[usable]
        result = design.analyze(z, information=observed, se=se[usable])
        frame.loc[looks, "boundary"] = result.boundaries
        frame.loc[looks, "statistic"] = z
        frame.loc[looks, "ci_low"] = result.ci_low
        frame.loc[looks, "ci_high"] = result.ci_high
        if result.stopped_at is not None:
            decided = looks[result.stopped_at - 1 :]
            frame.loc[decided, "gst_decision"] = result.decision
        after = rows.index[rows.index >= looks[0]]
        analysed = frame.loc[after, carried].where(
            pd.Series(usable, index=rows.index)[after], axis=0
        )
        frame.loc[after, carried] = analysed.ffill()
    return frame

"""Experiment tracking: log analyses, rollout checks and benchmark runs to MLflow.

Each function creates one MLflow run (through ``mlflow.tracking.MlflowClient``, so the
caller's active run and global tracking URI are left alone), logs parameters, tags, metrics
and artifacts, ends the run and returns its id. Nothing here imports mlflow until a function
is called: ``import splitlab`` stays light. Install it with ``pip install "splitlab[mlflow]"``
(``mlflow-skinny``); without it every function raises :class:`MissingDependencyError`.

Where runs go (:func:`resolve_tracking_uri`): the ``tracking_uri`` argument, else the
``MLFLOW_TRACKING_URI`` environment variable, else the file store ``./mlruns`` of the working
directory (as an absolute ``file:`` URI). splitlab names that file store itself rather than
leaving the choice to MLflow, whose default depends on its version: MLflow 2 uses
``./mlruns``; recent MLflow 3 releases (3.18 checked) use ``sqlite:///mlflow.db``, which
needs SQLAlchemy and Alembic that ``mlflow-skinny`` does not install. Those releases also
refuse to open a file store unless ``MLFLOW_ALLOW_FILE_STORE=true`` (the file backend is
"in maintenance mode"): while one of these functions writes to a file store and that
variable is unset, splitlab sets it, and restores the environment afterwards (an explicit
``false`` is respected, and MLflow then raises). To read such a store with MLflow 3, use
:func:`tracking_client`, or set ``MLFLOW_ALLOW_FILE_STORE=true`` for an ``MlflowClient`` or
``mlflow ui --backend-store-uri file:./mlruns``. Any other store (a server ``http://...``,
``sqlite:///...`` with the full ``mlflow`` package, ``databricks``) is used as given.

>>> import os, tempfile
>>> import pandas as pd
>>> import splitlab
>>> from splitlab.tracking import log_analysis
>>> store = tempfile.TemporaryDirectory()
>>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 50,
...                      "revenue": [1.0, 2.0, 0.0, 2.5] * 25})
>>> results = splitlab.Analyzer(data).analyze(["revenue"])
>>> run_id = log_analysis(results, tracking_uri=os.path.join(store.name, "mlruns"))
>>> len(run_id)
32
>>> store.cleanup()
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from splitlab.errors import InvalidArgumentError, SplitlabError

__all__ = [
    "MissingDependencyError",
    "log_analysis",
    "log_benchmark",
    "log_rollout_check",
    "resolve_tracking_uri",
    "tracking_client",
]

INSTALL_HINT = 'pip install "splitlab[mlflow]"'
DEFAULT_EXPERIMENT = "splitlab"
# MLflow 2.x and 3.x accept 6,000 characters per parameter value; 500 was the limit before
# (and remains on some servers), so values are cut to 500 here. The full parameters are in
# each run's JSON artifact.
MAX_PARAM_LENGTH = 500
MAX_KEY_LENGTH = 250  # MLflow's limit on metric, parameter and tag names
MAX_TAG_LENGTH = 5000  # MLflow allows 8,000
BATCH_PARAMS_TAGS = 100  # MLflow's limits per log_batch call
BATCH_METRICS = 1000
# The per-row statistics of a results table logged as metrics, when the table has them.
ROW_METRICS = (
    "effect",
    "relative_effect",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "chance_to_win",
    "risk_control",
    "risk_variant",
    "mean_control",
    "mean_variant",
    "n_control",
    "n_variant",
)
# characters MLflow allows in a metric or parameter name on every platform (the colon it
# also allows outside Windows is left out)
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_\-. ]")


class MissingDependencyError(SplitlabError, ImportError):
    """An optional dependency that a feature needs is not installed."""


# ------------------------------------------------------------------ public API


def resolve_tracking_uri(tracking_uri: str | os.PathLike[str] | None = None) -> str:
    """The tracking URI runs are logged to: ``tracking_uri`` when given (a path is turned
    into a ``file:`` URI), else ``$MLFLOW_TRACKING_URI``, else the absolute ``file:`` URI of
    ``./mlruns`` in the working directory (see the module doc for why a file store).

    >>> resolve_tracking_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    >>> resolve_tracking_uri(Path("/tmp/store/mlruns"))
    'file:///tmp/store/mlruns'
    """
    if tracking_uri is None:
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    if tracking_uri is None:
        return Path("mlruns").resolve().as_uri()
    if isinstance(tracking_uri, os.PathLike):
        return Path(tracking_uri).resolve().as_uri()
    if not isinstance(tracking_uri, str) or not tracking_uri.strip():
        raise InvalidArgumentError(
            "tracking_uri", f"must be a non-empty string or a path, got {tracking_uri!r}"
        )
    return tracking_uri


def tracking_client(tracking_uri: str | os.PathLike[str] | None = None) -> Any:
    """An ``mlflow.tracking.MlflowClient`` of the store these functions log to
    (:func:`resolve_tracking_uri`), opened with MLflow 3's file-store opt-in when it is a file
    store and ``MLFLOW_ALLOW_FILE_STORE`` is unset, so that runs can be read back.

    >>> import tempfile
    >>> store = tempfile.TemporaryDirectory()
    >>> client = tracking_client(Path(store.name) / "mlruns")
    >>> client.tracking_uri == (Path(store.name) / "mlruns").resolve().as_uri()
    True
    >>> store.cleanup()
    """
    mlflow = _mlflow()
    uri = resolve_tracking_uri(tracking_uri)
    with _file_store_allowed(uri):
        return mlflow.tracking.MlflowClient(tracking_uri=uri)


def log_analysis(
    results: Any,
    *,
    report: str | os.PathLike[str] | None = None,
    tracking_uri: str | os.PathLike[str] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: Mapping[str, object] | None = None,
) -> str:
    """Log an analysis (a results table of :class:`~splitlab.Analyzer`) as one MLflow run;
    returns the run id.

    Parameters
    ----------
    results : pandas.DataFrame
        The results of ``Analyzer.analyze`` (or ``summary``, ``srm``, ``timeline``), with
        their provenance in ``results.attrs``.
    report : str or path, optional
        An HTML report (``Analyzer.report``) to attach, as artifact ``report/<file name>``.
    tracking_uri : str or path, optional
        Where to log (:func:`resolve_tracking_uri`).
    experiment : str
        The MLflow experiment, created when it does not exist.
    run_name : str, optional
        Default ``"<call> <experiments>"``, e.g. ``"analyze checkout"``.
    tags : mapping, optional
        Extra run tags (values are stringified).

    Notes
    -----
    Logged: parameters ``results.attrs["parameters"]`` flattened with dots (a list of
    metrics by metric name: ``metrics.revenue.kind``) and ``columns.*`` (the Analyzer's
    column names), each value stringified and cut to 500 characters; tags
    ``splitlab.kind`` ("analysis"), ``splitlab.version``, ``splitlab.call``,
    ``splitlab.input_fingerprint`` and ``splitlab.engine``; metrics
    ``<statistic>.<experiment>.<metric>.<variant>`` per result row (``effect``,
    ``relative_effect``, ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``p_adjusted``, the
    Bayesian ``chance_to_win``/``risk_*``, ``mean_*``, ``n_*``: those the table has), with
    ``.<segment>`` inserted after the experiment on segment rows, and
    ``srm_p_value.<experiment>``; names keep only the characters MLflow allows (others
    become ``_``) and NaN or infinite values are left out. Artifacts: ``results.csv`` (the
    whole table), ``provenance.json`` (all of ``results.attrs``) and the report.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> import splitlab
    >>> store = tempfile.TemporaryDirectory()
    >>> uri = os.path.join(store.name, "mlruns")
    >>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 50,
    ...                      "revenue": [1.0, 2.0, 0.0, 2.5] * 25})
    >>> results = splitlab.Analyzer(data).analyze(["revenue"])
    >>> run_id = log_analysis(results, tracking_uri=uri, tags={"owner": "growth"})
    >>> run = tracking_client(uri).get_run(run_id)
    >>> run.data.metrics["effect.e1.revenue.b"] == float(results["effect"].iloc[0])
    True
    >>> run.data.tags["splitlab.input_fingerprint"] == results.attrs["input_fingerprint"]
    True
    >>> store.cleanup()
    """
    import pandas as pd

    _check_run_arguments(experiment, run_name, tags)
    if not isinstance(results, pd.DataFrame):
        raise InvalidArgumentError(
            "results", f"must be a pandas DataFrame of results, got {type(results).__name__}"
        )
    report_path = _existing_file("report", report) if report is not None else None
    attrs = dict(results.attrs)
    params = dict(_flatten(attrs.get("parameters") or {}))
    params.update(_flatten(attrs.get("columns") or {}, "columns"))
    run_tags = {
        "splitlab.kind": "analysis",
        "splitlab.version": attrs.get("splitlab_version", _splitlab_version()),
        "splitlab.call": attrs.get("call"),
        "splitlab.input_fingerprint": attrs.get("input_fingerprint"),
        "splitlab.engine": (attrs.get("source") or {}).get("engine"),
    }
    if run_name is None:
        names = []
        if "experiment" in results.columns:
            names = [str(e) for e in dict.fromkeys(results["experiment"].tolist())]
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        run_name = " ".join(part for part in (attrs.get("call") or "analysis", shown) if part)
    artifacts = {
        "results.csv": results.to_csv(index=False),
        "provenance.json": _to_json(attrs),
    }
    return _log_run(
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_name=run_name,
        tags={**run_tags, **dict(tags or {})},
        params=params,
        metrics=_result_metrics(results),
        texts=artifacts,
        files={"report": report_path} if report_path is not None else {},
    )


def log_rollout_check(
    decision: Any,
    *,
    report: str | os.PathLike[str] | None = None,
    tracking_uri: str | os.PathLike[str] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: Mapping[str, object] | None = None,
) -> str:
    """Log a rollout check's decision as one MLflow run; returns the run id.

    Parameters
    ----------
    decision : mapping
        The decision as plain data, e.g. ``{"action": "hold", "stage": 2, "reason": ...,
        "guardrails": [{"metric": "latency", "p_value": 0.01, ...}, ...]}`` — what a
        decision object turns into by ``dataclasses.asdict`` or its ``to_dict()`` (a
        dataclass instance or an object with ``to_dict`` is converted the same way).
    report : str or path, optional
        An HTML report to attach, as artifact ``report/<file name>``.
    tracking_uri, experiment, run_name, tags
        As in :func:`log_analysis`; ``run_name`` defaults to ``"rollout <action>"``.

    Notes
    -----
    The decision is flattened with dots (a list of mappings is keyed by each item's
    ``name``, ``metric`` or ``guardrail`` when those are unique, else by position):
    numbers become metrics (``stage``, ``guardrails.latency.p_value``, ...; NaN and
    infinities left out), everything else parameters (``action``, ``reason``,
    ``guardrails.latency.verdict``, ...; cut to 500 characters). Tags: ``splitlab.kind``
    ("rollout"), ``splitlab.version``, ``splitlab.rollout.action`` and
    ``splitlab.rollout.stage`` when the decision has them, and
    ``splitlab.input_fingerprint`` when it has an ``input_fingerprint`` at its top level.
    Artifact: ``decision.json`` (the whole decision).

    Examples
    --------
    >>> import os, tempfile
    >>> store = tempfile.TemporaryDirectory()
    >>> uri = os.path.join(store.name, "mlruns")
    >>> decision = {"action": "rollback", "stage": 1, "reason": "latency guardrail failed",
    ...             "guardrails": [{"metric": "latency", "effect": 12.5, "p_value": 0.001}]}
    >>> run_id = log_rollout_check(decision, tracking_uri=uri)
    >>> run = tracking_client(uri).get_run(run_id)
    >>> run.data.tags["splitlab.rollout.action"], run.data.metrics["guardrails.latency.p_value"]
    ('rollback', 0.001)
    >>> store.cleanup()
    """
    _check_run_arguments(experiment, run_name, tags)
    data = _plain_decision(decision)
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    for key, value in _flatten(data, keep_types=True):
        if _is_number(value):
            if math.isfinite(float(value)):
                metrics[key] = float(value)
        else:
            params[key] = value
    run_tags: dict[str, object] = {
        "splitlab.kind": "rollout",
        "splitlab.version": _splitlab_version(),
    }
    # a RolloutDecision names the stage it leaves the rollout at stage_after
    stage = data.get("stage", data.get("stage_after"))
    for field, value in (("action", data.get("action")), ("stage", stage)):
        if value is not None:
            run_tags[f"splitlab.rollout.{field}"] = value
    if data.get("input_fingerprint") is not None:
        run_tags["splitlab.input_fingerprint"] = data["input_fingerprint"]
    report_path = _existing_file("report", report) if report is not None else None
    if run_name is None:
        run_name = f"rollout {data['action']}" if data.get("action") is not None else "rollout"
    return _log_run(
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_name=run_name,
        tags={**run_tags, **dict(tags or {})},
        params=params,
        metrics=metrics,
        texts={"decision.json": _to_json(data)},
        files={"report": report_path} if report_path is not None else {},
    )


def log_benchmark(
    results_file: str | os.PathLike[str],
    *,
    tracking_uri: str | os.PathLike[str] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: Mapping[str, object] | None = None,
) -> str:
    """Log a benchmark results file (``benchmarks/results/*.md``) as one MLflow run; returns
    the run id.

    Parameters
    ----------
    results_file : str or path
        A Markdown results file written by ``splitlab bench`` or a ``benchmarks/`` script,
        with its provenance block (``splitlab.bench.provenance``).
    tracking_uri, experiment, run_name, tags
        As in :func:`log_analysis`; ``run_name`` defaults to ``"bench <file stem>"``.

    Notes
    -----
    Logged: the file itself as an artifact (its own name); parameters from its provenance
    block, each cut to 500 characters — ``command`` (without the backticks),
    ``git_commit``, ``seed``, ``date``, ``machine``, ``versions``, ``load_average``,
    ``parameters`` and each ``parameters.<name>`` of it; tags ``splitlab.kind``
    ("benchmark"), ``splitlab.version``, ``splitlab.benchmark`` (the file stem),
    ``splitlab.benchmark.title`` (its first heading) and ``splitlab.benchmark.verdict``
    ("FAIL" when any table row's budget column says FAIL, else "PASS" when one says PASS);
    metrics ``wall_time_s`` (from the date line), ``budget.pass`` and ``budget.fail``
    (table rows whose cells start with PASS or FAIL) and ``ratio.<name>`` for each
    ``<name> <number>x`` item of the first ``Measured (...):`` headline line, such as
    ``Measured (wall-time ratios): regression 1.10x (PASS (<= 2x)); quantile 1.75x ...``.
    A file holding several runs (a second section "under load") gives the first run's
    provenance and headline.

    Examples
    --------
    >>> import tempfile
    >>> store = tempfile.TemporaryDirectory()
    >>> path = Path(store.name) / "demo.md"
    >>> _ = path.write_text(
    ...     "# Demo\\n\\nMeasured (wall-time ratios): scan 1.25x (PASS (<= 2x)).\\n\\n"
    ...     "- date: 2026-12-04T19:32:46+00:00; wall time 7.5 s\\n"
    ...     "- git commit: e79496c\\n- command: `python benchmarks/demo.py`\\n")
    >>> uri = Path(store.name) / "mlruns"
    >>> run_id = log_benchmark(path, tracking_uri=uri)
    >>> run = tracking_client(uri).get_run(run_id)
    >>> run.data.params["command"], run.data.metrics["ratio.scan"], run.data.params["git_commit"]
    ('python benchmarks/demo.py', 1.25, 'e79496c')
    >>> store.cleanup()
    """
    _check_run_arguments(experiment, run_name, tags)
    path = _existing_file("results_file", results_file)
    text = path.read_text(encoding="utf-8")
    params, metrics, info = _parse_results_file(text)
    run_tags: dict[str, object] = {
        "splitlab.kind": "benchmark",
        "splitlab.version": _splitlab_version(),
        "splitlab.benchmark": path.stem,
        "splitlab.benchmark.title": info.get("title"),
        "splitlab.benchmark.verdict": info.get("verdict"),
    }
    return _log_run(
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_name=run_name if run_name is not None else f"bench {path.stem}",
        tags={**run_tags, **dict(tags or {})},
        params=params,
        metrics=metrics,
        texts={},
        files={"": path},
    )


# ------------------------------------------------------------------ MLflow


def _mlflow() -> Any:
    """The mlflow module (imported here, never at splitlab's import)."""
    try:
        import mlflow
        import mlflow.entities
        import mlflow.tracking
    except ImportError as exc:
        raise MissingDependencyError(
            "MLflow tracking needs the mlflow package, which is not installed (or does not "
            f"import: {exc}); install it with {INSTALL_HINT}"
        ) from exc
    return mlflow


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 refuses file stores unless MLFLOW_ALLOW_FILE_STORE is true: allow it for a
    file store while this block runs, when the user has not set the variable either way."""
    variable = "MLFLOW_ALLOW_FILE_STORE"
    parsed = urlparse(uri)
    # a plain path (or a Windows drive path, whose letter parses as a scheme) is a file store
    is_file_store = parsed.scheme == "file" or len(parsed.scheme) <= 1
    if not is_file_store or variable in os.environ:
        yield
        return
    os.environ[variable] = "true"
    try:
        yield
    finally:
        os.environ.pop(variable, None)


def _check_run_arguments(experiment: object, run_name: object, tags: object) -> None:
    if not isinstance(experiment, str) or not experiment.strip():
        raise InvalidArgumentError("experiment", f"must be a non-empty string, got {experiment!r}")
    if run_name is not None and not isinstance(run_name, str):
        raise InvalidArgumentError("run_name", f"must be a string, got {run_name!r}")
    if tags is not None and not isinstance(tags, Mapping):
        raise InvalidArgumentError("tags", f"must be a mapping, got {type(tags).__name__}")


def _experiment_id(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage != "active":
            raise InvalidArgumentError(
                "experiment", f"MLflow experiment {name!r} is deleted; restore it or pick another"
            )
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _log_run(
    *,
    tracking_uri: str | os.PathLike[str] | None,
    experiment: str,
    run_name: str | None,
    tags: Mapping[str, object],
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    texts: Mapping[str, str],
    files: Mapping[str, Path],
) -> str:
    """One run: tags at creation, then params and metrics in batches, then artifacts
    (``texts``: artifact file -> content; ``files``: artifact directory -> local file)."""
    mlflow = _mlflow()
    from mlflow.entities import Metric, Param

    uri = resolve_tracking_uri(tracking_uri)
    tag_values = {
        _key(str(k)): _cut(_text(v), MAX_TAG_LENGTH) for k, v in tags.items() if v is not None
    }
    param_values = {_key(k): _cut(_text(v), MAX_PARAM_LENGTH) for k, v in params.items()}
    now = int(time.time() * 1000)
    metric_list = [Metric(k, float(v), now, 0) for k, v in _unique_keys(metrics).items()]
    param_list = [Param(k, v) for k, v in param_values.items()]
    with _file_store_allowed(uri):
        client = mlflow.tracking.MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment)
        run = client.create_run(experiment_id, tags=tag_values, run_name=run_name)
        run_id = run.info.run_id
        try:
            for start in range(0, len(param_list), BATCH_PARAMS_TAGS):
                client.log_batch(run_id, params=param_list[start : start + BATCH_PARAMS_TAGS])
            for start in range(0, len(metric_list), BATCH_METRICS):
                client.log_batch(run_id, metrics=metric_list[start : start + BATCH_METRICS])
            for artifact_file, content in texts.items():
                client.log_text(run_id, content, artifact_file)
            for directory, local in files.items():
                client.log_artifact(run_id, str(local), directory or None)
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
    return run_id


# ------------------------------------------------------------------ names and values


def _key(name: str) -> str:
    """A metric, parameter or tag name MLflow accepts: disallowed characters become ``_``,
    and a name past 250 characters is cut and ends in a hash of the whole name."""
    name = _NOT_ALLOWED.sub("_", name).strip() or "_"
    if name.startswith(".."):
        name = "_" + name[1:]
    if len(name) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[: MAX_KEY_LENGTH - 13]}-{digest}"
    return name


def _unique_keys(values: Mapping[str, float]) -> dict[str, float]:
    """Sanitized names, a suffix ``.2``, ``.3`` ... on names that sanitizing made equal."""
    out: dict[str, float] = {}
    for name, value in values.items():
        key = base = _key(name)
        count = 1
        while key in out:
            count += 1
            key = _key(f"{base}.{count}")
        out[key] = value
    return out


def _part(value: object) -> str:
    return _NOT_ALLOWED.sub("_", str(value))


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=_json_default)
    return str(value)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: object) -> bool:
    # numpy's floats and integers are numbers.Real; bool and numpy.bool_ are not numbers here
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _json_default(value: object) -> object:
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _to_json(value: object) -> str:
    return json.dumps(value, indent=2, default=_json_default) + "\n"


def _flatten(
    value: object, prefix: str = "", *, keep_types: bool = False
) -> Iterator[tuple[str, Any]]:
    """(dotted name, leaf) pairs of nested mappings; a list of mappings is keyed by each
    item's name (``name``, ``metric``, ``guardrail``) when those are unique, else by
    position; other lists are leaves. Leaves are stringified unless ``keep_types``."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flatten(
                item, f"{prefix}.{key}" if prefix else str(key), keep_types=keep_types
            )
        return
    if isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        labels = [str(i) for i in range(len(value))]
        for field in ("name", "metric", "guardrail"):
            named = [v.get(field) for v in value]
            if all(isinstance(n, str) and n for n in named) and len(set(named)) == len(named):
                labels = [str(n) for n in named]
                break
        for label, item in zip(labels, value, strict=True):
            yield from _flatten(
                item, f"{prefix}.{label}" if prefix else label, keep_types=keep_types
            )
        return
    yield prefix or "value", value if keep_types else _text(value)


def _result_metrics(results: Any) -> dict[str, float]:
    """``<statistic>.<experiment>[.<segment>].<metric>.<variant>`` per row, and
    ``srm_p_value.<experiment>``; NaN and infinite values left out."""
    import numpy as np

    metrics: dict[str, float] = {}
    columns = [c for c in ROW_METRICS if c in results.columns]

    def add(name: str, value: object) -> None:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        if np.isfinite(number):
            metrics[name] = number

    for row in results.to_dict("records"):
        parts = [_part(row.get("experiment", ""))]
        segment = row.get("segment")
        if segment is not None and str(segment) not in ("all", "", "nan"):
            parts.append(_part(segment))
        parts += [_part(row.get("metric", "")), _part(row.get("variant", ""))]
        label = ".".join(parts)
        for column in columns:
            add(f"{column}.{label}", row[column])
        if "srm_p_value" in row:
            add(f"srm_p_value.{_part(row.get('experiment', ''))}", row["srm_p_value"])
    return metrics


# ------------------------------------------------------------------ inputs


def _existing_file(argument: str, path: object) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentError(argument, f"must be a file path, got {type(path).__name__}")
    found = Path(path)
    if not found.is_file():
        raise InvalidArgumentError(argument, f"no such file: {str(found)!r}")
    return found


def _plain_decision(decision: object) -> dict[str, Any]:
    if dataclasses.is_dataclass(decision) and not isinstance(decision, type):
        decision = dataclasses.asdict(decision)
    elif not isinstance(decision, Mapping) and callable(getattr(decision, "to_dict", None)):
        decision = decision.to_dict()  # type: ignore[union-attr]
    if not isinstance(decision, Mapping):
        raise InvalidArgumentError(
            "decision",
            "must be a mapping (a decision's dataclasses.asdict() or to_dict()), "
            f"got {type(decision).__name__}",
        )
    return {str(key): value for key, value in decision.items()}


def _splitlab_version() -> str:
    import splitlab

    return splitlab.__version__


_PROVENANCE = {
    "- date:": "date",
    "- machine:": "machine",
    "- load average (1/5/15 min):": "load_average",
    "- versions:": "versions",
    "- git commit:": "git_commit",
    "- seed:": "seed",
    "- parameters:": "parameters",
    "- command:": "command",
}
_RATIO_ITEM = re.compile(r"^\s*(?P<name>.+?)\s+(?P<value>\d[\d,]*(?:\.\d+)?)x\b")
_WALL_TIME = re.compile(r";\s*wall time\s+(?P<value>\d+(?:\.\d+)?)\s*s\b")


def _split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets and parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _parse_results_file(text: str) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    info: dict[str, str] = {}
    passes = fails = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and "title" not in info:
            info["title"] = stripped[2:].strip()
        for prefix, name in _PROVENANCE.items():
            if stripped.startswith(prefix) and name not in params:
                value = stripped[len(prefix) :].strip()
                if name == "command":
                    value = value.strip("`")
                params[name] = value
                if name == "date" and (wall := _WALL_TIME.search(value)):
                    metrics["wall_time_s"] = float(wall["value"])
                if name == "parameters" and value not in ("", "—"):
                    for item in _split_top_level(value, ","):
                        key, equals, setting = item.partition("=")
                        if equals and key.strip():
                            params[f"parameters.{key.strip()}"] = setting.strip()
        if "Measured (" in line and "):" in line and "headline" not in info:
            info["headline"] = line
            headline = line.split("Measured (", 1)[1].split("):", 1)[1].strip().rstrip(".")
            for item in _split_top_level(headline, ";"):
                if match := _RATIO_ITEM.match(item):
                    metrics[f"ratio.{_part(match['name'])}"] = float(
                        match["value"].replace(",", "")
                    )
        if stripped.startswith("|"):
            cells = [cell.strip() for cell in stripped.strip("|").split("|")]
            if any(cell.startswith("FAIL") for cell in cells):
                fails += 1
            elif any(cell.startswith("PASS") for cell in cells):
                passes += 1
    if passes or fails:
        metrics["budget.pass"] = float(passes)
        metrics["budget.fail"] = float(fails)
        info["verdict"] = "FAIL" if fails else "PASS"
    return params, metrics, info

"""The ``splitlab`` command line: ``demo``, ``analyze`` and ``power``.

``splitlab demo`` writes a synthetic dataset of four experiments (10⁶ units by default) as
Parquet, analyzes it and writes an HTML report. ``splitlab analyze`` reads experiment logs
(Parquet or CSV) and prints or writes the results table of :meth:`Analyzer.analyze`.
``splitlab power`` plans a test: the sample size, the minimum detectable effect or the power.
``splitlab bench`` runs the benchmark suites or a scenario file (:mod:`splitlab.bench.command`).

Exit status:

- 0 — the command ran and every row of its results has a result;
- 1 — ``analyze`` ran and wrote its results, but some rows have no result (their
  ``error`` column says why, and each is listed on stderr as ``splitlab: no result: ...``);
- 2 — bad input: nothing was written, and one line ``splitlab: error: ...`` on stderr names
  the option (``PATH`` for the data) and what was wrong.

Warnings are one line each on stderr (``splitlab: warning: ...``), never Python's
two-line warning text.

``splitlab analyze`` reads the Analyzer's methods from flags: ``--cuped METRIC=COL1,COL2``
(regression adjustment on one or several covariates), ``--quantile NAME=COL@LEVEL``
(quantile metrics), ``--cluster COL`` (the randomization unit when rows are finer units)
and ``--strata COL`` (post-stratification); see the "Analysis methods" page.

``splitlab --help`` and the parsing of arguments import no numerical library (numpy,
pandas, numba, DuckDB ...): each command imports what it runs when it runs.

``--control`` is read as the type of the variant column, so ``--control 0`` names the
integer label 0 of an integer column and the text "0" of a text column; booleans are
``true``/``false`` (or ``1``/``0``), dates ``YYYY-MM-DD`` and timestamps ISO 8601.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shlex
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import splitlab
from splitlab.bench.command import add_parser as add_bench_parser
from splitlab.bench.command import run_bench
from splitlab.errors import (
    DegenerateDataWarning,
    InvalidArgumentError,
    SplitlabError,
    engine_error_types,
    engine_message,
)

if TYPE_CHECKING:
    import pandas as pd

    from splitlab.analyzer.metrics import Metric

__all__ = ["build_parser", "main", "parse_label"]

EXIT_OK, EXIT_NO_RESULT, EXIT_BAD_INPUT = 0, 1, 2
EXIT_STATUS_HELP = (
    "exit status: 0 every row has a result; 1 results written, but some rows have no "
    "result (listed on stderr); 2 bad input (one 'splitlab: error:' line on stderr)"
)
MAX_LISTED = 20  # rows without a result listed one per line; the rest are counted

DEMO_ANALYZE_COMMAND = (
    "splitlab analyze {directory} --date-col exposed_at --proportion converted "
    "--metric revenue --cuped revenue=pre_revenue --ratio clicks_per_session=clicks/sessions"
)

# Analyzer argument names -> the option that sets them, so that errors name the flag
ANALYZE_OPTIONS = {
    "source": "PATH",
    "experiment": "--experiment-col",
    "variant": "--variant-col",
    "control": "--control",
    "unit": "--unit-col",
    "date": "--date-col",
    "segments": "--segment",
    "cuped": "--cuped",
    "covariate": "--cuped",
    "quantile": "--quantile",
    "cluster": "--cluster",
    "strata": "--strata",
    "method": "--method",
    "method_options": "--method",
    "correction": "--correction",
    "alpha": "--alpha",
    "metrics": "--metric/--proportion/--ratio/--quantile",
    "path": "--out",
    "title": "--title",
    "alternative": "--alternative",
    "bands": "--bands",
    "lower_is_better": "--lower-is-better",
}
TRUE_WORDS, FALSE_WORDS = ("true", "t", "yes", "1"), ("false", "f", "no", "0")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``splitlab: error:`` line like every other."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"splitlab: error: {message} (see '{self.prog} --help')\n")


class _VersionAction(argparse.Action):
    """``--version``, with the version looked up only when asked: ``importlib.metadata``
    would cost ``--help`` as much time as everything else it imports."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest=dest,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        print(splitlab.__version__)
        parser.exit()


# ---------------------------------------------------------------------- output helpers


@contextmanager
def _progress(message: str, stream: TextIO | None = None) -> Iterator[None]:
    """A spinner with the elapsed time on ``stream`` (stderr) while the block runs; silent
    unless the stream is a terminal, so pipes and logs stay clean."""
    stream = stream if stream is not None else sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield
        return
    done = threading.Event()
    start = time.perf_counter()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            if done.wait(0.1):
                return
            stream.write(f"\r{message} {frame} {time.perf_counter() - start:.1f}s")
            stream.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        stream.write("\r\x1b[K")
        stream.flush()


def _format_p(value: float) -> str:
    if not math.isfinite(value):
        return ""
    return "<1e-300" if value == 0.0 else f"{value:.2g}"


def _p_relation(value: float) -> str:
    text = _format_p(value)
    return text if text.startswith("<") else f"= {text}"


def _decimals(se: float) -> int:
    """Decimals that show two significant digits of the standard error."""
    if not (math.isfinite(se) and se > 0.0):
        return 4
    return int(min(max(1 - math.floor(math.log10(se)), 0), 12))


def _signed(value: float, decimals: int) -> str:
    return f"{value:+.{decimals}f}" if math.isfinite(value) else ""


def _percent(value: float) -> str:
    return f"{value:+.2%}" if math.isfinite(value) else ""


def _interval(low: float, high: float, low_text: str, high_text: str) -> str:
    """[low, high], or the open side of a one-sided interval as −∞ or ∞."""
    if low == -math.inf and high_text:
        return f"(-inf, {high_text}]"
    if high == math.inf and low_text:
        return f"[{low_text}, inf)"
    return f"[{low_text}, {high_text}]" if low_text and high_text else ""


def _results_table(results: pd.DataFrame) -> pd.DataFrame:
    """The compact view of an analyze table: effect and interval (to two significant
    digits of their standard error), relative lift, p, decision and the SRM flag."""
    import numpy as np
    import pandas as pd

    view = pd.DataFrame({"experiment": results["experiment"]})
    if (results["segment"] != "all").any():
        view["segment"] = results["segment"]
    lower = results.get("lower_is_better", pd.Series(False, index=results.index))
    # a lower-is-better metric is marked: its wins are decreases
    view["metric"] = [
        f"{name} (lower better)" if flag else name
        for name, flag in zip(results["metric"], lower.fillna(False).astype(bool), strict=True)
    ]
    view["variant"] = results["variant"]
    relative = bool((results["scale"] == "relative").all())
    effects, intervals = [], []
    for effect, low, high, se in zip(
        results["effect"], results["ci_low"], results["ci_high"], results["se"], strict=True
    ):
        if relative:
            effects.append(_percent(effect))
            interval = (_percent(low), _percent(high))
        else:
            decimals = _decimals(se)
            effects.append(_signed(effect, decimals))
            interval = (_signed(low, decimals), _signed(high, decimals))
        intervals.append(_interval(low, high, *interval))
    view["lift" if relative else "effect"] = effects
    view["ci"] = intervals
    if not relative:
        view["lift"] = [_percent(v) for v in results["relative_effect"]]
    if "chance_to_win" in results:
        view["P(win)"] = [f"{v:.3f}" if math.isfinite(v) else "" for v in results["chance_to_win"]]
    else:
        view["p"] = [_format_p(v) for v in results["p_value"]]
        if not np.allclose(results["p_adjusted"], results["p_value"], equal_nan=True):
            view["p_adj"] = [_format_p(v) for v in results["p_adjusted"]]
    view["decision"] = results["decision"]
    view["srm"] = np.where(results["srm_mismatch"], "MISMATCH", "ok")
    return view


def _srm_table(srm: pd.DataFrame) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {
            "experiment": srm["experiment"],
            "variants": ["/".join(map(str, v)) for v in srm["variants"]],
            "units": ["/".join(f"{c:,}" for c in counts) for counts in srm["counts"]],
            "share": [
                "/".join(f"{c / sum(counts):.1%}" for c in counts) for counts in srm["counts"]
            ],
            "chi2": [f"{v:.1f}" for v in srm["statistic"]],
            "p": [_format_p(v) for v in srm["p_value"]],
            "srm": np.where(srm["mismatch"], "MISMATCH", "ok"),
        }
    )


def _srm_warnings(results: pd.DataFrame) -> list[str]:
    from splitlab.analyzer.analyzer import SRM_ALPHA

    flagged = results.drop_duplicates("experiment")
    flagged = flagged[flagged["srm_mismatch"].astype(bool)]
    return [
        f"{row.experiment}: sample-ratio mismatch (p {_p_relation(row.srm_p_value)}, flagged "
        f"below {SRM_ALPHA}): the split is not the planned one, so do not trust its results"
        for row in flagged.itertuples()
    ]


TEXT_COLUMNS = ("experiment", "segment", "metric", "variant", "variants", "decision", "srm")


def _to_string(table: pd.DataFrame) -> str:
    """Plain-text table: label columns left-aligned, numbers right-aligned."""
    columns = [[str(name), *map(str, table[name])] for name in table.columns]
    widths = [max(map(len, column)) for column in columns]
    lines = []
    for row in zip(*columns, strict=True):
        cells = [
            cell.ljust(width) if name in TEXT_COLUMNS else cell.rjust(width)
            for name, cell, width in zip(table.columns, row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _json_value(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT or value is pd.NA or value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: native Python values, NaN and infinities as None."""
    return [
        {str(key): _json_value(value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _dump_json(payload: object) -> str:
    return json.dumps(payload, indent=2, allow_nan=False, default=str)


def _check_out(option: str, value: str) -> Path:
    """An output path that can be written: not a directory, in a directory that exists."""
    path = Path(value)
    if path.is_dir():
        raise InvalidArgumentError(option, f"{value!r} is a directory, not a file")
    if not path.parent.is_dir():
        raise InvalidArgumentError(
            option, f"directory {str(path.parent)!r} does not exist; create it first"
        )
    return path


def _write_text(path: Path, text: str, option: str = "--out") -> None:
    """Write ``text`` to ``path`` through a temporary file, so nothing is written half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        reason = exc.strerror or engine_message(exc)
        raise InvalidArgumentError(option, f"cannot write {str(path)!r}: {reason}") from exc
    finally:
        temporary.unlink(missing_ok=True)


# ---------------------------------------------------------------------- demo


def _demo_metrics() -> list[Metric]:
    from splitlab.analyzer.metrics import Metric

    return [
        Metric("converted", kind="proportion"),
        Metric("revenue", covariate="pre_revenue"),
        Metric("clicks_per_session", kind="ratio", numerator="clicks", denominator="sessions"),
    ]


def _demo(arguments: argparse.Namespace) -> int:
    from splitlab._validation import check_alpha
    from splitlab.analyzer.analyzer import Analyzer
    from splitlab.analyzer.demo import generate_demo_data

    alpha = check_alpha(arguments.alpha)
    directory = Path(arguments.dir)
    started = time.perf_counter()
    with _progress(f"generating {arguments.units:,} units"):
        try:
            paths = generate_demo_data(directory, units=arguments.units, seed=arguments.seed)
        except OSError as exc:
            reason = exc.strerror or engine_message(exc)
            raise InvalidArgumentError(
                "--dir", f"cannot write {str(directory)!r}: {reason}"
            ) from exc
    generated = time.perf_counter()
    with _progress("analyzing"):
        analyzer = Analyzer(paths, unit=None, date="exposed_at")
        results = analyzer.analyze(_demo_metrics(), alpha=alpha)
        srm = analyzer.srm()
    analyzed = time.perf_counter()
    report_path = directory / "report.html"
    with _progress("writing the report"):
        analyzer.report(
            report_path, _demo_metrics(), title="splitlab demo: four experiments", alpha=alpha
        )
    finished = time.perf_counter()

    if arguments.format == "json":
        payload = {
            "directory": str(directory),
            "files": [str(path) for path in paths],
            "report": str(report_path),
            "results": _json_records(results),
            "srm": _json_records(srm),
        }
        print(_dump_json(payload))
        return 0
    print(
        f"splitlab {splitlab.__version__} demo: {arguments.units:,} units in "
        f"{len(paths)} experiments (seed {arguments.seed}), Parquet in {directory}/\n"
    )
    print("Results (converted: z test; revenue: CUPED on pre_revenue; clicks_per_session: ratio)")
    print(_to_string(_results_table(results)))
    print("\nSample-ratio check (planned split: equal)")
    print(_to_string(_srm_table(srm)))
    for line in _srm_warnings(results):
        print(f"! {line}")
    print(f"\nreport: {report_path}")
    print(f"same analysis: {DEMO_ANALYZE_COMMAND.format(directory=shlex.quote(str(directory)))}")
    print(
        f"time: {finished - started:.1f} s (generate {generated - started:.1f} s, "
        f"analyze {analyzed - generated:.1f} s, report {finished - analyzed:.1f} s)"
    )
    return 0


# ---------------------------------------------------------------------- analyze


class _MetricAction(argparse.Action):
    """Collect --metric/--proportion/--ratio/--quantile into one list, in command-line
    order."""

    def __call__(self, parser, namespace, values, option_string=None):
        collected = list(getattr(namespace, self.dest) or [])
        collected.append((self.const, values))
        setattr(namespace, self.dest, collected)


def _split_assignment(option: str, text: str, form: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name.strip() or not value.strip():
        raise InvalidArgumentError(option, f"expected {form}, got {text!r}")
    return name.strip(), value.strip()


QUANTILE_FORM = "NAME=COLUMN@LEVEL (latency_p90=latency@0.9)"


def _flagged(exc: InvalidArgumentError) -> InvalidArgumentError:
    """An Analyzer error with its argument name replaced by the flag that sets it (the
    error itself when no flag sets that argument)."""
    option = ANALYZE_OPTIONS.get(exc.argument)
    return exc if option is None else InvalidArgumentError(option, exc.problem)


def _quantile_metric(text: str) -> Metric:
    from splitlab.analyzer.metrics import Metric

    name, target = _split_assignment("--quantile", text, QUANTILE_FORM)
    column, separator, level_text = target.rpartition("@")
    if not separator or not column.strip() or not level_text.strip():
        raise InvalidArgumentError("--quantile", f"expected {QUANTILE_FORM}, got {text!r}")
    try:
        level = float(level_text)
    except ValueError:
        level = math.nan
    if not 0.0 < level < 1.0:  # NaN too
        raise InvalidArgumentError(
            "--quantile",
            f"LEVEL must be a number strictly between 0 and 1 (0.9 for the p90), got "
            f"{level_text.strip()!r} in {text!r}",
        )
    return Metric(name, column=column.strip(), kind="quantile", quantile=level)


def _covariates(text: str) -> tuple[str, str | list[str]]:
    """``METRIC=COL`` or ``METRIC=COL1,COL2,...``: the metric and its covariate column(s)."""
    form = "METRIC=COLUMN or METRIC=COLUMN1,COLUMN2,..."
    name, value = _split_assignment("--cuped", text, form)
    columns = [column.strip() for column in value.split(",")]
    if not all(columns):
        raise InvalidArgumentError("--cuped", f"expected {form}, got {text!r} (an empty column)")
    return name, columns[0] if len(columns) == 1 else columns


def _metrics(specifications: list[tuple[str, str]]) -> list[Metric]:
    from splitlab.analyzer.metrics import Metric

    metrics = []
    for kind, text in specifications:
        if kind == "quantile":
            try:
                metrics.append(_quantile_metric(text))
            except InvalidArgumentError as exc:
                flagged = _flagged(exc)
                if flagged is exc:
                    raise
                raise flagged from exc
        elif kind == "ratio":
            form = "NAME=NUMERATOR/DENOMINATOR"
            name, fraction = _split_assignment("--ratio", text, form)
            numerator, separator, denominator = fraction.partition("/")
            if not separator or not numerator.strip() or not denominator.strip():
                raise InvalidArgumentError("--ratio", f"expected {form}, got {text!r}")
            metrics.append(
                Metric(
                    name,
                    kind="ratio",
                    numerator=numerator.strip(),
                    denominator=denominator.strip(),
                )
            )
        else:
            metrics.append(Metric(text, kind=kind))
    return metrics


def _lower_is_better(metrics: list[Metric], names: list[str]) -> list[Metric]:
    """The metrics, those named by ``--lower-is-better`` (repeatable, or comma-separated)
    turned around."""
    from dataclasses import replace

    wanted = [name.strip() for text in names for name in text.split(",")]
    known = {metric.name for metric in metrics}
    unknown = [name for name in wanted if name not in known]
    if "" in wanted or unknown:
        raise InvalidArgumentError(
            "--lower-is-better",
            f"names no metric given by --metric/--proportion/--ratio/--quantile: "
            f"{', '.join(map(repr, unknown or ['']))} (metrics: {', '.join(sorted(known))})",
        )
    return [
        replace(metric, higher_is_better=False, lower_is_better=True)
        if metric.name in wanted
        else metric
        for metric in metrics
    ]


def parse_label(option: str, text: str, dtype: Any, column: str) -> object:
    """A variant label typed on the command line, as a value of the column's ``dtype``.

    Integer columns take integers, floating-point columns numbers, boolean columns
    ``true``/``false`` (also ``t``/``f``, ``yes``/``no``, ``1``/``0``, any case), date
    columns ``YYYY-MM-DD``, timestamp columns ISO 8601; text (and any other) columns take
    the text as it is.

    >>> import narwhals as nw
    >>> parse_label("--control", "0", nw.Int64(), "variant")
    0
    >>> parse_label("--control", "0", nw.String(), "variant")
    '0'
    >>> parse_label("--control", "FALSE", nw.Boolean(), "variant")
    False
    >>> parse_label("--control", "2024-03-01", nw.Date(), "cohort")
    datetime.date(2024, 3, 1)
    >>> parse_label("--control", "zero", nw.Int64(), "variant")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    splitlab.errors.InvalidArgumentError: --control: 'zero' is not an integer, and column ...
    """
    import narwhals as nw

    word = text.strip()
    if dtype.is_integer():
        try:
            return int(word)
        except ValueError:
            wanted = "an integer"
            held = "integers"
    elif dtype.is_float():
        try:
            value = float(word)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
        wanted, held = "a finite number", "numbers"
    elif dtype == nw.Boolean:
        if word.lower() in TRUE_WORDS:
            return True
        if word.lower() in FALSE_WORDS:
            return False
        wanted, held = "true or false", "booleans"
    elif dtype == nw.Date:
        try:
            return date.fromisoformat(word)
        except ValueError:
            wanted, held = "a date (YYYY-MM-DD)", "dates"
    elif dtype == nw.Datetime:
        import pandas as pd

        try:
            return pd.Timestamp(datetime.fromisoformat(word))
        except ValueError:
            wanted, held = "an ISO 8601 timestamp", "timestamps"
    else:
        return text
    raise InvalidArgumentError(
        option, f"{text!r} is not {wanted}, and column {column!r} holds {held} ({dtype})"
    )


def _note_lines(results: pd.DataFrame) -> list[str]:
    """The post-stratification notes (merged strata, an unstratified fallback), one line
    per distinct (experiment, segment, metric, note)."""
    if "note" not in results:
        return []
    noted = results[results["note"].fillna("").astype(str) != ""]
    noted = noted.drop_duplicates(["experiment", "segment", "metric", "note"])
    lines = []
    for row in noted.itertuples():
        segment = f" segment {row.segment}," if row.segment != "all" else ""
        lines.append(f"experiment {row.experiment!s},{segment} metric {row.metric!s}: {row.note}")
    return lines


def _no_result_lines(results: pd.DataFrame) -> list[str]:
    """One stderr line per result row without a result, then a count of the rest."""
    missing = results[results["error"].astype(str) != ""]
    lines = []
    for row in missing.head(MAX_LISTED).itertuples():
        segment = f" segment {row.segment}," if row.segment != "all" else ""
        reason = " ".join(str(row.error).split())
        lines.append(
            f"splitlab: no result: experiment {row.experiment!s},{segment} metric "
            f"{row.metric!s}, variant {row.variant!s}: {reason}"
        )
    if len(missing) > MAX_LISTED:
        lines.append(
            f"splitlab: no result: {len(missing) - MAX_LISTED} more of {len(results)} rows "
            "(see the error column)"
        )
    return lines


def _analyze(arguments: argparse.Namespace) -> int:
    from splitlab.analyzer.analyzer import Analyzer
    from splitlab.sources import open_source

    if not arguments.metrics:
        raise InvalidArgumentError(
            "--metric", "give at least one --metric, --proportion, --ratio or --quantile"
        )
    metrics = _lower_is_better(_metrics(arguments.metrics), arguments.lower_is_better)
    cuped = dict(_covariates(text) for text in arguments.cuped)
    if arguments.format == "html" and arguments.out is None:
        raise InvalidArgumentError("--out", "--format html writes a report and needs --out FILE")
    out = None if arguments.out is None else _check_out("--out", arguments.out)
    options = {
        "method": arguments.method,
        "relative": arguments.relative,
        "cuped": cuped or None,
        "correction": arguments.correction,
        "correction_scope": arguments.correction_scope,
        "segments": arguments.segment or None,
        "strata": arguments.strata,
        "quality": arguments.quality,
        "alpha": arguments.alpha,
        "alternative": arguments.alternative,
        "method_options": {
            name: value
            for name, value in (
                ("n_star", arguments.n_star),
                ("tau2", arguments.tau2),
                ("n_plan", arguments.n_plan),
                ("planned_n", arguments.planned_n),
                ("spending", arguments.spending),
            )
            if value is not None
        }
        or None,
    }
    try:
        with _progress(f"scanning {len(arguments.paths)} path(s)"):
            source = open_source(arguments.paths)
            schema = source.columns
            control: object = arguments.control
            if arguments.variant_col in schema:
                control = parse_label(
                    "--control", control, schema[arguments.variant_col], arguments.variant_col
                )
            analyzer = Analyzer(
                source,
                experiment=arguments.experiment_col,
                variant=arguments.variant_col,
                control=control,
                unit=arguments.unit_col,
                date=arguments.date_col,
                cluster=arguments.cluster,
            )
            if arguments.format == "html":
                from splitlab.analyzer.report import write_report

                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", DegenerateDataWarning)
                    readout = analyzer.readout(metrics, bands=arguments.bands, **options)
                    written = write_report(readout, out, title=arguments.title)
                degenerate = [w for w in caught if issubclass(w.category, DegenerateDataWarning)]
                _report_warnings(w for w in caught if w not in degenerate)
                print(f"report: {written}")
                _track(arguments, readout.results, report=written)
                for warning in degenerate[:1]:
                    print(f"splitlab: no result: {_one_line(warning.message)}", file=sys.stderr)
                return EXIT_NO_RESULT if degenerate else EXIT_OK
            with warnings.catch_warnings():
                # the rows without a result are listed below, one line each
                warnings.simplefilter("ignore", DegenerateDataWarning)
                results = analyzer.analyze(metrics, **options)
    except InvalidArgumentError as exc:
        flagged = _flagged(exc)
        if flagged is exc:
            raise
        raise flagged from exc

    if arguments.format == "json":
        text = _dump_json(_json_records(results)) + "\n"
    elif arguments.format == "csv":
        text = results.to_csv(index=False)
    else:
        lines = [
            _to_string(_results_table(results)),
            *map("! {}".format, _srm_warnings(results)),
            *map("note: {}".format, _note_lines(results)),
        ]
        text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        _write_text(out, text)
    _track(arguments, results)
    for check in results.attrs.get("quality", []):
        print(f"splitlab: quality: {check['detail']}", file=sys.stderr)
    missing = _no_result_lines(results)
    for line in missing:
        print(line, file=sys.stderr)
    return EXIT_NO_RESULT if missing else EXIT_OK


def _track(arguments: argparse.Namespace, results: pd.DataFrame, report=None) -> None:
    """With --mlflow, log the analysis (and its report) as an MLflow run."""
    if arguments.mlflow is None:
        return
    from splitlab.tracking import log_analysis

    run = log_analysis(results, report=report, tracking_uri=arguments.mlflow or None)
    print(f"mlflow run: {run}", file=sys.stderr)


# ---------------------------------------------------------------------- rollout


def _plain(value: Any) -> Any:
    """A status or decision as JSON-ready values (NaN and infinities as None)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return _json_value(value)


def _guardrail_lines(guardrails: dict[str, Any]) -> list[str]:
    lines = []
    for name, found in guardrails.items():
        if found.get("effect") is None:
            lines.append(f"  {name}: not tested yet ({found.get('n_treatment', 0)} new-arm units)")
            continue
        harmed = "HARMED" if found.get("harmed") else "not harmed"
        low, high = (
            _bound(found.get(side), fill) for side, fill in (("ci_low", "-inf"), ("ci_high", "inf"))
        )
        lines.append(
            f"  {name}: effect {found['effect']:.4g}, always-valid interval [{low}, {high}], "
            f"p {found['p_value']:.3g}: {harmed}"
        )
    return lines


def _bound(value: object, open_end: str) -> str:
    """An interval end; a one-sided interval's open end (None) as -inf or inf."""
    return open_end if value is None else f"{value:.4g}"


def _rollout(arguments: argparse.Namespace) -> int:
    from splitlab.rollout import Rollout

    try:
        rollout = Rollout.load(arguments.state)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError("STATE", exc.problem) from exc
    if arguments.action == "status":
        status = _plain(rollout.status())
        if arguments.format == "json":
            sys.stdout.write(_dump_json(status) + "\n")
            return EXIT_OK
        weights = ", ".join(f"{w:g}" for w in status["weights"])
        lines = [
            f"stage {status['stage']:g} ({status['stage_index'] + 1} of "
            f"{len(status['stages'])}), weights [{weights}]"
            + (f", {status['finished']}" if status["finished"] else ""),
            "exposures this stage: "
            + ", ".join(f"{arm} {n}" for arm, n in status["exposures"].items()),
            *_guardrail_lines(status["guardrails"]),
            f"sequential SRM p-value {status['srm_p_value']:.3g}",
        ]
        last = status["last_decision"]
        if last:
            lines.append(f"last decision: {last['action']}: {last['reason']}")
        sys.stdout.write("\n".join(lines) + "\n")
        return EXIT_OK
    decision = rollout.check()
    rollout.save(arguments.state)
    record = _plain(decision.to_dict())
    if arguments.format == "json":
        sys.stdout.write(_dump_json(record) + "\n")
    else:
        lines = [f"{record['action']}: {record['reason']}", *_guardrail_lines(record["guardrails"])]
        sys.stdout.write("\n".join(lines) + "\n")
    if arguments.mlflow is not None:
        from splitlab.tracking import log_rollout_check

        run = log_rollout_check(record, tracking_uri=arguments.mlflow or None)
        print(f"mlflow run: {run}", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------- power


def _power(arguments: argparse.Namespace) -> int:
    from splitlab.stats.power import mde, power, sample_size

    design = {
        "baseline": arguments.baseline,
        "sd": arguments.sd,
        "relative": arguments.relative,
        "alpha": arguments.alpha,
        "ratio": arguments.ratio,
        "alternative": arguments.alternative,
        "test": arguments.test,
    }
    kind = "a proportion" if arguments.sd is None else f"a mean (sd {arguments.sd:g})"
    scale = "relative" if arguments.relative else "absolute"
    described = (
        f"{arguments.alternative} {arguments.test} test of {kind}, baseline "
        f"{arguments.baseline:g}, alpha {arguments.alpha:g}, ratio {arguments.ratio:g}"
    )
    if arguments.mde is None and arguments.n is None:
        raise InvalidArgumentError(
            "--mde", "give --mde (sample size), --n (detectable effect) or both (power)"
        )
    if arguments.n is not None and arguments.mde is not None:
        if arguments.power is not None:
            raise InvalidArgumentError(
                "--power", "is what is computed when both --n and --mde are given"
            )
        achieved = float(power(mde=arguments.mde, n=arguments.n, **design))
        payload = {"power": achieved}
        lines = [
            f"power of a {described}",
            f"for an effect of {arguments.mde:g} ({scale}) with n = {arguments.n:,} control units:",
            f"  power  {achieved:.4f}",
        ]
    elif arguments.n is not None:
        target = 0.8 if arguments.power is None else arguments.power
        effect = float(mde(n=arguments.n, power=target, **design))
        payload = {"mde": effect, "scale": scale, "n_control": arguments.n}
        lines = [
            f"minimum detectable effect of a {described}, power {target:g}",
            f"with n = {arguments.n:,} control units:",
            f"  mde  {effect:.6g} ({scale})",
        ]
    else:
        target = 0.8 if arguments.power is None else arguments.power
        result = sample_size(mde=arguments.mde, power=target, **design)
        payload = {
            "n_control": int(result.n_control),
            "n_treatment": int(result.n_treatment),
            "n_total": int(result.n_total),
            "n_control_exact": float(result.n_control_exact),
        }
        lines = [
            f"sample size of a {described}, power {target:g}",
            f"to detect an effect of {arguments.mde:g} ({scale}):",
            f"  control    {payload['n_control']:>12,}",
            f"  treatment  {payload['n_treatment']:>12,}",
            f"  total      {payload['n_total']:>12,}",
        ]
    print(_dump_json(payload) if arguments.format == "json" else "\n".join(lines))
    return 0


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="splitlab",
        description="Experiment readouts from the command line: demo, analyze, power.",
        epilog=EXIT_STATUS_HELP,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="generate four synthetic experiments, analyze them, write report.html",
        description="Generate a synthetic dataset of four experiments as Parquet in --dir, "
        "analyze conversion, revenue (CUPED) and clicks per session, print the results and "
        "the sample-ratio check, and write report.html.",
    )
    demo.add_argument("--dir", default="splitlab-demo", help="output directory (%(default)s)")
    demo.add_argument("--units", type=int, default=1_000_000, help="units (%(default)s)")
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--alpha", type=float, default=0.05)
    demo.add_argument("--format", choices=("table", "json"), default="table")
    demo.set_defaults(handler=_demo)

    analyze = commands.add_parser(
        "analyze",
        help="analyze experiment logs (Parquet/CSV) into a results table",
        description="One row per (experiment, segment, metric, variant other than control).",
        epilog=EXIT_STATUS_HELP,
    )
    analyze.add_argument("paths", nargs="+", metavar="PATH", help="Parquet/CSV files, dirs, globs")
    analyze.add_argument("--experiment-col", default="experiment", metavar="COL")
    analyze.add_argument("--variant-col", default="variant", metavar="COL")
    analyze.add_argument(
        "--control",
        default="control",
        metavar="LABEL",
        help="the control variant (%(default)s), read as the variant column's type: "
        "integer, number, true/false, YYYY-MM-DD date or text",
    )
    analyze.add_argument(
        "--unit-col", metavar="COL", help="rows are events, summed per unit of this column"
    )
    analyze.add_argument("--date-col", metavar="COL", help="exposure timestamp (report timeline)")
    analyze.add_argument(
        "--metric", dest="metrics", action=_MetricAction, const="mean", metavar="COL",
        help="a mean metric (repeatable)",
    )  # fmt: skip
    analyze.add_argument(
        "--proportion", dest="metrics", action=_MetricAction, const="proportion",
        metavar="COL", help="a 0/1 metric (repeatable)",
    )  # fmt: skip
    analyze.add_argument(
        "--ratio", dest="metrics", action=_MetricAction, const="ratio", metavar="NAME=NUM/DEN",
        help="a ratio metric, sum of NUM / sum of DEN by the delta method (repeatable)",
    )  # fmt: skip
    analyze.add_argument(
        "--quantile", dest="metrics", action=_MetricAction, const="quantile",
        metavar="NAME=COL@LEVEL",
        help="a quantile metric: the LEVEL quantile (0 < LEVEL < 1) of COL, e.g. "
        "latency_p90=latency@0.9, by GrowthBook's order-statistics interval; missing values "
        "are left out (repeatable)",
    )  # fmt: skip
    analyze.add_argument(
        "--cuped", action="append", default=[], metavar="METRIC=COL[,COL...]",
        help="regression adjustment of a mean or proportion metric: CUPED on one pre-period "
        "column, or on several comma-separated columns (pre-period metrics, a model's "
        "prediction as in CUPAC), theta pooled over the arms (repeatable)",
    )  # fmt: skip
    analyze.add_argument(
        "--cluster", metavar="COL",
        help="the randomization unit, when rows (or --unit-col units) are finer, such as "
        "sessions of randomized users: mean and proportion metrics become ratios of "
        "per-cluster sums (delta method), quantiles take the clustered variance, and n and "
        "the sample-ratio check count clusters",
    )  # fmt: skip
    analyze.add_argument(
        "--strata", metavar="COL",
        help="post-stratify every mean, proportion, ratio and one-covariate CUPED metric on "
        "this pre-experiment column (GrowthBook's estimator; quantile and several-covariate "
        "metrics get no result); merged strata are noted",
    )  # fmt: skip
    analyze.add_argument(
        "--method",
        choices=("ttest", "bayes", "cs", "msprt", "gst"),
        default="ttest",
        help="fixed-horizon (ttest, bayes) or always valid under peeking (cs, msprt, gst)",
    )
    analyze.add_argument(
        "--n-star", type=float, help="cs: the sample size the sequence is tuned for"
    )
    analyze.add_argument("--tau2", type=float, help="msprt: the mixing variance τ²")
    analyze.add_argument("--n-plan", type=float, help="msprt: planned units per arm (sets τ²)")
    analyze.add_argument(
        "--planned-n", type=float, help="gst: planned units per comparison (both arms)"
    )
    analyze.add_argument("--spending", help="gst: alpha spending, obf (default) or pocock")
    analyze.add_argument("--relative", action="store_true", help="effects as relative lift")
    analyze.add_argument(
        "--lower-is-better", action="append", default=[], metavar="METRIC[,METRIC...]",
        help="metrics where a decrease is good (latency, churn, cost): chance to win, risk, "
        "decisions, one-sided tests and report colours follow; effects keep their sign "
        "(repeatable)",
    )  # fmt: skip
    analyze.add_argument(
        "--alternative", choices=("two-sided", "better", "worse"), default="two-sided",
        help="two-sided (default) or one-sided in each metric's own direction: better "
        "(the variant improves it) or worse (it degrades it); ttest and cs",
    )  # fmt: skip
    analyze.add_argument(
        "--bands", choices=("always-valid", "fixed"), default="always-valid",
        help="--format html: the timeline's bands, always valid (the sequential method, a "
        "confidence sequence under ttest/bayes; default) or fixed-horizon intervals",
    )  # fmt: skip
    analyze.add_argument("--correction", choices=("holm", "bh", "by", "bonferroni"))
    analyze.add_argument("--correction-scope", choices=("metric", "experiment"), default="metric")
    analyze.add_argument(
        "--segment", action="append", metavar="COL", help="a segment column (repeatable)"
    )
    analyze.add_argument("--alpha", type=float, default=0.05)
    analyze.add_argument("--format", choices=("table", "json", "csv", "html"), default="table")
    analyze.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    analyze.add_argument("--title", help="report title (--format html)")
    analyze.add_argument(
        "--quality", action="store_true",
        help="also run the data-quality checks (double exposure, missing values, daily split, "
        "extreme values, covariate balance, SRM) and list the flagged ones on stderr "
        "(an HTML report always has them)",
    )  # fmt: skip
    analyze.add_argument(
        "--mlflow", nargs="?", const="", metavar="TRACKING_URI",
        help="log the analysis (parameters, effects, provenance, results and report) as an "
        "MLflow run: to TRACKING_URI, else $MLFLOW_TRACKING_URI, else ./mlruns "
        "(needs splitlab[mlflow])",
    )  # fmt: skip
    analyze.set_defaults(handler=_analyze, metrics=None)

    plan = commands.add_parser(
        "power",
        help="sample size, minimum detectable effect or power of a two-arm test",
        description="--mde: sample size per arm; --n: minimum detectable effect; both: power. "
        "Without --sd the metric is a proportion and --baseline its control rate.",
    )
    plan.add_argument("--baseline", type=float, required=True, help="control mean or rate")
    plan.add_argument("--sd", type=float, help="standard deviation of a mean metric")
    plan.add_argument("--mde", type=float, help="effect, treatment minus control")
    plan.add_argument("--n", type=int, help="units in the control arm")
    plan.add_argument("--relative", action="store_true", help="--mde is a fraction of baseline")
    plan.add_argument("--alpha", type=float, default=0.05)
    plan.add_argument("--power", type=float, help="target power (0.8)")
    plan.add_argument("--ratio", type=float, default=1.0, help="treatment / control units")
    plan.add_argument(
        "--alternative", choices=("two-sided", "greater", "less"), default="two-sided"
    )
    plan.add_argument("--test", choices=("z", "t"), default="z")
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.set_defaults(handler=_power)

    rollout = commands.add_parser(
        "rollout",
        help="the state and the next decision of a saved safe rollout (splitlab.Rollout)",
        description="status: where a saved rollout stands (stage, weights, exposures, every "
        "guardrail's always-valid interval, sequential SRM, last decision). check: take the "
        "next decision (advance, hold, rollback or complete) on the saved statistics, log it "
        "to the rollout's decision log and save the state; the serving process saves the "
        "state it records into (Rollout.save).",
    )
    rollout.add_argument("action", choices=("status", "check"))
    rollout.add_argument("state", metavar="STATE", help="the file written by Rollout.save")
    rollout.add_argument("--format", choices=("text", "json"), default="text")
    rollout.add_argument(
        "--mlflow", nargs="?", const="", metavar="TRACKING_URI",
        help="check: log the decision as an MLflow run (TRACKING_URI, else "
        "$MLFLOW_TRACKING_URI, else ./mlruns; needs splitlab[mlflow])",
    )  # fmt: skip
    rollout.set_defaults(handler=_rollout)

    add_bench_parser(commands).set_defaults(handler=run_bench)
    return parser


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _report_warnings(caught) -> None:
    """Each distinct warning once, as one line on stderr."""
    for message in dict.fromkeys(_one_line(w.message) for w in caught):
        print(f"splitlab: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 success, 1 results written but some
    rows have no result, 2 bad input)."""
    try:
        arguments = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    with warnings.catch_warnings(record=True) as caught:
        try:
            status = arguments.handler(arguments)
        except SplitlabError as exc:
            message = _one_line(exc)
        except (*engine_error_types(), ValueError, OSError) as exc:
            # not raised on purpose by splitlab: the engine's first line, without its hints
            message = f"{type(exc).__name__}: {engine_message(exc)}"
        else:
            message = None
        if message is None:
            _report_warnings(caught)
    if message is not None:
        print(f"splitlab: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return status


if __name__ == "__main__":
    sys.exit(main())

"""A self-contained HTML report of an experiment readout.

One file, no external assets and no JavaScript: CSS is inline and every plot is a PNG
embedded as a ``data:`` URI, so the report can be mailed, attached to a ticket or archived
as it is. Plots are drawn on :class:`matplotlib.figure.Figure` objects directly (never
through ``pyplot``), which keeps report writing free of global state and safe to run from
several threads. The file is written to a temporary file beside the target and renamed, so
a reader never sees half a report and a failed write leaves an existing report untouched.

>>> import tempfile
>>> import pandas as pd
>>> from splitlab import Analyzer
>>> data = pd.DataFrame({"experiment": "e1", "variant": ["control", "b"] * 50,
...                      "revenue": [1.0, 2.0, 0.0, 2.5] * 25})
>>> readout = Analyzer(data).readout(["revenue"])
>>> with tempfile.TemporaryDirectory() as folder:
...     path = write_report(readout, Path(folder) / "report.html")
...     path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
True
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from splitlab.analyzer.aggregate import PERIOD
from splitlab.analyzer.metrics import Metric
from splitlab.analyzer.readout import ALL_UNITS, SRM_ALPHA, Readout
from splitlab.errors import InvalidArgumentError

DEFAULT_TITLE = "Experiment report"
PANEL_COLUMNS = 3  # plot panels per figure row
DPI = 110
DECISION_COLOURS = {
    "win": "#1b7f3b",
    "loss": "#c62828",
    "guardrail violated": "#7b1010",
    "inconclusive": "#5f6b7a",
}
DECISION_CLASSES = {
    "win": "win",
    "loss": "loss",
    "guardrail violated": "guardrail",
    "inconclusive": "inconclusive",
    "error": "error",
}
SRM_COLOUR = "#c62828"
LOWER_IS_BETTER_HINT = (
    ' <span class="hint" title="Lower is better: a decrease of this metric is an '
    'improvement, so a win is a decrease">↓ lower is better</span>'
)
# a report is meant to be shared; NamedTemporaryFile would leave it readable by its owner only
NEW_FILE_MODE = 0o644

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430;
       max-width: 1280px; margin: 0 auto; padding: 1.5rem 2rem 3rem; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #dde3ea; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { margin-bottom: 0.4rem; }
.meta { color: #5f6b7a; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.88rem; }
th, td { border: 1px solid #dde3ea; padding: 0.25rem 0.55rem; text-align: left;
         vertical-align: top; }
th { background: #f3f5f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.results { width: 100%; font-size: 0.82rem; }
table.results th, table.results td { padding: 0.25rem 0.35rem; overflow-wrap: break-word; }
table.results td.parts { white-space: normal; }
table.results td.parts span { white-space: nowrap; }
table.results td.note { min-width: 7rem; overflow-wrap: anywhere; }
@media (max-width: 1360px) { body { padding-left: 1rem; padding-right: 1rem; } }
/* a narrow window drops the unit counts (the 5th column); the SRM check has them per arm */
@media (max-width: 1100px) {
  table.results th:nth-child(5), table.results td:nth-child(5) { display: none; }
}
.hint { display: block; color: #5f6b7a; font-size: 0.78rem; font-style: normal;
        white-space: nowrap; cursor: help; }
tr.win td { background: #e6f4ea; }
tr.loss td { background: #fdecea; }
tr.guardrail td { background: #f6cfcd; font-weight: 600; }
tr.error td { color: #6b6b6b; font-style: italic; }
tr.flagged td { background: #fdecea; }
td.flag { font-weight: 600; }
.warning { border-left: 5px solid #b26a00; background: #fff4e0; color: #4a2c00;
           padding: 0.6rem 0.9rem; margin: 0.6rem 0; }
td.decision { font-weight: 600; }
.alert { border-left: 5px solid #c62828; background: #fdecea; color: #5c1010;
         padding: 0.6rem 0.9rem; margin: 0.6rem 0; }
.ok { border-left: 5px solid #1b7f3b; background: #e6f4ea; padding: 0.6rem 0.9rem;
      margin: 0.6rem 0; }
.note { color: #5f6b7a; font-size: 0.9rem; }
.badge { display: inline-block; background: #c62828; color: #fff; border-radius: 3px;
         padding: 0 0.35rem; font-size: 0.75rem; font-weight: 700; margin-left: 0.4rem; }
figure { margin: 0.8rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eef1f4; }
figcaption { color: #5f6b7a; font-size: 0.9rem; }
pre { background: #f6f8fa; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
"""


def write_report(
    readout: Readout, path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write an HTML report of ``readout`` (see :meth:`Analyzer.readout
    <splitlab.analyzer.analyzer.Analyzer.readout>`) to ``path``.

    The report holds the provenance of the results, the sample-ratio check per experiment,
    the results table (fitted to a 1280 px wide window), a forest plot of the effects and —
    when the readout has timelines — the cumulative effect over time per metric, its bands
    named always valid or fixed-horizon (:attr:`Readout.bands`). The parent directory of
    ``path`` must exist; a path that cannot be written raises
    :class:`~splitlab.errors.InvalidArgumentError` naming ``path`` (the operating system's
    error is its ``__cause__``) and leaves any existing report untouched. Returns the path
    written.
    """
    if not isinstance(readout, Readout):
        raise InvalidArgumentError(
            "readout",
            f"must be a splitlab Readout (Analyzer.readout), got {type(readout).__name__}",
        )
    target = _check_path(path)
    if title is not None and not isinstance(title, str):
        raise InvalidArgumentError("title", f"must be a string or None, got {type(title).__name__}")
    _write_atomically(target, _document(readout, title or DEFAULT_TITLE))
    return target


# ---------------------------------------------------------------------- inputs


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError("path", f"must be a file path, got {type(path).__name__}")
    target = Path(path)
    if target.is_dir():
        raise InvalidArgumentError("path", f"{str(target)!r} is a directory, not a file")
    if not target.parent.is_dir():
        raise InvalidArgumentError(
            "path", f"directory {str(target.parent)!r} does not exist; create it first"
        )
    return target


# ---------------------------------------------------------------------- writing


def _write_atomically(target: Path, text: str) -> None:
    try:
        mode = target.stat().st_mode & 0o777 if target.exists() else NEW_FILE_MODE
        handle = tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
        )
    except OSError as exc:
        raise InvalidArgumentError("path", f"cannot write {str(target)!r}: {_reason(exc)}") from exc
    try:
        with handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, mode)
        os.replace(handle.name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        if isinstance(exc, OSError):
            problem = f"cannot write {str(target)!r}: {_reason(exc)}"
            raise InvalidArgumentError("path", problem) from exc
        raise


def _error_or_note(row: pd.Series) -> str:
    """Why a row has no result, or else what its method noted (a merged stratum)."""
    note = row.get("note")
    if row["error"] or not isinstance(note, str):
        return str(row["error"])
    return note


def _reason(error: OSError) -> str:
    return error.strerror or " ".join(str(error).split())


# ---------------------------------------------------------------------- formatting


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _missing(value: object) -> bool:
    try:
        return value is None or math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _number(value: object, digits: int = 4) -> str:
    return "—" if _missing(value) else f"{float(value):.{digits}g}"  # type: ignore[arg-type]


def _count(value: object) -> str:
    return "—" if _missing(value) else f"{round(float(value)):,}"  # type: ignore[arg-type]


def _percent(value: object, signed: bool = True) -> str:
    if _missing(value):
        return "—"
    return f"{float(value):+.2%}" if signed else f"{float(value):.2%}"  # type: ignore[arg-type]


def _p_value(value: object) -> str:
    if _missing(value):
        return "—"
    return "&lt; 0.0001" if float(value) < 1e-4 else f"{float(value):.4f}"  # type: ignore[arg-type]


def _p_statement(value: object) -> str:
    text = _p_value(value)
    return f"p {text}" if text.startswith("&lt;") else f"p = {text}"


def _effect(row: pd.Series) -> str:
    """Effect and interval with one number of decimals, set by the interval's width
    (three significant digits of it), so that the three numbers line up. The interval may
    go to a second line of a narrow column, each of the two parts staying on one line. A
    one-sided interval shows its open side, ``(-inf, high]`` or ``[low, inf)``, its decimals
    set by twice the distance from the effect to its finite end."""
    values = [row[name] for name in ("effect", "ci_low", "ci_high")]
    if any(_missing(value) for value in values):
        return "—" if _missing(values[0]) else f"{float(values[0]):+.4g}"
    effect, low, high = (float(value) for value in values)
    if not math.isfinite(effect) or not (math.isfinite(low) or math.isfinite(high)):
        return f"{effect:+.4g}"
    scale = 100.0 if row["scale"] == "relative" else 1.0
    if math.isfinite(low) and math.isfinite(high):
        width = (high - low) * scale
    else:
        width = 2 * abs(effect - (low if math.isfinite(low) else high)) * scale
    decimals = min(8, max(0, 2 - math.floor(math.log10(width)))) if width > 0 else 4
    unit = "%" if scale == 100.0 else ""
    low_text, effect_text, high_text = (
        f"{value * scale:+.{decimals}f}{unit}" for value in (low, effect, high)
    )
    if low == -math.inf:
        interval = f"(-inf, {high_text}]"
    elif high == math.inf:
        interval = f"[{low_text}, inf)"
    else:
        interval = f"[{low_text}, {high_text}]"
    return f"<span>{effect_text}</span> <span>{interval}</span>"


def _pair(control: str, variant: str) -> str:
    """Two numbers that may wrap between them, the slash staying with the first."""
    return f"<span>{control} /</span> <span>{variant}</span>"


def _plain(text: object) -> str:
    """User text for matplotlib: a ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def _shorten(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    figure.clear()
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _image(figure: Figure, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="data:image/png;base64,{_png(figure)}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(headers: list[str], rows: list[str], css: str = "") -> str:
    head = "".join(f"<th>{header}</th>" for header in headers)
    opening = f'<table class="{css}">' if css else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# ---------------------------------------------------------------------- document


def _document(readout: Readout, title: str) -> str:
    results, srm, mismatched = readout.results, readout.srm, readout.mismatched
    sections = [
        _header(results, title),
        _summary(results, srm, mismatched),
        _srm_section(readout),
        *([_quality_section(readout.quality)] if readout.quality is not None else []),
        _results_section(results, mismatched),
        _forest_section(results, mismatched),
    ]
    if readout.timelines:
        sections.append(_timeline_section(readout))
    sections.append(_provenance_section(results))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def _header(results: pd.DataFrame, title: str) -> str:
    attrs = results.attrs
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    version = attrs.get("splitlab_version", "unknown")
    source = attrs.get("source", {})
    described = ", ".join(f"{key}: {value}" for key, value in source.items())
    return (
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="meta">splitlab {_e(version)} · generated {_e(generated)} · '
        f"source {_e(described or 'unknown')} · input fingerprint "
        f"<code>{_e(attrs.get('input_fingerprint', '—'))}</code></p></header>"
    )


def _summary(results: pd.DataFrame, srm: pd.DataFrame, mismatched: set) -> str:
    counts = results["decision"].value_counts()
    parts = [
        f"{int(counts.get(decision, 0))} {label}"
        for decision, label in (
            ("win", "win(s)"),
            ("loss", "loss(es)"),
            ("guardrail violated", "guardrail violation(s)"),
            ("inconclusive", "inconclusive"),
            ("error", "without a result"),
        )
        if counts.get(decision, 0) or decision in ("win", "loss", "inconclusive")
    ]
    text = (
        f"<p>{len(results)} comparison(s) across {results['experiment'].nunique()} "
        f"experiment(s) and {results['metric'].nunique()} metric(s): {', '.join(parts)}.</p>"
    )
    if mismatched:
        names = ", ".join(_e(name) for name in sorted(mismatched, key=str))
        text += (
            f'<div class="alert"><strong>Sample-ratio mismatch in {len(mismatched)} of '
            f"{len(srm)} experiment(s): {names}.</strong> Their results should not be "
            "trusted; see the sample-ratio check below.</div>"
        )
    return f"<section><h2>Summary</h2>{text}</section>"


def _srm_section(readout: Readout) -> str:
    srm = readout.srm
    parts = [
        "<section><h2>Sample-ratio check</h2>",
        '<p class="note">Each experiment\'s unit counts are compared with the planned split '
        f"(chi-square test). A p-value below {SRM_ALPHA:g} is flagged as a mismatch.</p>",
    ]
    for record in srm.itertuples(index=False):
        experiment = record.experiment
        counts = np.asarray(record.counts, dtype=float)
        planned = np.asarray(record.expected_share, dtype=float)
        total = counts.sum()
        control = readout.control_of(experiment)
        rows = []
        for variant, count, share in zip(record.variants, counts, planned, strict=True):
            label = _e(variant)
            if variant == control and str(variant) != "control":
                label += " <em>(control)</em>"
            observed = count / total if total else float("nan")
            rows.append(
                f"<tr><td>{label}</td><td class='num'>{_count(count)}</td>"
                f"<td class='num'>{_percent(observed, signed=False)}</td>"
                f"<td class='num'>{_percent(share, signed=False)}</td></tr>"
            )
        verdict = (
            f"{_p_statement(record.p_value)} (χ² = {_number(record.statistic)})"
            if not record.error
            else f"no test: {_e(record.error)}"
        )
        parts.append(f"<h3>{_e(experiment)}</h3>")
        if record.mismatch:
            parts.append(
                f'<div class="alert"><strong>Sample-ratio mismatch ({verdict}).</strong> '
                "The observed split differs from the planned split by more than chance "
                "explains: assignment, exposure logging or data filtering is likely broken. "
                f"The results of experiment <strong>{_e(experiment)}</strong> should not be "
                "trusted until the cause is found.</div>"
            )
        else:
            parts.append(f'<div class="ok">Split as planned — {verdict}.</div>')
        parts.append(_table(["Variant", "Units", "Observed share", "Planned share"], rows))
    parts.append("</section>")
    return "".join(parts)


QUALITY_CHECKS = {
    "multiple_exposure": (
        "Units exposed to more than one variant",
        "Units whose rows carry more than one variant (needs the unit column); any is flagged.",
        "share",
    ),
    "missing_values": (
        "Missing metric values",
        "Share of units without a value of each metric column, per variant against its "
        "control; flagged when an exact test of equal shares gives p < {alpha:g}.",
        "share",
    ),
    "daily_exposure": (
        "Exposures per day",
        "Each exposure day's split against the planned one (chi-square); flagged when p is "
        "below {alpha:g} divided by the number of days, or when an arm got no exposures on a "
        "day whose traffic makes that improbable.",
        "count",
    ),
    "extreme_values": (
        "Extreme values",
        "Share of units above the experiment's pooled {quantile:.1%} quantile of each metric "
        "column, per variant against its control; flagged when an exact test gives "
        "p < {alpha:g}.",
        "share",
    ),
    "covariate_balance": (
        "Pre-period covariate balance",
        "Standardized mean difference of each covariate between a variant and its control "
        "(the value) and Welch's t-test; flagged when |SMD| > {smd:g} or p < {alpha:g}.",
        "number",
    ),
    "srm": (
        "Sample-ratio mismatch",
        "Chi-square statistic of the unit counts against the planned split (the value); "
        "flagged when p < {srm:g}.",
        "number",
    ),
}


def _quality_section(quality: pd.DataFrame) -> str:
    from splitlab.analyzer.quality import EXTREME_QUANTILE, QUALITY_ALPHA, SMD_LIMIT

    constants = {
        "alpha": QUALITY_ALPHA, "quantile": EXTREME_QUANTILE, "smd": SMD_LIMIT,
        "srm": SRM_ALPHA,
    }  # fmt: skip
    flagged = quality[quality["flag"].astype(bool)]
    parts = [
        "<section><h2>Data quality</h2>",
        '<p class="note">Checks of the logged data, each computed in the engine that holds '
        "it. A flag means the data, not the treatment, may be behind a result.</p>",
    ]
    if len(flagged):
        names = ", ".join(
            _e(QUALITY_CHECKS.get(check, (check,))[0]) for check in dict.fromkeys(flagged["check"])
        )
        parts.append(
            f'<div class="warning"><strong>{len(flagged)} of {len(quality)} data-quality '
            f"check(s) flagged:</strong> {names}. See the rows marked below.</div>"
        )
    else:
        parts.append(f'<div class="ok">All {len(quality)} data-quality check(s) passed.</div>')
    headers = ["Experiment", "Variant", "Column", "Day", "Value", "Control", "Threshold"]
    headers += ["p-value", "Flag", "Detail"]
    for check in dict.fromkeys(quality["check"]):
        title, definition, kind = QUALITY_CHECKS.get(check, (check, "", "number"))
        rows = []
        for _, row in _experiment_major(quality[quality["check"] == check]).iterrows():
            format_value = {"share": lambda v: _percent(v, signed=False), "count": _count}.get(
                kind, _number
            )
            flag = bool(row["flag"])
            cells = [
                _e(row["experiment"]),
                "—" if _missing(row["variant"]) else _e(row["variant"]),
                "—" if _missing(row["metric"]) else _e(row["metric"]),
                "—" if pd.isna(row["day"]) else f"{pd.Timestamp(row['day']):%Y-%m-%d}",
            ]
            numbers = [
                format_value(row["value"]),
                format_value(row["control_value"]),
                _number(row["threshold"], 3),
                _p_value(row["p_value"]),
            ]
            rows.append(
                f'<tr class="{"flagged" if flag else ""}">'
                + "".join(f"<td>{cell}</td>" for cell in cells)
                + "".join(f'<td class="num">{cell}</td>' for cell in numbers)
                + f'<td class="flag">{"flagged" if flag else "ok"}</td>'
                + f"<td>{_e(row['detail'])}</td></tr>"
            )
        parts.append(f"<h3>{_e(title)}</h3>")
        parts.append(f'<p class="note">{_e(definition.format(**constants))}</p>')
        parts.append(_table(headers, rows))
    parts.append("</section>")
    return "".join(parts)


def _experiment_major(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by experiment, in order of first appearance, otherwise as they were:
    a reader goes through one experiment at a time."""
    order = {name: index for index, name in enumerate(dict.fromkeys(frame["experiment"]))}
    ranks = frame["experiment"].map(order).to_numpy()
    return frame.iloc[np.argsort(ranks, kind="stable")]


def _results_section(results: pd.DataFrame, mismatched: set) -> str:
    parameters = results.attrs.get("parameters", {})
    relative = (results["scale"] == "relative").any()
    bayes = "chance_to_win" in results.columns
    adjusted = parameters.get("correction") is not None
    pair = "(control&nbsp;/ variant)"  # a header wraps like its cells, after the slash
    headers = ["Experiment", "Segment", "Metric", "Variant", f"n {pair}"]
    headers += [f"Mean {pair}", "Effect [CI]"]
    headers += [] if relative else ["Lift"]
    if bayes:
        headers += ["P(variant better)", f"Risk {pair}"]
    else:
        headers += ["p-value"] + (["Adjusted p"] if adjusted else [])
    headers += ["Decision", "Error / note"]
    ordered = _experiment_major(results)
    lower_is_better = _lower_is_better(ordered)
    rows = []
    for index, (_, row) in enumerate(ordered.iterrows()):
        experiment = _e(row["experiment"])
        if row["experiment"] in mismatched:
            experiment += '<span class="badge" title="sample-ratio mismatch">SRM</span>'
        metric = _e(row["metric"]) + (" <em>(guardrail)</em>" if row["guardrail"] else "")
        if lower_is_better[index]:
            metric += LOWER_IS_BETTER_HINT
        cells = [experiment, _e(row["segment"]), metric, _e(row["variant"])]
        # a pair of numbers may wrap between its parts, each part staying on one line
        pairs = [
            _pair(_count(row["n_control"]), _count(row["n_variant"])),
            _pair(_number(row["mean_control"]), _number(row["mean_variant"])),
            _effect(row),
        ]
        numbers = [] if relative else [_percent(row["relative_effect"])]
        if bayes:
            numbers.append(_percent(row["chance_to_win"], signed=False))
            pairs.append(_pair(_number(row["risk_control"], 3), _number(row["risk_variant"], 3)))
        else:
            numbers.append(_p_value(row["p_value"]))
            if adjusted:
                numbers.append(_p_value(row["p_adjusted"]))
        number_cells = [f'<td class="num parts">{cell}</td>' for cell in pairs[:3]]
        number_cells += [f'<td class="num">{cell}</td>' for cell in numbers]
        number_cells += [f'<td class="num parts">{cell}</td>' for cell in pairs[3:]]
        decision = str(row["decision"])
        css = DECISION_CLASSES.get(decision, "")
        rows.append(
            f'<tr class="{css}">'
            + "".join(f"<td>{cell}</td>" for cell in cells)
            + "".join(number_cells)
            + f'<td class="decision">{_e(decision)}</td>'
            + f'<td class="note">{_e(_error_or_note(row))}</td></tr>'
        )
    scale = "relative (lift over the control mean)" if relative else "absolute (variant − control)"
    method = parameters.get("method", "ttest")
    alpha = parameters.get("alpha", 0.05)
    alternative = parameters.get("alternative", "two-sided")
    sided = "" if alternative == "two-sided" else f"one-sided ({_e(alternative)}) "
    explanation = (
        f"Effects are {scale} with {1 - alpha:.0%} {sided}intervals; method {_e(method)}"
        + (f", p-values adjusted with {_e(parameters['correction'])}" if adjusted else "")
        + (
            "; the intervals and p-values stay valid however often the experiment is looked at"
            if method in ("cs", "msprt", "gst")
            else ""
        )
        + ". Green rows are wins, red rows losses (dark red: a guardrail metric got worse)."
        + (
            " Metrics marked ↓ lower is better improve when they decrease: for them a win is "
            "a decrease and a loss an increase (effects keep their sign, variant − control)."
            if lower_is_better.any()
            else ""
        )
    )
    return (
        f'<section><h2>Results</h2><p class="note">{explanation}</p>'
        f"{_table(headers, rows, 'results')}</section>"
    )


def _lower_is_better(results: pd.DataFrame) -> np.ndarray:
    """Per row, whether a decrease is the metric's good direction (False when the results
    do not say)."""
    if "lower_is_better" not in results.columns:
        return np.zeros(len(results), dtype=bool)
    return results["lower_is_better"].eq(True).to_numpy()


# ---------------------------------------------------------------------- plots


def _row_label(experiment: object, segment: object, variant: object) -> str:
    parts = [str(experiment)] + ([] if segment == ALL_UNITS else [str(segment)]) + [str(variant)]
    return _shorten(" · ".join(parts))


def _forest_figure(results: pd.DataFrame, mismatched: set) -> Figure:
    keys = ["experiment", "segment", "variant"]
    rows = _experiment_major(results[keys].drop_duplicates()).reset_index(drop=True)
    position = {tuple(key): index for index, key in enumerate(rows.itertuples(index=False))}
    labels = [_plain(_row_label(*key)) for key in position]
    metrics = list(dict.fromkeys(results["metric"]))
    columns = min(len(metrics), PANEL_COLUMNS)
    lines = math.ceil(len(metrics) / columns)
    label_width = 0.6 + 0.065 * max(len(label) for label in labels)
    panel_height = 0.9 + 0.28 * len(rows)
    figure = Figure(
        figsize=(label_width + 3.4 * columns, 0.5 + panel_height * lines), layout="constrained"
    )
    axes = figure.subplots(lines, columns, sharey=True, squeeze=False).ravel()
    experiments = list(dict.fromkeys(rows["experiment"]))
    for ax, metric in zip(axes, metrics, strict=False):
        subset = results[results["metric"] == metric]
        y = np.array([position[tuple(key)] for key in subset[keys].itertuples(index=False)])
        # alternate shading groups the rows of one experiment
        for number, experiment in enumerate(experiments):
            if number % 2:
                block = np.flatnonzero(rows["experiment"].to_numpy() == experiment)
                ax.axhspan(block.min() - 0.5, block.max() + 0.5, color="#f1f3f6", zorder=0)
        ax.axvline(0.0, color="#222222", linewidth=0.9, zorder=2)
        effect = subset["effect"].to_numpy(dtype=float)
        low = subset["ci_low"].to_numpy(dtype=float)
        high = subset["ci_high"].to_numpy(dtype=float)
        # a one-sided interval has one infinite end: it is drawn to past the finite values
        # and ends in an arrow
        open_low, open_high = low == -np.inf, high == np.inf
        known = (
            np.isfinite(effect)
            & (np.isfinite(low) | open_low)
            & (np.isfinite(high) | open_high)
            & ~(open_low & open_high)
        )
        low, high = _open_ends(effect[known], low, high, open_low, open_high)
        decisions = subset["decision"].to_numpy()
        for decision, colour in DECISION_COLOURS.items():
            chosen = known & (decisions == decision)
            if chosen.any():
                ax.errorbar(
                    effect[chosen],
                    y[chosen],
                    xerr=[effect[chosen] - low[chosen], high[chosen] - effect[chosen]],
                    fmt="o",
                    color=colour,
                    markersize=5,
                    capsize=3,
                    linewidth=1.4,
                    zorder=3,
                )
            for side, ends, marker in ((open_low, low, "<"), (open_high, high, ">")):
                arrows = chosen & side
                if arrows.any():
                    ax.plot(ends[arrows], y[arrows], marker, color=colour, markersize=6, zorder=3)
        for row_position in y[~known]:
            ax.text(
                0.5,
                row_position,
                "no result",
                transform=ax.get_yaxis_transform(),
                ha="center",
                va="center",
                color="#888888",
                fontsize=8,
                style="italic",
            )
        relative = (subset["scale"] == "relative").any()
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        if relative:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("relative lift" if relative else "effect (variant − control)", fontsize=9)
        guardrail = " (guardrail)" if subset["guardrail"].any() else ""
        ax.set_title(_plain(_shorten(str(metric), 40)) + guardrail, fontsize=10, fontweight="bold")
        ax.grid(axis="x", color="#e3e7ec", linewidth=0.6)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.08)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)
    for ax in axes[::columns]:
        ax.set_yticks(range(len(rows)), labels)
        for tick, experiment in zip(ax.get_yticklabels(), rows["experiment"], strict=True):
            if experiment in mismatched:
                tick.set_color(SRM_COLOUR)
                tick.set_fontweight("bold")
    present = set(results["decision"])
    handles = [
        Line2D([], [], color=colour, marker="o", linestyle="-", label=decision)
        for decision, colour in DECISION_COLOURS.items()
        if decision in present
    ]
    if mismatched:
        handles.append(
            Line2D([], [], color=SRM_COLOUR, marker="s", linestyle="", label="red label: SRM")
        )
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    return figure


def _open_ends(
    effect: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    open_low: np.ndarray,
    open_high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Interval ends to draw: an infinite end is moved to a quarter of the finite values'
    span beyond them."""
    finite = np.concatenate([effect, low[np.isfinite(low)], high[np.isfinite(high)]])
    if not finite.size:
        return low, high
    smallest, largest = finite.min(), finite.max()
    reach = 0.25 * ((largest - smallest) or abs(largest) or 1.0)
    return (
        np.where(open_low, smallest - reach, low),
        np.where(open_high, largest + reach, high),
    )


def _forest_section(results: pd.DataFrame, mismatched: set) -> str:
    figure = _forest_figure(results, mismatched)
    caption = (
        "Effect and interval per experiment · segment · variant, one panel per metric; "
        "the vertical line marks no effect. Labels in red belong to experiments with a "
        "sample-ratio mismatch."
    )
    bounds = results[["ci_low", "ci_high"]].to_numpy(dtype=float)
    if np.isinf(bounds).any():
        caption += " An arrow marks the open side of a one-sided interval."
    return f"<section><h2>Effects</h2>{_image(figure, 'Forest plot of effects', caption)}</section>"


def _panel_grid(columns: int, lines: int, *, width: float, height: float) -> Figure:
    """A figure for ``lines`` × ``columns`` panels of ``width`` × ``height`` inches with fixed
    margins: the panels carry only numbers and dates as tick labels, so the margins are
    known in advance, and a fixed layout draws twice as fast as a constrained one."""
    left, right, top, bottom, gap_x, gap_y = 0.65, 0.2, 0.65, 0.55, 0.6, 0.85
    total_width = left + right + columns * width + (columns - 1) * gap_x
    total_height = top + bottom + lines * height + (lines - 1) * gap_y
    figure = Figure(figsize=(total_width, total_height))
    figure.subplots_adjust(
        left=left / total_width,
        right=1 - right / total_width,
        top=1 - top / total_height,
        bottom=bottom / total_height,
        wspace=gap_x / width,
        hspace=gap_y / height,
    )
    return figure


def _timeline_figure(metric: str, timeline: pd.DataFrame, readout: Readout) -> Figure:
    mismatched = readout.mismatched
    experiments = list(dict.fromkeys(timeline["experiment"]))
    columns = min(len(experiments), PANEL_COLUMNS)
    lines = math.ceil(len(experiments) / columns)
    figure = _panel_grid(columns, lines, width=3.7, height=2.2)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    variants = list(dict.fromkeys(timeline["variant"]))
    palette = {variant: f"C{index % 10}" for index, variant in enumerate(variants)}
    relative = (timeline["scale"] == "relative").any()
    for ax, experiment in zip(axes, experiments, strict=False):
        subset = timeline[timeline["experiment"] == experiment]
        control = readout.control_of(experiment)
        for variant, group in subset.groupby("variant", sort=False):
            group = group.sort_values(PERIOD)
            when = pd.to_datetime(group[PERIOD]).to_numpy()
            effect = group["effect"].to_numpy(dtype=float)
            low = group["ci_low"].to_numpy(dtype=float)
            high = group["ci_high"].to_numpy(dtype=float)
            known = np.isfinite(effect) & np.isfinite(low) & np.isfinite(high)
            colour = palette[variant]
            ax.fill_between(when[known], low[known], high[known], color=colour, alpha=0.18)
            ax.plot(
                when[known],
                effect[known],
                color=colour,
                linewidth=1.6,
                marker="o" if known.sum() <= 31 else None,
                markersize=2.5,
                label=_plain(_shorten(f"{variant} vs {control}", 30)),
            )
        ax.axhline(0.0, color="#222222", linewidth=0.9)
        flagged = experiment in mismatched
        ax.set_title(
            _plain(_shorten(str(experiment), 40)) + (" — SRM, do not trust" if flagged else ""),
            fontsize=10,
            fontweight="bold",
            color=SRM_COLOUR if flagged else "#1d2430",
        )
        locator = AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        if relative:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(color="#e3e7ec", linewidth=0.6)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, loc="best", frameon=False)
    for ax in axes[len(experiments) :]:
        ax.set_visible(False)
    figure.suptitle(
        _plain(_shorten(metric, 60)) + (": cumulative lift" if relative else ": cumulative effect"),
        fontsize=11,
        fontweight="bold",
    )
    return figure


ALWAYS_VALID_BANDS = {
    "cs": (
        "confidence sequence",
        "{level} confidence sequence: it stays valid however often you look, so it can be "
        "checked every day and the experiment stopped as soon as it excludes 0.",
    ),
    "msprt": (
        "mixture SPRT interval",
        "{level} mixture sequential probability ratio test (mSPRT) interval: always valid, "
        "it stays valid however often you look.",
    ),
    "gst": (
        "repeated confidence interval",
        "{level} repeated confidence interval of the group-sequential design: always valid, "
        "it holds at all of the design's looks (the exposure periods) at once.",
    ),
}
FIXED_HORIZON_BANDS = {"ttest": "confidence interval", "bayes": "credible interval"}


def _timeline_bands(readout: Readout) -> str | None:
    """The method of the timelines' bands: ``readout.bands``, or else the one the timeline
    frames name ("cs/welch" is a confidence sequence; a group-sequential timeline has a
    ``boundary`` column; "bayes_gaussian" is Bayesian; a plain name such as "welch" is a
    fixed-horizon test), or None when they do not tell."""
    if readout.bands is not None:
        return readout.bands
    found = set()
    for timeline in readout.timelines.values():
        if isinstance(timeline, str):
            continue
        if "boundary" in timeline.columns:
            found.add("gst")
            continue
        if "method" not in timeline.columns:
            continue
        for method in timeline["method"].dropna().astype(str).unique():
            family = method.split("/", 1)[0]
            if family in ALWAYS_VALID_BANDS:
                found.add(family)
            elif family.startswith("bayes"):
                found.add("bayes")
            elif family:
                found.add("ttest")
    return found.pop() if len(found) == 1 else None


def _bands_text(bands: str | None, alpha: float) -> tuple[str, str]:
    """What the timeline bands are: a sentence for the section's note and a short name
    for the figure captions."""
    level = f"{1 - alpha:.0%}"
    if bands in ALWAYS_VALID_BANDS:
        name, sentence = ALWAYS_VALID_BANDS[bands]
        return f"The band is the {sentence.format(level=level)}", f"always-valid {level} {name}"
    if bands in FIXED_HORIZON_BANDS:
        name = FIXED_HORIZON_BANDS[bands]
        method = "Bayesian" if bands == "bayes" else "t-test"
        return (
            f"The band is the {level} fixed-horizon {method} {name} at that point: it is "
            "valid for one look at a planned end, and reading it repeatedly overstates "
            'certainty. <code>Analyzer.readout(..., bands="always-valid")</code> (the '
            "default) draws always-valid bands instead.",
            f"fixed-horizon {level} {name}",
        )
    return (
        "The method of the bands is unknown (the readout does not say it), so it is not "
        "known whether they stay valid when read repeatedly.",
        "interval of unknown method",
    )


def _timeline_section(readout: Readout) -> str:
    alpha = readout.results.attrs.get("parameters", {}).get("alpha", 0.05)
    sentence, band = _bands_text(_timeline_bands(readout), alpha)
    parts = [
        "<section><h2>Over time</h2>",
        '<p class="note">Cumulative effect by exposure period: each point uses every unit '
        f"exposed up to that period. {sentence}</p>",
    ]
    for metric, timeline in readout.timelines.items():
        parts.append(f"<h3>{_e(metric)}</h3>")
        if isinstance(timeline, str):
            parts.append(f'<p class="note">No timeline: {_e(timeline)}</p>')
            continue
        figure = _timeline_figure(metric, timeline, readout)
        parts.append(
            _image(
                figure,
                f"Cumulative effect of {metric} over time",
                f"{metric}: cumulative effect per variant with its {band} as the band, "
                "one panel per experiment.",
            )
        )
    parts.append("</section>")
    return "".join(parts)


# ---------------------------------------------------------------------- provenance


def _json(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _provenance_section(results: pd.DataFrame) -> str:
    attrs = results.attrs
    parameters = dict(attrs.get("parameters", {}))
    metric_specs = parameters.pop("metrics", [])
    facts = [
        ("splitlab version", attrs.get("splitlab_version", "unknown")),
        ("input fingerprint", attrs.get("input_fingerprint", "—")),
        ("source", _json(attrs.get("source", {}))),
        ("columns", _json(attrs.get("columns", {}))),
        *((name, _json(value)) for name, value in parameters.items()),
    ]
    rows = [
        f"<tr><th>{_e(name)}</th><td><code>{_e(value)}</code></td></tr>" for name, value in facts
    ]
    metric_rows = []
    for spec in metric_specs:
        metric = Metric(**spec) if isinstance(spec, Mapping) else spec
        metric_rows.append(
            "<tr>"
            + "".join(
                f"<td>{_e(value)}</td>"
                for value in (
                    metric.name,
                    metric.kind if metric.quantile is None else f"quantile {metric.quantile:g}",
                    " / ".join(metric.columns),
                    ", ".join(metric.covariates) or "—",
                    metric.winsorize or "—",
                    "higher" if metric.higher_is_better else "lower",
                    "yes" if metric.guardrail else "no",
                )
            )
            + "</tr>"
        )
    metrics_table = _table(
        ["Metric", "Kind", "Columns", "Covariate", "Winsorize", "Better", "Guardrail"],
        metric_rows,
    )
    return (
        "<section><h2>Provenance</h2>"
        f"<table><tbody>{''.join(rows)}</tbody></table>{metrics_table}"
        f"<details><summary>Raw provenance (JSON)</summary><pre>"
        f"{_e(json.dumps(attrs, default=str, indent=2, ensure_ascii=False))}</pre></details>"
        "</section>"
    )

"""Every Analyzer argument given junk (None, text, NaN, containers, objects) raises a
splitlab error naming an argument, or works: no TypeError, KeyError or pandas error from
inside reaches the caller."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import splitlab as sl
from splitlab.errors import SplitlabError

rng = np.random.default_rng(0)
d = pd.DataFrame(
    {
        "experiment": "e",
        "variant": np.resize(["control", "b"], 200),
        "y": rng.normal(size=200),
        "x": rng.normal(size=200),
        "u": np.arange(200) % 50,
        "day": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(200) % 4, unit="D"),
        "s": np.resize(["a", "b", "c"], 200),
        "txt": "t",
    }
)
JUNK = [
    None,
    "nope",
    3,
    -1,
    np.nan,
    [],
    {},
    {"a": 1},
    ["y", "y"],
    object(),
    "y",
    1.5,
    True,
    ("a",),
    [None],
    float("inf"),
    "txt",
    b"y",
]
CALLS = {
    "analyze.metrics": lambda v: sl.Analyzer(d).analyze(v),
    "analyze.method": lambda v: sl.Analyzer(d).analyze("y", method=v),
    "analyze.relative": lambda v: sl.Analyzer(d).analyze("y", relative=v),
    "analyze.cuped": lambda v: sl.Analyzer(d).analyze(sl.Metric("y", covariate="x"), cuped=v),
    "analyze.correction": lambda v: sl.Analyzer(d).analyze("y", correction=v),
    "analyze.segments": lambda v: sl.Analyzer(d).analyze("y", segments=v),
    "analyze.alpha": lambda v: sl.Analyzer(d).analyze("y", alpha=v),
    "analyze.method_options": lambda v: sl.Analyzer(d).analyze("y", method="cs", method_options=v),
    "gst.planned_n": lambda v: sl.Analyzer(d, date="day").analyze(
        "y", method="gst", method_options={"planned_n": v}
    ),
    "msprt.tau2": lambda v: sl.Analyzer(d).analyze("y", method="msprt", method_options={"tau2": v}),
    "cs.n_star": lambda v: sl.Analyzer(d).analyze("y", method="cs", method_options={"n_star": v}),
    "bayes.prior": lambda v: sl.Analyzer(d).analyze(
        "y", method="bayes", method_options={"prior": v}
    ),
    "weights": lambda v: sl.Analyzer(d, weights=v).srm(),
    "weights.value": lambda v: sl.Analyzer(d, weights={"control": v, "b": 1}).srm(),
    "control": lambda v: sl.Analyzer(d, control=v).analyze("y"),
    "unit": lambda v: sl.Analyzer(d, unit=v).analyze("y"),
    "date": lambda v: sl.Analyzer(d, date=v).timeline("y"),
    "timeline.freq": lambda v: sl.Analyzer(d, date="day").timeline("y", freq=v),
    "timeline.metric": lambda v: sl.Analyzer(d, date="day").timeline(v),
    "summary.metrics": lambda v: sl.Analyzer(d).summary(v),
    "summary.segments": lambda v: sl.Analyzer(d).summary("y", segments=v),
    "explain": lambda v: sl.Analyzer(d).explain(v),
    "report.path": lambda v: sl.Analyzer(d).report(v, ["y"]),
    "metric.kind": lambda v: sl.Metric("y", kind=v),
    "metric.winsorize": lambda v: sl.Metric("y", winsorize=v),
    "metric.name": lambda v: sl.Metric(v),
    "metric.covariate": lambda v: sl.Analyzer(d).analyze(sl.Metric("y", covariate=v)),
    "metric.column": lambda v: sl.Analyzer(d).analyze(sl.Metric("m", column=v)),
    "correction_scope": lambda v: sl.Analyzer(d).analyze("y", correction_scope=v),
}


@pytest.mark.parametrize("argument", list(CALLS))
def test_junk_arguments_raise_only_splitlab_errors(argument, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # report paths that are accepted land here
    refused = 0
    for value in JUNK:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                CALLS[argument](value)
            except SplitlabError as exc:
                refused += 1
                assert str(exc).split(":")[0], exc
    assert refused > 0  # every argument has junk it must refuse

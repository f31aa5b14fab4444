from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from splitlab import Analyzer, Metric, sample_size
from splitlab.analyzer.demo import generate_demo_data
from splitlab.cli import _progress, main
from splitlab.errors import InvalidArgumentError
from splitlab.stats.power import mde, power

DEMO_UNITS = 20_000
METRICS = [
    Metric("converted", kind="proportion"),
    Metric("revenue", covariate="pre_revenue"),
    Metric("clicks_per_session", kind="ratio", numerator="clicks", denominator="sessions"),
]
METRIC_OPTIONS = [
    "--proportion", "converted",
    "--metric", "revenue",
    "--cuped", "revenue=pre_revenue",
    "--ratio", "clicks_per_session=clicks/sessions",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    generate_demo_data(directory, units=DEMO_UNITS, seed=7)
    return directory


def _read(directory) -> pd.DataFrame:
    return pd.read_parquet(directory)


def _single_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("splitlab: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


# ---------------------------------------------------------------------- demo data


def test_demo_data_is_one_row_per_unit_with_the_documented_columns(demo_dir):
    data = _read(demo_dir)
    assert len(data) == DEMO_UNITS and data["user_id"].is_unique
    assert list(data.columns) == [
        "experiment", "variant", "user_id", "exposed_at", "country",
        "converted", "revenue", "pre_revenue", "clicks", "sessions",
    ]  # fmt: skip
    assert set(data["experiment"]) == {
        "checkout-redesign", "ranker-v2", "pricing-test", "onboarding-email",
    }  # fmt: skip
    arms = data.groupby("experiment", observed=True)["variant"].nunique()
    assert arms["ranker-v2"] == 3 and arms.drop("ranker-v2").eq(2).all()
    controls = data[data["variant"] == "control"].groupby("experiment", observed=True).size()
    assert len(controls) == 4 and (controls > 0).all()
    assert set(data["converted"].unique()) <= {0, 1}
    assert (data["revenue"] >= 0).all() and (data["revenue"] == 0).mean() > 0.5
    assert (data["clicks"] >= 0).all() and (data["sessions"] >= 1).all()
    span = data["exposed_at"].max() - data["exposed_at"].min()
    assert pd.Timedelta(days=13) < span <= pd.Timedelta(days=14)
    # pre-period revenue predicts revenue, which is what CUPED needs
    assert np.corrcoef(data["revenue"], data["pre_revenue"])[0, 1] > 0.3


def test_demo_data_is_deterministic_for_a_seed(tmp_path):
    first = [pd.read_parquet(p) for p in generate_demo_data(tmp_path / "a", units=5_000, seed=1)]
    again = [pd.read_parquet(p) for p in generate_demo_data(tmp_path / "b", units=5_000, seed=1)]
    other = [pd.read_parquet(p) for p in generate_demo_data(tmp_path / "c", units=5_000, seed=2)]
    for left, right in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(left, right)
    assert not first[0]["revenue"].equals(other[0]["revenue"])


def test_demo_data_rejects_too_few_units(tmp_path):
    with pytest.raises(ValueError, match="units"):
        generate_demo_data(tmp_path, units=10)


def test_demo_data_generates_a_million_units_quickly(tmp_path):
    started = time.perf_counter()
    generate_demo_data(tmp_path, units=1_000_000)
    assert time.perf_counter() - started < 10.0  # budget 5 s; slack for a loaded machine


# ---------------------------------------------------------------------- demo command


def test_demo_writes_parquet_and_a_report_and_flags_the_planted_srm(tmp_path, capsys):
    assert main(["demo", "--units", str(DEMO_UNITS), "--dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == [
        "checkout-redesign.parquet", "onboarding-email.parquet",
        "pricing-test.parquet", "ranker-v2.parquet",
    ]  # fmt: skip
    assert (tmp_path / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    srm_lines = output.split("Sample-ratio check")[1].splitlines()
    flags = {line.split()[0]: line.split()[-1] for line in srm_lines[2:6]}
    assert flags == {
        "checkout-redesign": "ok", "onboarding-email": "MISMATCH",
        "pricing-test": "ok", "ranker-v2": "ok",
    }  # fmt: skip
    assert "clicks_per_session" in output and "onboarding-email: sample-ratio mismatch" in output


def test_demo_json_results_are_the_analyzer_results(tmp_path, capsys):
    arguments = ["demo", "--units", str(DEMO_UNITS), "--dir", str(tmp_path), "--seed", "3"]
    assert main([*arguments, "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    expected = Analyzer(tmp_path, date="exposed_at").analyze(METRICS)
    assert len(payload["results"]) == len(expected) == 15
    np.testing.assert_allclose(
        [row["p_value"] for row in payload["results"]], expected["p_value"], rtol=1e-12
    )
    mismatch = {row["experiment"]: row["mismatch"] for row in payload["srm"]}
    assert mismatch["onboarding-email"] and sum(mismatch.values()) == 1


# ---------------------------------------------------------------------- analyze


def test_analyze_json_rows_equal_the_analyzer_rows(demo_dir, capsys):
    arguments = ["analyze", str(demo_dir), *METRIC_OPTIONS, "--segment", "country"]
    assert main([*arguments, "--correction", "holm", "--format", "json"]) == 0
    rows = pd.DataFrame(json.loads(capsys.readouterr().out))
    expected = Analyzer(demo_dir).analyze(METRICS, segments=["country"], correction="holm")
    assert list(rows.columns) == list(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_float_dtype(expected[column]):
            np.testing.assert_allclose(
                rows[column].astype(float), expected[column], rtol=1e-12, equal_nan=True
            )
        else:
            assert rows[column].tolist() == expected[column].tolist(), column


def test_analyze_json_matches_an_independent_welch_test(demo_dir, capsys):
    # options may come before the paths
    assert main(["analyze", "--metric", "revenue", "--format", "json", str(demo_dir)]) == 0
    rows = json.loads(capsys.readouterr().out)
    data = _read(demo_dir)
    assert len(rows) == 5
    for row in rows:
        experiment = data[data["experiment"] == row["experiment"]]
        control = experiment.loc[experiment["variant"] == "control", "revenue"]
        treatment = experiment.loc[experiment["variant"] == row["variant"], "revenue"]
        welch = stats.ttest_ind(treatment, control, equal_var=False)
        interval = welch.confidence_interval(0.95)
        assert row["n_control"] == len(control) and row["n_variant"] == len(treatment)
        np.testing.assert_allclose(row["effect"], treatment.mean() - control.mean(), rtol=1e-9)
        np.testing.assert_allclose(row["p_value"], welch.pvalue, rtol=1e-6)
        np.testing.assert_allclose([row["ci_low"], row["ci_high"]], interval, rtol=1e-6)


def test_analyze_writes_nan_as_null_in_json(tmp_path, capsys):
    data = pd.DataFrame(
        {
            "experiment": "e",
            "variant": ["control", "b"] * 4,
            "flat": 1.0,  # zero variance in both arms: no test, NaN p-value
        }
    )
    data.to_parquet(tmp_path / "flat.parquet")
    # results written, but a row has no result: exit status 1, one line on stderr, and no
    # Python warning text
    assert main(["analyze", str(tmp_path), "--metric", "flat", "--format", "json"]) == 1
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert row["p_value"] is None and row["error"] != ""
    assert captured.err == (
        f"splitlab: no result: experiment e, metric flat, variant b: {row['error']}\n"
    )


def test_analyze_table_csv_and_html_outputs(demo_dir, tmp_path, capsys):
    assert main(["analyze", str(demo_dir), *METRIC_OPTIONS, "--method", "bayes"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:5] == ["experiment", "metric", "variant", "effect", "ci"]
    assert "P(win)" in table and "MISMATCH" in table

    csv_path = tmp_path / "results.csv"
    assert main(["analyze", str(demo_dir), "--metric", "revenue", "--relative",
                 "--format", "csv", "--out", str(csv_path)]) == 0  # fmt: skip
    written = pd.read_csv(csv_path)
    assert len(written) == 5 and (written["scale"] == "relative").all()

    html_path = tmp_path / "report.html"
    arguments = ["analyze", str(demo_dir), "--metric", "revenue", "--date-col", "exposed_at"]
    assert main([*arguments, "--format", "html", "--out", str(html_path)]) == 0
    assert "revenue" in html_path.read_text()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--metric", "revenu"], "'revenu'"),
        (["--metric", "revenue", "--control", "baseline"], "'baseline'"),
        (["--ratio", "ctr=clicks"], "--ratio"),
        (["--ratio", "clicks/sessions"], "--ratio"),
        (["--metric", "revenue", "--cuped", "revenue"], "--cuped"),
        (["--metric", "revenue", "--cuped", "converted=pre_revenue"], "converted"),
        (["--metric", "revenue", "--experiment-col", "test"], "--experiment-col"),
        (["--metric", "variant"], "numeric"),
        (["--metric", "revenue", "--alpha", "1.5"], "--alpha"),
        (["--metric", "revenue", "--format", "html"], "--out"),
        (["--segment", "country"], "--metric"),
        (["--metric", "revenue", "--method", "magic"], "--method"),
    ],
)
def test_analyze_bad_input_exits_2_with_one_line_naming_the_problem(
    demo_dir, capsys, arguments, named
):
    assert main(["analyze", str(demo_dir), *arguments]) == 2
    assert named in _single_error_line(capsys)


def test_analyze_nonexistent_path_is_named(tmp_path, capsys):
    missing = str(tmp_path / "no-such.parquet")
    assert main(["analyze", missing, "--metric", "revenue"]) == 2
    assert missing in _single_error_line(capsys)


def test_parse_label_reads_the_column_type():
    import narwhals as nw

    from splitlab.cli import parse_label

    assert parse_label("--control", " 7 ", nw.Int32(), "v") == 7
    assert parse_label("--control", "2.50", nw.Float64(), "v") == 2.5
    assert parse_label("--control", "Yes", nw.Boolean(), "v") is True
    assert parse_label("--control", "2024-03-01T12:00", nw.Datetime(), "v") == pd.Timestamp(
        "2024-03-01 12:00"
    )
    assert parse_label("--control", " keep spaces ", nw.String(), "v") == " keep spaces "
    for dtype, text in ((nw.Float64(), "nan"), (nw.Float64(), "inf"), (nw.Datetime(), "noon")):
        with pytest.raises(InvalidArgumentError, match="--control"):
            parse_label("--control", text, dtype, "v")


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    missing = str(tmp_path / "missing-dir")
    completed = subprocess.run(
        [sys.executable, "-m", "splitlab", "analyze", missing, "--metric", "revenue"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.count("\n") == 1 and completed.stderr.startswith("splitlab: error:")
    assert missing in completed.stderr and "Traceback" not in completed.stderr


def test_progress_spinner_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        with _progress("scanning", stream=stream):
            time.sleep(0.25)
    assert "scanning" in terminal.getvalue() and terminal.getvalue().endswith("\r\x1b[K")
    assert pipe.getvalue() == ""


# ---------------------------------------------------------------------- power


def _power_json(capsys, arguments: list[str]) -> dict:
    assert main(["power", *arguments, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("arguments", "keywords"),
    [
        (["--baseline", "0.1", "--mde", "0.01"], {"baseline": 0.1, "mde": 0.01}),
        (
            ["--baseline", "0.1", "--mde", "0.1", "--relative", "--ratio", "2", "--power", "0.9"],
            {"baseline": 0.1, "mde": 0.1, "relative": True, "ratio": 2.0, "power": 0.9},
        ),
        (
            ["--baseline", "10", "--sd", "2", "--mde", "1", "--test", "t", "--alpha", "0.01"],
            {"baseline": 10.0, "sd": 2.0, "mde": 1.0, "test": "t", "alpha": 0.01},
        ),
        (
            ["--baseline", "0.2", "--mde", "-0.02", "--alternative", "less"],
            {"baseline": 0.2, "mde": -0.02, "alternative": "less"},
        ),
    ],
)
def test_power_sample_size_matches_sample_size(capsys, arguments, keywords):
    expected = sample_size(**keywords)
    assert _power_json(capsys, arguments) == {
        "n_control": int(expected.n_control),
        "n_treatment": int(expected.n_treatment),
        "n_total": int(expected.n_total),
        "n_control_exact": float(expected.n_control_exact),
    }
    assert main(["power", *arguments]) == 0
    text = capsys.readouterr().out
    assert f"total      {int(expected.n_total):>12,}" in text


def test_power_with_n_gives_the_mde_and_with_both_the_power(capsys):
    found = _power_json(capsys, ["--baseline", "0.1", "--n", "14749"])
    assert found["mde"] == float(mde(baseline=0.1, n=14749))
    found = _power_json(capsys, ["--baseline", "0.1", "--n", "14749", "--mde", "0.01"])
    assert found["power"] == float(power(baseline=0.1, n=14749, mde=0.01))


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--baseline", "0.1"], "--mde"),
        (["--baseline", "0.1", "--mde", "0.01", "--alpha", "2"], "alpha"),
        (["--baseline", "0.1", "--mde", "0.01", "--n", "100", "--power", "0.9"], "--power"),
        (["--baseline", "0.1", "--mde", "tiny"], "--mde"),
    ],
)
def test_power_bad_input_exits_2(capsys, arguments, named):
    assert main(["power", *arguments]) == 2
    assert named in _single_error_line(capsys)


# ---------------------------------------------------------------------- analysis methods


@pytest.fixture(scope="module")
def method_files(tmp_path_factory):
    """Session rows of randomized users, as CSV and as Parquet: two pre-period covariates,
    a 0/1 outcome, a skewed latency with missing values and a country to stratify on."""
    rng = np.random.default_rng(11)
    n = 3_000
    user = rng.integers(0, 700, n)
    variant = np.where(user % 2 == 0, "control", "faster")
    pre = rng.gamma(2.0, 5.0, n)
    predicted = 0.8 * pre + rng.normal(0.0, 2.0, n)
    latency = rng.lognormal(5.0, 0.5, n) * np.where(variant == "faster", 0.9, 1.0)
    latency[rng.random(n) < 0.05] = np.nan
    data = pd.DataFrame(
        {
            "experiment": np.where(user % 3 == 0, "e1", "e2"),
            "variant": variant,
            "user": user,
            "country": rng.choice(["us", "de", "fr"], n, p=[0.5, 0.3, 0.2]),
            "pre": pre,
            "predicted": predicted,
            "revenue": 0.6 * pre + 0.3 * predicted + rng.normal(0.0, 3.0, n)
            + 0.5 * (variant == "faster"),
            "converted": (rng.random(n) < 0.1).astype(int),
            "latency": latency,
        }
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("methods")
    csv, parquet = directory / "sessions.csv", directory / "sessions.parquet"
    data.to_csv(csv, index=False)
    data.to_parquet(parquet)
    return {"csv": csv, "parquet": parquet}


def _analyze_json(capsys, arguments: list[str], status: int = 0) -> pd.DataFrame:
    assert main(["analyze", *arguments, "--format", "json"]) == status
    return pd.DataFrame(json.loads(capsys.readouterr().out))


def _assert_same_rows(rows: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(rows.columns) == list(expected.columns)
    assert len(rows) == len(expected)
    for column in expected.columns:
        if pd.api.types.is_float_dtype(expected[column]):
            np.testing.assert_allclose(
                rows[column].astype(float), expected[column], rtol=1e-12, equal_nan=True
            )
        else:
            written = [None if pd.isna(v) else v for v in rows[column]]
            wanted = [None if pd.isna(v) else v for v in expected[column]]
            assert written == wanted, column


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_analyze_cuped_with_several_covariates_is_the_regression_adjustment(
    method_files, capsys, kind
):
    path = str(method_files[kind])
    rows = _analyze_json(capsys, [path, "--metric", "revenue", "--cuped", "revenue=pre, predicted"])
    expected = Analyzer(path).analyze([Metric("revenue", covariate=["pre", "predicted"])])
    _assert_same_rows(rows, expected)
    assert (rows["method"] == "regression").all() and (rows["variance_reduction"] > 0.5).all()
    # one column is CUPED, as before
    single = _analyze_json(capsys, [path, "--metric", "revenue", "--cuped", "revenue=pre"])
    _assert_same_rows(single, Analyzer(path).analyze([Metric("revenue", covariate="pre")]))
    assert (single["method"] == "cuped").all()


def test_analyze_quantile_metrics_keep_the_command_line_order(method_files, capsys):
    path = str(method_files["csv"])
    arguments = [
        path, "--quantile", "latency_p90=latency@0.9", "--metric", "revenue",
        "--quantile", "latency_median=latency@0.5",
    ]  # fmt: skip
    rows = _analyze_json(capsys, arguments)
    expected = Analyzer(path).analyze(
        [
            Metric("latency_p90", column="latency", kind="quantile", quantile=0.9),
            Metric("revenue"),
            Metric("latency_median", column="latency", kind="quantile", quantile=0.5),
        ]
    )
    _assert_same_rows(rows, expected)
    assert rows["metric"].drop_duplicates().tolist() == [
        "latency_p90", "revenue", "latency_median"
    ]  # fmt: skip
    quantile_rows = rows[rows["metric"] != "revenue"]
    assert (quantile_rows["method"] == "quantile").all()
    # missing latencies are left out of the quantile's count
    assert (
        quantile_rows["n_control"] < rows.loc[rows["metric"] == "revenue", "n_control"].max()
    ).all()


def test_analyze_cluster_makes_clustered_ratios_and_counts_clusters(method_files, capsys):
    path = str(method_files["parquet"])
    arguments = [path, "--metric", "revenue", "--proportion", "converted",
                 "--quantile", "p90=latency@0.9", "--cluster", "user"]  # fmt: skip
    rows = _analyze_json(capsys, arguments)
    metrics = [
        Metric("revenue"),
        Metric("converted", kind="proportion"),
        Metric("p90", column="latency", kind="quantile", quantile=0.9),
    ]
    expected = Analyzer(path, cluster="user").analyze(metrics)
    _assert_same_rows(rows, expected)
    data = pd.read_parquet(path)
    users = data[data["variant"] == "control"].groupby("experiment")["user"].nunique()
    means = rows[rows["metric"] == "revenue"].set_index("experiment")
    assert means["n_control"].to_dict() == users.to_dict()
    assert (means["method"] == "ratio-delta").all()
    # the clustered standard error is not the row-level one
    unclustered = Analyzer(path).analyze(metrics[:1])
    assert not np.allclose(means["se"].to_numpy(), unclustered["se"].to_numpy())


def test_analyze_strata_post_stratifies_and_adds_the_note_column(method_files, capsys):
    path = str(method_files["csv"])
    arguments = [path, "--metric", "revenue", "--proportion", "converted",
                 "--cuped", "revenue=pre", "--strata", "country"]  # fmt: skip
    rows = _analyze_json(capsys, arguments)
    metrics = [Metric("revenue", covariate="pre"), Metric("converted", kind="proportion")]
    expected = Analyzer(path).analyze(metrics, strata="country")
    _assert_same_rows(rows, expected)
    assert "note" in rows and (rows["method"] == "poststratified").all()
    # a quantile is not post-stratified: results written, its rows say why, exit status 1
    arguments = [path, "--metric", "revenue", "--quantile", "p90=latency@0.9",
                 "--strata", "country"]  # fmt: skip
    rows = _analyze_json(capsys, arguments, status=1)
    no_result = rows[rows["error"] != ""]
    assert set(no_result["metric"]) == {"p90"} and (no_result["error"].str.contains("strat")).all()


def test_analyze_table_shows_the_stratification_notes(tmp_path, capsys):
    rng = np.random.default_rng(5)
    n = 400
    data = pd.DataFrame(
        {
            "experiment": "e",
            "variant": rng.choice(["control", "b"], n),
            "country": np.where(np.arange(n) < 3, "lu", rng.choice(["us", "de"], n)),
            "revenue": rng.normal(10.0, 3.0, n),
        }
    )
    data.loc[:2, "variant"] = "b"  # the small stratum has no control unit: it is merged
    data.to_parquet(tmp_path / "small-stratum.parquet")
    arguments = [str(tmp_path), "--metric", "revenue", "--strata", "country"]
    expected = Analyzer(tmp_path).analyze(["revenue"], strata="country")
    assert main(["analyze", *arguments]) == 0
    lines = capsys.readouterr().out.splitlines()
    (note,) = expected["note"]
    assert note != "" and lines[-1] == f"note: experiment e, metric revenue: {note}"


@pytest.mark.parametrize(
    ("method", "options"),
    [("cs", ["--n-star", "500"]), ("msprt", ["--tau2", "1.0"]), ("bayes", [])],
)
def test_analyze_new_flags_work_with_sequential_and_bayesian_methods(
    method_files, capsys, method, options
):
    path = str(method_files["parquet"])
    settings = ["--method", method, *options]
    rows = _analyze_json(capsys, [path, "--metric", "revenue", "--cuped", "revenue=pre,predicted",
                                  "--quantile", "p90=latency@0.9", *settings])  # fmt: skip
    method_options = {"cs": {"n_star": 500.0}, "msprt": {"tau2": 1.0}, "bayes": None}[method]
    metrics = [
        Metric("revenue", covariate=("pre", "predicted")),
        Metric("p90", column="latency", kind="quantile", quantile=0.9),
    ]
    expected = Analyzer(path).analyze(metrics, method=method, method_options=method_options)
    _assert_same_rows(rows, expected)
    stratified = _analyze_json(capsys, [path, "--metric", "revenue", "--strata", "country",
                                        *settings])  # fmt: skip
    expected = Analyzer(path).analyze(
        ["revenue"], strata="country", method=method, method_options=method_options
    )
    _assert_same_rows(stratified, expected)
    clustered = _analyze_json(capsys, [path, "--metric", "revenue", "--cluster", "user",
                                       *settings])  # fmt: skip
    expected = Analyzer(path, cluster="user").analyze(
        ["revenue"], method=method, method_options=method_options
    )
    _assert_same_rows(clustered, expected)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--quantile", "latency@0.9"], "--quantile"),
        (["--quantile", "p90=latency"], "--quantile"),
        (["--quantile", "p90=@0.9"], "--quantile"),
        (["--quantile", "p90=latency@high"], "--quantile"),
        (["--quantile", "p90=latency@90"], "--quantile"),
        (["--quantile", "p90=latency@0"], "--quantile"),
        (["--quantile", "p90=latency@nan"], "--quantile"),
        (["--quantile", "p90=latncy@0.9"], "'latncy'"),
        (["--quantile", "p90=country@0.9"], "numeric"),
        (["--quantile", "p90=latency@0.9", "--cuped", "p90=pre"], "--cuped"),
        (["--metric", "revenue", "--cuped", "revenue=pre,"], "--cuped"),
        (["--metric", "revenue", "--cuped", "revenue=pre,pre"], "--cuped"),
        (["--metric", "revenue", "--cuped", "revenue=pre,nosuch"], "'nosuch'"),
        (["--metric", "revenue", "--cluster", "nosuch"], "--cluster"),
        (["--metric", "revenue", "--cluster", "variant"], "--cluster"),
        (
            ["--metric", "revenue", "--cuped", "revenue=pre,predicted", "--cluster", "user"],
            "--cuped",
        ),
        (["--metric", "revenue", "--strata", "nosuch"], "--strata"),
        (["--metric", "revenue", "--strata", "variant"], "--strata"),
        (["--metric", "revenue", "--strata", "country", "--segment", "country"], "--strata"),
        (["--strata", "country"], "--quantile"),
    ],
)
def test_analyze_bad_method_specs_exit_2_naming_the_flag(method_files, capsys, arguments, named):
    assert main(["analyze", str(method_files["parquet"]), *arguments]) == 2
    assert named in _single_error_line(capsys)


# ---------------------------------------------------------------------- mlflow


def test_analyze_mlflow_logs_the_run_read_back_with_mlflows_client(demo_dir, tmp_path, capsys):
    from splitlab.tracking import tracking_client

    store = tmp_path / "mlruns"
    arguments = ["analyze", str(demo_dir), "--metric", "revenue", "--format", "json"]
    assert main([*arguments, "--mlflow", str(store)]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    run_id = captured.err.strip().splitlines()[-1].removeprefix("mlflow run: ")
    run = tracking_client(store).get_run(run_id)
    for row in rows:
        name = f"effect.{row['experiment']}.revenue.{row['variant']}"
        assert run.data.metrics[name] == pytest.approx(row["effect"], rel=1e-12)
    report = tmp_path / "r.html"
    html = ["analyze", str(demo_dir), "--metric", "revenue", "--format", "html", "--out"]
    assert main([*html, str(report), "--mlflow", str(store)]) == 0
    run_id = capsys.readouterr().err.strip().splitlines()[-1].removeprefix("mlflow run: ")
    artifacts = [a.path for a in tracking_client(store).list_artifacts(run_id, "report")]
    assert artifacts == ["report/r.html"]


# ---------------------------------------------------------------------- rollout


def _saved_rollout(directory, latency_harm: float) -> object:
    from splitlab.rollout import Guardrail, Rollout

    rollout = Rollout(
        guardrails=[Guardrail("latency_ms", higher_is_better=False)],
        stages=(0.1, 0.5, 1.0), min_units=50, salt="cli", clock=lambda: 0.0,
    )  # fmt: skip
    rng = np.random.default_rng(4)
    for unit in range(4000):
        chosen = rollout.choose(unit)
        harm = latency_harm if chosen.arm == "treatment" else 0.0
        rollout.record(chosen, {"latency_ms": rng.normal(100.0 + harm, 10.0)})
    path = directory / "rollout.json"
    rollout.save(path)
    return path


def test_rollout_status_is_the_saved_rollouts_status(tmp_path, capsys):
    from splitlab.rollout import Rollout

    path = _saved_rollout(tmp_path, latency_harm=0.0)
    assert main(["rollout", "status", str(path), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    expected = Rollout.load(path).status()
    assert status["stage"] == expected["stage"] and status["weights"] == expected["weights"]
    found = status["guardrails"]["latency_ms"]
    assert found["p_value"] == pytest.approx(expected["guardrails"]["latency_ms"]["p_value"])
    assert main(["rollout", "status", str(path)]) == 0
    assert "stage 0.1 (1 of 3)" in capsys.readouterr().out


def test_rollout_check_takes_and_saves_the_decision_the_api_takes(tmp_path, capsys):
    import shutil

    from splitlab.rollout import Rollout
    from splitlab.tracking import tracking_client

    path = _saved_rollout(tmp_path, latency_harm=5.0)
    twin = tmp_path / "twin"
    twin.mkdir()
    for file in tmp_path.glob("rollout.json*"):
        shutil.copy(file, twin / file.name)
    expected = Rollout.load(twin / "rollout.json").check()
    store = tmp_path / "mlruns"
    assert main(["rollout", "check", str(path), "--format", "json", "--mlflow", str(store)]) == 0
    captured = capsys.readouterr()
    decision = json.loads(captured.out)
    assert decision["action"] == expected.action == "rollback"
    assert decision["reason"] == expected.reason
    assert Rollout.load(path).weights == [1.0, 0.0]  # the decision was saved
    assert Rollout.load(path).decisions()["action"].tolist() == ["rollback"]
    run_id = captured.err.strip().splitlines()[-1].removeprefix("mlflow run: ")
    assert tracking_client(store).get_run(run_id).data.params["action"] == "rollback"


def test_rollout_cli_refuses_a_file_that_is_no_rollout(tmp_path, capsys):
    path = tmp_path / "junk.json"
    path.write_text("{}")
    assert main(["rollout", "status", str(path)]) == 2
    assert "STATE" in _single_error_line(capsys)


def test_analyze_quality_lists_the_flagged_checks(tmp_path, capsys):
    rng = np.random.default_rng(6)
    frame = pd.DataFrame(
        {
            "experiment": "e1",
            "variant": rng.choice(["control", "b"], 4000),
            "revenue": rng.normal(10.0, 2.0, 4000),
        }
    )
    frame.loc[(frame["variant"] == "b") & (rng.random(4000) < 0.2), "revenue"] = np.nan
    path = tmp_path / "units.csv"
    frame.to_csv(path, index=False)
    assert main(["analyze", str(path), "--metric", "revenue", "--quality"]) == 0
    flagged = Analyzer(frame).analyze(["revenue"], quality=True).attrs["quality"]
    lines = [line for line in capsys.readouterr().err.splitlines() if "quality" in line]
    assert [check["check"] for check in flagged] == ["missing_values"]
    assert lines == [f"splitlab: quality: {flagged[0]['detail']}"]


def test_analyze_lower_is_better_and_alternative_flags_equal_the_analyzer(demo_dir, capsys):
    arguments = ["analyze", str(demo_dir), *METRIC_OPTIONS, "--lower-is-better", "converted"]
    assert main([*arguments, "--alternative", "better", "--format", "json"]) == 0
    rows = pd.DataFrame(json.loads(capsys.readouterr().out))
    metrics = [Metric("converted", kind="proportion", lower_is_better=True), *METRICS[1:]]
    expected = Analyzer(demo_dir).analyze(metrics, alternative="better")
    np.testing.assert_allclose(rows["p_value"], expected["p_value"], rtol=1e-12)
    assert rows["decision"].tolist() == expected["decision"].tolist()
    assert rows["lower_is_better"].tolist() == (expected["metric"] == "converted").tolist()
    assert main([*arguments]) == 0
    assert "converted (lower better)" in capsys.readouterr().out
    # one-sided intervals show their open side
    assert main([*arguments, "--alternative", "better"]) == 0
    table = capsys.readouterr().out
    assert "(-inf, " in table and ", inf)" in table


@pytest.mark.parametrize(
    "extra, flag",
    [
        (["--lower-is-better", "latency"], "--lower-is-better"),
        (["--alternative", "better", "--method", "bayes"], "--alternative"),
    ],
)
def test_analyze_direction_flags_name_the_flag_on_bad_input(demo_dir, capsys, extra, flag):
    assert main(["analyze", str(demo_dir), "--metric", "revenue", *extra]) == 2
    assert flag in capsys.readouterr().err

"""Hostile sources and command lines: only splitlab errors reach the caller.

Every bad input below must raise a :class:`splitlab.errors.SplitlabError` naming the
argument (or, on the command line, exit 2 with one ``splitlab: error:`` line naming the
option), and the correct input beside it must give the right answer, computed here
independently with a pandas group-by.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import splitlab as sl
from splitlab.cli import main
from splitlab.errors import EngineError, InvalidArgumentError, SplitlabError
from splitlab.sources import open_source

ROWS = 240


def make_data(seed: int = 17) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = np.where(np.arange(ROWS) % 2 == 0, "control", "b")
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant,
            "y": np.round(rng.normal(10.0, 3.0, ROWS) + np.where(variant == "b", 0.7, 0.0), 3),
            "x": np.round(rng.normal(5.0, 1.0, ROWS), 3),
        }
    )


DATA = make_data()


def pandas_effect(frame: pd.DataFrame, metric: str = "y", control="control", variant="variant"):
    """Treatment mean minus control mean, by pandas, for a two-arm frame."""
    means = frame.groupby(variant)[metric].mean()
    (treatment,) = [label for label in means.index if label != control]
    return float(means[treatment] - means[control])


def splitlab_effect(source, metric: str = "y", **options) -> float:
    (effect,) = sl.Analyzer(source, **options).analyze([metric])["effect"]
    return float(effect)


def write_parquet(frame: pd.DataFrame, path: Path) -> str:
    frame.to_parquet(path, index=False)
    return str(path)


def write_csv(frame: pd.DataFrame, path: Path, index: bool = False) -> str:
    frame.to_csv(path, index=index)
    return str(path)


# ---------------------------------------------------------------------- files and paths
#
# Each case writes a bad source and its corrected neighbour; it returns (bad, good, truth
# frame, the text the error must contain).


def case_missing_file(d: Path):
    return str(d / "nope.parquet"), write_parquet(DATA, d / "a.parquet"), DATA, "no file matches"


def case_glob_matching_nothing(d: Path):
    write_parquet(DATA, d / "a.parquet")
    return str(d / "*.pq"), str(d / "*.parquet"), DATA, "no file matches"


def case_directory_without_data_files(d: Path):
    (d / "empty").mkdir()
    (d / "empty" / "notes.txt").write_text("hello")
    (d / "full").mkdir()
    write_parquet(DATA, d / "full" / "a.parquet")
    return str(d / "empty"), str(d / "full"), DATA, "no file matches"


def case_empty_path_string(d: Path):
    return "", write_csv(DATA, d / "a.csv"), DATA, "empty"


def case_empty_list_of_paths(d: Path):
    return [], [write_csv(DATA, d / "a.csv")], DATA, "empty list"


def case_unsupported_suffix(d: Path):
    (d / "a.txt").write_text(DATA.to_csv(index=False))
    return str(d / "a.txt"), write_csv(DATA, d / "a.csv"), DATA, "neither Parquet"


def case_parquet_and_csv_mixed(d: Path):
    half = ROWS // 2
    first, second = DATA.iloc[:half], DATA.iloc[half:]
    bad = [write_parquet(first, d / "a.parquet"), write_csv(second, d / "b.csv")]
    good = [bad[0], write_parquet(second, d / "b.parquet")]
    return bad, good, DATA, "not a mixture"


def case_directory_of_mixed_kinds(d: Path):
    (d / "mixed").mkdir()
    write_parquet(DATA.iloc[:100], d / "mixed" / "a.parquet")
    write_csv(DATA.iloc[100:], d / "mixed" / "b.csv")
    (d / "csvs").mkdir()
    write_csv(DATA.iloc[:100], d / "csvs" / "a.csv")
    write_csv(DATA.iloc[100:], d / "csvs" / "b.csv")
    return str(d / "mixed"), str(d / "csvs"), DATA, "not a mixture"


def case_corrupt_parquet(d: Path):
    (d / "bad.parquet").write_bytes(b"PAR1 this is not a parquet file at all")
    return str(d / "bad.parquet"), write_parquet(DATA, d / "a.parquet"), DATA, "bad.parquet"


def case_truncated_parquet(d: Path):
    good = write_parquet(DATA, d / "a.parquet")
    content = Path(good).read_bytes()
    (d / "cut.parquet").write_bytes(content[: len(content) // 2])
    return str(d / "cut.parquet"), good, DATA, "cut.parquet"


def case_csv_named_parquet(d: Path):
    (d / "fake.parquet").write_text(DATA.to_csv(index=False))
    return str(d / "fake.parquet"), write_csv(DATA, d / "real.csv"), DATA, "fake.parquet"


def case_empty_csv(d: Path):
    (d / "empty.csv").write_bytes(b"")
    return str(d / "empty.csv"), write_csv(DATA, d / "a.csv"), DATA, "is empty"


def case_csv_with_only_a_header(d: Path):
    (d / "header.csv").write_text("experiment,variant,y,x\n")
    return str(d / "header.csv"), write_csv(DATA, d / "a.csv"), DATA, "no rows"


def case_csv_with_repeated_header_names(d: Path):
    text = DATA.to_csv(index=False).replace("experiment,variant,y,x", "experiment,variant,y,y", 1)
    (d / "twice.csv").write_text(text)
    return str(d / "twice.csv"), write_csv(DATA, d / "a.csv"), DATA, "'y'"


def case_csv_with_header_names_equal_but_for_case(d: Path):
    text = DATA.to_csv(index=False).replace("experiment,variant,y,x", "experiment,variant,y,Y", 1)
    (d / "case.csv").write_text(text)
    return str(d / "case.csv"), write_csv(DATA, d / "a.csv"), DATA, "ignoring case"


def case_parquet_files_with_different_columns(d: Path):
    first = write_parquet(DATA.iloc[:120], d / "a.parquet")
    second = write_parquet(DATA.iloc[120:].drop(columns="x"), d / "b.parquet")
    good = write_parquet(DATA.iloc[120:], d / "c.parquet")
    return [first, second], [first, good], DATA, "lacks"


def case_parquet_column_text_in_one_file_numbers_in_other(d: Path):
    first = write_parquet(DATA.iloc[:120], d / "a.parquet")
    text = DATA.iloc[120:].assign(y=DATA["y"].iloc[120:].astype(str))
    second = write_parquet(text, d / "b.parquet")
    good = write_parquet(DATA.iloc[120:], d / "c.parquet")
    return [first, second], [first, good], DATA, "different types"


def case_csv_files_with_different_columns(d: Path):
    first = write_csv(DATA.iloc[:120], d / "a.csv")
    second = write_csv(DATA.iloc[120:].rename(columns={"x": "z"}), d / "b.csv")
    good = write_csv(DATA.iloc[120:], d / "c.csv")
    return [first, second], [first, good], DATA, "lacks"


def case_header_only_csv_with_other_columns(d: Path):
    (d / "header.csv").write_text("experiment,variant,revenue\n")
    good = write_csv(DATA, d / "a.csv")
    return [good, str(d / "header.csv")], [good], DATA, "lacks"


def case_parquet_files_all_without_rows(d: Path):
    empty = [write_parquet(DATA.iloc[:0], d / f"e{i}.parquet") for i in range(2)]
    return empty, [*empty, write_parquet(DATA, d / "a.parquet")], DATA, "no rows"


FILE_CASES = [
    case_missing_file, case_glob_matching_nothing, case_directory_without_data_files,
    case_empty_path_string, case_empty_list_of_paths, case_unsupported_suffix,
    case_parquet_and_csv_mixed, case_directory_of_mixed_kinds, case_corrupt_parquet,
    case_truncated_parquet, case_csv_named_parquet, case_empty_csv,
    case_csv_with_only_a_header, case_csv_with_repeated_header_names,
    case_csv_with_header_names_equal_but_for_case, case_parquet_files_with_different_columns,
    case_parquet_column_text_in_one_file_numbers_in_other, case_csv_files_with_different_columns,
    case_header_only_csv_with_other_columns, case_parquet_files_all_without_rows,
]  # fmt: skip


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.__name__[5:])
def test_bad_files_raise_naming_source_and_their_fix_gives_the_pandas_effect(case, tmp_path):
    bad, good, truth, fragment = case(tmp_path)
    with pytest.raises(SplitlabError) as raised:
        splitlab_effect(bad)
    assert isinstance(raised.value, InvalidArgumentError)
    assert raised.value.argument == "source"
    assert fragment in str(raised.value)
    assert splitlab_effect(good) == pytest.approx(pandas_effect(truth), rel=1e-9)


# ---------------------------------------------------------------------- empty header cell


@pytest.mark.parametrize("form", ["path", "list", "glob", "directory"])
def test_csv_with_an_index_column_reads_with_the_empty_header_named_column0(form, tmp_path):
    # pandas' to_csv writes the index under an empty header cell, as the Open Bandit
    # Dataset's files do; with a list of paths DuckDB used to take that line for data
    written = write_csv(DATA, tmp_path / "logged.csv", index=True)
    assert Path(written).read_text().startswith(",experiment,variant,y,x\n")
    source = {
        "path": written,
        "list": [written],
        "glob": str(tmp_path / "*.csv"),
        "directory": str(tmp_path),
    }[form]
    assert list(open_source(source).columns) == ["column0", "experiment", "variant", "y", "x"]
    assert splitlab_effect(source) == pytest.approx(pandas_effect(DATA), rel=1e-9)
    index = sl.Analyzer(source).analyze(["column0"]).iloc[0]
    assert index["mean_control"] == pytest.approx(np.arange(0, ROWS, 2).mean(), rel=1e-12)


def test_an_empty_header_cell_is_zero_padded_to_the_digits_of_the_column_count(tmp_path):
    # the Open Bandit Dataset's files have ~90 columns: their index column is column00
    path = tmp_path / "wide.csv"
    names = ["", *(f"c{i}" for i in range(11))]
    path.write_text(",".join(names) + "\n" + ",".join("1" * 12) + "\n")
    assert list(open_source(str(path)).columns)[:2] == ["column00", "c0"]


def test_empty_header_cells_are_named_by_position(tmp_path):
    rows = "e1,1,control,2,3.5\ne1,4,b,5,6.5\ne1,0,control,0,1.5\ne1,0,b,0,8.5\n"
    (tmp_path / "gaps.csv").write_text("experiment,,variant,,y\n" + rows)
    (tmp_path / "taken.csv").write_text(",column0,y\n1,2,3\n")
    assert list(open_source(str(tmp_path / "gaps.csv")).columns) == [
        "experiment", "column1", "variant", "column3", "y",
    ]  # fmt: skip
    assert list(open_source([str(tmp_path / "taken.csv")]).columns) == [
        "column0", "column0_1", "y",
    ]  # fmt: skip
    # control (3.5 + 1.5) / 2 = 2.5, b (6.5 + 8.5) / 2 = 7.5
    assert splitlab_effect(str(tmp_path / "gaps.csv")) == pytest.approx(5.0, rel=1e-12)


def test_csv_files_with_numbers_typed_differently_are_unified_not_truncated(tmp_path):
    # file 1's y sniffs as integers, file 2's as decimals: read as doubles, never cast
    integers = DATA.iloc[:120].assign(y=np.round(DATA["y"].iloc[:120]).astype(int))
    paths = [
        write_csv(integers, tmp_path / "a.csv"),
        write_csv(DATA.iloc[120:], tmp_path / "b.csv"),
    ]
    truth = pd.concat([integers, DATA.iloc[120:]])
    assert splitlab_effect(paths) == pytest.approx(pandas_effect(truth), rel=1e-9)


def test_header_only_csv_beside_full_files_adds_no_rows(tmp_path):
    (tmp_path / "a.csv").write_text("experiment,variant,y,x\n")
    full = write_csv(DATA, tmp_path / "b.csv")
    result = sl.Analyzer([str(tmp_path / "a.csv"), full]).analyze(["y"]).iloc[0]
    assert result["n_control"] + result["n_variant"] == ROWS
    assert result["effect"] == pytest.approx(pandas_effect(DATA), rel=1e-9)


# ---------------------------------------------------------------------- Parquet schemas


def test_parquet_int_and_double_files_give_doubles_not_rounded_integers(tmp_path):
    # read in file order without union_by_name, DuckDB 2.0.1 takes BIGINT from the first
    # file and rounds 1.5 to 2 in the second: a silently wrong mean
    integers = DATA.iloc[:120].assign(y=np.round(DATA["y"].iloc[:120]).astype("int64"))
    paths = [
        write_parquet(integers, tmp_path / "a.parquet"),
        write_parquet(DATA.iloc[120:], tmp_path / "b.parquet"),
    ]
    truth = pd.concat([integers, DATA.iloc[120:]])
    assert splitlab_effect(paths) == pytest.approx(pandas_effect(truth), rel=1e-9)


def test_parquet_files_with_columns_in_another_order_are_matched_by_name(tmp_path):
    paths = [
        write_parquet(DATA.iloc[:120], tmp_path / "a.parquet"),
        write_parquet(DATA.iloc[120:][["y", "x", "variant", "experiment"]], tmp_path / "b.parquet"),
    ]
    assert splitlab_effect(paths) == pytest.approx(pandas_effect(DATA), rel=1e-9)


def test_parquet_int32_and_int64_files_sum_without_overflow(tmp_path):
    base = np.where(DATA["variant"] == "b", 2_000_000_000, 1_999_999_000)
    big = DATA.assign(y=base + np.round(DATA["y"]).astype("int64"))
    paths = [
        write_parquet(big.iloc[:120].astype({"y": "int32"}), tmp_path / "a.parquet"),
        write_parquet(big.iloc[120:].astype({"y": "int64"}), tmp_path / "b.parquet"),
    ]
    assert splitlab_effect(paths) == pytest.approx(pandas_effect(big), rel=1e-9)


# ---------------------------------------------------------------------- objects and frames


@pytest.mark.parametrize(
    "source",
    [None, 42, 3.5, {"y": [1.0]}, {"y"}, np.zeros((3, 3)), DATA["y"], [1, 2], b"a.csv",
     (row for row in range(3)), object()],
    ids=["none", "int", "float", "dict", "set", "ndarray", "series", "list-of-ints", "bytes",
         "generator", "object"],
)  # fmt: skip
def test_objects_that_are_not_frames_name_source(source):
    with pytest.raises(InvalidArgumentError, match="expected a pandas") as raised:
        sl.Analyzer(source)
    assert raised.value.argument == "source"
    assert splitlab_effect(DATA) == pytest.approx(pandas_effect(DATA), rel=1e-9)


OBJECTS = {"experiment": object, "variant": object, "y": object}


@pytest.mark.parametrize(
    ("make_bad", "fragment", "fix"),
    [
        (lambda: DATA.iloc[:0], "no rows", lambda: DATA),
        (lambda: DATA.iloc[:0].astype(OBJECTS), "no rows", lambda: DATA),
        (lambda: pd.DataFrame(), "no columns", lambda: DATA),
        (lambda: pd.DataFrame(index=range(5)), "no columns", lambda: DATA),
        (lambda: pl.from_pandas(DATA).clear(), "no rows", lambda: pl.from_pandas(DATA)),
        (
            lambda: pl.DataFrame({"experiment": [], "variant": [], "y": []}),
            "no rows",
            lambda: pl.from_pandas(DATA),
        ),
        (lambda: pa.Table.from_pandas(DATA).slice(0, 0), "no rows",
         lambda: pa.Table.from_pandas(DATA)),
        (
            lambda: pa.table({n: pa.array([], pa.null()) for n in ("experiment", "variant", "y")}),
            "no rows",
            lambda: pa.Table.from_pandas(DATA),
        ),
        (lambda: DATA.set_axis(["experiment", "variant", "y", "y"], axis=1), "'y'",
         lambda: DATA),
        (lambda: DATA.rename(columns={"x": "Y"}), "ignoring case", lambda: DATA),
        (lambda: DATA.assign(month=pd.Period("2024-01", "M")), "column 'month'", lambda: DATA),
        (lambda: DATA.assign(z=DATA["x"] + 1j), "column 'z'", lambda: DATA),
        (lambda: pl.scan_parquet("/nonexistent/splitlab/x.parquet"), "x.parquet",
         lambda: pl.from_pandas(DATA).lazy()),
    ],
    ids=["pandas-0-rows", "pandas-0-rows-object", "pandas-no-columns", "pandas-index-only",
         "polars-0-rows", "polars-0-rows-untyped", "arrow-0-rows", "arrow-0-rows-null-type",
         "pandas-repeated-names", "pandas-names-equal-but-case", "pandas-period",
         "pandas-complex", "polars-lazy-missing-file"],
)  # fmt: skip
def test_bad_frames_raise_naming_source_never_an_engine_error(make_bad, fragment, fix):
    with pytest.raises(SplitlabError) as raised:
        splitlab_effect(make_bad())
    assert isinstance(raised.value, InvalidArgumentError) and raised.value.argument == "source"
    assert fragment in str(raised.value)
    assert splitlab_effect(fix()) == pytest.approx(pandas_effect(DATA), rel=1e-9)


def test_object_column_with_text_past_duckdb_sample_is_text_when_opened():
    # DuckDB types an object column from its first 1000 values by default, then fails
    # inside the aggregation on a later one; every value is looked at instead
    late_text = DATA.assign(y=pd.Series([1.0] * (ROWS - 1) + ["oops"], dtype=object))
    assert (
        sl.Analyzer(pd.concat([late_text] * 5, ignore_index=True)).source.columns["y"]
        == (sl.Analyzer(DATA.assign(y="text")).source.columns["y"])
    )
    with pytest.raises(InvalidArgumentError, match="must be numeric") as raised:
        sl.Analyzer(pd.concat([late_text] * 5, ignore_index=True)).analyze(["y"])
    assert raised.value.argument == "metrics"


def test_object_column_with_a_big_integer_past_duckdb_sample_is_summed_exactly():
    values = [1] * 1999 + [2**40]
    frame = pd.DataFrame(
        {
            "experiment": "e1",
            "variant": ["control", "b"] * 1000,
            "y": pd.Series(values, dtype=object),
        }
    )
    truth = frame.assign(y=frame["y"].astype("int64"))
    assert splitlab_effect(frame) == pytest.approx(pandas_effect(truth), rel=1e-12)


def test_engine_errors_keep_the_engine_exception_as_cause(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(EngineError) as raised:
        open_source(str(tmp_path / "bad.parquet"))
    assert type(raised.value.__cause__).__module__.split(".")[0] in ("duckdb", "_duckdb", "pyarrow")
    assert "\n" not in str(raised.value)


# ---------------------------------------------------------------------- the command line


def run_cli(capsys, *arguments: str) -> tuple[int, str, list[str]]:
    status = main(["analyze", *arguments])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "warnings.warn" not in captured.err
    return status, captured.out, captured.err.splitlines()


def cli_effects(capsys, *arguments: str) -> list[float]:
    status, out, err = run_cli(capsys, *arguments, "--format", "json")
    assert status == 0 and err == []
    return [row["effect"] for row in json.loads(out)]


def assert_one_error_line(capsys, arguments: list[str], option: str) -> str:
    status, out, err = run_cli(capsys, *arguments)
    assert status == 2 and out == ""
    assert len(err) == 1 and err[0].startswith("splitlab: error: "), err
    assert f"error: {option}:" in err[0]
    return err[0]


@pytest.fixture
def labelled(tmp_path):
    """The data with the variant labels recoded to a column type, as Parquet."""

    def write(
        labels: tuple[object, object], name: str = "data.parquet"
    ) -> tuple[str, pd.DataFrame]:
        frame = DATA.assign(
            variant=DATA["variant"].map(dict(zip(("control", "b"), labels, strict=True)))
        )
        return write_parquet(frame, tmp_path / name), frame

    return write


LABEL_KINDS = {
    "int": ((0, 1), "0"),
    "negative-int": ((-1, 7), "-1"),
    "bool": ((False, True), "false"),
    "bool-numeric": ((True, False), "1"),
    "date": ((pd.Timestamp("2024-03-01").date(), pd.Timestamp("2024-03-08").date()), "2024-03-01"),
    "numeric-looking-text": (("0", "1"), "0"),
    "text-with-spaces": (("the control", "b"), "the control"),
}


@pytest.mark.parametrize("kind", list(LABEL_KINDS))
def test_control_is_read_as_the_variant_column_type(kind, labelled, capsys):
    labels, typed = LABEL_KINDS[kind]
    path, frame = labelled(labels)
    effects = cli_effects(capsys, path, "--metric", "y", "--control", typed)
    assert effects == [pytest.approx(pandas_effect(frame, control=labels[0]), rel=1e-9)]


@pytest.mark.parametrize(
    ("labels", "typed", "fragment"),
    [
        ((0, 1), "zero", "is not an integer"),
        ((0, 1), "1.5", "is not an integer"),
        ((0, 1), "control", "is not an integer"),
        ((0, 1), "2", "label 2 is not a variant"),
        ((False, True), "maybe", "is not true or false"),
        ((pd.Timestamp("2024-03-01").date(), pd.Timestamp("2024-03-08").date()), "2024-13-01",
         "is not a date"),
        ((pd.Timestamp("2024-03-01").date(), pd.Timestamp("2024-03-08").date()), "2024-03-02",
         "is not a variant"),
        (("0", "1"), "00", "'00' is not a variant"),
        ((0.5, 1.5), "half", "is not a finite number"),
    ],
    ids=["int-word", "int-decimal", "int-default", "int-absent", "bool-word", "date-invalid",
         "date-absent", "text-zero-padded", "float-word"],
)  # fmt: skip
def test_a_control_label_that_is_not_in_the_column_type_is_one_error_line(
    labels, typed, fragment, labelled, capsys
):
    path, _ = labelled(labels)
    line = assert_one_error_line(capsys, [path, "--metric", "y", "--control", typed], "--control")
    assert fragment in line
    text, text_frame = labelled(tuple(map(str, labels)), "as-text.parquet")
    effects = cli_effects(capsys, text, "--metric", "y", "--control", str(labels[0]))
    assert effects == [pytest.approx(pandas_effect(text_frame, control=str(labels[0])), rel=1e-9)]


HOSTILE = {
    "experiment": 'exp "quoted"',
    "variant": "arm; DROP TABLE x",
    "y": "revenue (€), net",
    "x": "pre'revenue",
    "segment": "країна",
}


@pytest.fixture
def hostile(tmp_path):
    frame = DATA.assign(segment=np.where(np.arange(ROWS) % 3 == 0, "UA", "PL"))
    frame = frame.rename(columns=HOSTILE)
    return write_parquet(frame, tmp_path / "hostile names.parquet"), frame


def test_hostile_column_names_work_in_every_cli_option(hostile, capsys):
    path, frame = hostile
    status, out, err = run_cli(
        capsys, path, "--experiment-col", HOSTILE["experiment"], "--variant-col",
        HOSTILE["variant"], "--metric", HOSTILE["y"], "--cuped", f"{HOSTILE['y']}={HOSTILE['x']}",
        "--segment", HOSTILE["segment"], "--format", "json",
    )  # fmt: skip
    assert status == 0 and err == []
    rows = {row["segment"]: row for row in json.loads(out)}
    plain = frame.rename(columns={v: k for k, v in HOSTILE.items()})
    # CUPED (Deng et al. 2013): Δȳ − θ Δx̄ with θ = cov(y, x) / var(x) over both arms
    covariance = np.cov(plain["y"], plain["x"])
    theta = covariance[0, 1] / covariance[1, 1]
    means = plain.groupby("variant")[["y", "x"]].mean()
    difference = means.loc["b"] - means.loc["control"]
    expected = difference["y"] - theta * difference["x"]
    assert rows["all"]["effect"] == pytest.approx(expected, rel=1e-9)
    assert rows["all"]["mean_variant"] == pytest.approx(means.loc["b", "y"], rel=1e-12)
    ua = plain[plain["segment"] == "UA"].groupby("variant")["y"].mean()
    assert rows[f"{HOSTILE['segment']}=UA"]["mean_control"] == pytest.approx(
        ua["control"], rel=1e-12
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--metric", 'revenue (€), net"'),
        ("--variant-col", "arm; DROP TABLE"),
        ("--experiment-col", 'exp "quoted'),
        ("--segment", "країна "),
        ("--unit-col", "user'id"),
    ],
)
def test_a_hostile_column_name_that_is_absent_is_named(option, value, hostile, capsys):
    path, frame = hostile
    arguments = {
        "--experiment-col": HOSTILE["experiment"], "--variant-col": HOSTILE["variant"],
        "--metric": HOSTILE["y"],
    }  # fmt: skip
    arguments[option] = value
    flat = [path, *(text for pair in arguments.items() for text in pair)]
    named = "--metric/--proportion/--ratio/--quantile" if option == "--metric" else option
    assert repr(value) in assert_one_error_line(capsys, flat, named)
    plain = frame.rename(columns={v: k for k, v in HOSTILE.items()})
    good = [path, "--experiment-col", HOSTILE["experiment"], "--variant-col", HOSTILE["variant"]]
    assert cli_effects(capsys, *good, "--metric", HOSTILE["y"]) == [
        pytest.approx(pandas_effect(plain), rel=1e-9)
    ]


@pytest.fixture
def data_file(tmp_path):
    return write_parquet(DATA, tmp_path / "data.parquet")


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (lambda d: ["--out", str(d / "missing" / "out.json")], "--out"),
        (lambda d: ["--out", str(d)], "--out"),
        (lambda d: ["--out", "/proc/splitlab-cannot-write.json"], "--out"),
        (lambda d: ["--out", str(d / "data.parquet" / "out.json")], "--out"),
        (lambda d: ["--format", "html", "--out", str(d)], "--out"),
        (lambda d: ["--format", "html", "--out", "/proc/splitlab-report.html"], "--out"),
    ],
    ids=["out-in-missing-directory", "out-is-a-directory", "out-unwritable",
         "out-under-a-file", "report-is-a-directory", "report-unwritable"],
)  # fmt: skip
def test_unwritable_outputs_are_one_error_line_naming_out(extra, option, data_file, capsys):
    directory = Path(data_file).parent
    assert_one_error_line(capsys, [data_file, "--metric", "y", *extra(directory)], option)
    assert sorted(p.name for p in directory.iterdir()) == ["data.parquet"]
    target = directory / "out.json"
    status, out, err = run_cli(
        capsys, data_file, "--metric", "y", "--format", "json", "--out", str(target)
    )
    assert status == 0 and out == "" and err == []
    (row,) = json.loads(target.read_text())
    assert row["effect"] == pytest.approx(pandas_effect(DATA), rel=1e-9)


def test_failed_write_leaves_no_temporary_file_and_names_out(data_file, capsys, monkeypatch):
    directory = Path(data_file).parent

    def refuse(source, destination):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("splitlab.cli.os.replace", refuse)
    line = assert_one_error_line(
        capsys, [data_file, "--metric", "y", "--out", str(directory / "o.csv")], "--out"
    )
    assert "Permission denied" in line
    assert sorted(p.name for p in directory.iterdir()) == ["data.parquet"]


@pytest.mark.parametrize(
    "make_path",
    [
        lambda d: str(d / "nothing-*.parquet"),
        lambda d: (d / "bad.parquet").write_bytes(b"garbage") and str(d / "bad.parquet"),
        lambda d: (d / "empty.csv").write_bytes(b"") == 0 and str(d / "empty.csv"),
    ],
    ids=["glob-matching-nothing", "corrupt-parquet", "empty-csv"],
)
def test_bad_data_paths_are_one_error_line_naming_path(make_path, data_file, capsys):
    path = make_path(Path(data_file).parent)
    assert_one_error_line(capsys, [path, "--metric", "y"], "PATH")
    assert cli_effects(capsys, data_file, "--metric", "y") == [
        pytest.approx(pandas_effect(DATA), rel=1e-9)
    ]


def test_csv_index_column_on_the_command_line(tmp_path, capsys):
    written = write_csv(DATA, tmp_path / "logged.csv", index=True)
    for paths in ([written], [str(tmp_path / "*.csv")], [written, written]):
        assert cli_effects(capsys, *paths, "--metric", "y") == [
            pytest.approx(pandas_effect(DATA), rel=1e-9)
        ]


# ---------------------------------------------------------------------- rows without a result


@pytest.fixture
def partly_degenerate(tmp_path):
    """Two metrics: y has a result; constant has zero variance in both arms."""
    frame = DATA.assign(constant=1.0)
    return write_parquet(frame, tmp_path / "data.parquet"), frame


def test_rows_without_a_result_exit_1_with_one_line_each(partly_degenerate, capsys):
    path, frame = partly_degenerate
    status, out, err = run_cli(
        capsys, path, "--metric", "y", "--metric", "constant", "--format", "json"
    )
    assert status == 1
    rows = {row["metric"]: row for row in json.loads(out)}
    assert rows["y"]["effect"] == pytest.approx(pandas_effect(frame), rel=1e-9)
    assert rows["constant"]["effect"] is None and rows["constant"]["error"]
    reason = rows["constant"]["error"]
    assert err == [f"splitlab: no result: experiment e1, metric constant, variant b: {reason}"]


def test_a_report_with_rows_without_a_result_exits_1_and_is_written(partly_degenerate, capsys):
    path, _ = partly_degenerate
    target = Path(path).parent / "report.html"
    status, out, err = run_cli(
        capsys, path, "--metric", "constant", "--format", "html", "--out", str(target)
    )
    assert status == 1 and target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert out == f"report: {target}\n"
    assert len(err) == 1 and err[0].startswith("splitlab: no result: 1 of 1")


def test_every_row_with_a_result_exits_0_with_nothing_on_stderr(partly_degenerate, capsys):
    path, frame = partly_degenerate
    status, out, err = run_cli(capsys, path, "--metric", "y")
    assert status == 0 and err == [] and "e1" in out
    assert cli_effects(capsys, path, "--metric", "y") == [
        pytest.approx(pandas_effect(frame), rel=1e-9)
    ]


def test_many_rows_without_a_result_are_listed_then_counted(tmp_path, capsys):
    frame = DATA.assign(**{f"c{i:02d}": 1.0 for i in range(25)})
    path = write_parquet(frame, tmp_path / "data.parquet")
    arguments = [text for i in range(25) for text in ("--metric", f"c{i:02d}")]
    status, out, err = run_cli(capsys, path, *arguments, "--format", "csv")
    assert status == 1 and len(pd.read_csv(io.StringIO(out))) == 25
    listed = [line for line in err if line.startswith("splitlab: no result: ")]
    assert len(listed) == 21
    assert listed[-1] == "splitlab: no result: 5 more of 25 rows (see the error column)"
    assert all(line.startswith("splitlab: warning: ") for line in err if line not in listed)


def test_help_documents_the_exit_status(capsys):
    assert main(["analyze", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every row has a result; 1 results written" in text
    assert "2 bad input" in text


def test_cli_runs_in_a_subprocess_with_only_the_error_line(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"garbage")
    command = ["analyze", str(tmp_path / "bad.parquet"), "--metric", "y"]
    completed = subprocess.run(
        [sys.executable, "-m", "splitlab", *command], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("splitlab: error: PATH: cannot read parquet file")


@pytest.mark.parametrize(
    "make_source",
    [
        # a value past DuckDB's CSV type-sniffing sample (20,480 rows) that does not parse
        lambda d: (
            write_csv(pd.concat([DATA] * 100, ignore_index=True), d / "late.csv"),
            (d / "late.csv").open("a").write("e1,b,not-a-number,1.0\n"),
        )[0],
        # booleans and integers in one pandas object column: typed INTEGER, fails on True
        lambda d: DATA.assign(y=pd.Series([1] * (ROWS - 1) + [True], dtype=object)),
    ],
    ids=["csv-value-past-the-sniff-sample", "pandas-object-bools-and-ints"],
)
def test_sources_that_fail_only_when_the_aggregation_runs_raise_engine_error(make_source, tmp_path):
    with pytest.raises(EngineError) as raised:
        splitlab_effect(make_source(tmp_path))
    assert raised.value.argument == "source" and "\n" not in str(raised.value)
    assert splitlab_effect(DATA) == pytest.approx(pandas_effect(DATA), rel=1e-9)

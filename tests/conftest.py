from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# scripts that produced reference files by running GrowthBook's gbstats (not installed here)
collect_ignore = [
    "data/make_gbstats_post_strat.py",
    "data/make_gbstats_quantile.py",
    "data/make_gbstats_ratio_cuped.py",
    "data/make_gbstats_power.py",
]
REFERENCE = ROOT / "tests" / "data" / "reference"  # how they were made: README.md there


class MissingReference(dict):
    """Stands in for the cases of a reference file that cannot be read: any test given it
    fails (a missing reference must never pass, skip or xfail)."""

    def __init__(self, path: Path, problem: str):
        super().__init__()
        self.message = f"reference file {path} {problem}"

    def __getitem__(self, key):
        pytest.fail(self.message)

    get = __getitem__


def _read(name: str) -> dict | MissingReference:
    path = REFERENCE / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return MissingReference(path, "is missing")
    except (OSError, ValueError) as exc:
        return MissingReference(path, f"cannot be read: {exc}")


def load_reference(name: str) -> dict:
    data = _read(name)
    if isinstance(data, MissingReference):
        pytest.fail(data.message)
    return data


def reference_params(name: str, key: str, select, describe) -> list:
    """One ``pytest.param`` per entry of ``key`` in reference file ``name`` that ``select``
    keeps, with ids from ``describe``; a single failing param if the file cannot be read."""
    data = _read(name)
    if isinstance(data, MissingReference):
        return [pytest.param(data, id=f"{name}-unreadable")]
    return [
        pytest.param(entry, id=describe(index, entry))
        for index, entry in enumerate(data[key])
        if select(entry)
    ]


def reference_cases(name: str, select) -> list:
    """The ``cases`` of a reference file that ``select`` keeps, one param per case, with
    the case's ``id`` as its test id."""
    return reference_params(name, "cases", select, lambda i, case: case["id"])


def reference_case(name: str, case_id: str) -> dict:
    """The case with this ``id`` in reference file ``name``."""
    return next(c for c in load_reference(name)["cases"] if c["id"] == case_id)


def expected_value(case: dict, name: str) -> float:
    """An expected figure of a reference case; a missing end of a one-sided interval is
    the open end, ±inf."""
    value = case["expected"][name]
    if value is None and name in ("ci_low", "ci_high"):
        return -np.inf if name == "ci_low" else np.inf
    return value


def gbstats_cases(*kinds: str) -> list:
    return reference_params(
        "gbstats.json",
        "cases",
        lambda case: case["kind"] in kinds,
        lambda i, case: f"{case['kind']}-{'rel' if case['relative'] else 'abs'}-{i}",
    )


def _java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(home and Path(home, "bin", "java").exists())


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole run (starting one costs seconds)."""
    pytest.importorskip(
        "pyspark", reason="pyspark is not installed (pip install 'splitlab[spark]')"
    )
    if not _java_found():
        pytest.skip("no Java runtime found for Spark (install a JDK, e.g. openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("splitlab-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

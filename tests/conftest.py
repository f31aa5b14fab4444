from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


def load_reference(name: str) -> dict:
    path = REFERENCE / name
    if not path.exists():
        pytest.fail(f"reference file {path} is missing: shared/ must lie beside the repository")
    return json.loads(path.read_text())


def gbstats_cases(*kinds: str) -> list[dict]:
    path = REFERENCE / "gbstats.json"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.xfail(reason=f"{path} missing", run=False))]
    cases = json.loads(path.read_text())["cases"]
    return [
        pytest.param(case, id=f"{case['kind']}-{'rel' if case['relative'] else 'abs'}-{i}")
        for i, case in enumerate(cases)
        if case["kind"] in kinds
    ]


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

"""Any frame, file or engine -> one lazy narwhals frame.

Eager in-memory frames (pandas, polars, pyarrow) are handed to DuckDB, the embedded
engine; Parquet and CSV paths or globs are scanned by DuckDB; DuckDB relations, polars
LazyFrames and PySpark DataFrames stay in their own engine. Every later step is a narwhals
expression, so the same group-by runs wherever the data lives and only the sufficient
statistics come back to Python.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import narwhals as nw

from splitlab.errors import InvalidArgumentError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz")


@dataclass
class Source:
    """A lazy frame with what is known about where it came from."""

    frame: nw.LazyFrame
    engine: str
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> dict[str, Any]:
        return dict(self.frame.collect_schema())


def _expand_paths(source: str | os.PathLike | Sequence) -> list[str]:
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    paths: list[str] = []
    for item in items:
        text = os.fspath(item)
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        expanded = []
        for match in matches:
            if os.path.isdir(match):
                expanded.extend(
                    sorted(
                        str(p)
                        for p in Path(match).rglob("*")
                        if p.name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)
                    )
                )
            else:
                expanded.append(match)
        missing = [p for p in expanded if not os.path.exists(p)]
        if not expanded or missing:
            raise InvalidArgumentError("source", f"no file matches {text!r}")
        paths.extend(expanded)
    return paths


def _file_fingerprint(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _scan_files(paths: list[str]) -> Source:
    import duckdb

    lowered = [p.lower() for p in paths]
    connection = duckdb.connect()
    # DuckDB (2.0.1) statistics propagation folds isnan() of a Parquet double column to
    # false, so NaN would not count as missing; this connection is ours, so turn it off
    connection.execute("SET disabled_optimizers = 'statistics_propagation'")
    if all(p.endswith(PARQUET_SUFFIXES) for p in lowered):
        kind, read = "parquet", connection.read_parquet
    elif all(p.endswith(CSV_SUFFIXES) for p in lowered):
        kind, read = "csv", connection.read_csv
    else:
        raise InvalidArgumentError(
            "source", "paths must all be Parquet (.parquet) or all CSV (.csv), not a mixture"
        )
    try:
        relation = read(paths)
    except duckdb.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise InvalidArgumentError("source", f"cannot read {kind} file(s): {first_line}") from exc
    description = {
        "kind": kind,
        "paths": paths,
        "files_fingerprint": _file_fingerprint(paths),
    }
    return Source(nw.from_native(relation), "duckdb", description)


def open_source(source: object) -> Source:
    """Wrap ``source`` as a lazy narwhals frame; see the module docstring for what works."""
    if isinstance(source, Source):
        return source
    if isinstance(source, (str, os.PathLike)) or (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(s, (str, os.PathLike)) for s in source)
    ):
        return _scan_files(_expand_paths(source))
    try:
        frame = nw.from_native(source)
    except TypeError as exc:
        raise InvalidArgumentError(
            "source",
            "expected a pandas/polars/pyarrow frame, a DuckDB relation, a PySpark DataFrame "
            f"or a Parquet/CSV path, got {type(source).__name__}",
        ) from exc
    native_module = type(source).__module__.split(".")[0]
    if isinstance(frame, nw.DataFrame):
        import duckdb  # noqa: F401  (the backend narwhals hands eager frames to)

        return Source(frame.lazy(backend="duckdb"), "duckdb", {"kind": native_module})
    engine = {"pyspark": "spark", "sqlframe": "spark"}.get(native_module, native_module)
    return Source(frame, engine, {"kind": native_module})

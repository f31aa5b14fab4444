"""Any frame, file or engine -> one lazy narwhals frame.

Eager in-memory frames (pandas, polars, pyarrow) are handed to DuckDB, the embedded
engine; Parquet and CSV paths or globs are scanned by DuckDB; DuckDB relations, polars
LazyFrames and PySpark DataFrames stay in their own engine. Every later step is a narwhals
expression, so the same group-by runs wherever the data lives and only the sufficient
statistics come back to Python.

Whatever goes wrong while a source is opened is a :class:`~splitlab.errors.SplitlabError`
naming ``source``: an engine's own exception is wrapped in
:class:`~splitlab.errors.EngineError` with the engine's first line. What can be checked
without reading the data is checked here, so that a bad source fails when it is opened and
not later, inside the aggregation:

- an in-memory frame must have at least one column and one row;
- column names must differ other than in case (DuckDB, which runs the query, does not tell
  ``Y`` from ``y``);
- the first line of a CSV file is its header; an empty header cell (the index column
  pandas' ``to_csv`` writes) is named ``column{i}`` after its zero-based position ``i``,
  zero-padded to the digits of the column count (``column00`` in a file of 10 to 99
  columns; ``column0_1`` if that name is taken), DuckDB's rule; two header cells with the same
  name are an error;
- several files must have the same column names (in any order); a column whose type
  differs between files is read as the type that holds all of them when every type is
  numeric (DuckDB ``union_by_name``: 64-bit integers and doubles give doubles, never
  rounded) and is an error otherwise; files without rows only need the same names;
- an empty CSV file (not even a header) is an error.

What cannot be known without reading every row — a CSV value past DuckDB's type-sniffing
sample that does not parse as the sniffed type, a DuckDB relation or polars LazyFrame that
fails when it runs — still fails when the aggregation is collected.

>>> import pandas as pd
>>> source = open_source(pd.DataFrame({"variant": ["control", "b"], "y": [1.0, 2.0]}))
>>> source.engine, sorted(source.columns)
('duckdb', ['variant', 'y'])
>>> open_source(pd.DataFrame({"variant": [], "y": []}))
Traceback (most recent call last):
...
splitlab.errors.InvalidArgumentError: source: the pandas frame has no rows
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import narwhals as nw

from splitlab.errors import (
    EngineError,
    InvalidArgumentError,
    SplitlabError,
    engine_error_types,
    engine_message,
)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
NUMERIC_TYPES = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
    "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE",
)  # fmt: skip


@dataclass
class Source:
    """A lazy frame with what is known about where it came from.

    >>> import pandas as pd
    >>> source = open_source(pd.DataFrame({"variant": ["control", "b"], "y": [1, 2]}))
    >>> {name: str(dtype) for name, dtype in source.columns.items()}
    {'variant': 'String', 'y': 'Int64'}
    """

    frame: nw.LazyFrame
    engine: str
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> dict[str, Any]:
        """Column name -> narwhals dtype, from the engine's schema (no rows are read)."""
        try:
            return dict(self.frame.collect_schema())
        except (*engine_error_types(), OSError) as exc:
            raise EngineError("source", f"cannot read the schema: {engine_message(exc)}") from exc


# ---------------------------------------------------------------------- files


def _connection():
    import duckdb

    connection = duckdb.connect()
    # DuckDB (2.0.1) statistics propagation folds isnan() of a Parquet double column to
    # false, so NaN would not count as missing; this connection is ours, so turn it off
    connection.execute("SET disabled_optimizers = 'statistics_propagation'")
    return connection


def _kind(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lowered.endswith(CSV_SUFFIXES):
        return "csv"
    raise InvalidArgumentError(
        "source",
        f"{path!r} is neither Parquet ({', '.join(PARQUET_SUFFIXES)}) nor CSV "
        f"({', '.join(CSV_SUFFIXES)})",
    )


def _expand_paths(source: str | os.PathLike | Sequence) -> list[str]:
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    paths: list[str] = []
    for item in items:
        text = os.fspath(item)
        if not text.strip():
            raise InvalidArgumentError("source", "a path is empty")
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        expanded = []
        for match in matches:
            if os.path.isdir(match):
                expanded.extend(
                    sorted(
                        str(p)
                        for p in Path(match).rglob("*")
                        if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)
                    )
                )
            else:
                expanded.append(match)
        missing = [p for p in expanded if not os.path.exists(p)]
        if not expanded or missing:
            raise InvalidArgumentError("source", f"no file matches {text!r}")
        paths.extend(expanded)
    return list(dict.fromkeys(paths))


def _file_fingerprint(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class _FileSchema:
    path: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    has_rows: bool


def _check_names(names: Sequence[str], where: str) -> None:
    """Column names must be unique, ignoring case, because DuckDB binds names that way
    (and renames a repeated name, ``y`` then ``y_1``, which would hide the repetition)."""
    folded = Counter(name.casefold() for name in names)
    repeated = [name for name in dict.fromkeys(names) if folded[name.casefold()] > 1]
    if repeated:
        raise InvalidArgumentError(
            "source",
            f"{where} has column names that repeat (ignoring case, as DuckDB does): "
            f"{', '.join(map(repr, repeated))}; rename them",
        )


def _read_schema(connection, kind: str, path: str) -> _FileSchema:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if kind == "parquet":
            metadata = pq.ParquetFile(path).metadata
            written = metadata.schema.to_arrow_schema().names
            has_rows = metadata.num_rows > 0
            relation = connection.read_parquet(path)
        else:
            if os.path.getsize(path) == 0:
                raise InvalidArgumentError(
                    "source", f"CSV file {path!r} is empty (it needs at least a header line)"
                )
            first = connection.read_csv(path, header=False, all_varchar=True).limit(1).fetchall()
            written = [cell for cell in (first[0] if first else ()) if cell and cell.strip()]
            relation = connection.read_csv(path, header=True)
            has_rows = bool(relation.limit(1).fetchall())
        columns = tuple(relation.columns)
        types = tuple(str(t) for t in relation.types)
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        raise EngineError(
            "source", f"cannot read {kind} file {path!r}: {engine_message(exc)}"
        ) from exc
    _check_names(written, f"{kind} file {path!r}")
    return _FileSchema(path, columns, types, has_rows)


def _common_schema(schemas: list[_FileSchema]) -> bool:
    """Check that the files can be read as one table; True if their types differ (then
    DuckDB must unify them by name)."""
    reference = schemas[0]
    for schema in schemas[1:]:
        if set(schema.columns) != set(reference.columns):
            only_here = sorted(set(schema.columns) - set(reference.columns))
            only_there = sorted(set(reference.columns) - set(schema.columns))
            parts = []
            if only_here:
                parts.append(f"{schema.path!r} has {only_here}, which {reference.path!r} lacks")
            if only_there:
                parts.append(f"{reference.path!r} has {only_there}, which {schema.path!r} lacks")
            raise InvalidArgumentError(
                "source", f"the files do not have the same columns: {'; '.join(parts)}"
            )
    with_rows = [schema for schema in schemas if schema.has_rows]
    differ = False
    for column in reference.columns:
        seen: dict[str, str] = {}
        for schema in with_rows:
            seen.setdefault(
                dict(zip(schema.columns, schema.types, strict=True))[column], schema.path
            )
        if len(seen) > 1:
            differ = True
            if not all(t in NUMERIC_TYPES for t in seen):
                described = ", ".join(f"{t} in {p!r}" for t, p in seen.items())
                raise InvalidArgumentError(
                    "source", f"column {column!r} has different types in the files: {described}"
                )
    orders = {schema.columns for schema in with_rows}
    return differ or len(orders) > 1


def _scan_files(paths: list[str]) -> Source:
    import duckdb

    kinds = {_kind(path) for path in paths}
    if len(kinds) > 1:
        raise InvalidArgumentError(
            "source", "paths must all be Parquet (.parquet) or all CSV (.csv), not a mixture"
        )
    (kind,) = kinds
    connection = _connection()
    schemas = [_read_schema(connection, kind, path) for path in paths]
    unify = _common_schema(schemas)
    with_rows = [schema.path for schema in schemas if schema.has_rows]
    if not with_rows:
        where = repr(paths[0]) if len(paths) == 1 else f"none of the {len(paths)} files"
        raise InvalidArgumentError("source", f"{where} has no rows")
    options: dict[str, Any] = {"union_by_name": True} if unify else {}
    if kind == "csv":
        # a relation over a list of files keeps only the options given here; without
        # header=True DuckDB re-sniffs the header at run time and, when a header cell is
        # empty, takes the header line for data
        options["header"] = True
    try:
        if kind == "parquet":
            relation = connection.read_parquet(with_rows, **options)
        else:
            relation = connection.read_csv(with_rows, **options)
        frame = nw.from_native(relation)
        frame.collect_schema()
    except duckdb.Error as exc:
        raise EngineError(
            "source", f"cannot read the {kind} files together: {engine_message(exc)}"
        ) from exc
    description = {
        "kind": kind,
        "paths": paths,
        "files_fingerprint": _file_fingerprint(paths),
    }
    return Source(frame, "duckdb", description)


# ---------------------------------------------------------------------- frames


def _unconvertible_column(connection, native) -> str | None:
    """The first pandas column DuckDB cannot take, to name it in the error."""
    for name in native.columns:
        try:
            connection.from_df(native[[name]]).types  # noqa: B018  (binding is the check)
        except engine_error_types():
            return str(name)
    return None


def _duckdb_relation(frame: nw.DataFrame, native: object, kind: str):
    """An eager frame as a relation on a connection of our own. pandas object columns are
    typed from every value (DuckDB's default looks at the first 1000 only and fails later,
    inside the aggregation, on a value that does not fit)."""
    connection = _connection()
    if kind == "pandas":
        from pandas.api.types import is_object_dtype

        if any(is_object_dtype(dtype) for dtype in native.dtypes):
            connection.execute(f"SET pandas_analyze_sample = {max(len(native), 1000)}")
        try:
            return connection.from_df(native)
        except engine_error_types() as exc:
            column = _unconvertible_column(connection, native)
            where = f"column {column!r}: " if column is not None else ""
            raise EngineError(
                "source", f"DuckDB cannot read the pandas frame: {where}{engine_message(exc)}"
            ) from exc
    table = frame.to_arrow()
    return connection.from_arrow(table)


def open_source(source: object) -> Source:
    """Wrap ``source`` as a lazy narwhals frame; see the module docstring for what works
    and what is checked.

    >>> open_source(["missing/*.parquet"])
    Traceback (most recent call last):
    ...
    splitlab.errors.InvalidArgumentError: source: no file matches 'missing/*.parquet'
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, (list, tuple)) and not source:
        raise InvalidArgumentError("source", "an empty list of paths")
    if isinstance(source, (str, os.PathLike)) or (
        isinstance(source, (list, tuple)) and all(isinstance(s, (str, os.PathLike)) for s in source)
    ):
        return _scan_files(_expand_paths(source))
    kind = type(source).__module__.split(".")[0]
    if kind == "pandas" and hasattr(source, "columns"):
        # narwhals' own message lists the repeated names on lines after the first
        _check_names([str(name) for name in source.columns], "the pandas frame")
    try:
        frame = nw.from_native(source)
    except TypeError as exc:
        raise InvalidArgumentError(
            "source",
            "expected a pandas/polars/pyarrow frame, a DuckDB relation, a PySpark DataFrame "
            f"or a Parquet/CSV path, got {type(source).__name__}",
        ) from exc
    except engine_error_types() as exc:
        raise EngineError("source", engine_message(exc)) from exc
    try:
        if isinstance(frame, nw.DataFrame):
            names = [str(name) for name in frame.columns]
            if not names:
                raise InvalidArgumentError("source", f"the {kind} frame has no columns")
            if len(frame) == 0:
                raise InvalidArgumentError("source", f"the {kind} frame has no rows")
            _check_names(names, f"the {kind} frame")
            opened = Source(
                nw.from_native(_duckdb_relation(frame, source, kind)), "duckdb", {"kind": kind}
            )
        else:
            engine = {"pyspark": "spark", "sqlframe": "spark"}.get(kind, kind)
            opened = Source(frame, engine, {"kind": kind})
        opened.columns  # noqa: B018  (a schema the engine cannot give fails here, not later)
    except SplitlabError:
        raise
    except (*engine_error_types(), OSError) as exc:
        raise EngineError("source", f"cannot read the {kind} frame: {engine_message(exc)}") from exc
    return opened

"""One exception hierarchy for splitlab.

Every public entry point validates its input at the boundary and raises one of these,
naming the argument and what was wrong. All input errors are ``ValueError`` subclasses so
that callers who catch ``ValueError`` keep working.
"""

from __future__ import annotations


class SplitlabError(Exception):
    """Base class of every exception splitlab raises on purpose."""


class InvalidArgumentError(SplitlabError, ValueError):
    """An argument has a bad value: negative counts, NaN, alpha outside (0, 1), ..."""

    def __init__(self, argument: str, problem: str):
        self.argument = argument
        self.problem = problem
        super().__init__(f"{argument}: {problem}")


class ShapeMismatchError(InvalidArgumentError):
    """Arguments that must broadcast together do not."""


class UnknownOptionError(InvalidArgumentError):
    """A method, alternative or other named option is not one splitlab knows."""

    def __init__(self, argument: str, value: object, choices: tuple[str, ...]):
        self.value = value
        self.choices = choices
        super().__init__(argument, f"unknown value {value!r}; expected one of {', '.join(choices)}")


class DegenerateDataWarning(UserWarning):
    """Legal data for which some rows have no defined result (they carry NaN and an error)."""


class EngineError(InvalidArgumentError):
    """The engine that holds the data (DuckDB, polars, Spark, pyarrow, pandas) refused a
    query splitlab built from the user's input. The message names the argument and the
    engine's first line; the query itself is on ``sql`` (None where there is no SQL), so
    that it can be inspected without cluttering the message."""

    def __init__(self, argument: str, problem: str, *, sql: str | None = None):
        self.sql = sql
        super().__init__(argument, problem)


def engine_error_types() -> tuple[type[BaseException], ...]:
    """The base exception classes of the data engines that are already imported (DuckDB,
    polars, pyarrow, narwhals, PySpark, py4j); importing none of them, so catching these
    costs nothing when an engine is not in use.

    >>> import duckdb
    >>> duckdb.Error in engine_error_types()
    True
    """
    import sys

    bases = (
        ("duckdb", "Error"),
        ("polars.exceptions", "PolarsError"),
        ("pyarrow", "ArrowException"),
        ("narwhals.exceptions", "NarwhalsError"),
        ("pyspark.errors", "PySparkException"),
        ("py4j.protocol", "Py4JError"),
    )
    found = []
    for module_name, class_name in bases:
        candidate = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(candidate, type) and issubclass(candidate, BaseException):
            found.append(candidate)
    return tuple(found)


def engine_message(error: BaseException) -> str:
    """The first non-empty line of an engine's error, without its long hints and context.

    >>> engine_message(ValueError("Conversion Error: bad value\\n\\nPossible solutions: ..."))
    'Conversion Error: bad value'
    """
    for line in str(error).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(error).__name__

"""Boundary validation shared by every public entry point.

Each helper names the offending argument in the exception it raises, so that a user who
passes a NaN in the fourth row of ``n_t`` reads ``n_t: contains NaN or infinite values``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from splitlab.errors import InvalidArgumentError, ShapeMismatchError, UnknownOptionError

ALTERNATIVES = ("two-sided", "greater", "less")


def as_float_array(name: str, value: object, *, finite: bool = True) -> np.ndarray:
    """``value`` as a float64 array; reject non-numeric input (numeric strings included:
    "12" is text, not a number) and, if ``finite``, NaN/inf."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind in "USVMm" or (
            raw.dtype.kind == "O" and any(isinstance(v, (str, bytes)) for v in raw.flat)
        ):
            raise TypeError(f"{raw.dtype} values")
        array = raw.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be numeric, got {_describe(value)}") from exc
    if finite and not np.all(np.isfinite(array)):
        raise InvalidArgumentError(name, "contains NaN or infinite values")
    return array


def _describe(value: object) -> str:
    if isinstance(value, (str, bytes)):
        return f"the text {value!r}"
    return type(value).__name__


def as_counts(name: str, value: object, *, positive: bool = False) -> np.ndarray:
    """Non-negative (or positive) finite counts as float64; integral values only."""
    array = as_float_array(name, value)
    if positive and np.any(array <= 0):
        raise InvalidArgumentError(name, "must be positive")
    if np.any(array < 0):
        raise InvalidArgumentError(name, "must be non-negative")
    if np.any(array != np.floor(array)):
        raise InvalidArgumentError(name, "must be whole numbers")
    return array


def check_nonnegative(name: str, array: np.ndarray) -> np.ndarray:
    if np.any(array < 0):
        raise InvalidArgumentError(name, "must be non-negative")
    return array


def check_alpha(alpha: object, name: str = "alpha") -> float:
    """A significance level strictly between 0 and 1."""
    try:
        value = float(alpha)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a number in (0, 1), got {alpha!r}") from exc
    if not 0.0 < value < 1.0:
        raise InvalidArgumentError(name, f"must be in (0, 1), got {alpha!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """True or False (numpy's too); 1, "yes" and other truthy values are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(name, f"must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UnknownOptionError(name, value, tuple(choices))
    return value


def check_alternative(alternative: object) -> str:
    return check_choice("alternative", alternative, ALTERNATIVES)


def broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast named arrays together, naming them all if they do not fit."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError as exc:
        shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in arrays.items())
        raise ShapeMismatchError(
            "/".join(arrays), f"shapes do not broadcast together: {shapes}"
        ) from exc


def two_group_counts(successes_c, n_c, successes_t, n_t) -> list[np.ndarray]:
    """Validated, broadcast conversion counts of a control and a treatment group."""
    successes_c, n_c, successes_t, n_t = broadcast(
        successes_c=as_counts("successes_c", successes_c),
        n_c=as_counts("n_c", n_c),
        successes_t=as_counts("successes_t", successes_t),
        n_t=as_counts("n_t", n_t),
    )
    if np.any(successes_c > n_c):
        raise InvalidArgumentError("successes_c", "must not exceed n_c")
    if np.any(successes_t > n_t):
        raise InvalidArgumentError("successes_t", "must not exceed n_t")
    return [successes_c, n_c, successes_t, n_t]


def counts_and_weights(counts, weights) -> list[np.ndarray]:
    """Unit counts per arm (last axis) and the planned split (equal when None), broadcast."""
    observed = as_counts("counts", counts)
    if observed.ndim == 0:
        raise InvalidArgumentError("counts", "needs an arm axis: one count per arm, last")
    if weights is None:
        split = np.ones(observed.shape[-1])
    else:
        split = as_float_array("weights", weights)
        if np.any(split < 0.0):
            raise InvalidArgumentError("weights", "must be non-negative")
        if split.ndim == 0 or split.shape[-1] != observed.shape[-1]:
            raise ShapeMismatchError(
                "counts/weights",
                f"need one weight per arm: counts {observed.shape}, weights {split.shape}",
            )
    return broadcast(counts=observed, weights=split)


def check_integer(name: str, value: object, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (bools and fractional values refused)."""
    kind = "positive" if minimum == 1 else ("non-negative" if minimum == 0 else f">= {minimum}")
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(name, f"must be a {kind} integer, got {value!r}") from exc
    if isinstance(value, bool) or number != value or number < minimum:
        raise InvalidArgumentError(name, f"must be a {kind} integer, got {value!r}")
    return number

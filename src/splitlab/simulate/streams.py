"""Seeded streams of cumulative sufficient statistics, for simulating monitored experiments.

An experiment that is looked at after every batch of units is, for any test built on
sufficient statistics, a stream of cumulative (n, Σy, Σy²) per arm. :func:`ab_streams` draws
R independent replications of such a stream at K looks in one numba kernel and returns
arrays of shape (R, K), so that a whole simulation — every replication at every look — is
one vectorized call of the test under study. :func:`count_streams` does the same for the
number of units assigned to each arm, the input of a sample-ratio-mismatch test. Both cost
time linear in R × K (× the batch size with ``exact=False``) and return at most
:data:`MAX_CELLS` = 10⁹ cells (R × K, × arms for :func:`count_streams`).

The data-generating laws and how they are drawn are documented in
:mod:`splitlab.simulate._stream_kernels`: normal batches from the exact law of their
sufficient statistics by default (cost independent of the batch size), Bernoulli batches
as one binomial draw, lognormal units one by one.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from splitlab._validation import as_float_array, check_choice
from splitlab.errors import InvalidArgumentError, ShapeMismatchError
from splitlab.simulate import _stream_kernels as kernels
from splitlab.stats.moments import Moments

__all__ = ["ABStreams", "ab_streams", "count_streams"]

DISTRIBUTIONS = ("normal", "bernoulli", "lognormal")
DEFAULT_MEAN = {"normal": 0.0, "bernoulli": 0.5, "lognormal": 1.0}
MAX_SEED = 2**32 - 1


@dataclass(frozen=True, eq=False)
class ABStreams:
    """Cumulative sufficient statistics of R replications at K looks, arrays of shape (R, K).

    Column k of each array holds the totals over all units up to and including look k.
    ``effect`` is the true difference in means (treatment − control) of the generating law
    and ``control_mean`` the control arm's true mean.
    """

    n_control: np.ndarray
    sum_control: np.ndarray
    sum_sq_control: np.ndarray
    n_treatment: np.ndarray
    sum_treatment: np.ndarray
    sum_sq_treatment: np.ndarray
    effect: float
    control_mean: float

    @property
    def shape(self) -> tuple[int, int]:
        """(replications, looks)."""
        return self.n_control.shape

    def control(self) -> Moments:
        """The control arm's cumulative summaries as :class:`Moments` of shape (R, K)."""
        return Moments.from_sums(self.n_control, self.sum_control, self.sum_sq_control)

    def treatment(self) -> Moments:
        """The treatment arm's cumulative summaries as :class:`Moments` of shape (R, K)."""
        return Moments.from_sums(self.n_treatment, self.sum_treatment, self.sum_sq_treatment)


def _positive_int(name: str, value: object, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidArgumentError(name, f"must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidArgumentError(name, f"must be at most {maximum}, got {value!r}")
    return int(value)


# Cells of the (replications, looks[, arms]) arrays a call returns: 10⁹ float64 cells are
# 8 GB (the same cap as :data:`splitlab.simulate.bandits.MAX_CELLS`). Time is linear in
# replications × looks (× batch_size with exact=False, which draws every unit).
MAX_CELLS = 10**9


def _check_cells(replications: int, looks: int, width: int = 1) -> None:
    if replications * looks * width > MAX_CELLS:
        raise InvalidArgumentError(
            "looks", f"replications × looks{' × arms' if width > 1 else ''} must be at most "
            f"{MAX_CELLS}, got {replications} × {looks}{f' × {width}' if width > 1 else ''}",
        )  # fmt: skip


def _seed(seed: object) -> int:
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed <= MAX_SEED
    ):
        raise InvalidArgumentError("seed", f"must be an integer in [0, 2**32 - 1], got {seed!r}")
    return int(seed)


def _number(name: str, value: object) -> float:
    array = as_float_array(name, value)
    if array.ndim != 0:
        raise InvalidArgumentError(name, f"must be a single number, got shape {array.shape}")
    return float(array)


def _batch_sizes(batch_size: object) -> tuple[int, int]:
    if isinstance(batch_size, tuple | list):
        if len(batch_size) != 2:
            raise InvalidArgumentError(
                "batch_size", f"must be one size or a (control, treatment) pair, got {batch_size!r}"
            )
        return _positive_int("batch_size", batch_size[0]), _positive_int(
            "batch_size", batch_size[1]
        )
    size = _positive_int("batch_size", batch_size)
    return size, size


def _parameters(distribution: str, mean: float, sd: float | None, effect: float):
    """Kernel parameters (code, control triple, treatment triple) of the generating law."""
    treatment_mean = mean + effect
    if distribution == "normal":
        spread = 1.0 if sd is None else sd
        if spread <= 0.0:
            raise InvalidArgumentError("sd", f"must be positive, got {sd!r}")
        return kernels.NORMAL, (mean, spread, 0.0), (treatment_mean, spread, 0.0)
    if distribution == "bernoulli":
        if sd is not None:
            raise InvalidArgumentError("sd", "does not apply to Bernoulli data (sd² = p(1 − p))")
        if not 0.0 < mean < 1.0:
            raise InvalidArgumentError("mean", f"must be a rate in (0, 1), got {mean!r}")
        if not 0.0 <= treatment_mean <= 1.0:
            raise InvalidArgumentError(
                "effect", f"puts the treatment rate at {treatment_mean!r}, outside [0, 1]"
            )
        return kernels.BERNOULLI, (mean, 0.0, 0.0), (treatment_mean, 0.0, 0.0)
    spread = 1.0 if sd is None else sd
    if mean <= 0.0:
        raise InvalidArgumentError("mean", f"must be positive for lognormal data, got {mean!r}")
    if spread <= 0.0:
        raise InvalidArgumentError("sd", f"must be positive, got {sd!r}")
    if treatment_mean <= 0.0:
        raise InvalidArgumentError(
            "effect", f"puts the treatment mean at {treatment_mean!r}; lognormal means are > 0"
        )
    # exp(N(μ, σ²)) has mean exp(μ + σ²/2) and sd² = mean² (exp(σ²) − 1).
    log_sd = math.sqrt(math.log1p((spread / mean) ** 2))
    log_mean = math.log(mean) - 0.5 * log_sd * log_sd
    return (
        kernels.LOGNORMAL,
        (log_mean, log_sd, 1.0),
        (log_mean, log_sd, treatment_mean / mean),
    )


def ab_streams(
    replications: int,
    looks: int,
    batch_size: int | tuple[int, int],
    *,
    distribution: str = "normal",
    mean: float | None = None,
    sd: float | None = None,
    effect: float = 0.0,
    exact: bool = True,
    seed: int = 0,
) -> ABStreams:
    """R replications of a two-arm experiment looked at after every batch, as cumulative
    sufficient statistics of shape (``replications``, ``looks``).

    Each look adds ``batch_size`` units to each arm (or a (control, treatment) pair of
    sizes). The control arm's outcomes have mean ``mean`` and, for normal and lognormal
    data, standard deviation ``sd`` (default 1); the treatment arm's mean is
    ``mean + effect`` (``effect=0`` is an A/A test):

    * "normal": N(mean, sd²) in both arms (default mean 0);
    * "bernoulli": rates ``mean`` and ``mean + effect`` (default mean 0.5; ``sd`` must not
      be given);
    * "lognormal": control exp(N(μ, σ²)) with the given mean (default 1) and sd; the
      treatment is the control law scaled by (mean + effect) / mean, so its mean is
      ``mean + effect`` and its skewness the control's.

    With ``exact=True`` (the default) normal batches are drawn from the exact law of their
    sufficient statistics, two draws per batch whatever its size; ``exact=False`` draws
    every unit (for checking the exact route). Bernoulli batches are always one binomial
    draw and lognormal units always drawn one by one. ``seed`` fixes every draw: the same
    arguments and seed give identical arrays.

    >>> streams = ab_streams(1000, 50, 100, effect=0.1, seed=1)
    >>> streams.shape
    (1000, 50)
    >>> streams.n_control[0, :3].tolist()
    [100.0, 200.0, 300.0]
    >>> control, treatment = streams.control(), streams.treatment()
    >>> bool(abs(np.mean(treatment.mean[:, -1] - control.mean[:, -1]) - 0.1) < 0.01)
    True
    """
    replications = _positive_int("replications", replications)
    looks = _positive_int("looks", looks)
    _check_cells(replications, looks)
    size_control, size_treatment = _batch_sizes(batch_size)
    distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
    mean = DEFAULT_MEAN[distribution] if mean is None else _number("mean", mean)
    sd = None if sd is None else _number("sd", sd)
    effect = _number("effect", effect)
    if not isinstance(exact, bool | np.bool_):
        raise InvalidArgumentError("exact", f"must be True or False, got {exact!r}")
    seed = _seed(seed)
    code, control, treatment = _parameters(distribution, mean, sd, effect)

    sums = kernels.ab_sums(
        replications, looks, size_control, size_treatment, code,
        np.array(control), np.array(treatment), bool(exact), seed,
    )  # fmt: skip
    look_number = np.arange(1, looks + 1, dtype=np.float64)
    shape = (replications, looks)
    return ABStreams(
        n_control=np.array(np.broadcast_to(size_control * look_number, shape)),
        sum_control=sums[0],
        sum_sq_control=sums[1],
        n_treatment=np.array(np.broadcast_to(size_treatment * look_number, shape)),
        sum_treatment=sums[2],
        sum_sq_treatment=sums[3],
        effect=effect,
        control_mean=mean,
    )


def count_streams(
    replications: int,
    looks: int,
    batch_size: int,
    probabilities: object,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Cumulative units per arm when each look assigns ``batch_size`` new units, each to
    arm a independently with probability ``probabilities[a]`` (normalized to sum to 1).

    Returns int64 counts of shape (``replications``, ``looks``, arms): the input of an SRM
    test looked at after every batch. Draw the stream from the true assignment
    probabilities and test it against the configured weights; equal ones give an A/A
    (no-mismatch) stream. One multinomial draw per look; ``seed`` fixes every draw.

    >>> counts = count_streams(200, 30, 100, [0.5, 0.3, 0.2], seed=3)
    >>> counts.shape, counts.dtype.name
    ((200, 30, 3), 'int64')
    >>> bool(np.all(counts.sum(axis=-1) == 100 * np.arange(1, 31)))
    True
    """
    replications = _positive_int("replications", replications)
    looks = _positive_int("looks", looks)
    batch_size = _positive_int("batch_size", batch_size)
    weights = as_float_array("probabilities", probabilities)
    if weights.ndim != 1 or weights.size < 2:
        raise ShapeMismatchError(
            "probabilities",
            f"must be one probability per arm (≥ 2 arms), got shape {weights.shape}",
        )
    if np.any(weights < 0.0) or not weights.sum() > 0.0:
        raise InvalidArgumentError("probabilities", "must be non-negative and not all zero")
    _check_cells(replications, looks, weights.size)
    seed = _seed(seed)
    return kernels.assignment_counts(replications, looks, batch_size, weights / weights.sum(), seed)

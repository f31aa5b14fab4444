"""Seeded data generators and the tolerance rule shared by the validity simulations.

Generators return one summary per replication (arrays of shape ``(replications,)``), so a
whole simulation is one vectorized call of the test under study. Where the data are normal
the summaries are drawn from their exact sampling distributions (the sample mean is normal,
the scatter matrix Wishart, independently), which costs the same for any group size; other
data are drawn raw with shape ``(replications, n)`` and reduced with ``from_samples``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import numpy as np
from scipy import stats

from splitlab.stats.moments import JointMoments, Moments

TOLERANCE_SIGMAS = 4.0


def binomial_tolerance(target: float, replications: int, sigmas: float = TOLERANCE_SIGMAS) -> float:
    """Allowed |observed rate − target| for a rate estimated from ``replications``
    independent Bernoulli trials: ``sigmas · sqrt(target (1 − target) / replications)``.

    With the default 4 standard errors a correct method fails a check with probability
    about 6e-5, so a file of a few dozen checks fails by chance well under 1% of seeds,
    while a method that is off by more than about 5 standard errors fails almost surely.
    """
    return sigmas * float(np.sqrt(target * (1.0 - target) / replications))


def assert_rate_close(rate: float, target: float, replications: int, what: str = "rate") -> None:
    """Assert that an observed rate lies within :func:`binomial_tolerance` of ``target``."""
    tolerance = binomial_tolerance(target, replications)
    assert abs(rate - target) <= tolerance, (
        f"{what} {rate:.4f} differs from {target:.4f} by more than {tolerance:.4f} "
        f"(= {TOLERANCE_SIGMAS:g} binomial standard errors over {replications} replications)"
    )


def rejection_rate(p_value: np.ndarray, alpha: float) -> float:
    """Share of replications with p < alpha; a NaN p-value is a failure, not a pass."""
    p_value = np.asarray(p_value)
    assert not np.isnan(p_value).any(), "some replications have no p-value"
    return float(np.mean(p_value < alpha))


def coverage_rate(ci_low: np.ndarray, ci_high: np.ndarray, truth: float) -> float:
    """Share of replications whose interval contains ``truth``; NaN bounds count as misses
    after asserting there are none."""
    ci_low, ci_high = np.asarray(ci_low), np.asarray(ci_high)
    assert not (np.isnan(ci_low).any() or np.isnan(ci_high).any()), "some intervals are NaN"
    return float(np.mean((ci_low <= truth) & (truth <= ci_high)))


def normal_moments(
    rng: np.random.Generator, replications: int, n: int, mean: float, sd: float
) -> Moments:
    """Summaries of ``n`` iid N(mean, sd²) draws per replication, built with ``from_sums``
    from the exact law: x̄ ~ N(mean, sd²/n) independent of (n − 1) s² / sd² ~ χ²(n − 1)."""
    sample_mean = rng.normal(mean, sd / np.sqrt(n), size=replications)
    m2 = sd**2 * rng.chisquare(n - 1, size=replications)
    total = n * sample_mean
    return Moments.from_sums(np.full(replications, n), total, m2 + total * sample_mean)


def bivariate_normal_joint_moments(
    rng: np.random.Generator,
    replications: int,
    n: int,
    mean_y: float,
    mean_x: float,
    sd_y: float,
    sd_x: float,
    correlation: float,
) -> JointMoments:
    """Summaries of ``n`` iid bivariate normal (y, x) pairs per replication, built with
    ``JointMoments.from_sums`` from the exact law: the mean vector is N(μ, Σ/n) independent
    of the scatter matrix, which is Wishart(n − 1, Σ) and drawn by Bartlett's decomposition
    S = L A Aᵀ Lᵀ (L the Cholesky factor of Σ, A lower triangular with A₁₁² ~ χ²(n − 1),
    A₂₂² ~ χ²(n − 2), A₂₁ ~ N(0, 1))."""
    cov = np.array([[sd_y**2, correlation * sd_y * sd_x], [correlation * sd_y * sd_x, sd_x**2]])
    chol = np.linalg.cholesky(cov)
    means = np.array([mean_y, mean_x]) + rng.standard_normal((replications, 2)) @ chol.T / np.sqrt(
        n
    )
    bartlett = np.zeros((replications, 2, 2))
    bartlett[:, 0, 0] = np.sqrt(rng.chisquare(n - 1, size=replications))
    bartlett[:, 1, 1] = np.sqrt(rng.chisquare(n - 2, size=replications))
    bartlett[:, 1, 0] = rng.standard_normal(replications)
    factor = chol @ bartlett
    scatter = factor @ np.swapaxes(factor, 1, 2)
    sum_y, sum_x = n * means[:, 0], n * means[:, 1]
    return JointMoments.from_sums(
        np.full(replications, n),
        sum_y,
        scatter[:, 0, 0] + sum_y * means[:, 0],
        sum_x,
        scatter[:, 1, 1] + sum_x * means[:, 1],
        scatter[:, 0, 1] + sum_y * means[:, 1],
    )


def normal_power(effect: float, se: float, alpha: float, alternative: str = "two-sided") -> float:
    """Normal-approximation power of a z test of an effect with known standard error:
    two-sided 1 − Φ(z₁₋α/₂ − δ/se) + Φ(−z₁₋α/₂ − δ/se); one-sided 1 − Φ(z₁₋α ∓ δ/se)."""
    shift = effect / se
    if alternative == "two-sided":
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        return float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))
    z = stats.norm.ppf(1.0 - alpha)
    return float(stats.norm.sf(z - shift if alternative == "greater" else z + shift))


def in_chunks(
    make: Callable[[int], Moments | JointMoments], replications: int, chunk: int = 10_000
) -> Moments | JointMoments:
    """Call ``make(size)`` for successive chunks of replications and join the summaries, so
    raw samples of shape (replications, n) never have to be held at once."""
    parts = [make(min(chunk, replications - start)) for start in range(0, replications, chunk)]
    kind = type(parts[0])
    names = [item.name for item in fields(kind) if item.name != "ddof"]
    return kind(*(np.concatenate([getattr(part, name) for part in parts]) for name in names))

"""Synthetic experiment logs for demos, notebooks and tests.

:func:`generate_demo_data` writes a realistic unit-level dataset as Parquet: four concurrent
experiments on one product, one row per exposed unit. Every unit has a latent engagement
that drives its purchase propensity, its basket size and its sessions, in the pre-period as
well as during the experiment, so ``pre_revenue`` predicts ``revenue`` and CUPED shrinks
its variance. The planted truths:

===================  ===================  ====================================================
experiment           variants             truth
===================  ===================  ====================================================
checkout-redesign    control, redesign    conversion +5% relative, spend per buyer +2%
ranker-v2            control, v2,         clicks per session +2% (v2) and +5%
                     v2-personalized      (v2-personalized); conversion +3% for the latter
pricing-test         control,             conversion −4%, spend per buyer +10%: revenue per
                     price-plus-10        unit about +5.6%
onboarding-email     control, email       no effect at all; but a quarter of the
                                          low-engagement users drawn for the email fall back
                                          to control (their address bounced), so the 50/50
                                          design logs about 45/55 (an SRM) and the email arm
                                          looks better than it is
===================  ===================  ====================================================

:func:`demo_experiment` is the small in-memory two-arm example of notebook 01.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from splitlab.errors import InvalidArgumentError

START = np.datetime64("2026-03-02T00:00:00", "us")
DAYS = 14
COUNTRIES = ("US", "IN", "BR", "DE", "GB", "JP", "FR")
COUNTRY_SHARE = np.array([0.34, 0.16, 0.12, 0.11, 0.10, 0.09, 0.08])
COUNTRY_CONVERSION = np.array([1.2, 0.6, 0.8, 1.1, 1.1, 0.9, 1.0])
COUNTRY_SPEND = np.array([1.2, 0.4, 0.6, 1.1, 1.0, 1.1, 1.0])

# name, share of units, conversion rate at average engagement,
# {variant: (weight, conversion lift, spend lift, clicks-per-session lift)}
EXPERIMENTS: tuple[tuple[str, float, float, dict[str, tuple[float, float, float, float]]], ...] = (
    ("checkout-redesign", 0.30, 0.07, {
        "control": (0.5, 1.00, 1.00, 1.00),
        "redesign": (0.5, 1.05, 1.02, 1.00),
    }),
    ("ranker-v2", 0.30, 0.06, {
        "control": (1 / 3, 1.00, 1.00, 1.00),
        "v2": (1 / 3, 1.00, 1.00, 1.02),
        "v2-personalized": (1 / 3, 1.03, 1.00, 1.05),
    }),
    ("pricing-test", 0.20, 0.065, {
        "control": (0.5, 1.00, 1.00, 1.00),
        "price-plus-10": (0.5, 0.96, 1.10, 1.00),
    }),
    ("onboarding-email", 0.20, 0.045, {
        "control": (0.5, 1.00, 1.00, 1.00),
        "email": (0.5, 1.00, 1.00, 1.00),
    }),
)  # fmt: skip
SRM_EXPERIMENT = "onboarding-email"
SRM_VARIANT = "email"
SRM_FALLBACK_SHARE = 0.25  # of low-engagement units drawn for the email that fall back
LOW_ENGAGEMENT_QUANTILE = 0.4


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _dictionary(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels))


def _assign(
    rng: np.random.Generator, experiment: np.ndarray, engagement: np.ndarray
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Variant codes into one global label table, and per-code (conversion, spend,
    clicks) lifts. A low-engagement unit drawn for the SRM experiment's variant falls back
    to its control with probability SRM_FALLBACK_SHARE."""
    labels: list[str] = []
    lifts = []
    offsets = []
    cumulative = []
    for *_, arms in EXPERIMENTS:
        offsets.append(len(labels))
        weights = np.array([arm[0] for arm in arms.values()])
        cumulative.append(np.cumsum(weights / weights.sum()))
        for variant, (_weight, *lift) in arms.items():
            labels.append(variant)
            lifts.append(lift)
    draws = rng.random(experiment.size)
    local = np.zeros(experiment.size, dtype=np.int32)
    for index, edges in enumerate(cumulative):
        rows = experiment == index
        local[rows] = np.searchsorted(edges[:-1], draws[rows], side="right")
    codes = np.asarray(offsets, dtype=np.int32)[experiment] + local

    srm_index = [name for name, *_ in EXPERIMENTS].index(SRM_EXPERIMENT)
    srm_code = offsets[srm_index] + list(EXPERIMENTS[srm_index][3]).index(SRM_VARIANT)
    low = engagement < np.quantile(engagement, LOW_ENGAGEMENT_QUANTILE)
    fallback = (codes == srm_code) & low & (rng.random(experiment.size) < SRM_FALLBACK_SHARE)
    codes[fallback] = offsets[srm_index] + list(EXPERIMENTS[srm_index][3]).index("control")
    return codes, labels, np.asarray(lifts)


def generate_demo_data(
    directory: str | os.PathLike, *, units: int = 1_000_000, seed: int = 2026
) -> list[Path]:
    """Write the demo experiments as Parquet files under ``directory``; return their paths.

    One file per experiment (``<experiment>.parquet``), one row per unit, columns
    ``experiment, variant, user_id, exposed_at, country, converted, revenue, pre_revenue,
    clicks, sessions``. The control label is ``"control"``. Units are exposed over 14 days
    from 2026-03-02, more of them early on. ``revenue`` is zero for non-buyers and
    log-normal for buyers; ``pre_revenue`` is the same unit's revenue in the 28 days before
    the experiment. Deterministic for a given ``seed`` and ``units``. See the module
    docstring for the planted effects.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     [path.name for path in generate_demo_data(directory, units=4_000)]
    ['checkout-redesign.parquet', 'ranker-v2.parquet', 'pricing-test.parquet', 'onboarding-email.parquet']
    """  # noqa: E501
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1_000:
        raise InvalidArgumentError("units", f"must be an integer of at least 1000, got {units!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgumentError("seed", f"must be an integer, got {seed!r}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InvalidArgumentError("directory", f"{str(directory)!r} exists and is not a directory")
    rng = np.random.default_rng(seed)
    units = int(units)

    shares = np.array([share for _, share, *_ in EXPERIMENTS])
    sizes = np.floor(shares * units).astype(np.int64)
    sizes[0] += units - sizes.sum()
    experiment = np.repeat(np.arange(len(EXPERIMENTS), dtype=np.int32), sizes)
    base_rate = np.array([rate for _, _, rate, _ in EXPERIMENTS])[experiment]

    country = np.searchsorted(np.cumsum(COUNTRY_SHARE)[:-1], rng.random(units), side="right")
    engagement = rng.standard_normal(units)
    variant, labels, lifts = _assign(rng, experiment, engagement)
    conversion_lift, spend_lift, clicks_lift = lifts[variant].T

    # A unit's purchase propensity and basket size are stable traits: they drive the
    # 28-day pre-period and the 14-day experiment alike, which is what CUPED exploits.
    logit = np.log(base_rate * COUNTRY_CONVERSION[country] / (1.0 - base_rate))
    propensity = _logistic(logit + 1.4 * engagement)
    basket = COUNTRY_SPEND[country] * rng.lognormal(np.log(35.0) + 0.4 * engagement, 0.5)
    pre_orders = rng.binomial(4, propensity)
    pre_revenue = pre_orders * basket * rng.lognormal(-0.045, 0.3, units)
    converted = rng.random(units) < np.minimum(propensity * conversion_lift, 1.0)
    orders = converted * (1 + rng.poisson(2.0 * propensity))
    revenue = orders * basket * spend_lift * rng.lognormal(-0.045, 0.3, units)

    sessions = 1 + rng.poisson(np.exp(1.3 + 0.45 * engagement))
    click_rate = rng.gamma(4.0, 1.4 / 4.0, units) * clicks_lift
    clicks = rng.poisson(sessions * click_rate)

    # exposures arrive front-loaded: returning users see the experiment first
    seconds = (DAYS * 86_400 * rng.random(units) ** 1.4).astype(np.int64)
    exposed_at = START + seconds * 1_000_000
    user_id = rng.permutation(units).astype(np.int64) + 10_000_000

    experiment_names = [name for name, *_ in EXPERIMENTS]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for index, name in enumerate(experiment_names):
        part = slice(bounds[index], bounds[index + 1])
        order = np.argsort(exposed_at[part], kind="stable") + bounds[index]
        table = pa.table(
            {
                "experiment": _dictionary(experiment[order], experiment_names),
                "variant": _dictionary(variant[order], labels),
                "user_id": user_id[order],
                "exposed_at": pa.array(exposed_at[order], pa.timestamp("us")),
                "country": _dictionary(country[order].astype(np.int32), list(COUNTRIES)),
                "converted": converted[order].astype(np.int8),
                "revenue": np.round(revenue[order], 2),
                "pre_revenue": np.round(pre_revenue[order], 2),
                "clicks": clicks[order].astype(np.int32),
                "sessions": sessions[order].astype(np.int32),
            }
        )
        path = directory / f"{name}.parquet"
        temporary = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)
        paths.append(path)
    return paths


def demo_experiment(seed: int = 2026, users_per_arm: int = 20_000) -> dict[str, np.ndarray]:
    """A seeded two-arm experiment with unit-level outcomes, as a dict of columns.

    The treatment raises conversion by 6% (10% → 10.6%) and spend per converter by 3%;
    each user's purchase propensity drives both periods, so pre-period revenue (four
    weeks) predicts post-period revenue, which is what CUPED uses.
    """
    rng = np.random.default_rng(seed)
    variant = np.repeat(["control", "treatment"], users_per_arm)
    is_treated = variant == "treatment"
    propensity = rng.beta(1.0, 9.0, variant.size)
    spend_level = rng.lognormal(3.0, 0.8, variant.size)
    converted = rng.random(variant.size) < propensity * np.where(is_treated, 1.06, 1.0)
    pre_revenue = spend_level * rng.binomial(4, propensity)
    revenue = converted * spend_level * np.where(is_treated, 1.03, 1.0)
    sessions = rng.poisson(4.0, variant.size) + 1
    clicks = rng.binomial(sessions, np.where(is_treated, 0.31, 0.30))
    return {
        "variant": variant,
        "converted": converted.astype(float),
        "revenue": revenue,
        "pre_revenue": pre_revenue,
        "clicks": clicks.astype(float),
        "sessions": sessions.astype(float),
    }

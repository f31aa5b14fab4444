"""Generate tests/data/reference/gbstats_power.json from GrowthBook's gbstats source.

Run in a throwaway virtualenv (numpy, scipy, pandas, pydantic, packaging, pytest) with
GrowthBook's source at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469:
    git clone https://github.com/growthbook/growthbook && git -C growthbook checkout 8f1db445
    GBSTATS_SRC=growthbook/packages/stats python tests/data/make_gbstats_power.py OUT.json
Nothing here imports splitlab: every expected value is gbstats' own output
(``gbstats.power.midexperimentpower.MidExperimentPower``), except ``scaling_factor_root``,
which is scipy's brentq run on gbstats' own ``MidExperimentPower.power`` (gbstats stops its
bisection once the power is within 1e-5 of the target, so its scaling factor is only that
close to the root).
"""

from __future__ import annotations

import copy
import json
import os
import sys

import numpy as np
from scipy.optimize import brentq

GB = os.environ.get("GBSTATS_SRC", "growthbook/packages/stats")
sys.path.insert(0, GB)

from gbstats.bayesian.tests import (  # noqa: E402
    EffectBayesianABTest,
    EffectBayesianConfig,
    GaussianPrior,
)
from gbstats.frequentist.tests import (  # noqa: E402
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import SampleMeanStatistic  # noqa: E402
from gbstats.models.tests import BaseConfig  # noqa: E402
from gbstats.power.midexperimentpower import (  # noqa: E402
    MidExperimentPower,
    MidExperimentPowerConfig,
)
from tests.test_midexperimentpower import TestMidExperimentPower  # noqa: E402

COMMIT = "8f1db4456915a8e7b7faf23d5632ca7219d2f469"
TEST_FILE = "packages/stats/tests/test_midexperimentpower.py"
SEED = 20261204
# gbstats' power at these scaling factors k (n·k more units) pins the whole power curve
CURVE_SCALING = (0.0, 0.25, 1.0, 3.0, 10.0, 50.0)


def method_of(power_config):
    prior = power_config.prior_effect
    if prior is not None and prior.proper:
        return "bayes"
    return "cs" if power_config.sequential else "fixed"


def describe(mid, power_config, relative, alpha):
    """Inputs in splitlab's vocabulary and gbstats' own settings, from one MidExperimentPower."""
    prior = power_config.prior_effect
    proper = prior is not None and prior.proper
    return {
        "se": float(mid.effect_moments.standard_error),
        "n": float(mid.pairwise_sample_size),
        "mde": float(power_config.target_mde),
        "relative": relative,
        "alpha": alpha,
        "target_power": float(power_config.target_power),
        "method": method_of(power_config),
        "n_star": float(power_config.sequential_tuning_parameter),
        "prior": [float(prior.mean), float(np.sqrt(prior.variance))] if proper else None,
        "tests": int(mid.num_tests),
        "goal_metrics": int(power_config.num_goal_metrics),
        "gbstats_config": {
            "num_goal_metrics": power_config.num_goal_metrics,
            "num_variations": power_config.num_variations,
            "p_value_corrected": power_config.p_value_corrected,
            "sequential": power_config.sequential,
            "sequential_tuning_parameter": power_config.sequential_tuning_parameter,
            "prior_effect": None
            if prior is None
            else {"mean": prior.mean, "variance": prior.variance, "proper": prior.proper},
        },
    }


def expected(mid):
    """gbstats' figures: power now, its scaling-factor search and sample size, the curve."""
    found = mid.calculate_scaling_factor()
    sized = mid.calculate_sample_size()
    target = mid.adjusted_power
    scaling = found.scaling_factor
    if mid.already_powered:
        root = None
    else:
        upper = 1.0
        while mid.power(upper) < target:
            upper *= 2.0
        root = brentq(lambda k: mid.power(k) - target, 0.0, upper, xtol=1e-14, rtol=1e-14)
    return {
        "power": mid.power(0),
        "adjusted_power": target,
        "already_powered": bool(mid.already_powered),
        "scaling_factor": None if scaling is None else float(scaling),
        "power_at_scaling_factor": None if scaling is None else mid.power(scaling),
        "additional_users": None
        if sized.additional_users is None
        else float(sized.additional_users),
        "update_message": sized.update_message,
        "scaling_factor_root": root,
        "curve": [[k, mid.power(k)] for k in CURVE_SCALING],
    }


def case(cid, origin, mid, power_config, relative, alpha, literal=None):
    entry = {
        "id": cid,
        "origin": origin,
        **describe(mid, power_config, relative, alpha),
        "expected": expected(mid),
        "produced_by": (
            "MidExperimentPower(test.moments_result, test.compute_result(), "
            "BaseConfig(alpha, difference_type), MidExperimentPowerConfig(...)): power(0), "
            "calculate_scaling_factor(), calculate_sample_size(), already_powered, "
            "adjusted_power, power(k) for k in curve"
        ),
    }
    if literal is not None:
        entry["literal"] = literal
    return entry


def ported():
    fixture = TestMidExperimentPower()
    fixture.setUp()
    cite = f"{TEST_FILE}@{COMMIT[:8]}"
    rows = (
        ("freq", fixture.m_freq, fixture.power_config_freq, 25.45703125),
        ("seq", fixture.m_seq, fixture.power_config_seq, 55.66796875),
        ("bayesian", fixture.m_bayes, fixture.power_config_bayes, 13.9404296875),
    )
    cases = []
    for name, mid, power_config, scaling_true in rows:
        test_name = f"test_calculate_midexperiment_power_{name}"
        entry = case(
            f"ported-{name}",
            f"ported: {cite} {test_name} (setUp: stat_a, stat_b, relative, alpha 0.05, "
            "target power 0.8, target_mde 0.05)",
            mid,
            power_config,
            relative=fixture.config.difference_type == "relative",
            alpha=fixture.alpha,
            literal={
                "scaling_factor": scaling_true,
                "power_at_scaling_factor": 0.8,
                "places": 4,
                "from": f"{test_name}: scaling_factor_true, assertAlmostEqual(power, 0.8)",
            },
        )
        got = entry["expected"]["scaling_factor"]
        assert abs(got - scaling_true) < 5e-5, (name, got, scaling_true)
        cases.append(entry)
    return cases


def sample_mean(rng, n, mean, sd):
    y = rng.normal(mean, sd, n)
    return SampleMeanStatistic(n=int(n), sum=float(y.sum()), sum_squares=float(y @ y))


def constructed(rng, index, method, relative):
    """Raw normal samples reduced to sums, then gbstats' own test and power objects."""
    n_c = int(rng.integers(200, 20_000))
    n_t = int(n_c * rng.uniform(0.7, 1.3))
    base = float(rng.uniform(2.0, 20.0))
    sd = float(base * rng.uniform(0.3, 2.0))
    lift = float(rng.uniform(-0.05, 0.08))
    stats = [(sample_mean(rng, n_c, base, sd), sample_mean(rng, n_t, base * (1 + lift), sd))]
    alpha = float(rng.choice([0.05, 0.1, 0.01]))
    difference_type = "relative" if relative else "absolute"
    scale = 1.0 if relative else base
    num_variations = int(rng.choice([2, 2, 3, 4]))
    num_goal_metrics = int(rng.choice([1, 1, 2, 3]))
    prior = None
    if method == "bayes":
        prior = GaussianPrior(
            mean=float(rng.uniform(-0.03, 0.05) * scale),
            variance=float((rng.uniform(0.01, 0.2) * scale) ** 2),
            proper=True,
        )
    power_config = MidExperimentPowerConfig(
        target_power=float(rng.choice([0.8, 0.9, 0.5])),
        target_mde=float(rng.uniform(0.005, 0.08) * scale),
        num_goal_metrics=num_goal_metrics,
        num_variations=num_variations,
        prior_effect=prior,
        p_value_corrected=bool(rng.random() < 0.4),
        sequential=method == "cs",
        sequential_tuning_parameter=float(rng.choice([5000.0, 1000.0, 50_000.0])),
    )
    if method == "cs":
        test = SequentialTwoSidedTTest(
            copy.deepcopy(stats),
            SequentialConfig(
                alpha=alpha,
                difference_type=difference_type,
                sequential_tuning_parameter=power_config.sequential_tuning_parameter,
            ),
        )
    elif method == "bayes":
        test = EffectBayesianABTest(
            copy.deepcopy(stats),
            EffectBayesianConfig(prior_effect=prior, alpha=alpha, difference_type=difference_type),
        )
    else:
        test = TwoSidedTTest(
            copy.deepcopy(stats), FrequentistConfig(alpha=alpha, difference_type=difference_type)
        )
    result = test.compute_result()
    mid = MidExperimentPower(
        test.moments_result,
        result,
        BaseConfig(alpha=alpha, difference_type=difference_type),
        power_config,
    )
    scale_name = "rel" if relative else "abs"
    return case(
        f"constructed-{method}-{scale_name}-{index}",
        f"constructed (seed {SEED}): normal samples, gbstats {type(test).__name__}",
        mid,
        power_config,
        relative,
        alpha,
    )


def main(out_path):
    rng = np.random.default_rng(SEED)
    cases = ported()
    index = 0
    for method in ("fixed", "cs", "bayes"):
        for relative in (False, True):
            for _ in range(5):
                cases.append(constructed(rng, index, method, relative))
                index += 1
    document = {
        "source": f"GrowthBook gbstats, packages/stats at commit {COMMIT}",
        "module": "gbstats/power/midexperimentpower.py",
        "seed": SEED,
        "cases": cases,
    }
    with open(out_path, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")
    print(f"{len(cases)} cases -> {out_path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/reference/gbstats_power.json")

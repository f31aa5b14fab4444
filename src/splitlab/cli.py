"""The ``splitlab`` command line.

``splitlab demo`` runs a complete A/B readout on an embedded, seeded example experiment
(conversion, revenue with CUPED, clicks per session) and prints the results table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

import splitlab
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.frequentist import proportions_test, ratio_test, ttest
from splitlab.stats.moments import JointMoments, Moments


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


def demo_results(data: dict[str, np.ndarray], alpha: float = 0.05) -> pd.DataFrame:
    """Readout of :func:`demo_experiment`: one row per (metric, scale)."""
    arms = [data["variant"] == name for name in ("control", "treatment")]
    conversions = [data["converted"][arm].sum() for arm in arms]
    counts = [arm.sum() for arm in arms]
    revenue = [Moments.from_samples(data["revenue"][arm]) for arm in arms]
    revenue_joint = [
        JointMoments.from_samples(data["revenue"][arm], data["pre_revenue"][arm]) for arm in arms
    ]
    clicks = [JointMoments.from_samples(data["clicks"][arm], data["sessions"][arm]) for arm in arms]
    rows = []
    for relative in (False, True):
        scale = "relative" if relative else "absolute"
        results = {
            "conversion (z test)": proportions_test(
                conversions[0], counts[0], conversions[1], counts[1],
                alpha=alpha, relative=relative,
            ),
            "revenue (Welch)": ttest(*revenue, alpha=alpha, relative=relative),
            "revenue (CUPED)": cuped_test(*revenue_joint, alpha=alpha, relative=relative),
            "clicks per session (ratio)": ratio_test(*clicks, alpha=alpha, relative=relative),
        }  # fmt: skip
        for metric, result in results.items():
            rows.append(
                {
                    "metric": metric,
                    "scale": scale,
                    "effect": float(result.effect),
                    "ci_low": float(result.ci_low),
                    "ci_high": float(result.ci_high),
                    "p_value": float(result.p_value),
                    "significant": bool(result.p_value < alpha),
                    "error": result.error,
                }
            )
    return pd.DataFrame(rows)


def _demo(arguments: argparse.Namespace) -> int:
    data = demo_experiment(seed=arguments.seed)
    table = demo_results(data, alpha=arguments.alpha)
    if arguments.format == "json":
        print(json.dumps(table.to_dict(orient="records"), indent=2))
        return 0
    print(f"splitlab {splitlab.__version__} demo: 2 arms x 20,000 users (seed {arguments.seed})")
    with pd.option_context("display.width", 120, "display.float_format", "{:.5f}".format):
        print(table.to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="splitlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=splitlab.__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run an A/B readout on an embedded example")
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--alpha", type=float, default=0.05)
    demo.add_argument("--format", choices=("table", "json"), default="table")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.handler(arguments)
    except ValueError as exc:
        print(f"splitlab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Run a bandit policy against an environment, many replications at once, in numba.

:func:`simulate` gives every replication its own copy of the policy's state (the copy axis
of :mod:`splitlab.bandits.base`) and runs all of them through the horizon with the
policy's own ``_select_kernel`` / ``_update_kernel``. The replications are cut into blocks
of :data:`BLOCK` copies; each block runs its whole time loop inside one compiled function
(:func:`splitlab.simulate._bandit_kernels.run_block`, which releases the GIL) on a pool of
threads, one per usable core. Each block seeds its own generator from ``seed`` and its
index, so the result depends on ``seed`` alone, not on the number of threads.

>>> from splitlab.bandits.mab import ThompsonSampling
>>> from splitlab.simulate import BernoulliArms, simulate
>>> result = simulate(ThompsonSampling(), BernoulliArms([0.3, 0.5, 0.7]), 500, 20, seed=1)
>>> result.regret.shape
(20, 500)
>>> bool(result.final_regret.mean() < 0.4 * 500 / 3)
True
>>> list(result.summary().columns)
['step', 'mean_cumulative_regret', 'band', 'lower', 'upper']
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from splitlab.bandits.base import Policy
from splitlab.errors import InvalidArgumentError
from splitlab.simulate import _bandit_kernels as kernels
from splitlab.simulate.environments import Environment

__all__ = ["RECORDS", "SimulationResult", "simulate"]

RECORDS = ("regret", "choices", "rewards", "contexts")
# Copies per block: blocks are the unit of seeding and of work handed to a thread.
BLOCK = 32
MAX_SEED = 2**32 - 1
# Cells of one recorded (replications, horizon[, features]) array, and of the per-block
# cumulative-regret sums kept whatever is recorded: 10⁹ float64 cells are 8 GB. Time is
# linear in replications × horizon × arms; this caps the memory.
MAX_CELLS = 10**9
Z_95 = 1.959963984540054


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Per-step arrays of shape (replications, horizon) — ``None`` when not recorded — and
    the cumulative-regret curve over replications.

    ``regret[r, t]`` is the pseudo-regret of step t (best expected reward minus the chosen
    arm's), ``choices`` the arm chosen, ``rewards`` the realized reward, ``contexts``
    (replications, horizon, d) the contexts seen. ``mean_cumulative_regret`` and
    ``sd_cumulative_regret`` (horizon,) are always computed, whatever is recorded, and
    ``state`` holds every replication's final policy statistics (copy axis first).
    """

    policy: str
    environment: str
    horizon: int
    replications: int
    seed: int
    final_regret: np.ndarray
    mean_cumulative_regret: np.ndarray
    sd_cumulative_regret: np.ndarray
    state: dict[str, np.ndarray]
    regret: np.ndarray | None = None
    choices: np.ndarray | None = None
    rewards: np.ndarray | None = None
    contexts: np.ndarray | None = None

    @property
    def band(self) -> np.ndarray:
        """Half-width of the 95% band of the mean cumulative regret: 1.96 · sd / √R."""
        return Z_95 * self.sd_cumulative_regret / np.sqrt(self.replications)

    def summary(self, steps: int | Sequence[int] | None = None) -> pd.DataFrame:
        """Tidy curve: step (1-based count of decisions), mean cumulative regret, band and
        its bounds; ``steps`` picks rows (an int gives that many evenly spaced steps)."""
        index = np.arange(self.horizon)
        if isinstance(steps, numbers.Integral):
            index = np.unique(np.linspace(0, self.horizon - 1, int(steps)).round().astype(int))
        elif steps is not None:
            index = np.asarray(steps, dtype=np.int64) - 1
        mean, band = self.mean_cumulative_regret[index], self.band[index]
        return pd.DataFrame(
            {
                "step": index + 1,
                "mean_cumulative_regret": mean,
                "band": band,
                "lower": mean - band,
                "upper": mean + band,
            }
        )


def simulate(
    policy,
    env: Environment,
    horizon: int,
    replications: int,
    seed: int = 0,
    *,
    record: Sequence[str] = ("regret", "choices", "rewards"),
    threads: int | None = None,
) -> SimulationResult:
    """Run ``replications`` independent copies of ``policy`` on ``env`` for ``horizon`` steps.

    Every copy starts from the policy's current state (an unsized policy is sized to the
    environment first); the policy object itself is not updated. At each step every copy
    sees a fresh context (contextual environments), chooses with the policy's own select
    kernel, receives its reward (``delay`` steps later for :class:`DelayedRewards`) and is
    updated with the policy's update kernel; a policy with ``discount`` < 1 has its
    statistics shrunk toward the prior by ``discount`` before each update, as
    :meth:`Policy.update` does. ``record`` chooses which (replications, horizon) arrays to
    keep (any of "regret", "choices", "rewards", "contexts"); the cumulative-regret curve
    and final regret are always returned. ``threads`` defaults to the usable cores.

    Work is linear: O(replications × horizon × arms) (× features² for contextual policies).
    Memory is capped: each recorded array holds at most ``MAX_CELLS`` = 10⁹ cells, and
    so do the per-block sums ceil(replications / 32) × horizon.
    """
    horizon = _positive_int("horizon", horizon)
    replications = _positive_int("replications", replications)
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed <= MAX_SEED
    ):
        raise InvalidArgumentError("seed", f"must be an integer in [0, 2**32 - 1], got {seed!r}")
    if isinstance(record, str):
        record = (record,)
    unknown = set(record) - set(RECORDS)
    if unknown:
        raise InvalidArgumentError(
            "record", f"unknown {sorted(unknown)}; expected some of {', '.join(RECORDS)}"
        )
    threads = _usable_cores() if threads is None else _positive_int("threads", threads)
    if not isinstance(env, Environment):
        raise InvalidArgumentError(
            "env", f"must be a splitlab Environment, got {type(env).__name__}"
        )
    _prepare(policy, env)
    _check_memory(replications, horizon, record, env.n_features)

    arrays = env.arrays(horizon)
    contextual = bool(policy.contextual)
    state = policy.copies(replications)
    names = tuple(policy._statistics)
    for name in names:
        state[name] = np.ascontiguousarray(state[name], dtype=np.float64)
    prior = policy._prior_state(1, policy.n_arms, policy.n_features)
    decaying = policy.decaying_statistics()
    prior_rows = tuple(
        np.ascontiguousarray(prior[name], dtype=np.float64).reshape(-1) for name in decaying
    )
    params = np.ascontiguousarray(policy._params(), dtype=np.float64)

    features = env.n_features
    outputs = {
        "regret": np.zeros((replications, horizon if "regret" in record else 0)),
        "choices": np.zeros((replications, horizon if "choices" in record else 0), np.int64),
        "rewards": np.zeros((replications, horizon if "rewards" in record else 0)),
        "contexts": np.zeros((replications, horizon if "contexts" in record else 0, features)),
    }
    starts = range(0, replications, BLOCK)
    seeds = np.random.SeedSequence(seed).generate_state(len(starts))
    cumulative_sum = np.zeros((len(starts), horizon))
    cumulative_sum_sq = np.zeros((len(starts), horizon))
    final_regret = np.zeros(replications)

    # from the class: a dispatcher stored as a plain class attribute would bind as a method
    select, update = type(policy)._select_kernel, type(policy)._update_kernel

    def run(block: int) -> None:
        rows = slice(starts[block], starts[block] + BLOCK)
        block_state = tuple(state[name][rows] for name in names)
        # row views of the statistics the discount shrinks (the same memory as block_state)
        flat = tuple(state[name][rows].reshape(block_state[0].shape[0], -1) for name in decaying)
        kernels.run_block(
            select, update, block_state, flat, prior_rows,
            params, float(policy.discount), contextual,
            arrays.family, arrays.starts, arrays.means, arrays.sd, arrays.theta, arrays.pool,
            arrays.delay, horizon, int(seeds[block]),
            outputs["regret"][rows], outputs["choices"][rows], outputs["rewards"][rows],
            outputs["contexts"][rows], cumulative_sum[block], cumulative_sum_sq[block],
            final_regret[rows],
        )  # fmt: skip

    if threads == 1 or len(starts) == 1:
        for block in range(len(starts)):
            run(block)
    else:
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            list(pool.map(run, range(len(starts))))

    total, total_sq = cumulative_sum.sum(axis=0), cumulative_sum_sq.sum(axis=0)
    mean = total / replications
    variance = (
        np.maximum(total_sq - replications * mean * mean, 0.0) / (replications - 1)
        if replications > 1
        else np.zeros(horizon)
    )
    return SimulationResult(
        policy=repr(policy),
        environment=type(env).__name__,
        horizon=horizon,
        replications=replications,
        seed=int(seed),
        final_regret=final_regret,
        mean_cumulative_regret=mean,
        sd_cumulative_regret=np.sqrt(variance),
        state=state,
        **{name: outputs[name] if name in record else None for name in RECORDS},
    )


def _prepare(policy, env: Environment) -> None:
    """Size an unsized policy to the environment; check that the two fit together."""
    for attribute in ("_select_kernel", "_update_kernel", "_statistics", "copies"):
        if not hasattr(policy, attribute):
            raise InvalidArgumentError(
                "policy", f"{type(policy).__name__} is not a splitlab bandit policy"
            )
    if policy.contextual and not env.contextual:
        raise InvalidArgumentError(
            "env", f"{type(policy).__name__} needs contexts; {type(env).__name__} has none"
        )
    if not policy.sized:
        policy.resize(env.n_arms, env.n_features if policy.contextual else None)
    if policy.n_arms != env.n_arms:
        raise InvalidArgumentError(
            "policy", f"has {policy.n_arms} arms, the environment {env.n_arms}"
        )
    if policy.contextual and policy.n_features != env.n_features:
        raise InvalidArgumentError(
            "policy", f"has {policy.n_features} features, the environment {env.n_features}"
        )
    if policy.discount < 1.0 and type(policy)._decay_statistics is not Policy._decay_statistics:
        # the runner decays every statistic toward the prior in place; a policy with its
        # own decay (derived caches to rebuild) needs a decay kernel the protocol lacks
        raise InvalidArgumentError(
            "policy",
            f"{type(policy).__name__} with discount < 1 cannot be simulated: its decay "
            "rebuilds derived statistics outside the kernels",
        )
    bounds = policy._reward_range
    if bounds is not None and not env.bounded:
        raise InvalidArgumentError(
            "env",
            f"draws Gaussian rewards, but {type(policy).__name__} needs rewards in "
            f"[{bounds[0]}, {bounds[1]}]",
        )


def _check_memory(replications: int, horizon: int, record, n_features: int) -> None:
    blocks = -(-replications // BLOCK)
    if blocks * horizon > MAX_CELLS:
        raise InvalidArgumentError(
            "replications" if blocks > horizon else "horizon",
            f"ceil(replications / {BLOCK}) × horizon must be at most {MAX_CELLS}, got "
            f"{blocks} × {horizon}: the per-block regret sums alone would not fit",
        )  # fmt: skip
    for name in record:
        width = max(n_features, 1) if name == "contexts" else 1
        cells = replications * horizon * width
        if cells > MAX_CELLS:
            raise InvalidArgumentError(
                "record", f"recording {name!r} needs {cells} cells (replications × horizon"
                f"{' × features' if width > 1 else ''}), more than {MAX_CELLS}; record fewer "
                "arrays (record=() keeps only the regret curve)",
            )  # fmt: skip


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidArgumentError(name, f"must be a positive integer, got {value!r}")
    return int(value)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

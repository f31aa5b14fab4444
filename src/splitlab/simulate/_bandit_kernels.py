"""numba kernels of the bandit simulation runner.

:func:`run_block` runs a block of replications (copies of a policy's state) through the
whole horizon in one compiled loop. The policy's own ``_select_kernel`` and
``_update_kernel`` arrive as arguments (numba dispatchers are first-class: the runner is
compiled once per pair of kernels and state layout), and its state as a tuple of the
policy's arrays in kernel-argument order, so the same loop serves every policy.

Randomness: the block seeds numba's generator on its own thread at the start
(``np.random.seed``), and the policy kernels draw from that same per-thread generator, so a
block's result depends only on its seed — not on which thread runs it nor on how many
threads run the blocks side by side. Within a step the order of draws is: contexts of every
copy, the policy's selection, then the rewards of every copy.

Environments are the arrays of :class:`splitlab.simulate.environments.EnvironmentArrays`;
the reward law is documented there.
"""

# numba compiles the legacy np.random functions to its own per-thread generator, the one
# ``np.random.seed`` seeds inside a kernel; numpy's Generator API is not what runs here.
# ruff: noqa: NPY002

from __future__ import annotations

import math

import numpy as np
from numba import njit

BERNOULLI, GAUSSIAN, LOGISTIC = 0, 1, 2


@njit(cache=True)
def draw_contexts(pool, contexts):
    """Fill ``contexts`` (copies, d) with N(0, I_d) draws, or uniformly drawn pool rows."""
    copies, features = contexts.shape
    if features == 0:
        return
    if pool.shape[0] == 0:
        for c in range(copies):
            for j in range(features):
                contexts[c, j] = np.random.standard_normal()
    else:
        for c in range(copies):
            row = np.random.randint(pool.shape[0])
            for j in range(features):
                contexts[c, j] = pool[row, j]


@njit(cache=True)
def expected_rewards(family, means_row, theta, context, out):
    """E[reward] of every arm at one context into ``out``: η_k = means_row[k] + x · θ_k, or
    σ(η_k) if logistic; returns the largest."""
    best = -np.inf
    for k in range(out.size):
        eta = means_row[k]
        for j in range(theta.shape[1]):
            eta += context[j] * theta[k, j]
        out[k] = 1.0 / (1.0 + math.exp(-eta)) if family == LOGISTIC else eta
        best = max(best, out[k])
    return best


@njit(cache=True)
def draw_reward(family, expected, sd):
    if family == GAUSSIAN:
        return expected + sd * np.random.standard_normal()
    return 1.0 if np.random.random() < expected else 0.0


@njit(cache=True)
def decay_toward_prior(flat, prior, gamma):
    """statistics = prior + γ (statistics − prior) for every copy (the policy's ``decay``)."""
    for s in range(len(flat)):
        array = flat[s]
        reference = prior[s]
        for c in range(array.shape[0]):
            for j in range(array.shape[1]):
                array[c, j] = reference[j] + gamma * (array[c, j] - reference[j])


# Not cache=True: a function typed on dispatcher arguments cannot be cached — the index
# would key entries on dispatcher objects of other processes, which numba fails to pickle
# ("underlying object has vanished"). It is compiled once per process and policy class.
@njit(nogil=True)
def run_block(
    select, update, state, flat, prior, params, discount, contextual_policy,
    family, starts, means, sd, theta, pool, delay,
    horizon, seed,
    out_regret, out_choices, out_rewards, out_contexts,
    cumulative_sum, cumulative_sum_sq, final_regret,
):  # fmt: skip
    """Run ``copies`` replications for ``horizon`` steps.

    ``flat`` views the same memory as ``state`` as (copies, size) rows and ``prior`` holds the
    prior's row of each, for the per-step ``discount``. ``out_*`` are (copies, horizon[, d])
    arrays, or empty along the step axis when not recorded. ``cumulative_sum[t]`` and
    ``cumulative_sum_sq[t]`` receive Σ and Σ² over the block's copies of the cumulative
    regret after step t; ``final_regret[c]`` the cumulative regret of copy c at the horizon.
    """
    np.random.seed(seed)
    copies = final_regret.size
    features = theta.shape[1]
    slots = delay + 1
    contexts = np.zeros((copies, features))
    policy_features = features if contextual_policy else 0
    pending_arms = np.zeros((slots, copies), dtype=np.int64)
    pending_rewards = np.zeros((slots, copies))
    pending_contexts = np.zeros((slots, copies, policy_features))
    arms = np.zeros(copies, dtype=np.int64)
    all_copies = np.arange(copies)
    weights = np.ones(copies)
    available = np.ones(means.shape[1], dtype=np.bool_)
    expected = np.zeros(means.shape[1])
    best = 0.0
    record_regret = out_regret.shape[1] > 0
    record_choices = out_choices.shape[1] > 0
    record_rewards = out_rewards.shape[1] > 0
    record_contexts = out_contexts.shape[1] > 0
    for c in range(copies):
        final_regret[c] = 0.0
    segment = 0
    for t in range(horizon):
        while segment + 1 < starts.size and starts[segment + 1] <= t:
            segment += 1
        slot = t % slots
        draw_contexts(pool, contexts)
        policy_contexts = pending_contexts[slot]
        for c in range(copies):
            for j in range(policy_features):
                policy_contexts[c, j] = contexts[c, j]
        select(*state, params, policy_contexts, available, arms)
        for c in range(copies):
            arm = arms[c]
            if features > 0 or c == 0:
                best = expected_rewards(family, means[segment], theta, contexts[c], expected)
            reward = draw_reward(family, expected[arm], sd[arm])
            regret = best - expected[arm]
            final_regret[c] += regret
            cumulative_sum[t] += final_regret[c]
            cumulative_sum_sq[t] += final_regret[c] * final_regret[c]
            pending_arms[slot, c] = arm
            pending_rewards[slot, c] = reward
            if record_regret:
                out_regret[c, t] = regret
            if record_choices:
                out_choices[c, t] = arm
            if record_rewards:
                out_rewards[c, t] = reward
            if record_contexts:
                for j in range(features):
                    out_contexts[c, t, j] = contexts[c, j]
        if t >= delay:
            due = (t - delay) % slots
            if discount < 1.0:
                decay_toward_prior(flat, prior, discount)
            update(
                *state, params, all_copies, pending_arms[due], pending_rewards[due],
                pending_contexts[due], weights,
            )  # fmt: skip

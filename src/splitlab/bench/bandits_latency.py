"""Per-call latency of splitlab's bandit policies through the public API.

Budgets (issue 5, "Performance"): <= 2 µs per context-free ``choose`` or ``update`` (10
arms), <= 10 µs per LinUCB call with d = 20, scoring a batch of 10^5 contexts < 50 ms.
(docs/architecture.md states the looser serving budget of the Allocator: 5 µs and 15 µs.)

Workloads, each on a policy warmed with 1,000 seeded observations:

- context-free, 10 arms (ThompsonSampling, EpsilonGreedy, UCB1, KLUCB, EXP3):
  ``choose(rng=rng)`` with the probabilities cached (no update in between), ``update(arm,
  reward)``, and ``update`` followed by ``probabilities()`` — one recomputation of the exact
  probabilities (Gauss–Legendre quadrature of P(best) for Thompson sampling);
- LinUCB, 10 arms, d = 20: ``choose(context, rng=rng)``, ``update(arm, reward, context)``;
- batch: ``LinUCB.choose_batch`` of 10^5 contexts and ``update_batch`` of 10^5
  observations (LinUCB and ThompsonSampling).

Each workload is a ``timeit.Timer`` over one call; the number of calls per round comes
from ``Timer.autorange`` after warm-up calls (so numba compilation is excluded), and the
best of ``--repeats`` interleaved rounds is kept (every workload once per round, garbage
collector off as in timeit). First-call times — numba compilation with an empty cache, and
loading from the cache — are measured separately in fresh interpreters.

Peers: when MABWiser, river or vowpalwabbit are importable in the running interpreter, the
same workloads run on their nearest equivalents in the same process and the ratio
peer / splitlab is printed; otherwise the report says they were not installed.

    python benchmarks/bandits_latency.py [--repeats 7] [--skip-first-call] \
        [--out benchmarks/results/bandits_latency.md]
    splitlab bench speed [--quick]

The repository's ``python benchmarks/peers/run.py`` runs the same kind of workloads on each
peer in its own virtual environment instead.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import timeit
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitlab.bandits import EXP3, KLUCB, UCB1, EpsilonGreedy, LinUCB, ThompsonSampling
from splitlab.bench.markdown import results_dir, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, load_average, script_command, usable_cores

QUICK = ("--repeats", "1", "--skip-first-call", "--round-seconds", "0.05")
N_ARMS = 10
N_FEATURES = 20
BATCH = 100_000
WARM_OBSERVATIONS = 1_000
BUDGET_CONTEXT_FREE = 2e-6
BUDGET_LINEAR = 10e-6
BUDGET_BATCH_CHOOSE = 50e-3
CONTEXT_FREE = {
    "ThompsonSampling": ThompsonSampling,
    "EpsilonGreedy": lambda **kw: EpsilonGreedy(epsilon=0.1, **kw),
    "UCB1": UCB1,
    "KLUCB": KLUCB,
    "EXP3": lambda **kw: EXP3(gamma=0.1, **kw),
}
PEERS = ("mabwiser", "river", "vowpalwabbit")

COMPILE_SCRIPT = r"""
import json, time
import numpy as np
start = time.perf_counter()
from splitlab.bandits import EXP3, KLUCB, UCB1, EpsilonGreedy, LinUCB, ThompsonSampling
out = {"import splitlab.bandits": time.perf_counter() - start}
rng = np.random.default_rng(0)
for name, cls in [("ThompsonSampling", ThompsonSampling), ("EpsilonGreedy", EpsilonGreedy),
                  ("UCB1", UCB1), ("KLUCB", KLUCB), ("EXP3", EXP3)]:
    start = time.perf_counter()
    policy = cls(n_arms=10)
    policy.update(0, 1.0)
    policy.choose(rng=rng)
    policy.update_batch([1, 2], [0.0, 1.0])
    out[name] = time.perf_counter() - start
start = time.perf_counter()
policy = LinUCB(n_arms=10, n_features=20)
x = rng.normal(size=20)
policy.update(0, 1.0, x)
policy.choose(x, rng=rng)
policy.choose_batch(rng.normal(size=(4, 20)), rng=rng)
policy.update_batch([1, 2], [0.0, 1.0], rng.normal(size=(2, 20)))
out["LinUCB"] = time.perf_counter() - start
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Row:
    group: str
    library: str
    workload: str
    seconds: float  # per call
    budget: float | None = None
    baseline: float | None = None  # splitlab's seconds for the same workload (peer rows)
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return "—"
        return "PASS" if self.seconds <= self.budget else "FAIL"


# ---------------------------------------------------------------------------- timing


# Seconds a timed round lasts at least (timeit's autorange uses 0.2 s; --quick shortens it).
ROUND_SECONDS = {"value": 0.2}


def calls_per_round(timer: timeit.Timer, seconds: float) -> int:
    """``Timer.autorange`` with a target of ``seconds``: 1, 2, 5, 10, 20, 50, ... calls until
    one round lasts at least that long."""
    multiplier = 1
    while True:
        for factor in (1, 2, 5):
            number = factor * multiplier
            if timer.timeit(number) >= seconds:
                return number
        multiplier *= 10


def per_call_times(workloads: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Seconds per call, best of ``repeats`` interleaved rounds of ``Timer.timeit(number)``,
    ``number`` as ``Timer.autorange`` picks it (rounds of >= 0.2 s, or ``--round-seconds``)
    after two warm-up calls."""
    timers, numbers = {}, {}
    for name, function in workloads.items():
        function()
        function()
        timers[name] = timeit.Timer(function)
        numbers[name] = calls_per_round(timers[name], ROUND_SECONDS["value"])
    best = dict.fromkeys(workloads, float("inf"))
    for _ in range(repeats):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]) / numbers[name])
    return best


def first_call_seconds() -> dict[str, dict[str, float]]:
    """First-call times in a fresh interpreter with an empty numba cache (compilation), then
    in another fresh interpreter reusing that cache (what a restarted server pays)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        result = {}
        for label in ("cold", "cached"):
            run = subprocess.run(
                [sys.executable, "-c", COMPILE_SCRIPT], env=env, capture_output=True,
                text=True, check=True,
            )  # fmt: skip
            result[label] = json.loads(run.stdout)
    return result


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Data:
    arms: np.ndarray  # warm-up arms
    binary: np.ndarray  # warm-up 0/1 rewards
    contexts: np.ndarray  # warm-up contexts (WARM_OBSERVATIONS, d)
    linear: np.ndarray  # warm-up linear rewards
    context: np.ndarray  # the context of the single-call workloads
    batch_contexts: np.ndarray  # (BATCH, d)
    batch_arms: np.ndarray
    batch_binary: np.ndarray
    batch_linear: np.ndarray


def make_data(seed: int) -> Data:
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.05, 0.5, N_ARMS)
    theta = rng.normal(0.0, 0.3, (N_ARMS, N_FEATURES))

    def observations(count):
        arms = rng.integers(0, N_ARMS, count)
        contexts = rng.normal(size=(count, N_FEATURES))
        binary = (rng.random(count) < rates[arms]).astype(np.float64)
        linear = np.einsum("nd,nd->n", contexts, theta[arms]) + rng.normal(0.0, 0.5, count)
        return arms, binary, contexts, linear

    arms, binary, contexts, linear = observations(WARM_OBSERVATIONS)
    batch_arms, batch_binary, batch_contexts, batch_linear = observations(BATCH)
    return Data(
        arms, binary, contexts, linear, rng.normal(size=N_FEATURES),
        batch_contexts, batch_arms, batch_binary, batch_linear,
    )  # fmt: skip


# ---------------------------------------------------------------------------- splitlab


def splitlab_workloads(data: Data, seed: int) -> tuple[dict, dict]:
    """(single-call workloads, batch workloads) as {key: zero-argument callable}."""
    rng = np.random.default_rng(seed + 1)
    single, batch = {}, {}
    for name, factory in CONTEXT_FREE.items():
        policy = factory(n_arms=N_ARMS)
        policy.update_batch(data.arms, data.binary)

        def recompute(policy=policy):
            policy.update(3, 1.0)
            return policy.probabilities()

        single[(name, "choose()")] = lambda policy=policy: policy.choose(rng=rng)
        single[(name, "update(arm, reward)")] = lambda policy=policy: policy.update(3, 1.0)
        single[(name, "update + probabilities()")] = recompute
    linucb = LinUCB(alpha=1.0, n_arms=N_ARMS, n_features=N_FEATURES)
    linucb.update_batch(data.arms, data.linear, data.contexts)
    x = data.context
    single[("LinUCB", "choose(context)")] = lambda: linucb.choose(x, rng=rng)
    single[("LinUCB", "update(arm, reward, context)")] = lambda: linucb.update(3, 0.5, x)

    scorer = LinUCB(alpha=1.0, n_arms=N_ARMS, n_features=N_FEATURES)
    scorer.update_batch(data.arms, data.linear, data.contexts)
    learner = LinUCB(alpha=1.0, n_arms=N_ARMS, n_features=N_FEATURES)
    thompson = ThompsonSampling(n_arms=N_ARMS)
    batch[("LinUCB", "choose_batch(10^5 contexts)")] = lambda: scorer.choose_batch(
        data.batch_contexts, rng=rng
    )
    batch[("LinUCB", "update_batch(10^5 observations)")] = lambda: learner.update_batch(
        data.batch_arms, data.batch_linear, data.batch_contexts
    )
    batch[("ThompsonSampling", "update_batch(10^5 observations)")] = lambda: thompson.update_batch(
        data.batch_arms, data.batch_binary
    )
    return single, batch


def batch_breakdown(data: Data, repeats: int, seed: int) -> list[tuple[str, float]]:
    """Where ``LinUCB.choose_batch`` spends its time (private steps, for diagnosis only)."""
    from splitlab.bandits import _linear_kernels as kernels

    rng = np.random.default_rng(seed + 2)
    policy = LinUCB(alpha=1.0, n_arms=N_ARMS, n_features=N_FEATURES)
    policy.update_batch(data.arms, data.linear, data.contexts)
    rows = data.batch_contexts
    means, spread = policy._moments_batch(rows)
    scores = means + policy.alpha * np.sqrt(spread)
    out = np.empty_like(scores)
    mask = np.ones(N_ARMS, dtype=bool)
    probabilities = policy._probabilities_batch(rows, None)
    upper = np.triu_indices(N_FEATURES)
    doubled = policy.arrays["A_inv"][0] * (2.0 - np.eye(N_FEATURES))
    packed = np.ascontiguousarray(doubled[:, upper[0], upper[1]])
    spread_out = np.empty((rows.shape[0], N_ARMS))
    theta = policy.arrays["theta"][0]

    def draw():
        uniforms = rng.random(rows.shape[0])
        cumulative = np.cumsum(probabilities, axis=1)
        arms = (cumulative < (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
        return probabilities[np.arange(arms.size), np.minimum(arms, N_ARMS - 1)]

    pieces = {
        "context validation (_check_context)": lambda: policy._check_context(rows, batch=True),
        "predictions x·θ_k (one (N, d) @ (d, K) matmul)": lambda: rows @ theta.T,
        "quadratic forms xᵀA_k⁻¹x (kernels.batch_spread)": lambda: kernels.batch_spread(
            rows, packed, spread_out
        ),
        "argmax with ties → probabilities (kernels.argmax_probabilities)": lambda: (
            kernels.argmax_probabilities(scores, mask, out)
        ),
        "inverse-CDF draw + propensity gather (numpy)": draw,
    }
    times = list(per_call_times(pieces, repeats).items())
    # the matmul again in a fresh interpreter whose BLAS may use one thread only: on a
    # loaded machine a multi-threaded BLAS can be far slower than one thread
    n = rows.shape[0]
    script = (
        "import numpy as np, timeit; "
        f"rows = np.random.default_rng(0).normal(size=({n}, {N_FEATURES})); "
        f"theta = np.random.default_rng(1).normal(size=({N_ARMS}, {N_FEATURES})); "
        f"print(min(timeit.repeat(lambda: rows @ theta.T, number=5, repeat={repeats})) / 5)"
    )
    single = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", script], env=dict(os.environ, **single), capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    times.insert(
        2, ("the same matmul, BLAS limited to 1 thread (fresh interpreter)", float(run.stdout))
    )
    return times


# ---------------------------------------------------------------------------- peers


def peer_versions() -> dict[str, str | None]:
    versions = {}
    for name in PEERS:
        try:
            __import__(name)
            versions[name] = importlib.metadata.version(name)
        except Exception:  # any import failure: not available
            versions[name] = None
    return versions


def peer_workloads(data: Data, available: dict[str, str | None], seed: int) -> tuple[dict, dict]:
    """The same workloads on the peers' nearest equivalents: {(library, policy, workload):
    (callable, splitlab key, note)}."""
    single, batch = {}, {}
    arm_ids = list(range(N_ARMS))
    warm = list(zip(data.arms.tolist(), data.binary.tolist(), strict=True))
    x = data.context
    if available["river"]:
        from river import bandit, proba

        policies = {
            "ThompsonSampling": bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=seed),
            "EpsilonGreedy": bandit.EpsilonGreedy(epsilon=0.1, seed=seed),
            "UCB1": bandit.UCB(delta=1.0, seed=seed),
            "EXP3": bandit.Exp3(gamma=0.1, seed=seed),
        }
        for name, policy in policies.items():
            for arm, reward in warm:
                if name == "EXP3":  # Exp3.update reads the probabilities of the last pull
                    policy.pull(arm_ids)
                policy.update(arm, reward)
            label = f"river.bandit.{type(policy).__name__}"
            single[("river", name, "choose()")] = (
                lambda policy=policy: policy.pull(arm_ids),
                f"{label}.pull (arm only)",
            )
            # reward 0 for Exp3: repeating reward 1 on one arm overflows river's weights
            reward = 0.0 if name == "EXP3" else 1.0
            single[("river", name, "update(arm, reward)")] = (
                lambda policy=policy, reward=reward: policy.update(3, reward),
                f"{label}.update" + (" (reward 0)" if name == "EXP3" else ""),
            )
        linear = bandit.LinUCBDisjoint(alpha=1.0, beta=1.0, seed=seed)
        for arm, reward, row in zip(data.arms, data.linear, data.contexts, strict=True):
            linear.update(int(arm), dict(enumerate(row.tolist())), float(reward))
        context = dict(enumerate(x.tolist()))
        single[("river", "LinUCB", "choose(context)")] = (
            lambda: linear.pull(arm_ids, context),
            "LinUCBDisjoint.pull, dict context",
        )
        single[("river", "LinUCB", "update(arm, reward, context)")] = (
            lambda: linear.update(3, context, 0.5),
            "LinUCBDisjoint.update, dict context",
        )
    if available["mabwiser"]:
        from mabwiser.mab import MAB, LearningPolicy

        policies = {
            "ThompsonSampling": LearningPolicy.ThompsonSampling(),
            "EpsilonGreedy": LearningPolicy.EpsilonGreedy(epsilon=0.1),
            "UCB1": LearningPolicy.UCB1(alpha=1.0),
        }
        for name, learning_policy in policies.items():
            mab = MAB(arm_ids, learning_policy, seed=seed)
            mab.fit(data.arms.tolist(), data.binary.astype(int).tolist())
            single[("MABWiser", name, "choose()")] = (
                lambda mab=mab: mab.predict(),
                "MAB.predict() (arm only)",
            )
            single[("MABWiser", name, "update(arm, reward)")] = (
                lambda mab=mab: mab.partial_fit([3], [1]),
                "MAB.partial_fit([arm], [reward])",
            )
        lin = MAB(arm_ids, LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=seed)
        lin.fit(data.arms.tolist(), data.linear.tolist(), data.contexts)
        x_row = x[None, :]
        single[("MABWiser", "LinUCB", "choose(context)")] = (
            lambda: lin.predict(x_row),
            "MAB.predict(1 × d)",
        )
        single[("MABWiser", "LinUCB", "update(arm, reward, context)")] = (
            lambda: lin.partial_fit([3], [0.5], x_row),
            "MAB.partial_fit, 1 row",
        )
        scorer = MAB(arm_ids, LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=seed)
        scorer.fit(data.arms.tolist(), data.linear.tolist(), data.contexts)
        learner = MAB(arm_ids, LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=seed)
        learner.fit(data.arms.tolist(), data.linear.tolist(), data.contexts)
        batch[("MABWiser", "LinUCB", "choose_batch(10^5 contexts)")] = (
            lambda: scorer.predict(data.batch_contexts),
            "MAB.predict(10^5 × d)",
        )
        batch[("MABWiser", "LinUCB", "update_batch(10^5 observations)")] = (
            lambda: learner.partial_fit(data.batch_arms, data.batch_linear, data.batch_contexts),
            "MAB.partial_fit(10^5 rows)",
        )
    if available["vowpalwabbit"]:
        import vowpalwabbit

        greedy = vowpalwabbit.Workspace(f"--cb_explore {N_ARMS} --epsilon 0.1 --quiet")
        for arm, reward in warm:
            greedy.learn(f"{arm + 1}:{-reward}:0.1 | ")
        single[("vowpalwabbit", "EpsilonGreedy", "choose()")] = (
            lambda: greedy.predict("| "),
            "--cb_explore 10 --epsilon 0.1: predict → pmf (no draw)",
        )
        single[("vowpalwabbit", "EpsilonGreedy", "update(arm, reward)")] = (
            lambda: greedy.learn("4:-1:0.1 | "),
            "learn('arm:cost:prob | ')",
        )
        squarecb = vowpalwabbit.Workspace("--cb_explore_adf --squarecb --quiet")

        def example(row, label=None):
            shared = "shared |s " + " ".join(f"f{i}:{v:.6g}" for i, v in enumerate(row))
            actions = [
                (f"0:{-label[1]:.6g}:0.1 " if label and k == label[0] else "") + f"|a k{k}"
                for k in range(N_ARMS)
            ]
            return [shared, *actions]

        for arm, reward, row in zip(data.arms, data.linear, data.contexts, strict=True):
            squarecb.learn(example(row, (int(arm), float(reward))))
        unlabelled, labelled = example(x), example(x, (3, 0.5))
        single[("vowpalwabbit", "LinUCB", "choose(context)")] = (
            lambda: squarecb.predict(unlabelled),
            "--cb_explore_adf --squarecb (no LinUCB in VW): predict → pmf; text prebuilt",
        )
        single[("vowpalwabbit", "LinUCB", "update(arm, reward, context)")] = (
            lambda: squarecb.learn(labelled),
            "--cb_explore_adf --squarecb: learn; text prebuilt",
        )
    return single, batch


# ---------------------------------------------------------------------------- report


def microseconds(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.1f} ms"


def results_table(rows: list[Row]) -> str:
    lines = [
        "| policy | workload | library | per call | ratio vs budget | vs splitlab | budget |",
        "| --- | --- | --- | ---: | ---: | ---: | :---: |",
    ]
    for row in rows:
        budget = "—" if row.budget is None else f"{row.seconds / row.budget:.2f}"
        versus = "—" if row.baseline is None else f"{row.seconds / row.baseline:.1f}x"
        library = row.library + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {row.group} | {row.workload} | {library} | {microseconds(row.seconds)} | "
            f"{budget} | {versus} | {row.verdict} |"
        )
    return "\n".join(lines)


def budget_for(group: str, workload: str) -> float | None:
    if workload.startswith("choose_batch"):
        return BUDGET_BATCH_CHOOSE
    if "batch" in workload or "probabilities" in workload:
        return None
    return BUDGET_LINEAR if group == "LinUCB" else BUDGET_CONTEXT_FREE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-first-call", action="store_true",
        help="skip the numba compile/cache-load measurement in fresh interpreters",
    )  # fmt: skip
    parser.add_argument(
        "--round-seconds", type=float, default=0.2,
        help="the least duration of one timed round (timeit's autorange: 0.2)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=results_dir() / "bandits_latency.md")
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats < 1 or not args.round_seconds > 0:
        parser.error("--repeats and --round-seconds must be positive")
    ROUND_SECONDS["value"] = args.round_seconds
    provenance = Provenance.start(
        command=command or script_command(argv, "benchmarks/bandits_latency.py"),
        seed=args.seed,
        parameters={
            "repeats": args.repeats,
            "skip_first_call": args.skip_first_call,
            "round_seconds": args.round_seconds,
        },
        libraries=("numpy", "numba"),
    )
    progress = progress or Progress()
    progress.start("bandits_latency", total=4)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")  # peers' deprecation chatter
        return _run(args, provenance, progress)


def _run(args: argparse.Namespace, provenance: Provenance, progress: Progress) -> int:
    first_calls = None if args.skip_first_call else first_call_seconds()
    progress.step("first calls" + (" (skipped)" if args.skip_first_call else ""))
    data = make_data(args.seed)
    versions = peer_versions()
    single, batch = splitlab_workloads(data, args.seed)
    peer_single, peer_batch = peer_workloads(data, versions, args.seed)

    load = load_average()[0]
    enabled = gc.isenabled()
    gc.disable()
    try:
        times = per_call_times(
            {**single, **{k: v[0] for k, v in peer_single.items()}}, args.repeats
        )
        progress.step("single calls timed")
        batch_repeats = max(1, min(args.repeats, 5))
        times |= per_call_times(
            {**batch, **{k: v[0] for k, v in peer_batch.items()}}, batch_repeats
        )
        progress.step("batch calls timed")
        breakdown = batch_breakdown(data, batch_repeats, args.seed)
        progress.step("choose_batch breakdown")
    finally:
        if enabled:
            gc.enable()
    progress.finish()
    load_after = load_average()[0]

    rows = []
    peer_keys = {**peer_single, **peer_batch}
    for group, workload in [*single, *batch]:
        seconds = times[(group, workload)]
        rows.append(Row(group, "splitlab", workload, seconds, budget_for(group, workload)))
        for (library, peer_group, peer_workload), (_, note) in peer_keys.items():
            if (peer_group, peer_workload) == (group, workload):
                key = (library, peer_group, peer_workload)
                rows.append(Row(group, library, workload, times[key], None, seconds, note))
    table = results_table(rows)

    verdicts = [row.verdict for row in rows if row.budget is not None]
    passed = sum(verdict == "PASS" for verdict in verdicts)
    installed = [f"{name} {version}" for name, version in versions.items() if version]
    missing = [name for name, version in versions.items() if not version]
    peers_text = (
        ("in this interpreter: " + ", ".join(installed) if installed else "")
        + ("; " if installed and missing else "")
        + (", ".join(missing) + " not installed (no peer rows)" if missing else "")
    )
    if first_calls is None:
        first_rows = "| (skipped: --skip-first-call) | — | — |"
    else:
        first_rows = "\n".join(
            f"| {name} | {first_calls['cold'][name] * 1e3:,.0f} ms | "
            f"{first_calls['cached'][name] * 1e3:,.1f} ms |"
            for name in first_calls["cold"]
        )
    breakdown_rows = "\n".join(f"| {label} | {microseconds(s)} |" for label, s in breakdown)
    report = f"""# Bandit policies: per-call latency

Budgets (issue 5): <= {BUDGET_CONTEXT_FREE * 1e6:g} µs per context-free `choose` or `update`
(10 arms), <= {BUDGET_LINEAR * 1e6:g} µs per LinUCB call (d = {N_FEATURES}, {N_ARMS} arms),
`choose_batch` of 10^5 contexts < {BUDGET_BATCH_CHOOSE * 1e3:g} ms. ({passed} of {len(verdicts)}
budgeted rows pass.) Per call through the public API on policies warmed with
{WARM_OBSERVATIONS:,} seeded observations; `timeit.Timer` with the call count from
`autorange` (>= {args.round_seconds:g} s per round), best of {args.repeats} interleaved
rounds ({batch_repeats} for the batch rows), garbage collector off, after warm-up calls
(numba compilation is excluded: see the first-call table). "update + probabilities()" is
one update followed by one recomputation of the exact probabilities (the quadrature for
Thompson sampling), i.e. what the first `choose` after an update pays; there is no budget
for it.
1-minute load average: {load:.2f} before timing, {load_after:.2f} after, on {usable_cores()}
cores (other sessions share this machine: compare ratios rather than absolute times across
runs).

{provenance.block()}
- interpreter: {sys.executable}
- peers: {peers_text}

{table}

"vs splitlab" is the peer's time over splitlab's for the same workload (> 1: the peer is
slower). Peers are their nearest equivalents, not identical algorithms: river's `UCB(delta=1)`
and MABWiser's `UCB1(alpha=1)` for UCB1; VW has no LinUCB, so its contextual rows are
`--cb_explore_adf --squarecb` on prebuilt text examples; river and MABWiser return an arm
without its propensity, VW returns the pmf without drawing from it. No peer has KL-UCB;
only river has EXP3.

## First call (numba), fresh interpreter each

"cold": an empty `NUMBA_CACHE_DIR`, so every kernel the calls touch is compiled;
"cached": a second fresh interpreter reusing that cache (what a restarted server pays).
Each policy row is construct + `update` + `choose` + `update_batch` (LinUCB also
`choose_batch`), run in this order in one interpreter, so kernels shared with an earlier
row (the count policies share `count_update`) are not compiled twice.

| step | cold | cached |
| --- | ---: | ---: |
{first_rows}

## Where `LinUCB.choose_batch` spends its time (10^5 contexts, private steps)

Each step timed on its own (best of the batch rounds); BLAS threads as the environment
sets them (`OPENBLAS_NUM_THREADS`={os.environ.get("OPENBLAS_NUM_THREADS", "unset")}), plus
the prediction matmul in a fresh interpreter limited to one BLAS thread.

| step | time |
| --- | ---: |
{breakdown_rows}
"""
    print(report)
    write_text(args.out, report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

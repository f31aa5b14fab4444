"""The standard Open Bandit Dataset (OBD) check, in both directions, as in the OBP paper.

    python examples/open_bandit_dataset.py [--wheel PATH | --data DIR] [--prior FILE]
                                           [--n-sim N] [--action-features] [--out DIR]

The Open Bandit Dataset (Saito et al., "Open Bandit Dataset and Pipeline", 2021) holds logs of
two policies run on the same ZOZOTOWN campaign: a uniform random policy and Bernoulli Thompson
sampling (BTS). Each policy's *on-policy* value (its click rate) is the mean click of its own
logs, so each one's *off-policy* estimate from the other's logs can be checked against it:

(a) the random policy's value estimated from the BTS logs, target 1/K at every position;
(b) BTS's value estimated from the random logs, with BTS's action distribution computed as
    Open Bandit Pipeline does it: BernoulliTS with the ZOZOTOWN prior (per-item Beta(α, β),
    ``obp/policy/conf/prior_bts.yaml``) shows the top-3 items by sampled Beta values, and
    ``action_dist[a, p]`` = P(item a at position p) is estimated from ``--n-sim`` simulated
    slates (obp uses 100,000; seeded here). The prior is context-free, so one (K, P) matrix
    serves every row.

Every estimator of :func:`splitlab.ope.evaluate` (IPS, SNIPS, DM, DR, SNDR, Switch-DR) is
tabulated with its 95% normal interval, its relative error |estimate − truth| / truth and
whether its interval covers the truth; the truth has its own normal interval. The values are
per slot (the mean over the log's slot rows); OBP's slate value is 3× that.

Data: ``--data DIR`` holding ``random/all/all.csv`` and ``bts/all/all.csv`` (and optionally
``prior_bts.yaml`` / ``item_context.csv``); else ``--wheel`` pointing at
``obp-0.4.1-py3-none-any.whl`` (read straight out of the zip: ``pip download obp==0.4.1
--no-deps -d DIR`` fetches it; obp itself need not be installable); else an installed
``obp`` package. ``--prior FILE`` overrides the prior (same YAML layout: ``all: alpha: [...]
beta: [...]``). ``--action-features`` fits ONE shared reward model on user and item features
(``item_context.csv``) instead of one model per item.

Files written to ``--out`` (default: a temporary directory): ``obd_check.csv``,
``obd_check.md`` (both printed) and ``bts_action_dist.csv`` (K rows × P positions).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from splitlab.ope import evaluate, load_log, slate_target

CAMPAIGN = "all"
LOGS = {"random": f"random/{CAMPAIGN}/{CAMPAIGN}.csv", "bts": f"bts/{CAMPAIGN}/{CAMPAIGN}.csv"}
PRIOR = "prior_bts.yaml"
WHEEL_PREFIX = "obp/dataset/obd/"
WHEEL_PRIOR = "obp/policy/conf/prior_bts.yaml"
HOW_TO_GET = (
    "no Open Bandit Dataset found: pass --data DIR (with random/all/all.csv and "
    "bts/all/all.csv) or --wheel PATH; get the wheel with\n"
    "    pip download obp==0.4.1 --no-deps -d /tmp/obp\n"
    "and run with --wheel /tmp/obp/obp-0.4.1-py3-none-any.whl"
)
Z = 1.959963984540054


def find_data(args: argparse.Namespace, scratch: Path) -> tuple[Path, Path | None]:
    """(directory holding random/ and bts/, prior file or None)."""
    if args.data is not None:
        data = Path(args.data)
        prior = data / PRIOR
        return data, prior if prior.exists() else None
    wheel = args.wheel
    if wheel is None:
        spec = importlib.util.find_spec("obp")
        if spec is not None and spec.submodule_search_locations:
            package = Path(next(iter(spec.submodule_search_locations)))
            prior = package / "policy" / "conf" / PRIOR
            return package / "dataset" / "obd", prior if prior.exists() else None
        raise SystemExit(HOW_TO_GET)
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(WHEEL_PREFIX) or n == WHEEL_PRIOR]
        if not any(n.endswith(LOGS["bts"]) for n in names):
            raise SystemExit(f"{wheel} holds no {WHEEL_PREFIX}{LOGS['bts']}\n{HOW_TO_GET}")
        archive.extractall(scratch, members=[n for n in names if not n.endswith(".DS_Store")])
    prior = scratch / WHEEL_PRIOR
    return scratch / WHEEL_PREFIX, prior if prior.exists() else None


def read_prior(path: Path, campaign: str = CAMPAIGN) -> tuple[np.ndarray, np.ndarray]:
    """Per-item Beta (α, β) of ``campaign`` from obp's prior_bts.yaml layout."""
    lists: dict[str, dict[str, list[float]]] = {}
    section = key = None
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if text.startswith("-"):
            lists[section][key].append(float(text[1:]))
        elif indent == 0:
            section, key = text.rstrip(":"), None
            lists[section] = {}
        else:
            name, _, rest = text.partition(":")
            key = name.strip()
            rest = rest.strip()
            values = [float(v) for v in rest.strip("[]").split(",") if v.strip()] if rest else []
            lists[section][key] = values
    alpha = np.asarray(lists[campaign]["alpha"], dtype=np.float64)
    beta = np.asarray(lists[campaign]["beta"], dtype=np.float64)
    if alpha.shape != beta.shape or alpha.ndim != 1:
        raise SystemExit(f"{path}: alpha and beta of {campaign!r} differ in length")
    return alpha, beta


def bts_action_dist(
    alpha: np.ndarray, beta: np.ndarray, n_positions: int, n_sim: int, seed: int
) -> np.ndarray:
    """(K, P): P(item a at position p) when the slate is the top P items by Beta draws."""
    rng = np.random.default_rng(seed)
    k = alpha.size
    counts = np.zeros(k * n_positions, dtype=np.int64)
    slots = np.arange(n_positions)
    chunk = max(1, min(n_sim, 2_000_000 // max(k, 1)))
    done = 0
    while done < n_sim:
        size = min(chunk, n_sim - done)
        draws = rng.beta(alpha, beta, size=(size, k))
        top = np.argpartition(-draws, n_positions - 1, axis=1)[:, :n_positions]
        order = np.argsort(-np.take_along_axis(draws, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)  # (size, P), best first
        counts += np.bincount((top * n_positions + slots).ravel(), minlength=counts.size)
        done += size
    return counts.reshape(k, n_positions) / n_sim


def item_features(path: Path, n_actions: int) -> np.ndarray:
    """(K, p) item features from item_context.csv: numeric as is, the rest one-hot."""
    frame = pd.read_csv(path, index_col=0).sort_values("item_id")
    if len(frame) != n_actions:
        raise SystemExit(f"{path} has {len(frame)} items, the logs {n_actions}")
    features = frame.drop(columns="item_id")
    numeric = features.select_dtypes("number")
    categorical = features.drop(columns=numeric.columns)
    encoded = pd.get_dummies(categorical.astype(str), dtype=float)
    return np.hstack([numeric.to_numpy(float), encoded.to_numpy(float)])


def load(path: Path, n_actions: int):
    header = pd.read_csv(path, nrows=0).columns
    context = [c for c in header if c.startswith(("user_feature_", "user-item_affinity_"))]
    return load_log(
        str(path),
        action="item_id",
        reward="click",
        propensity="propensity_score",
        position="position",
        context=context,
        probabilities=None,
        period=None,
        arm=None,
        n_actions=n_actions,
    )


def truth(log) -> dict[str, float]:
    clicks = log.rewards
    mean = float(clicks.mean())
    se = float(clicks.std(ddof=1) / np.sqrt(clicks.size))
    return {
        "truth": mean,
        "truth_se": se,
        "truth_ci_low": mean - Z * se,
        "truth_ci_high": mean + Z * se,
    }


def check(direction, policy, logs, log, target, on_policy, args, features) -> pd.DataFrame:
    table = evaluate(
        log,
        target,
        ci="normal",
        reward_model=args.reward_model,
        action_features=features,
        seed=args.seed,
    )
    table = table[["estimator", "estimate", "se", "ci_low", "ci_high", "n", "ess_fraction"]].copy()
    table.insert(0, "logs", logs)
    table.insert(0, "policy", policy)
    table.insert(0, "direction", direction)
    for name, value in on_policy.items():
        table[name] = value
    table["relative_error"] = (table["estimate"] - on_policy["truth"]).abs() / on_policy["truth"]
    table["covers_truth"] = (table["ci_low"] <= on_policy["truth"]) & (
        on_policy["truth"] <= table["ci_high"]
    )
    return table


def markdown(results: pd.DataFrame) -> str:
    parts = []
    for (direction, policy, logs), table in results.groupby(
        ["direction", "policy", "logs"], sort=False
    ):
        first = table.iloc[0]
        parts.append(
            f"### ({direction}) {policy} policy evaluated on the {logs} logs\n\n"
            f"On-policy truth (mean click of the {policy} logs): {first['truth']:.5f} "
            f"[{first['truth_ci_low']:.5f}, {first['truth_ci_high']:.5f}]; "
            f"{int(first['n'])} slot rows, ESS fraction {first['ess_fraction']:.3f}.\n\n"
            "| estimator | estimate | 95% interval | relative error | covers truth |\n"
            "|---|---:|---|---:|:---:|"
        )
        for row in table.itertuples():
            parts.append(
                f"| {row.estimator} | {row.estimate:.5f} | [{row.ci_low:.5f}, {row.ci_high:.5f}]"
                f" | {row.relative_error:.3f} | {'yes' if row.covers_truth else 'no'} |"
            )
        parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="directory with random/all/all.csv and bts/all/all.csv")
    source.add_argument("--wheel", help="path of obp-0.4.1-py3-none-any.whl")
    parser.add_argument("--prior", help="BTS prior (obp's prior_bts.yaml layout)")
    parser.add_argument("--n-sim", type=int, default=100_000, help="simulated BTS slates")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--reward-model", default="ridge", choices=["ridge", "logistic"])
    parser.add_argument("--action-features", action="store_true", help="use item_context.csv")
    parser.add_argument("--out", help="output directory (default: a temporary one)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="obd_check_"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="obd_") as scratch:
        data, prior_path = find_data(args, Path(scratch))
        if args.prior is not None:
            prior_path = Path(args.prior)
        if prior_path is None:
            raise SystemExit("no BTS prior found: pass --prior FILE (obp's prior_bts.yaml)")
        for path in LOGS.values():
            if not (data / path).exists():
                raise SystemExit(f"missing {data / path}\n{HOW_TO_GET}")
        alpha, beta = read_prior(prior_path)
        n_actions = alpha.size
        logs = {name: load(data / path, n_actions) for name, path in LOGS.items()}
        features = None
        if args.action_features:
            context_file = data / LOGS["random"].rsplit("/", 1)[0] / "item_context.csv"
            if not context_file.exists():
                raise SystemExit(f"--action-features: no {context_file}")
            features = item_features(context_file, n_actions)
        loaded = time.perf_counter()

    n_positions = len(logs["bts"].position_labels)
    dist = bts_action_dist(alpha, beta, n_positions, args.n_sim, args.seed)
    simulated = time.perf_counter()
    pd.DataFrame(
        dist, columns=[f"position_{label}" for label in logs["bts"].position_labels]
    ).rename_axis("item_id").to_csv(out / "bts_action_dist.csv")

    bts_log, random_log = logs["bts"], logs["random"]
    uniform = np.full((bts_log.n_source, n_actions), 1.0 / n_actions)
    bts_target = slate_target(
        np.broadcast_to(dist, (random_log.n_source, n_actions, n_positions)), random_log
    )
    results = pd.concat(
        [
            check("a", "random", "bts", bts_log, uniform, truth(random_log), args, features),
            check("b", "bts", "random", random_log, bts_target, truth(bts_log), args, features),
        ],
        ignore_index=True,
    )
    results.to_csv(out / "obd_check.csv", index=False)
    text = markdown(results)
    (out / "obd_check.md").write_text(text)
    finished = time.perf_counter()
    print(text)
    print(results.to_csv(index=False))
    print(
        f"load {loaded - started:.1f}s, simulate {args.n_sim} BTS slates "
        f"{simulated - loaded:.1f}s, evaluate {finished - simulated:.1f}s; written to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

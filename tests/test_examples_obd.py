"""examples/open_bandit_dataset.py runs end to end on a small synthetic Open Bandit Dataset.

The test writes ``random/all/all.csv`` (uniform slates of 3 distinct items out of K) and
``bts/all/all.csv`` (slates of the top 3 items by Beta draws from a known prior, propensities
from an independent Monte Carlo of that policy), in OBD's layout (unnamed index column,
timestamp, item_id, position 1..3, click, propensity_score, hex user features, affinities),
plus ``prior_bts.yaml``. Clicks are Bernoulli with a known CTR per item, whatever the slot.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "open_bandit_dataset.py"
K = 10
P = 3
DECISIONS = 2000
N_SIM = 20_000  # the script's simulated slates
N_CHECK = 200_000  # this test's independent Monte Carlo
ALPHA = np.array([6.0, 5.0, 4.0, 4.0, 3.0, 3.0, 2.0, 2.0, 2.0, 1.5])
BETA = np.array([30.0, 30.0, 28.0, 32.0, 25.0, 30.0, 22.0, 28.0, 30.0, 20.0])
CTR = np.linspace(0.03, 0.15, K)


def _hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def independent_action_dist(n_sim: int, seed: int) -> np.ndarray:
    """P(item a at position p) by a plain sort of the Beta draws (not the script's code)."""
    rng = np.random.default_rng(seed)
    draws = rng.beta(ALPHA, BETA, size=(n_sim, K))
    slates = np.argsort(-draws, axis=1, kind="stable")[:, :P]
    dist = np.zeros((K, P))
    for p in range(P):
        dist[:, p] = np.bincount(slates[:, p], minlength=K) / n_sim
    return dist


def write_log(path: Path, slates: np.ndarray, propensity: np.ndarray, rng) -> pd.DataFrame:
    n = slates.shape[0]
    items = slates.ravel()
    levels = [3, 4, 2, 5]
    users = {
        f"user_feature_{j}": np.repeat(
            np.array([_hex(f"{j}-{v}") for v in range(count)])[rng.integers(0, count, n)], P
        )
        for j, count in enumerate(levels)
    }
    start = pd.Timestamp("2019-11-24", tz="UTC")
    frame = pd.DataFrame(
        {
            "timestamp": start + pd.to_timedelta(np.arange(n * P) * 997 + 3, unit="ms"),
            "item_id": items,
            "position": np.tile(np.arange(1, P + 1), n),
            "click": rng.binomial(1, CTR[items]),
            "propensity_score": propensity[items, np.tile(np.arange(P), n)].round(6),
            **users,
            **{f"user-item_affinity_{k}": rng.choice([0.0, 1.0], n * P) for k in range(K)},
        }
    )
    path.parent.mkdir(parents=True)
    frame.to_csv(path)  # with OBD's unnamed index column
    return frame


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("obd_data")
    out = tmp_path_factory.mktemp("obd_out")
    rng = np.random.default_rng(2024)
    uniform_slates = np.argsort(rng.random((DECISIONS, K)), axis=1)[:, :P]
    random_frame = write_log(
        data / "random/all/all.csv", uniform_slates, np.full((K, P), 1.0 / K), rng
    )
    logging_dist = independent_action_dist(N_CHECK, seed=7)
    draws = rng.beta(ALPHA, BETA, size=(DECISIONS, K))
    bts_slates = np.argsort(-draws, axis=1)[:, :P]
    bts_frame = write_log(data / "bts/all/all.csv", bts_slates, logging_dist, rng)
    prior = data / "my_prior.yaml"
    lines = ["all:", "  alpha:", *[f"    - {a}" for a in ALPHA], "  beta:"]
    prior.write_text("\n".join([*lines, *[f"    - {b}" for b in BETA], ""]))
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(data), "--prior", str(prior),
         "--n-sim", str(N_SIM), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=out,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return out, completed.stdout, random_frame, bts_frame


def test_tables_are_written_and_printed(run):
    out, stdout, _, _ = run
    table = pd.read_csv(out / "obd_check.csv")
    estimators = ["ips", "snips", "dm", "dr", "sndr", "switch_dr"]
    for direction in "ab":
        assert table.loc[table["direction"] == direction, "estimator"].tolist() == estimators
    assert np.isfinite(table[["estimate", "ci_low", "ci_high", "relative_error"]]).all().all()
    assert (table["ci_low"] <= table["estimate"]).all()
    assert (table["estimate"] <= table["ci_high"]).all()
    text = (out / "obd_check.md").read_text()
    assert "random policy evaluated on the bts logs" in text
    assert "bts policy evaluated on the random logs" in text
    assert text in stdout


def test_random_policy_from_bts_logs_covers_the_on_policy_truth(run):
    out, _, random_frame, bts_frame = run
    table = pd.read_csv(out / "obd_check.csv")
    a = table[table["direction"] == "a"].set_index("estimator")
    b = table[table["direction"] == "b"].set_index("estimator")
    # the on-policy truths, computed here from the generated files
    clicks = random_frame["click"].to_numpy(float)
    np.testing.assert_allclose(a["truth"], clicks.mean())
    np.testing.assert_allclose(a["truth_se"], clicks.std(ddof=1) / np.sqrt(clicks.size))
    np.testing.assert_allclose(b["truth"], bts_frame["click"].mean())
    # IPS and SNIPS from the BTS logs: their 95% intervals hold the random logs' click rate
    # and the known value of the random policy, the mean CTR over items
    for name in ["ips", "snips"]:
        assert a.loc[name, "ci_low"] <= clicks.mean() <= a.loc[name, "ci_high"], name
        assert a.loc[name, "ci_low"] <= CTR.mean() <= a.loc[name, "ci_high"], name
    assert (a["n"] == len(bts_frame)).all() and (b["n"] == len(random_frame)).all()


def test_simulated_bts_action_dist_matches_an_independent_monte_carlo(run):
    out, _, _, _ = run
    dist = pd.read_csv(out / "bts_action_dist.csv", index_col="item_id").to_numpy()
    assert dist.shape == (K, P)
    np.testing.assert_allclose(dist.sum(axis=0), 1.0, atol=1e-12)  # each position: one item
    assert (dist.sum(axis=1) <= 1.0 + 1e-12).all()  # an item fills at most one slot
    check = independent_action_dist(N_CHECK, seed=99)
    # each entry is a Monte Carlo proportion: allow 5 standard errors of the difference
    sd = np.sqrt(check * (1 - check) * (1 / N_SIM + 1 / N_CHECK))
    assert (np.abs(dist - check) <= 5 * sd + 1e-3).all(), np.abs(dist - check).max()

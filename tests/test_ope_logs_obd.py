"""sl.ope.load_log on logs of the Open Bandit Dataset's shape, written by a generator here:
an unnamed index column (empty first header cell), timestamp, item_id, position 1..3, click,
propensity_score, hex-string user features and user-item affinities. CSV and Parquet read
directly; positions, the one-hot encoding (against pandas.get_dummies), its reuse on a
second file, slate_target, evaluate's IPS against the hand formula, and bad input."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import splitlab as sl
from splitlab.errors import InvalidArgumentError
from splitlab.ope import evaluate, load_log, slate_target
from splitlab.ope.logs import MAX_CATEGORIES

N_ITEMS = 10
N_POSITIONS = 3
FEATURES = [f"user_feature_{j}" for j in range(4)]
AFFINITIES = [f"user-item_affinity_{k}" for k in range(N_ITEMS)]
COLUMNS = dict(action="item_id", reward="click", propensity="propensity_score")


def _hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def make_obd(n_decisions: int = 667, seed: int = 0, levels=(3, 5, 4, 6)) -> pd.DataFrame:
    """~2000 slot rows (3 per decision) in the OBD layout, in timestamp order."""
    rng = np.random.default_rng(seed)
    rows = n_decisions * N_POSITIONS
    features = {
        name: np.repeat(
            np.array([_hex(f"{name}-{v}") for v in range(count)])[
                rng.integers(0, count, n_decisions)
            ],
            N_POSITIONS,
        )
        for name, count in zip(FEATURES, levels, strict=True)
    }
    start = pd.Timestamp("2019-11-24", tz="UTC")
    frame = pd.DataFrame(
        {
            "timestamp": start + pd.to_timedelta(np.arange(rows) * 1000 + 7, unit="ms"),
            "item_id": rng.integers(0, N_ITEMS, rows),
            "position": np.tile(np.arange(1, N_POSITIONS + 1), n_decisions),
            "click": rng.binomial(1, 0.05, rows),
            "propensity_score": rng.uniform(0.02, 0.3, rows).round(6),
            **features,
            **{name: rng.choice([0.0, 1.0, 2.5], rows) for name in AFFINITIES},
        }
    )
    return frame


def _write(frame: pd.DataFrame, path, kind: str) -> str:
    path = str(path)
    if kind == "csv":
        frame.to_csv(path)  # the index column, with an empty header cell, as OBD ships
    else:
        frame.reset_index(names="").to_parquet(path)
    return path


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_obd()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_load_log_reads_the_obd_layout_directly(tmp_path, frame, kind):
    path = _write(frame, tmp_path / f"obd.{kind}", kind)
    if kind == "csv":
        assert open(path).readline().startswith(",timestamp,item_id,position")
    log = load_log(path, **COLUMNS, context=FEATURES + AFFINITIES, position="position")
    assert log.n == len(frame) and log.excluded == 0
    np.testing.assert_array_equal(log.actions, frame["item_id"])
    np.testing.assert_array_equal(log.rewards, frame["click"])
    np.testing.assert_allclose(log.propensities, frame["propensity_score"])
    np.testing.assert_array_equal(log.positions, frame["position"] - 1)
    assert log.position_labels == (1, 2, 3) and log.n_positions == N_POSITIONS
    assert log.encoding["position"] == (1, 2, 3)
    dummies = pd.get_dummies(frame[FEATURES], dtype=float)  # sorts each column's categories
    width = dummies.shape[1]
    assert log.n_features == width + N_ITEMS
    np.testing.assert_array_equal(log.contexts[:, :width], dummies.to_numpy())
    np.testing.assert_array_equal(log.contexts[:, width:], frame[AFFINITIES].to_numpy())
    for name in FEATURES:
        assert log.encoding[name] == tuple(sorted(frame[name].unique()))
    names = log.description["feature_names"]
    assert [n.replace("=", "_") for n in names[:width]] == list(dummies.columns)
    assert names[width:] == AFFINITIES


def test_csv_and_parquet_give_the_same_log(tmp_path, frame):
    logs = [
        load_log(_write(frame, tmp_path / f"obd.{k}", k), **COLUMNS, context=FEATURES,
                 position="position")
        for k in ("csv", "parquet")
    ]  # fmt: skip
    assert logs[0].fingerprint() == logs[1].fingerprint()
    assert logs[0].encoding == logs[1].encoding


def test_encoding_is_stable_and_reused_for_a_second_file(tmp_path, frame):
    path = _write(frame, tmp_path / "first.csv", "csv")
    first = load_log(path, **COLUMNS, context=FEATURES, position="position")
    again = load_log(path, **COLUMNS, context=FEATURES, position="position")
    assert first.encoding == again.encoding
    np.testing.assert_array_equal(first.contexts, again.contexts)
    # a second file with fewer categories and one category the first file never had
    other = make_obd(n_decisions=50, seed=1, levels=(2, 2, 2, 2))
    other.loc[:2, "user_feature_0"] = "unseen"
    second_path = _write(other, tmp_path / "second.csv", "csv")
    alone = load_log(second_path, **COLUMNS, context=FEATURES, position="position")
    assert alone.n_features < first.n_features
    second = load_log(
        second_path, **COLUMNS, context=FEATURES, position="position", encoding=first.encoding
    )
    assert second.encoding == first.encoding
    assert second.n_features == first.n_features
    width0 = len(first.encoding["user_feature_0"])
    np.testing.assert_array_equal(second.contexts[:3, :width0], 0.0)  # unseen -> zero row
    assert np.all(second.contexts[3:, :width0].sum(axis=1) == 1.0)
    expected = np.hstack(
        [
            (other[name].to_numpy()[:, None] == np.array(first.encoding[name])[None, :])
            for name in FEATURES
        ]
    ).astype(float)
    np.testing.assert_array_equal(second.contexts, expected)


def test_explicit_categorical_and_numeric_passthrough(frame):
    small = frame.head(30).copy()
    small["segment"] = np.arange(30) % 3 + 10  # an integer column, encoded because listed
    log = load_log(
        small, **COLUMNS, context=["user-item_affinity_0"], categorical=["segment"],
        position="position",
    )  # fmt: skip
    assert log.encoding["segment"] == (10, 11, 12)
    np.testing.assert_array_equal(log.contexts[:, 0], small["user-item_affinity_0"])
    np.testing.assert_array_equal(
        log.contexts[:, 1:], pd.get_dummies(small["segment"], dtype=float)
    )
    with pytest.raises(InvalidArgumentError) as info:
        load_log(small, **COLUMNS, context=FEATURES, categorical=None)
    assert info.value.argument == "context"


def test_slate_target_maps_per_slot_distributions(tmp_path, frame):
    rng = np.random.default_rng(3)
    dist = rng.dirichlet(np.ones(N_ITEMS), size=(len(frame), N_POSITIONS)).transpose(0, 2, 1)
    slots = frame["position"].to_numpy() - 1
    mapped = slate_target(dist, slots)
    assert mapped.shape == (len(frame), N_ITEMS)
    for i in (0, 1, 2, 100, len(frame) - 1):
        np.testing.assert_array_equal(mapped[i], dist[i, :, slots[i]])
    # from a log whose rows the timestamp reorders: the result stays in source order
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    log = load_log(shuffled, **COLUMNS, context=None, position="position")
    assert log.source_rows is not None
    from_log = slate_target(dist, log)
    np.testing.assert_array_equal(from_log, slate_target(dist, shuffled["position"] - 1))
    # a table per distinct context (n_contexts, K, P), indexed by each row's context first
    table = rng.dirichlet(np.ones(N_ITEMS), size=(4, N_POSITIONS)).transpose(0, 2, 1)
    context = rng.integers(0, 4, len(frame))
    np.testing.assert_array_equal(
        slate_target(table[context], slots)[7], table[context[7], :, slots[7]]
    )
    with pytest.raises(InvalidArgumentError) as info:
        slate_target(dist[:, :, :2], slots)
    assert info.value.argument == "positions"
    with pytest.raises(InvalidArgumentError) as info:
        slate_target(dist[:, :, 0], slots)
    assert info.value.argument == "action_dist"


def test_evaluate_on_the_loaded_slate_log_matches_the_ips_formula(tmp_path, frame):
    path = _write(frame, tmp_path / "obd.csv", "csv")
    log = load_log(
        path, **COLUMNS, context=FEATURES + AFFINITIES, position="position", n_actions=N_ITEMS
    )
    rng = np.random.default_rng(5)
    dist = rng.dirichlet(np.ones(N_ITEMS), size=(len(frame), N_POSITIONS)).transpose(0, 2, 1)
    target = slate_target(dist, log)
    result = evaluate(log, target, estimators=["ips", "snips"]).set_index("estimator")
    slots = frame["position"].to_numpy() - 1
    pi = dist[np.arange(len(frame)), frame["item_id"].to_numpy(), slots]
    weights = pi / frame["propensity_score"].to_numpy()
    rewards = frame["click"].to_numpy()
    assert result.loc["ips", "estimate"] == pytest.approx(np.mean(rewards * weights), rel=1e-12)
    assert result.loc["snips", "estimate"] == pytest.approx(
        np.sum(rewards * weights) / np.sum(weights), rel=1e-12
    )
    assert sl.ope.slate_target is slate_target


def test_bad_position_and_too_many_categories_name_the_argument(frame):
    small = frame.head(40).copy()
    small["position"] = small["position"].astype(float)
    small.loc[5, "position"] = np.nan
    with pytest.raises(InvalidArgumentError) as info:
        load_log(small, **COLUMNS, context=None, position="position")
    assert info.value.argument == "position" and "null" in str(info.value)
    with pytest.raises(InvalidArgumentError) as info:
        load_log(frame.head(40), **COLUMNS, context=None, position="no_such_column")
    assert info.value.argument == "position"
    wide = frame.head(MAX_CATEGORIES + 1).copy()
    wide["user_feature_0"] = [f"u{i}" for i in range(len(wide))]
    with pytest.raises(InvalidArgumentError) as info:
        load_log(wide, **COLUMNS, context=["user_feature_0"])
    assert info.value.argument == "categorical" and "MAX_CATEGORIES" in str(info.value)
    # a second file whose slot label the encoding does not know
    first = load_log(frame.head(30), **COLUMNS, context=None, position="position")
    later = frame.head(30).copy()
    later.loc[0, "position"] = 4
    with pytest.raises(InvalidArgumentError) as info:
        load_log(later, **COLUMNS, context=None, position="position", encoding=first.encoding)
    assert info.value.argument == "position"

"""Bandit decision logs: load any frame through the sources layer and validate it.

A log has one row per decision: the ``action`` index, the ``reward`` observed, the
``propensity`` (probability of the logged action), optionally the full logged probabilities
(``prob_0`` … ``prob_{K−1}``), the context features (``x_0`` … ``x_{d−1}``), the serving
``period`` and a ``timestamp`` — the columns ``Allocator.flush`` writes. Rows are put in
``timestamp`` order when that column exists (the adaptive estimators need decision order).

Rows whose reward is null (not joined yet) are **excluded** and counted in
``BanditLog.excluded``; every estimator reports that count. (Dropping is unbiased only if
whether a reward arrived does not depend on the arm; pass ``missing_reward="raise"`` to
refuse such logs instead.) Everything else that is wrong raises
:class:`~splitlab.errors.InvalidArgumentError` naming the column and the offending rows.

**Categorical context columns.** A context column whose type is not numeric (strings such
as the Open Bandit Dataset's hex-string ``user_feature_*``), or one listed in
``categorical=``, is one-hot encoded: one 0/1 feature per category, the categories
*sorted* (so the features are the same on every call and every file holding the same
categories), in place of the column, named ``{column}={category}`` in
``description["feature_names"]``. The encoding is kept in ``BanditLog.encoding``
(column → tuple of categories); pass it back as ``load_log(..., encoding=log.encoding)``
to encode a second file with the same features. A category the encoding does not list
gives an all-zero row for that column. A column may have at most :data:`MAX_CATEGORIES`
categories; a null in a categorical column is an error, as in any context column.
Numeric context columns pass through unchanged.

**Slates.** With ``position=`` the log is a slate log, one row per (decision, slot), as
the Open Bandit Dataset ships it: ``BanditLog.positions`` is the 0-based slot index of each
row (the sorted distinct labels of the position column are ``BanditLog.position_labels``,
so OBD's positions 1, 2, 3 become 0, 1, 2) and ``propensity`` is the probability of the
row's action *at its slot*. A target policy gives one action distribution per slot; the
target passed to :func:`~splitlab.ope.evaluate` is the per-row (n, K) matrix whose row i
is the distribution at row i's slot, for instance :func:`slate_target` of Open Bandit
Pipeline's ``action_dist`` of shape (n, K, n_positions). A table with one row per distinct
context, of shape (n_contexts, K, n_positions), is first indexed by each row's context
(``table[context_index]``, an (n, K, n_positions) array). The estimators then average over
slot rows; Open Bandit Pipeline's slate value, the sum over positions of each position's
value, is ``n_positions`` times that average when every decision fills every slot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from splitlab._validation import check_choice
from splitlab.errors import InvalidArgumentError

__all__ = ["MAX_CATEGORIES", "BanditLog", "load_log", "slate_target"]

PROBABILITY_TOLERANCE = 1e-6
MISSING_REWARD = ("drop", "raise")
_SHOWN = 5
#: most categories a categorical context column may have (each becomes one feature)
MAX_CATEGORIES = 1000


def describe_rows(mask: np.ndarray, ids: np.ndarray | None = None, values=None) -> str:
    """'rows 3, 17 (2 of 1000)' with decision ids and values of the first few bad rows."""
    where = np.flatnonzero(mask)
    shown = where[:_SHOWN]
    labels = []
    for position in shown:
        label = str(position)
        if ids is not None:
            label += f" (id {ids[position]})"
        if values is not None:
            label += f" = {values[position]!r}"
        labels.append(label)
    more = ", …" if where.size > _SHOWN else ""
    plural = "s" if where.size > 1 else ""
    return f"row{plural} {', '.join(labels)}{more} ({where.size} of {mask.size})"


@dataclass(frozen=True, eq=False)
class BanditLog:
    """A validated decision log as plain arrays, in decision order.

    ``contexts`` has shape (n, d) with d = 0 for a context-free bandit; ``probabilities``
    is the (n, K) matrix of logged choice probabilities or None when only the propensity of
    the logged action is known. ``arms`` are the arm labels by action index when the log
    has an ``arm`` column. ``excluded`` counts rows dropped for a null reward, and
    ``source_rows`` gives each row's position in the source, so that arrays aligned with the
    source (a target matrix, reward predictions) can be aligned with the log.

    >>> log = BanditLog.from_arrays(actions=[0, 1, 1], rewards=[1.0, 0.0, 1.0],
    ...                             propensities=[0.5, 0.5, 0.5], n_actions=2)
    >>> log.n, log.n_actions
    (3, 2)
    """

    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    contexts: np.ndarray
    probabilities: np.ndarray | None = None
    n_actions: int | None = None
    periods: np.ndarray | None = None
    arms: tuple[str, ...] | None = None
    excluded: int = 0
    description: dict[str, Any] = field(default_factory=dict)
    source_rows: np.ndarray | None = None
    positions: np.ndarray | None = None
    position_labels: tuple | None = None
    encoding: dict[str, tuple] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.actions.size)

    @property
    def n_features(self) -> int:
        return int(self.contexts.shape[1])

    @property
    def n_positions(self) -> int:
        """Slots per decision in a slate log (1 when the log has no positions)."""
        if self.positions is None:
            return 1
        if self.position_labels is not None:
            return len(self.position_labels)
        return int(self.positions.max()) + 1 if self.positions.size else 0

    @property
    def n_source(self) -> int:
        """Rows in the source, including the ones excluded for a null reward."""
        return self.n + self.excluded

    def align(self, name: str, array: np.ndarray) -> np.ndarray:
        """Rows of ``array`` (one per source row, in source order) in the log's order."""
        if array.shape[0] != self.n_source:
            raise InvalidArgumentError(
                name,
                f"needs one row per row of the log ({self.n_source}"
                + (f", including {self.excluded} without reward" if self.excluded else "")
                + f"), got {array.shape[0]}",
            )
        if self.source_rows is None:
            return array
        return array[self.source_rows]

    @classmethod
    def from_arrays(
        cls,
        actions: object,
        rewards: object,
        propensities: object,
        contexts: object = None,
        probabilities: object = None,
        *,
        n_actions: int | None = None,
        periods: object = None,
        missing_reward: str = "drop",
        positions: object = None,
    ) -> BanditLog:
        """Validate plain arrays (rows in decision order); NaN rewards count as missing.
        ``positions`` are 0-based slot indices of a slate log (see the module docstring)."""
        rewards = _float_column("reward", rewards)
        n = rewards.size
        columns = {
            "action": _numeric_column("action", actions, n),
            "reward": rewards,
            "propensity": _numeric_column("propensity", propensities, n),
            "null_reward": np.isnan(rewards),
        }
        if contexts is not None:
            context_array = np.asarray(contexts, dtype=np.float64)
            if context_array.ndim == 1:
                context_array = context_array[:, None]
            if context_array.ndim != 2 or context_array.shape[0] != n:
                raise InvalidArgumentError(
                    "contexts", f"must have one row per decision ({n}), got {context_array.shape}"
                )
            columns["contexts"] = context_array
        if probabilities is not None:
            matrix = np.asarray(probabilities, dtype=np.float64)
            if matrix.ndim != 2 or matrix.shape[0] != n:
                raise InvalidArgumentError(
                    "probabilities", f"must have shape ({n}, K), got {matrix.shape}"
                )
            columns["probabilities"] = matrix
        if periods is not None:
            columns["period"] = _numeric_column("periods", periods, n)
        if positions is not None:
            columns["position"] = _slot_indices(_numeric_column("positions", positions, n))
        return _build(columns, n_actions, None, missing_reward, {"kind": "arrays"})

    def subset(self, rows: np.ndarray) -> BanditLog:
        """The rows selected by a boolean mask or an index array (same arms and actions)."""
        return replace(
            self,
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            propensities=self.propensities[rows],
            contexts=self.contexts[rows],
            probabilities=None if self.probabilities is None else self.probabilities[rows],
            periods=None if self.periods is None else self.periods[rows],
            positions=None if self.positions is None else self.positions[rows],
            source_rows=(np.arange(self.n) if self.source_rows is None else self.source_rows)[rows],
        )

    def fingerprint(self) -> str:
        """A hash of the log's size, column sums and sums of squares (to 12 significant
        digits) and its first and last rows — cheap at 10⁷ rows, for provenance."""
        digest = hashlib.sha256(f"{self.n}|{self.n_actions}|{self.excluded}".encode())
        parts = [self.actions[:, None], self.rewards[:, None], self.propensities[:, None]]
        parts.append(self.contexts)
        if self.probabilities is not None:
            parts.append(self.probabilities)
        if self.positions is not None:
            parts.append(self.positions[:, None])
        for part in parts:
            values = np.asarray(part, dtype=np.float64)
            sums = np.concatenate([values.sum(axis=0), np.einsum("ij,ij->j", values, values)])
            digest.update(np.char.mod("%.12g", sums).tobytes())
            digest.update(np.ascontiguousarray(values[:100]).tobytes())
            digest.update(np.ascontiguousarray(values[-100:]).tobytes())
        return digest.hexdigest()[:16]


def _float_column(name: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be numeric, got {type(value).__name__}") from exc
    if array.ndim != 1:
        raise InvalidArgumentError(name, f"must be one-dimensional, got shape {array.shape}")
    return array


def _numeric_column(name: str, value: object, n: int) -> np.ndarray:
    array = _float_column(name, value)
    if array.size != n:
        raise InvalidArgumentError(
            name, f"must have one value per decision ({n}), got {array.size}"
        )
    return array


def _numbered(columns: Sequence[str], prefix: str) -> list[str]:
    """Columns named prefix0, prefix1, … in numeric order (prefix e.g. 'x_')."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    found = [(int(m.group(1)), c) for c in columns if (m := pattern.match(str(c)))]
    found.sort()
    indices = [i for i, _ in found]
    if indices and indices != list(range(len(indices))):
        raise InvalidArgumentError(
            prefix, f"columns {prefix}0 … must be numbered consecutively from 0, got {indices}"
        )
    return [c for _, c in found]


def load_log(
    log: object,
    *,
    action: str = "action",
    reward: str = "reward",
    propensity: str = "propensity",
    context: str | Sequence[str] | None = "x_",
    probabilities: str | Sequence[str] | None = "prob_",
    period: str | None = "period",
    timestamp: str | None = "timestamp",
    arm: str | None = "arm",
    n_actions: int | None = None,
    missing_reward: str = "drop",
    position: str | None = None,
    categorical: str | Sequence[str] | None = "auto",
    encoding: Mapping[str, Sequence] | None = None,
) -> BanditLog:
    """A :class:`BanditLog` from a frame, file, engine, mapping of arrays or BanditLog.

    ``log`` is anything :func:`splitlab.sources.open_source` reads (pandas,
    polars, pyarrow, Parquet/CSV paths, DuckDB, Spark) or a mapping with keys
    ``action``, ``reward``, ``propensity`` and optionally ``contexts`` (n × d),
    ``probabilities`` (n × K) and ``periods``. ``context`` and ``probabilities`` are a
    column-name prefix (numbered from 0) or an explicit list of columns; a prefix that
    matches nothing means the log has none. ``period``, ``timestamp`` and ``arm`` are used
    when present. Null rewards: see the module docstring.

    ``position`` names the slot column of a slate log (one row per decision and slot; whole
    numbers, no nulls). ``categorical="auto"`` one-hot encodes the context columns whose type
    is not numeric; a list names the columns to encode (added to the context if ``context``
    does not select them), whatever their type; None encodes nothing, and then a
    non-numeric context column is an error. ``encoding`` is a previous log's
    ``BanditLog.encoding``: its columns are encoded with its categories, and its entry for
    the position column (if any) fixes the slot labels. See the module docstring.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"action": [0, 1, 1, 0], "reward": [1.0, 0.0, None, 1.0],
    ...                       "propensity": 0.5, "x_0": [0.1, 0.2, 0.3, 0.4]})
    >>> log = load_log(frame, n_actions=2)
    >>> log.n, log.excluded, log.n_features
    (3, 1, 1)

    A slate log with a string feature, read as the Open Bandit Dataset ships it:

    >>> obd = pd.DataFrame({"item_id": [2, 0, 1, 2], "position": [1, 2, 1, 2],
    ...                     "click": [0, 1, 1, 0], "propensity_score": 0.25,
    ...                     "user_feature_0": ["b7", "a1", "b7", "c3"]})
    >>> log = load_log(obd, action="item_id", reward="click", propensity="propensity_score",
    ...                context=["user_feature_0"], position="position", n_actions=3)
    >>> log.positions.tolist(), log.position_labels
    ([0, 1, 0, 1], (1, 2))
    >>> log.encoding["user_feature_0"], log.contexts.tolist()
    (('a1', 'b7', 'c3'), [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    """
    missing_reward = check_choice("missing_reward", missing_reward, MISSING_REWARD)
    if isinstance(log, BanditLog):
        return log
    if isinstance(log, Mapping):
        return _from_mapping(log, n_actions, missing_reward)
    from splitlab.sources import open_source

    source = open_source(log)
    schema = list(source.columns)

    def require(argument: str, column: str) -> str:
        if column not in schema:
            raise InvalidArgumentError(
                argument,
                f"column {column!r} is not in the log (columns: {', '.join(map(str, schema))})",
            )
        return column

    wanted = {
        "action": require("action", action),
        "reward": require("reward", reward),
        "propensity": require("propensity", propensity),
    }
    context_columns = _resolve_columns("context", context, schema, require)
    encoding = _check_encoding(encoding)
    if categorical is None or categorical == "auto":
        listed: list[str] = []
    elif isinstance(categorical, str):
        listed = [require("categorical", categorical)]
    else:
        listed = [require("categorical", column) for column in categorical]
    context_columns += [c for c in listed if c not in context_columns]
    if position is not None:
        wanted["position"] = require("position", position)
    probability_columns = _resolve_columns("probabilities", probabilities, schema, require)
    optional = {"period": period, "timestamp": timestamp, "arm": arm, "decision_id": "decision_id"}
    for key, column in optional.items():
        if column is not None and column in schema:
            wanted[key] = column
    selected = list(dict.fromkeys([*wanted.values(), *context_columns, *probability_columns]))
    import narwhals as nw

    frame = source.frame.select([nw.col(c) for c in selected]).collect()
    columns: dict[str, np.ndarray] = {}
    for key, column in wanted.items():
        series = frame[column]
        if key == "position":
            columns[key], labels = _positions(series, encoding.get(position))
            continue
        if key in ("arm", "decision_id"):
            columns[key] = np.asarray(series.to_list(), dtype=object)
            continue
        if key == "timestamp":
            columns[key] = np.asarray(series.to_numpy())
            continue
        nulls = np.asarray(series.is_null().to_numpy(), dtype=bool)
        try:
            values = np.asarray(series.to_numpy(), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                key, f"column {column!r} must be numeric, but its type is {series.dtype}"
            ) from exc
        values = np.where(nulls, np.nan, values)
        columns[key] = values
        if key == "reward":
            columns["null_reward"] = nulls
        elif nulls.any():
            raise InvalidArgumentError(key, f"column {column!r} is null in {describe_rows(nulls)}")
    schema_types = {name: frame[name].dtype for name in context_columns}
    encode = [
        name
        for name in context_columns
        if name in listed
        or name in encoding
        or (categorical == "auto" and not _is_numeric(schema_types[name]))
    ]
    used: dict[str, tuple] = {}
    feature_names: list[str] = []
    blocks: list[np.ndarray] = []
    for name in context_columns:
        series = frame[name]
        nulls = np.asarray(series.is_null().to_numpy(), dtype=bool)
        if nulls.any():
            raise InvalidArgumentError(
                "context", f"column {name!r} is null in {describe_rows(nulls)}"
            )
        if name in encode:
            block, used[name] = _one_hot(name, series, encoding.get(name))
            feature_names += [f"{name}={category}" for category in used[name]]
        else:
            try:
                block = np.asarray(series.to_numpy(), dtype=np.float64)[:, None]
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(
                    "context",
                    f"column {name!r} has type {series.dtype}, not numeric; encode it with "
                    "categorical='auto' or categorical=[...]",
                ) from exc
            feature_names.append(name)
        blocks.append(block)
    if blocks:
        columns["contexts"] = np.hstack(blocks)
    for key, names in (("probabilities", probability_columns),):
        if names:
            matrix = np.empty((frame.shape[0], len(names)))
            for j, name in enumerate(names):
                series = frame[name]
                nulls = np.asarray(series.is_null().to_numpy(), dtype=bool)
                if nulls.any():
                    raise InvalidArgumentError(
                        "context" if key == "contexts" else key,
                        f"column {name!r} is null in {describe_rows(nulls)}",
                    )
                matrix[:, j] = np.asarray(series.to_numpy(), dtype=np.float64)
            columns[key] = matrix
    description = {"engine": source.engine, **source.description}
    description["columns"] = {
        **wanted,
        "context": context_columns,
        "probabilities": probability_columns,
    }
    description["feature_names"] = feature_names
    log = _build(columns, n_actions, columns.get("timestamp"), missing_reward, description)
    if position is not None:
        used[position] = labels
    return replace(log, position_labels=labels if position is not None else None, encoding=used)


def _is_numeric(dtype) -> bool:
    import narwhals as nw

    return bool(dtype.is_numeric() or dtype == nw.Boolean)


def _check_encoding(encoding) -> dict[str, tuple]:
    if encoding is None:
        return {}
    if not isinstance(encoding, Mapping):
        raise InvalidArgumentError(
            "encoding", f"must map column -> categories, got {type(encoding).__name__}"
        )
    checked = {}
    for column, categories in encoding.items():
        if isinstance(categories, (str, bytes)) or not isinstance(categories, Sequence):
            raise InvalidArgumentError(
                "encoding", f"the categories of {column!r} must be a sequence"
            )
        if len(set(categories)) != len(categories):
            raise InvalidArgumentError("encoding", f"the categories of {column!r} repeat")
        checked[str(column)] = tuple(categories)
    return checked


def _sorted_categories(argument: str, name: str, values: list) -> tuple:
    distinct = set(values)
    if len(distinct) > MAX_CATEGORIES:
        raise InvalidArgumentError(
            argument,
            f"column {name!r} has {len(distinct)} categories, more than MAX_CATEGORIES "
            f"({MAX_CATEGORIES}); bucket it or pass it as numeric",
        )
    try:
        return tuple(sorted(distinct))
    except TypeError as exc:
        raise InvalidArgumentError(
            argument, f"column {name!r} mixes values that cannot be sorted together"
        ) from exc


def _one_hot(name: str, series, categories: tuple | None) -> tuple[np.ndarray, tuple]:
    """0/1 columns of ``series`` for the sorted categories (or the given ones; a value
    they do not list gives a zero row)."""
    import pandas as pd

    values = series.to_list()
    if categories is None:
        argument = "categorical"
        categories = _sorted_categories(argument, name, values)
    elif len(categories) > MAX_CATEGORIES:
        raise InvalidArgumentError(
            "encoding", f"lists {len(categories)} categories for {name!r}, more than "
            f"MAX_CATEGORIES ({MAX_CATEGORIES})",
        )  # fmt: skip
    codes = np.asarray(pd.Index(list(categories)).get_indexer(values), dtype=np.int64)
    block = np.zeros((len(values), len(categories)))
    seen = codes >= 0
    block[np.flatnonzero(seen), codes[seen]] = 1.0
    return block, tuple(categories)


def _slot_indices(values: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
    if bad.any():
        raise InvalidArgumentError(
            "positions", f"must be slot indices 0, 1, …; not in {describe_rows(bad, None, values)}"
        )
    return values.astype(np.int64)


def _positions(series, labels: tuple | None) -> tuple[np.ndarray, tuple]:
    """0-based slot index of every row and the sorted slot labels."""
    nulls = np.asarray(series.is_null().to_numpy(), dtype=bool)
    if nulls.any():
        raise InvalidArgumentError(
            "position", f"column {series.name!r} is null in {describe_rows(nulls)}"
        )
    try:
        values = np.asarray(series.to_numpy(), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            "position", f"column {series.name!r} must be numeric, but its type is {series.dtype}"
        ) from exc
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        raise InvalidArgumentError(
            "position", f"must be whole numbers; not in {describe_rows(bad, None, values)}"
        )
    values = values.astype(np.int64)
    if labels is None:
        labels = _sorted_categories("position", str(series.name), values.tolist())
    indices = np.searchsorted(np.asarray(labels), values) if labels else np.zeros_like(values)
    unknown = (indices >= len(labels)) | (
        np.asarray(labels)[np.minimum(indices, len(labels) - 1)] != values
    )
    if unknown.any():
        raise InvalidArgumentError(
            "position",
            f"labels outside the encoding's {list(labels)} in "
            f"{describe_rows(unknown, None, values)}",
        )
    return indices.astype(np.int64), tuple(int(label) for label in labels)


def slate_target(action_dist: object, positions: object) -> np.ndarray:
    """Per-row target probabilities (n, K) from per-slot ones (n, K, n_positions).

    ``action_dist`` is Open Bandit Pipeline's array: row i, slot p gives the target's
    action distribution at slot p of row i's decision. ``positions`` is a slate
    :class:`BanditLog` (then ``action_dist`` has one row per source row, in source order,
    like any target array, and so has the result, ready for
    :func:`~splitlab.ope.evaluate`) or an (n,) array of 0-based slot indices. Row i of the
    result is ``action_dist[i, :, positions[i]]``.

    >>> dist = np.zeros((2, 3, 2))
    >>> dist[:, 0, 0] = 1.0  # slot 0: always action 0
    >>> dist[:, 2, 1] = 1.0  # slot 1: always action 2
    >>> slate_target(dist, [1, 0]).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    array = np.asarray(action_dist, dtype=np.float64)
    if array.ndim != 3:
        raise InvalidArgumentError(
            "action_dist", f"must have shape (n, K, n_positions), got {array.shape}"
        )
    if isinstance(positions, BanditLog):
        log = positions
        if log.positions is None:
            raise InvalidArgumentError(
                "positions", "the log has no positions (load it with position=)"
            )
        if array.shape[0] != log.n_source:
            raise InvalidArgumentError(
                "action_dist",
                f"needs one row per row of the log's source ({log.n_source}), got {array.shape[0]}",
            )
        slots = np.zeros(log.n_source, dtype=np.int64)  # rows without reward: any slot
        rows = np.arange(log.n) if log.source_rows is None else log.source_rows
        slots[rows] = log.positions
    else:
        slots = _slot_indices(_float_column("positions", positions))
        if slots.size != array.shape[0]:
            raise InvalidArgumentError(
                "positions", f"must have one slot per row of action_dist ({array.shape[0]}), "
                f"got {slots.size}",
            )  # fmt: skip
    if slots.size and slots.max() >= array.shape[2]:
        bad = slots >= array.shape[2]
        raise InvalidArgumentError(
            "positions",
            f"exceed action_dist's {array.shape[2]} slots in {describe_rows(bad, None, slots)}",
        )
    return array[np.arange(slots.size), :, slots]


def _resolve_columns(argument, spec, schema, require) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return _numbered(schema, spec)
    return [require(argument, column) for column in spec]


def _from_mapping(data: Mapping, n_actions, missing_reward) -> BanditLog:
    unknown = sorted(
        set(data)
        - {"action", "reward", "propensity", "contexts", "probabilities", "periods", "positions"}
    )
    if unknown:
        raise InvalidArgumentError("log", f"unknown keys {unknown} in the mapping of arrays")
    for key in ("action", "reward", "propensity"):
        if key not in data:
            raise InvalidArgumentError(key, f"the mapping of arrays has no {key!r} entry")
    return BanditLog.from_arrays(
        data["action"], data["reward"], data["propensity"], data.get("contexts"),
        data.get("probabilities"), n_actions=n_actions, periods=data.get("periods"),
        missing_reward=missing_reward, positions=data.get("positions"),
    )  # fmt: skip


def _build(columns, n_actions, timestamps, missing_reward, description) -> BanditLog:
    n = columns["reward"].size
    ids = columns.get("decision_id")
    null_reward = columns.pop("null_reward")
    if null_reward.any() and missing_reward == "raise":
        raise InvalidArgumentError(
            "reward", f"is null (not joined yet) in {describe_rows(null_reward, ids)}"
        )
    rewards = columns["reward"]
    bad = ~null_reward & ~np.isfinite(rewards)
    if bad.any():
        raise InvalidArgumentError(
            "reward", f"must be finite; not in {describe_rows(bad, ids, rewards)}"
        )
    propensities = columns["propensity"]
    bad = ~(propensities > 0.0) | ~(propensities <= 1.0)
    if bad.any():
        raise InvalidArgumentError(
            "propensity", f"must lie in (0, 1]; not in {describe_rows(bad, ids, propensities)}"
        )
    actions_float = columns["action"]
    bad = (
        ~np.isfinite(actions_float)
        | (actions_float != np.round(actions_float))
        | (actions_float < 0)
    )
    if bad.any():
        raise InvalidArgumentError(
            "action",
            f"must be an action index 0, 1, …; not in {describe_rows(bad, ids, actions_float)}",
        )
    actions = actions_float.astype(np.int64)
    matrix = columns.get("probabilities")
    if matrix is not None:
        width = matrix.shape[1]
        if n_actions is not None and int(n_actions) != width:
            raise InvalidArgumentError(
                "n_actions", f"is {n_actions} but the log has probabilities for {width} actions"
            )
        n_actions = width
    if n_actions is not None:
        n_actions = int(n_actions)
        if n_actions < 1:
            raise InvalidArgumentError("n_actions", f"must be positive, got {n_actions}")
        bad = actions >= n_actions
        if bad.any():
            raise InvalidArgumentError(
                "action",
                f"must be below the number of actions ({n_actions}); not in "
                f"{describe_rows(bad, ids, actions)}",
            )
    if matrix is not None:
        bad = ~np.all(np.isfinite(matrix) & (matrix >= 0.0) & (matrix <= 1.0), axis=1)
        if bad.any():
            raise InvalidArgumentError(
                "probabilities", f"must lie in [0, 1]; not in {describe_rows(bad, ids)}"
            )
        bad = np.abs(matrix.sum(axis=1) - 1.0) > PROBABILITY_TOLERANCE
        if bad.any():
            raise InvalidArgumentError(
                "probabilities", f"must sum to 1 in every row; not in {describe_rows(bad, ids)}"
            )
        logged = matrix[np.arange(n), actions]
        bad = np.abs(logged - propensities) > PROBABILITY_TOLERANCE
        if bad.any():
            raise InvalidArgumentError(
                "propensity",
                "differs from the logged probability of the logged action in "
                f"{describe_rows(bad, ids, propensities)}",
            )
    contexts = columns.get("contexts")
    if contexts is None:
        contexts = np.zeros((n, 0))
    else:
        bad = ~np.all(np.isfinite(contexts), axis=1)
        if bad.any():
            raise InvalidArgumentError(
                "context", f"contains NaN or inf in {describe_rows(bad, ids)}"
            )
    periods = columns.get("period")
    if periods is not None:
        bad = ~np.isfinite(periods) | (periods != np.round(periods))
        if bad.any():
            raise InvalidArgumentError(
                "period", f"must be whole numbers; not in {describe_rows(bad, ids, periods)}"
            )
        periods = periods.astype(np.int64)
    arms = _arm_labels(columns.get("arm"), actions, n_actions, ids)
    positions = columns.get("position")
    log = BanditLog(
        actions=actions,
        rewards=rewards,
        propensities=propensities,
        contexts=np.ascontiguousarray(contexts),
        probabilities=matrix,
        n_actions=n_actions,
        periods=periods,
        arms=arms,
        description=description,
        positions=positions,
    )
    # rows are reported above by their position in the source; decision order from here on
    order = np.arange(n) if timestamps is None else np.argsort(timestamps, kind="stable")
    rows = order[~null_reward[order]]
    if rows.size == n and np.all(rows == np.arange(n)):
        return log
    return replace(log.subset(rows), excluded=int(null_reward.sum()))


def _arm_labels(labels, actions, n_actions, ids) -> tuple[str, ...] | None:
    """Arm label of each action index, checking that labels and indices agree."""
    if labels is None:
        return None
    size = n_actions if n_actions is not None else (int(actions.max()) + 1 if actions.size else 0)
    names: list[str | None] = [None] * size
    for index in np.unique(actions):
        seen = {str(v) for v in labels[actions == index]}
        if len(seen) > 1:
            raise InvalidArgumentError(
                "arm", f"action {index} is logged under several arm labels: {sorted(seen)}"
            )
        names[index] = seen.pop()
    present = [n for n in names if n is not None]
    if len(set(present)) != len(present):
        raise InvalidArgumentError("arm", "one arm label is logged under several action indices")
    return tuple(n if n is not None else f"action_{k}" for k, n in enumerate(names))

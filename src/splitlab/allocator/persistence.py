"""Persistence: the snapshot and delta codec, its field checks, format 1, atomic files.

A blob is ``MAGIC | header length | JSON header | little-endian float64 arrays | CRC-32``
(:func:`pack`, :func:`unpack`); never pickle. :func:`unpack` checks the framing (magic,
length, checksum, format, kind, array layout); the reader of each kind checks the content
with the ``as_*`` helpers, which raise :class:`~splitlab.errors.InvalidArgumentError` for
``blob`` naming the field. :func:`from_format1` converts a format-1 snapshot to format 2.
Files are written through a locked temporary file renamed over the target
(:func:`atomic_write`); those killed writers left are swept by
:func:`remove_stale_temporaries`.

>>> header, arrays = unpack(pack({"kind": "delta"}, {"x": np.arange(3.0)}), "delta")
>>> header["kind"], arrays["x"].tolist()
('delta', [0.0, 1.0, 2.0])
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: stale temporary files are not swept
    fcntl = None  # type: ignore[assignment]

import numpy as np

from splitlab.allocator.assignment import check_arms
from splitlab.bandits import base as policy_base
from splitlab.bandits.base import REWARD_LIMIT, Policy
from splitlab.bandits.mab import GaussianThompson
from splitlab.errors import InvalidArgumentError

SNAPSHOT_FORMAT = 2
# Format 1 snapshots (before per-origin deltas) are converted on reading; its deltas were
# increments, which cannot be merged into per-origin cumulative statistics.
_READABLE_FORMATS = {"snapshot": (2, 1), "delta": (2,)}
_MAGIC = b"SPLITLAB-ALLOCATOR\n"
_LENGTH = struct.Struct("<Q")
_CHECKSUM = struct.Struct("<I")

# the header's "settings" and "state" keys, all required
SETTING_FIELDS = (
    "seed", "salt", "mode", "refresh_every", "refresh_seconds", "burn_in", "min_weight",
    "winner_threshold", "sticky", "sticky_capacity", "attribution_window", "max_pending",
    "dedupe_capacity", "log", "log_capacity",
)  # fmt: skip
STATE_FIELDS = (
    "rng", "issued", "counters", "decisions", "rewards", "reward_sums", "burning", "winner",
    "period", "version", "rewards_since_refresh", "seconds_since_refresh", "srm_periods",
    "origin", "events", "seen", "pending_ids", "pending_units", "done", "sticky",
)  # fmt: skip
_STATE_FORMAT1 = (
    *(key for key in STATE_FIELDS if key not in ("origin", "events", "seen")), "delta_sequence",
    "merged",
)  # fmt: skip
COUNT_RULES = {name: {"minimum": 0, "whole": True} for name in ("decisions", "rewards")}


def splitlab_version() -> str:
    """The installed splitlab's version (written into every blob and decision log)."""
    from splitlab import __version__

    return __version__


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """MAGIC | header length | JSON header | little-endian float64 arrays | CRC-32."""
    layout, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, dtype="<f8")
        layout[name] = {"offset": offset, "shape": list(data.shape)}
        chunks.append(data.tobytes())
        offset += data.nbytes
    document = {
        "format": SNAPSHOT_FORMAT,
        "splitlab": splitlab_version(),
        **header,
        "arrays": layout,
    }
    text = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    body = b"".join([_MAGIC, _LENGTH.pack(len(text)), text, *chunks])
    return body + _CHECKSUM.pack(zlib.crc32(body))


def unpack(blob: object, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Check the framing (magic, length, CRC-32, format, kind, array layout); the content
    is checked by the reader of each kind."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError("blob", f"must be bytes, got {type(blob).__name__}")
    data = bytes(blob)
    if not data.startswith(_MAGIC):
        raise InvalidArgumentError("blob", f"is not a splitlab allocator {kind}")
    if len(data) < len(_MAGIC) + _LENGTH.size + _CHECKSUM.size:
        raise InvalidArgumentError("blob", f"is truncated ({len(data)} bytes)")
    body, (checksum,) = data[: -_CHECKSUM.size], _CHECKSUM.unpack(data[-_CHECKSUM.size :])
    if zlib.crc32(body) != checksum:
        raise InvalidArgumentError(
            "blob", f"is corrupt or truncated (checksum mismatch, {len(data)} bytes)"
        )
    start = len(_MAGIC) + _LENGTH.size
    (length,) = _LENGTH.unpack(body[len(_MAGIC) : start])
    if start + length > len(body):
        raise InvalidArgumentError("blob", "has a header longer than the blob")
    try:
        header = json.loads(body[start : start + length])
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentError("blob", "has an unreadable header") from exc
    if not isinstance(header, dict):
        raise InvalidArgumentError("blob", "has a header that is not a JSON object")
    found, readable = header.get("format"), _READABLE_FORMATS[kind]
    if type(found) is not int or found not in readable:
        raise InvalidArgumentError(
            "blob",
            f"has format {found!r}; this splitlab ({splitlab_version()}) reads {kind} format"
            f"{'s' if len(readable) > 1 else ''} {' and '.join(map(str, readable))}",
        )
    if header.get("kind") != kind:
        raise InvalidArgumentError("blob", f"is a {header.get('kind')}, not a {kind}")
    payload = body[start + length :]
    arrays = {}
    layout = as_dict(field(header, "arrays", ""), "arrays")
    for name, spec in layout.items():
        where = f"arrays.{name}"
        spec = as_dict(spec, where, {"offset", "shape"})
        begin = as_int(spec["offset"], f"{where}.offset")
        shape = tuple(
            as_int(size, f"{where}.shape") for size in as_list(spec["shape"], f"{where}.shape")
        )
        count = math.prod(shape)
        if begin + 8 * count > len(payload):
            raise InvalidArgumentError("blob", f"array {name!r} runs past the end")
        arrays[name] = (
            np.frombuffer(payload, dtype="<f8", count=count, offset=begin).reshape(shape).copy()
        )
    return header, arrays


def corrupt(where: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError("blob", f"field {where!r} {problem}")


def field(mapping: dict, key: str, where: str) -> Any:
    if key not in mapping:
        raise corrupt(f"{where}.{key}" if where else key, "is missing")
    return mapping[key]


def as_dict(value: object, where: str, keys: set[str] | None = None) -> dict:
    if not isinstance(value, dict):
        raise corrupt(where, f"must be an object, got {type(value).__name__}")
    if keys is not None and set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        raise corrupt(where, f"lacks {missing} / has unknown {extra}")
    return value


def as_list(value: object, where: str, length: int | None = None) -> list:
    if not isinstance(value, list):
        raise corrupt(where, f"must be a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise corrupt(where, f"must have {length} entries, got {len(value)}")
    return value


def as_str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise corrupt(where, f"must be a non-empty string, got {value!r}")
    return value


def as_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise corrupt(where, f"must be true or false, got {value!r}")
    return value


def as_int(value: object, where: str, minimum: int = 0, maximum: int = 2**53) -> int:
    """An integer in [minimum, maximum]; by default at most 2^53, the largest count that
    float64 arrays (and int64 tables) hold exactly."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise corrupt(where, f"must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise corrupt(where, f"must be in [{minimum}, {maximum}], got {value!r}")
    return value


def as_float(
    value: object,
    where: str,
    low: float = -math.inf,
    high: float = math.inf,
    open_low: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise corrupt(where, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < low or number > high or (open_low and number <= low):
        raise corrupt(where, f"must be a finite number in range, got {value!r}")
    return number


def int_list(value: object, where: str, length: int) -> list[int]:
    return [as_int(v, f"{where}[{k}]") for k, v in enumerate(as_list(value, where, length))]


def checked_array(
    arrays: dict[str, np.ndarray],
    name: str,
    shape: tuple[int, ...],
    minimum: float | None = None,
    whole: bool = False,
) -> np.ndarray:
    """A stored array, checked: present, of ``shape``, finite (and bounded, whole)."""
    if name not in arrays:
        raise InvalidArgumentError("blob", f"array {name!r} is missing")
    array = arrays[name]
    if array.shape != tuple(shape):
        raise InvalidArgumentError(
            "blob", f"array {name!r} has shape {array.shape}, expected {tuple(shape)}"
        )
    if not np.isfinite(array).all():
        raise InvalidArgumentError("blob", f"array {name!r} contains NaN or infinite values")
    if minimum is not None and np.any(array < minimum):
        raise InvalidArgumentError("blob", f"array {name!r} has values below {minimum}")
    if whole and np.any((array != np.round(array)) | (np.abs(array) > 2.0**53)):
        raise InvalidArgumentError("blob", f"array {name!r} must hold whole numbers below 2^53")
    return array


def policy_problem(policy: Policy) -> str | None:
    """Why a policy's statistics are not a usable posterior, or None. Generic (finite
    statistics, choice probabilities that form a distribution) plus the sign of the
    statistics whose names say what they are (Beta parameters, weighted counts)."""
    for name, array in policy.arrays.items():
        if not np.isfinite(array).all():
            return f"statistic {name!r} contains NaN or infinite values"
        if name in ("alpha", "beta") and np.any(array <= 0):
            return f"statistic {name!r} must be positive (Beta posterior parameters)"
        if name in ("counts", "updates") and np.any(array < 0):
            return f"statistic {name!r} must be non-negative (observation counts)"
    probe = np.zeros(policy.n_features) if policy.contextual else None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            probabilities = policy.probabilities(probe)
        except (ArithmeticError, ValueError) as exc:
            return f"gives no choice probabilities ({exc})"
    if not (
        np.isfinite(probabilities).all()
        and np.all(probabilities >= 0)
        and abs(probabilities.sum() - 1.0) <= 1e-6
    ):
        return "gives choice probabilities that are not a distribution"
    return None


def read_contributions(
    header: dict, arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, dict[str, np.ndarray]]]:
    """A delta's per-origin (observations, cumulative statistics), every entry checked."""
    try:
        entries = as_list(field(header, "contributions", ""), "contributions")
        contributions: dict[str, tuple[int, dict[str, np.ndarray]]] = {}
        names = set()
        for position, entry in enumerate(entries):
            where = f"contributions[{position}]"
            entry = as_dict(entry, where, {"origin", "events"})
            origin = as_str(entry["origin"], f"{where}.origin")
            if origin in contributions:
                raise corrupt(where, f"repeats origin {origin!r}")
            statistics = {
                name: checked_array(
                    arrays, f"{position}.{name}", shape, **COUNT_RULES.get(name, {})
                )
                for name, shape in shapes.items()
            }
            names |= {f"{position}.{name}" for name in shapes}
            contributions[origin] = (as_int(entry["events"], f"{where}.events", 1), statistics)
        if set(arrays) != names:
            raise InvalidArgumentError(
                "blob", f"has unexpected array(s) {sorted(set(arrays) - names)}"
            )
    except InvalidArgumentError as exc:
        raise InvalidArgumentError("delta", exc.problem) from exc
    return contributions


def check_expected(
    expected: dict[str, Any], arms, policy: str, hyperparameters, n_features, salt
) -> None:
    found = {"arms": arms, "salt": salt, "n_features": n_features}
    for key in ("arms", "salt", "n_features"):
        if key in expected and expected[key] != found[key]:
            raise InvalidArgumentError(
                "blob",
                f"is a snapshot of another experiment: {key} is {found[key]!r}, "
                f"expected {expected[key]!r}",
            )
    if "policy" in expected:
        name, settings = expected["policy"]
        if name != policy:
            raise InvalidArgumentError(
                "blob",
                f"is a snapshot of another experiment: policy is {policy!r}, expected {name!r}",
            )
        if settings is not None and settings != hyperparameters:
            raise InvalidArgumentError(
                "blob",
                f"is a snapshot of another experiment: {policy} hyperparameters are "
                f"{hyperparameters!r}, expected {settings!r}",
            )


def as_json(value: Any) -> Any:
    """``value`` as a snapshot header holds it (tuples become lists)."""
    return json.loads(json.dumps(value))


def from_format1(
    header: dict[str, Any], arrays: dict[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A format-1 snapshot as a format-2 one, for the format-2 reader (which then checks
    every field). Format 1 differs in its replica bookkeeping and, for GaussianThompson, in
    its statistics; everything else (settings, counters, generator, pending decisions, SRM
    periods, sticky units, decision ids) has the same fields.

    Format 1 shipped *increments*: ``base.*`` held the statistics at the replica's last
    :meth:`~Allocator.delta` plus every delta it merged, ``delta_sequence`` the deltas its
    lineage had sent and ``merged`` the (origin, sequence) of those it had merged. So
    ``base.*`` is what the replicas already share (a format-2 base: nobody's contribution)
    and the rest is this replica's own, never shipped. That rest becomes an earlier
    incarnation's contribution (``seen``, as for a format-2 snapshot's origin) under the
    origin ``"<writer epoch>:<delta_sequence>"`` (the writer is the last epoch in
    ``issued``), with one event per decision and reward beyond the base. Two replicas
    restored from one snapshot then ship it under one origin, and it is counted once.
    ``merged`` only recognized repeated format-1 deltas: it is checked and dropped.
    """
    arms = check_arms(field(header, "arms", ""))
    n_arms = len(arms)
    state = as_dict(field(header, "state", ""), "state", set(_STATE_FORMAT1))
    sequence = as_int(state["delta_sequence"], "state.delta_sequence")
    merged = set()
    for position, entry in enumerate(as_list(state["merged"], "state.merged")):
        where = f"state.merged[{position}]"
        origin, number = as_list(entry, where, 2)
        key = (as_str(origin, where), as_int(number, where, minimum=1))
        if key in merged:
            raise corrupt(where, f"repeats the merged delta {list(key)}")
        merged.add(key)
    merged_count = as_dict(state["counters"], "state.counters").get("merged_deltas")
    if merged_count != len(merged):
        raise corrupt(
            "state.merged",
            f"lists {len(merged)} merged delta(s) but counters.merged_deltas is {merged_count!r}",
        )
    epochs = list(as_dict(state["issued"], "state.issued"))
    if not epochs:
        raise corrupt("state.issued", "is empty (its last epoch is the snapshot's writer)")
    writer = as_str(epochs[-1], "state.issued")
    beyond_base = 0
    for key in ("decisions", "rewards"):
        counts = int_list(state[key], f"state.{key}", n_arms)
        base = checked_array(arrays, f"base.{key}", (n_arms,), **COUNT_RULES[key])
        beyond_base += sum(counts) - sum(int(value) for value in base)
    upgraded = {k: v for k, v in state.items() if k not in ("delta_sequence", "merged")}
    # fewer decisions or rewards than the base are refused by the format-2 reader
    upgraded.update(origin=f"{writer}:{sequence}", events=max(beyond_base, 0), seen=[])
    if header.get("policy") == GaussianThompson.__name__:
        arrays = _gaussian_from_sums(header, arrays, n_arms)
    return {**header, "state": upgraded}, arrays


def _gaussian_from_sums(
    header: dict[str, Any], arrays: dict[str, np.ndarray], n_arms: int
) -> dict[str, np.ndarray]:
    """GaussianThompson's format-1 arrays, the sums n, Σr, Σr² per arm, as format 2's: the
    policy's count, mean and centred M2 (converted by ``GaussianThompson.from_state``) and
    the deltas' sums about the prior mean (its ``additive_statistics``)."""
    hyperparameters = as_dict(field(header, "hyperparameters", ""), "hyperparameters")
    names = GaussianThompson._sum_statistics
    prefixes = ["policy", "base.policy"]
    if any(name.startswith("serving.") for name in arrays):
        prefixes.append("serving")
    converted = {
        name: array
        for name, array in arrays.items()
        if not any(name == f"{prefix}.{k}" for prefix in prefixes for k in names)
    }
    for prefix in prefixes:
        sums = {k: checked_array(arrays, f"{prefix}.{k}", (n_arms,)) for k in names}
        problem = _sums_problem(*sums.values())
        if problem is not None:
            raise corrupt(prefix, problem)
        policy = GaussianThompson.from_state(
            {
                "policy": GaussianThompson.__name__,
                "format": policy_base.STATE_FORMAT,
                "hyperparameters": hyperparameters,
                "n_arms": n_arms,
                "n_features": None,
                "arrays": sums,
            }
        )
        if prefix == "base.policy":
            statistics = policy.additive_statistics()
        else:
            statistics = {k: v[0] for k, v in policy.arrays.items()}
        converted.update({f"{prefix}.{k}": v for k, v in statistics.items()})
    return converted


def _sums_problem(counts: np.ndarray, sums: np.ndarray, sums_sq: np.ndarray) -> str | None:
    """Why per-arm (weighted) n, Σr, Σr² are sums no rewards have, or None. Σr² − (Σr)²/n
    may fall below zero only by its rounding, a few (n + 1)·u of Σr²."""
    if np.any(counts < 0) or np.any(sums_sq < 0):
        return "has negative counts or sums of squares"
    if np.any((counts == 0) & ((sums != 0) | (sums_sq != 0))):
        return "has reward sums for an arm without rewards"
    if np.any(np.abs(sums) / REWARD_LIMIT > counts) or np.any(sums_sq / REWARD_LIMIT**2 > counts):
        return f"has reward sums beyond those of rewards within ±{REWARD_LIMIT:g}"
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m2 = sums_sq - sums * np.where(counts > 0, sums / counts, 0.0)
        impossible = m2 < -8 * np.finfo(np.float64).eps * (counts + 1) * sums_sq
    if np.any(impossible):
        return "has sums of squares below (Σr)²/n: no rewards have these sums"
    return None


_TEMPORARY_SUFFIX = ".splitlab-tmp"


def atomic_write(target: Path, write: Callable[[Any], Any]) -> None:
    """Write through a temporary file in the same directory, then rename over ``target``.

    The temporary file ``.<name>.<pid>-<random>.splitlab-tmp`` is held under an exclusive
    ``flock`` while it is written: the lock dies with the process, so a temporary file
    nobody holds belongs to a killed writer and :func:`remove_stale_temporaries` (run here
    first) deletes it; one being written by a live process or thread is left alone.
    """
    directory = target.parent
    if not directory.is_dir():
        raise InvalidArgumentError("path", f"directory {str(directory)!r} does not exist")
    remove_stale_temporaries(directory)
    while True:
        temporary = directory / (
            f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}{_TEMPORARY_SUFFIX}"
        )
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:  # a sweeper may have taken it between open and flock: then start over
            if os.stat(temporary).st_ino == os.fstat(descriptor).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(temporary, target)  # before close: the lock is held until renamed
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a platform that cannot fsync a directory skips it."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files that killed writers left in ``directory`` (those whose
    ``flock`` no live process holds); returns them. Needs ``fcntl`` (POSIX)."""
    removed: list[Path] = []
    if fcntl is None:
        return removed
    try:
        candidates = [
            entry
            for entry in os.scandir(directory)
            if entry.name.startswith(".") and entry.name.endswith(_TEMPORARY_SUFFIX)
        ]
    except OSError:
        return removed
    for entry in candidates:
        try:
            descriptor = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live writer
            os.close(descriptor)
            continue
        try:
            if os.stat(entry.path).st_ino == os.fstat(descriptor).st_ino:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
        finally:
            os.close(descriptor)
    return removed

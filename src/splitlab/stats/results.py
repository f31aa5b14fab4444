"""Result objects: named arrays shaped like the broadcast inputs, with provenance."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from splitlab.errors import DegenerateDataWarning

if TYPE_CHECKING:
    import pandas as pd


def _version() -> str:
    from splitlab import __version__

    return __version__


def scalarize(value: Any) -> Any:
    """A 0-d array becomes its scalar, so that a scalar call gives plain numbers."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


class RowErrors:
    """Collects a per-row error message; the first problem found for a row is kept.

    >>> errors = RowErrors((3,))
    >>> errors.flag(np.array([False, True, True]), "n < 2 in control")
    >>> errors.flag(np.array([True, True, False]), "zero variance")
    >>> errors.messages.tolist()
    ['zero variance', 'n < 2 in control', 'n < 2 in control']
    """

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape
        self.bad = np.zeros(shape, dtype=bool)
        self._messages: np.ndarray | None = None

    @classmethod
    def from_messages(cls, messages: object) -> RowErrors:
        """Errors already found, as an array of messages ('' where a row is fine)."""
        messages = np.asarray(messages, dtype=object)
        errors = cls(messages.shape)
        bad = messages != ""
        if bad.any():
            errors._messages = messages.copy()
            errors.bad = bad
        return errors

    def flag(self, condition: np.ndarray, message: str) -> None:
        condition = np.broadcast_to(condition, self.shape)
        new = condition & ~self.bad
        if not new.any():
            return
        if self._messages is None:
            self._messages = np.full(self.shape, "", dtype=object)
        self._messages[new] = message
        self.bad |= new

    @property
    def messages(self) -> np.ndarray:
        if self._messages is None:
            return np.full(self.shape, "", dtype=object)
        return self._messages

    def blank(self, *arrays: np.ndarray) -> None:
        """Set flagged rows to NaN in each array (in place) and warn once."""
        if self._messages is None:
            return
        for array in arrays:
            array[self.bad] = np.nan
        count = int(self.bad.sum())
        first = self._messages[self.bad].flat[0]
        warnings.warn(
            f"{count} of {self.bad.size} comparisons have no result ({first!r}"
            f"{' and others' if count > 1 else ''}); see the result's `error` field",
            DegenerateDataWarning,
            stacklevel=3,
        )


@dataclass(frozen=True, eq=False)
class EffectResult:
    """The outcome of a two-group comparison, one entry per broadcast row.

    ``effect`` is on the absolute scale (treatment - control) or, when ``scale`` is
    "relative", the relative lift (treatment - control) / |control|. ``error`` is '' for a
    row that is fine and says why a row is NaN otherwise. ``params`` records the method and
    its parameters, so any reported number can be reproduced.
    """

    effect: Any
    se: Any
    ci_low: Any
    ci_high: Any
    p_value: Any
    statistic: Any
    error: Any
    df: Any = None
    method: str = ""
    scale: str = "absolute"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for item in fields(self):
            object.__setattr__(self, item.name, scalarize(getattr(self, item.name)))

    @property
    def version(self) -> str:
        return _version()

    def _array_fields(self) -> dict[str, np.ndarray]:
        columns = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or item.name in ("method", "scale", "params"):
                continue
            columns[item.name] = np.asarray(value)
        return columns

    def to_frame(self) -> pd.DataFrame:
        """One row per comparison (flattened in C order), with method and scale columns."""
        import pandas as pd  # only here: importing the statistics stays light

        columns = self._array_fields()
        shape = np.broadcast_shapes(*(value.shape for value in columns.values()))
        frame = pd.DataFrame(
            {name: np.broadcast_to(value, shape).ravel() for name, value in columns.items()}
        )
        frame["method"] = self.method
        frame["scale"] = self.scale
        return frame

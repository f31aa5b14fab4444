"""Deterministic bucketing: a unit's uniform draw as a stable hash of (salt, unit).

The same (salt, unit) gives the same number in [0, 1) in every process, machine and Python
version (BLAKE2b, not Python's randomized ``hash``). Fed to inverse-CDF sampling over the
arms in their fixed order, it makes assignment sticky while the probabilities are unchanged
and monotone under ramps: with arms ``[control, treatment]``, raising treatment's share from
10% to 20% moves units only from control to treatment (arm k owns the interval
[F_{k-1}, F_k) of the cumulative weights).

>>> unit_uniform("exp-42", "user-1") == unit_uniform("exp-42", "user-1")
True
>>> 0.0 <= unit_uniform("exp-42", "user-1") < 1.0
True
>>> unit_uniform("exp-42", "user-1") != unit_uniform("exp-43", "user-1")
True
"""

from __future__ import annotations

from hashlib import blake2b

_SCALE = 2.0**-53
_SEPARATOR = "\x1f"  # the ASCII unit separator: ("a", "bc") and ("ab", "c") differ


def unit_uniform(salt: str, unit: object) -> float:
    """A uniform number in [0, 1) from the 53 high bits of BLAKE2b-64 of ``salt␟unit``."""
    digest = blake2b(f"{salt}{_SEPARATOR}{unit}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) * _SCALE

"""Off-policy evaluation and valid inference on bandit decision logs.

- :func:`evaluate` — value of a target policy from a log: IPS (optionally clipped), SNIPS,
  DM, DR, SNDR, Switch-DR, with closed-form or bootstrap intervals and overlap diagnostics;
- :func:`replay` — Li et al.'s replay estimator for uniformly logged data;
- :func:`arm_values`, :func:`arm_contrasts` — arm values after adaptive allocation:
  adaptively weighted AIPW (Hadad et al. 2021), period-weighted means, naive means;
- :func:`confidence_sequence` — anytime-valid intervals for a policy's value over time;
- :func:`load_log` / :class:`BanditLog` — reading and validating decision logs.
"""

from splitlab.ope.adaptive import arm_contrasts, arm_values, aw_aipw_weights
from splitlab.ope.estimators import (
    ESTIMATORS,
    PoorOverlapWarning,
    RewardModelWarning,
    evaluate,
    replay,
    target_probabilities,
)
from splitlab.ope.logs import BanditLog, load_log, slate_target
from splitlab.ope.reward_model import cross_fitted_rewards
from splitlab.ope.sequential import confidence_sequence

__all__ = [
    "ESTIMATORS",
    "BanditLog",
    "PoorOverlapWarning",
    "RewardModelWarning",
    "arm_contrasts",
    "arm_values",
    "aw_aipw_weights",
    "confidence_sequence",
    "cross_fitted_rewards",
    "evaluate",
    "load_log",
    "replay",
    "slate_target",
    "target_probabilities",
]

"""Staged, self-deciding safe rollouts: ramp a new arm and roll it back when it harms.

:class:`Rollout` owns an :class:`~splitlab.allocator.Allocator` serving a
:class:`~splitlab.bandits.FixedSplit` whose new-arm weight is the current stage, tests
every :class:`Guardrail` with an always-valid one-sided test after each check, and logs
every decision durably (see :mod:`splitlab.rollout.rollout`).

>>> from splitlab.rollout import Guardrail, Rollout
>>> rollout = Rollout(guardrails=[Guardrail("latency_ms", higher_is_better=False)],
...                   min_units=10, salt="ranker-v2", clock=lambda: 0.0)
>>> rollout.check().action
'hold'
"""

from splitlab.rollout.rollout import Assignment, Guardrail, Rollout, RolloutDecision

__all__ = ["Assignment", "Guardrail", "Rollout", "RolloutDecision"]

"""Multi-armed and contextual bandit policies with exact propensities."""

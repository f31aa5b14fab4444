"""Write the format-1 Allocator snapshots in ``tests/data/allocator_format1/``.

They were made with splitlab at commit 0100854, the last version whose snapshots are
format 1, and are read by ``tests/adversarial/test_allocator_formats.py`` with the current
code. To make them again, from the repository root:

    git worktree add --detach /tmp/splitlab-0100854 0100854
    PYTHONPATH=/tmp/splitlab-0100854/src python tests/data/make_allocator_format1.py
    git worktree remove /tmp/splitlab-0100854

Every decision is forced onto its scripted arm (``available=[arm]``) and every reward is
scripted, so the tests derive the expected statistics from the constants below alone,
never from numbers the old code computed. Time comes from a scripted clock (one second per
step from ``START``) so that pending decisions have known timestamps.

The module only defines constants at import; the snapshots are written when it is run.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "allocator_format1"
START = 1_800_000_000.0

# A step is (unit or None, arm, reward or None); None as reward leaves the decision pending.
# Units are hashed; a decision without one draws the allocator's seeded generator once.

THOMPSON = {
    "arms": ["control", "treatment", "holdout"],
    "prior": (2.0, 3.0),
    "seed": 101,
    "salt": "format1-thompson",
    "refresh_every": 4,
}
THOMPSON_STEPS = [
    ("u1", "control", 1.0),
    ("u2", "treatment", 1.0),
    ("u3", "holdout", 0.0),
    ("u4", "control", 0.0),
    ("u5", "treatment", 1.0),
    ("u6", "treatment", 0.0),
    ("u7", "control", 1.0),
    ("u8", "holdout", 0.0),
    (None, "treatment", 1.0),
    ("u9", "control", 0.0),
    ("u10", "treatment", 1.0),
    ("u11", "holdout", 1.0),
    ("u2", "treatment", 1.0),  # a sticky repeat of u2: a decision, but not a draw
    (None, "control", None),
    ("u12", "treatment", None),
    ("u13", "holdout", None),
]
THOMPSON_DUPLICATES = 1  # the first decision's reward is sent a second time

GAUSSIAN = {
    "arms": ["a", "b", "c"],
    "prior": (100.0, 1.0, 2.0, 1.0),
    "seed": 202,
    "salt": "format1-gaussian",
    "refresh_every": 3,
}
GAUSSIAN_STEPS = [
    ("g1", "a", 101.5),
    ("g2", "b", 97.5),
    ("g3", "a", 99.25),
    ("g4", "c", 100.0),
    ("g5", "b", 98.125),
    ("g6", "a", 100.75),
    (None, "b", 96.0),
    ("g7", "a", 102.0),
    ("g8", "b", None),
    ("g9", "c", None),
]
GAUSSIAN_ARM_REWARDS = [("a", 103.5)]  # update(arm=, reward=): a reward with no decision

LINUCB = {
    "arms": ["x", "y"],
    "alpha": 0.5,
    "l2": 2.0,
    "n_features": 3,
    "seed": 303,
    "salt": "format1-linucb",
}
# (arm, context, reward or None)
LINUCB_STEPS = [
    ("x", [1.0, 0.5, -0.25], 1.5),
    ("y", [1.0, -1.0, 0.75], 0.25),
    ("x", [1.0, 2.0, 0.0], 2.0),
    ("y", [1.0, 0.25, 0.5], -0.5),
    ("x", [1.0, -0.5, 1.25], 0.75),
    ("y", [1.0, 1.5, -1.0], 1.0),
    ("x", [1.0, 0.0, 0.5], 0.0),
    ("x", [1.0, 1.0, 1.0], None),
    ("y", [1.0, -0.75, 0.25], None),
]

EPSILON = {
    "arms": ["red", "green", "blue"],
    "epsilon": 0.2,
    "salt": "format1-epsilon",
    "mode": "online",
}
EPSILON_PEER_SEED, EPSILON_SEED = 404, 405
# the peer's decisions reach the saved replica through one merged delta
EPSILON_PEER_STEPS = [
    ("p1", "red", 0.5),
    ("p2", "green", 2.0),
    ("p3", "red", 1.5),
    ("p4", "blue", -1.0),
]
# the saved replica's own decisions before its delta() (shipped) and after it (unsent; the
# replica is restored in between, so the snapshot's lineage has two epochs)
EPSILON_SENT_STEPS = [
    ("e1", "green", 1.25),
    ("e2", "blue", 0.0),
    ("e3", "green", 3.0),
]
EPSILON_UNSENT_STEPS = [
    ("e4", "red", 2.5),
    ("e5", "blue", -0.5),
    (None, "green", 0.75),
    ("e6", "red", None),
    ("e7", "blue", None),
]

FILES = {
    "thompson": "thompson_periodic.snap",
    "gaussian": "gaussian_thompson.snap",
    "linucb": "linucb.snap",
    "epsilon": "epsilon_greedy_online.snap",
}


class Clock:
    """Scripted time: one second per step."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _serve(alloc, clock: Clock, steps) -> list:
    decisions = []
    for unit, arm, reward in steps:
        clock.now += 1.0
        decision = alloc.choose(unit=unit, available=[arm])
        assert decision.arm == arm
        if reward is not None:
            assert alloc.update(decision, reward)
        decisions.append(decision)
    return decisions


def make_thompson(sl) -> bytes:
    clock = Clock()
    settings = {k: v for k, v in THOMPSON.items() if k != "prior"}
    alloc = sl.Allocator(
        policy=sl.bandits.ThompsonSampling(prior=THOMPSON["prior"]),
        sticky=True,
        clock=clock,
        **settings,
    )
    assert alloc.mode == "periodic"
    decisions = _serve(alloc, clock, THOMPSON_STEPS)
    for _ in range(THOMPSON_DUPLICATES):
        assert not alloc.update(decisions[0], THOMPSON_STEPS[0][2])
    return alloc.snapshot()


def make_gaussian(sl) -> bytes:
    clock = Clock()
    settings = {k: v for k, v in GAUSSIAN.items() if k != "prior"}
    alloc = sl.Allocator(
        policy=sl.bandits.GaussianThompson(prior=GAUSSIAN["prior"]), clock=clock, **settings
    )
    assert alloc.mode == "periodic"
    _serve(alloc, clock, GAUSSIAN_STEPS)
    for arm, reward in GAUSSIAN_ARM_REWARDS:
        clock.now += 1.0
        assert alloc.update(arm=arm, reward=reward)
    return alloc.snapshot()


def make_linucb(sl) -> bytes:
    clock = Clock()
    alloc = sl.Allocator(
        LINUCB["arms"],
        sl.bandits.LinUCB(alpha=LINUCB["alpha"], l2=LINUCB["l2"]),
        n_features=LINUCB["n_features"],
        seed=LINUCB["seed"],
        salt=LINUCB["salt"],
        clock=clock,
    )
    assert alloc.mode == "online"
    for arm, context, reward in LINUCB_STEPS:
        clock.now += 1.0
        decision = alloc.choose(context=context, available=[arm])
        assert decision.arm == arm
        if reward is not None:
            assert alloc.update(decision, reward)
    return alloc.snapshot()


def make_epsilon(sl) -> bytes:
    clock = Clock()
    settings = {k: v for k, v in EPSILON.items() if k != "epsilon"}

    def replica(seed: int):
        policy = sl.bandits.EpsilonGreedy(epsilon=EPSILON["epsilon"])
        return sl.Allocator(policy=policy, seed=seed, clock=clock, **settings)

    peer, alloc = replica(EPSILON_PEER_SEED), replica(EPSILON_SEED)
    _serve(peer, clock, EPSILON_PEER_STEPS)
    assert alloc.merge(peer.delta())
    _serve(alloc, clock, EPSILON_SENT_STEPS)
    alloc.delta()  # shipped to the other replicas in the format-1 world
    # a restart after the delta: the snapshot's lineage has two epochs
    alloc = sl.Allocator.restore(alloc.snapshot(), clock=clock)
    _serve(alloc, clock, EPSILON_UNSENT_STEPS)
    return alloc.snapshot()


def main() -> None:
    import splitlab as sl
    from splitlab.allocator import SNAPSHOT_FORMAT

    if SNAPSHOT_FORMAT != 1:
        sys.exit(
            f"{sl.__file__} writes snapshot format {SNAPSHOT_FORMAT}; run this with the "
            "format-1 package first on PYTHONPATH (see the module docstring)"
        )
    OUT.mkdir(exist_ok=True)
    makers = {
        "thompson": make_thompson,
        "gaussian": make_gaussian,
        "linucb": make_linucb,
        "epsilon": make_epsilon,
    }
    for key, make in makers.items():
        path = OUT / FILES[key]
        path.write_bytes(make(sl))
        print(f"{path.relative_to(OUT.parents[2])}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()

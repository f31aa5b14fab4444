"""sl.Rollout: staged safe rollouts that roll back on harm (splitlab.rollout).

The simulations feed per-batch summary statistics through ``record_moments`` (the same
exact merge as one ``record`` per unit) and check after every batch; every rate is compared
with a bound derived from the binomial standard error of R runs, never from observed
output.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta

import numpy as np
import pytest

from splitlab.errors import InvalidArgumentError
from splitlab.rollout import Assignment, Guardrail, Rollout, RolloutDecision
from splitlab.sequential import confidence_sequence_from_estimate
from splitlab.stats.moments import Moments

ALPHA = 0.05
SIGMA = 20.0  # latency sd
RATE = 0.1  # conversion rate
GUARDRAILS = (Guardrail("latency_ms", higher_is_better=False), Guardrail("conversion"))


class Clock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def batch_moments(rng, n, latency_shift=0.0, base=100.0):
    """The summary statistics of n simulated units (normal latency, Bernoulli conversion)."""
    mean = base + latency_shift + SIGMA * rng.standard_normal() / math.sqrt(n)
    var = SIGMA**2 * rng.chisquare(n - 1) / (n - 1) if n > 1 else 0.0
    return {
        "latency_ms": Moments(n, mean, var),
        "conversion": Moments.from_proportions(rng.binomial(n, RATE), n),
    }


def batch_size(rollout, batches):
    return math.ceil(rollout.min_units / rollout.stage / batches)


def simulate(seed, *, delta=0.0, min_units=200, batches=6, trend=0.0, **options):
    """One rollout checked after every batch until it finishes: (action, looks, exposure)."""
    rng = np.random.default_rng(seed)
    clock = Clock()
    rollout = Rollout(
        guardrails=GUARDRAILS, min_units=min_units, alpha=ALPHA, salt=f"sim-{seed}",
        clock=clock, **options,
    )  # fmt: skip
    looks = exposure = 0
    while rollout.finished is None:
        size = batch_size(rollout, batches)
        treated = int(rng.binomial(size, rollout.stage))
        base = 100.0 + trend * rollout.stage_index  # a shift both arms share
        for arm, n, shift in (("control", size - treated, 0.0), ("treatment", treated, delta)):
            if n > 0:
                rollout.record_moments(arm, batch_moments(rng, n, shift, base))
        exposure += treated
        clock.now += 60.0
        looks += 1
        decision = rollout.check()
    return decision, looks, exposure


def binomial_slack(p, runs, k=4.0):
    return k * math.sqrt(p * (1 - p) / runs)


# ---------------------------------------------------------------------- (1) harmless


@pytest.mark.parametrize(
    ("method", "options"),
    [("cs", {}), ("msprt", {"tau2": {"latency_ms": 2.0, "conversion": 5e-4}})],
)
def test_a_harmless_change_is_rarely_rolled_back(method, options):
    runs = 300
    outcomes = [simulate(seed, method=method, **options)[0] for seed in range(runs)]
    rollbacks = sum(d.action == "rollback" for d in outcomes)
    # at most alpha over both guardrails and every look, plus srm_alpha for the SRM test
    bound = ALPHA + 0.001 + binomial_slack(ALPHA, runs)
    assert rollbacks / runs <= bound, (rollbacks, runs)
    assert all(d.action in ("rollback", "complete") for d in outcomes)


def test_a_trend_both_arms_share_does_not_roll_back():
    # latency rises 15 ms per stage for everyone: pooling raw means across stages would
    # load the rise onto the arm that grew; the stage-stratified difference does not
    runs = 100
    outcomes = [simulate(seed, trend=15.0)[0] for seed in range(runs)]
    rollbacks = sum(d.action == "rollback" for d in outcomes)
    assert rollbacks / runs <= ALPHA + 0.001 + binomial_slack(ALPHA, runs)


# ---------------------------------------------------------------------- (2) harmful


def design_look(delta, min_units, batches, power, level):
    """The first look at which the expected z of a latency harm delta clears the
    confidence sequence's margin by the (power) normal quantile, the counts at their
    expectations: (look, expected treatment exposure)."""
    from scipy.stats import norm

    rollout = Rollout(min_units=min_units, salt="design")
    stages, information, exposure, look = rollout.stages, 0.0, 0.0, 0
    n_star = rollout.n_star
    for stage in stages[:-1]:  # the last stage has no control arm
        size = math.ceil(min_units / stage / batches)
        n_t = n_c = 0.0
        while n_t < min_units:
            n_t += size * stage
            n_c += size * (1 - stage)
            look += 1
            exposure += size * stage
            stage_info = 1.0 / (SIGMA**2 * (1 / n_c + 1 / n_t))
            total = information + stage_info
            margin = -float(
                confidence_sequence_from_estimate(
                    0.0, 1.0, 4 * SIGMA**2 * total, alpha=level, n_star=n_star,
                    alternative="greater",
                )[0]
            )  # fmt: skip
            if delta * math.sqrt(total) >= margin + norm.ppf(power):
                return look, exposure
        information += stage_info
    raise AssertionError("the design never reaches the power")


def test_a_harmful_change_is_rolled_back_before_the_design_exposure():
    runs, beta, delta, min_units, batches = 100, 0.2, 6.0, 200, 6
    look, exposure = design_look(delta, min_units, batches, 1 - beta, ALPHA / 2)
    results = [simulate(seed, delta=delta, min_units=min_units, batches=batches)
               for seed in range(runs)]  # fmt: skip
    caught = [d.action == "rollback" and looks <= look for d, looks, _ in results]
    assert np.mean(caught) >= 1 - beta - binomial_slack(beta, runs, k=3.0)
    exposures = [e for d, _, e in results if d.action == "rollback"]
    assert np.median(exposures) <= exposure
    rolled = [d for d, _, _ in results if d.action == "rollback"]
    assert all("latency_ms harmed" in d.reason for d in rolled)
    assert all(d.stage_after == 0.0 for d in rolled)


def test_a_sample_ratio_mismatch_rolls_back():
    rng = np.random.default_rng(1)
    rollout = Rollout(stages=(0.5, 1.0), guardrails=GUARDRAILS, min_units=10**6, salt="srm")
    for _ in range(20):
        rollout.record_moments("control", batch_moments(rng, 550))
        rollout.record_moments("treatment", batch_moments(rng, 450))  # units lost on treatment
        decision = rollout.check()
        if decision.action == "rollback":
            break
    assert decision.action == "rollback"
    assert "sample-ratio mismatch" in decision.reason
    assert decision.srm_p_value <= rollout.srm_alpha


# ---------------------------------------------------------------------- (3) minimums


def test_advance_waits_for_min_units_and_min_duration():
    clock = Clock(1000.0)
    rollout = Rollout(stages=(0.1, 0.5, 1.0), guardrails=GUARDRAILS, min_units=100,
                      min_duration=timedelta(hours=1), salt="wait", clock=clock)  # fmt: skip
    rng = np.random.default_rng(3)
    rollout.record_moments("treatment", batch_moments(rng, 99))
    rollout.record_moments("control", batch_moments(rng, 891))
    clock.now += 3600
    assert rollout.check().action == "hold"  # 99 units, an hour
    rollout.record_moments("treatment", batch_moments(rng, 1))
    clock.now -= 1
    assert rollout.check().action == "hold"  # 100 units, an hour less a second
    clock.now += 1
    decision = rollout.check()
    assert (decision.action, decision.stage_before, decision.stage_after) == ("advance", 0.1, 0.5)
    assert decision.exposures == {"control": 891, "treatment": 100}
    # the new stage starts its own count and clock
    rollout.record_moments("treatment", batch_moments(rng, 100))
    rollout.record_moments("control", batch_moments(rng, 100))
    assert rollout.check().action == "hold"
    clock.now += 3600
    assert rollout.check().action == "advance"
    rollout.record_moments("treatment", batch_moments(rng, 100))
    clock.now += 3600
    final = rollout.check()
    assert final.action == "complete" and rollout.finished == "complete"
    assert rollout.check() == final  # a finished rollout repeats its last decision
    assert list(rollout.decisions()["action"]) == ["hold", "hold", "advance", "hold", "advance",
                                                   "complete"]  # fmt: skip


# ---------------------------------------------------------------------- (4) stickiness


def test_units_keep_their_arm_unless_it_shrank_and_return_to_control_on_rollback():
    rollout = Rollout(salt="sticky", clock=Clock())
    units = [f"user-{i}" for i in range(20_000)]
    previous = None
    for stage in rollout.stages:
        if stage != rollout.stage:
            rollout.advance_to(stage)
        arms = np.array([rollout.choose(u).arm == "treatment" for u in units])
        assert abs(arms.mean() - stage) <= 4 * math.sqrt(stage * (1 - stage) / len(units))
        assert all(rollout.choose(u).arm == ("treatment" if a else "control")
                   for u, a in zip(units[:200], arms[:200], strict=True))  # fmt: skip
        if previous is not None:
            assert not np.any(previous & ~arms)  # nobody left the arm that grew
        previous = arms
    rollout = Rollout(stages=(0.5, 1.0), salt="sticky", clock=Clock())
    assert any(rollout.choose(u).arm == "treatment" for u in units[:100])
    rollout.rollback("test")
    assert {rollout.choose(u).arm for u in units} == {"control"}
    assert rollout.weights == [1.0, 0.0]


def test_record_attributes_a_unit_to_its_served_arm_and_stage():
    rollout = Rollout(guardrails=["conversion"], stages=(0.5, 1.0), salt="attr", clock=Clock())
    assignments = [rollout.choose(f"u{i}") for i in range(200)]
    assert all(isinstance(a, Assignment) and a.period == 0 for a in assignments)
    rollout.advance_to(1.0)
    for a in assignments:  # recorded after the stage changed: they count where served
        rollout.record(a, {"conversion": 1.0})
    period = rollout._periods[0]
    treated = sum(a.arm == "treatment" for a in assignments)
    assert period.units == [200 - treated, treated]
    rollout.record("late-unit", {"conversion": 0.0})  # a bare id: the current stage
    assert rollout._periods[1].units == [0, 1]


# ---------------------------------------------------------------------- (5) round trip


def feed(rollout, rng, looks, delta=0.0):
    decisions = []
    for _ in range(looks):
        if rollout.finished is not None:
            break
        size = batch_size(rollout, 4)
        treated = int(rng.binomial(size, rollout.stage))
        for arm, n, shift in (("control", size - treated, 0.0), ("treatment", treated, delta)):
            if n > 0:
                rollout.record_moments(arm, batch_moments(rng, n, shift))
        rollout._clock.now += 60
        decisions.append(rollout.check())
    return decisions


def test_save_and_load_give_identical_next_decisions(tmp_path):
    rollout = Rollout(guardrails=GUARDRAILS, min_units=100, seed=5, salt="trip", clock=Clock())
    feed(rollout, np.random.default_rng(0), 9)
    assert rollout.stage_index > 0
    path = rollout.save(tmp_path / "rollout.json")
    assert rollout.log_path == tmp_path / "rollout.json.decisions.jsonl"
    copy = tmp_path / "copy.jsonl"  # the two live rollouts must not append to one log
    copy.write_bytes(rollout.log_path.read_bytes())
    loaded = Rollout.load(path, log=copy, clock=Clock(rollout._clock.now))
    assert loaded.status() == rollout.status()
    assert loaded.stage == rollout.stage and loaded.weights == rollout.weights
    assert [loaded.choose(f"u{i}").arm for i in range(50)] == [
        rollout.choose(f"u{i}").arm for i in range(50)
    ]
    assert loaded.choose().arm == rollout.choose().arm  # the seeded generator too
    ahead = feed(rollout, np.random.default_rng(1), 8, delta=4.0)
    again = feed(loaded, np.random.default_rng(1), 8, delta=4.0)
    assert [d.to_dict() for d in again] == [d.to_dict() for d in ahead]
    frame = Rollout.load(path).decisions()
    assert len(frame) == 17 and list(frame["seq"]) == list(range(17))
    assert {"latency_ms.effect", "latency_ms.p_value", "conversion.ci_low"} <= set(frame.columns)


def test_a_torn_last_log_line_is_dropped(tmp_path):
    rollout = Rollout(guardrails=GUARDRAILS, min_units=100, salt="torn", clock=Clock())
    feed(rollout, np.random.default_rng(0), 3)
    path = rollout.save(tmp_path / "r.json")
    with open(rollout.log_path, "ab") as handle:
        handle.write(b'{"seq": 3, "action": "rollb')
    loaded = Rollout.load(path)
    assert len(loaded.decisions()) == 3
    assert rollout.log_path.read_bytes().endswith(b"\n")
    assert loaded.check().seq == 3


# ---------------------------------------------------------------------- (6) SIGKILL

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_rollout import GUARDRAILS, Clock, batch_moments, feed
    from splitlab.rollout import Rollout

    def say(kind, **payload):
        sys.stdout.write(json.dumps({{"kind": kind, **payload}}) + "\\n")
        sys.stdout.flush()

    rng = np.random.default_rng(7)
    rollout = Rollout(stages=(0.1, 0.5, 1.0), guardrails=GUARDRAILS, min_units=100,
                      salt="crash", clock=Clock())
    for decision in feed(rollout, rng, 5):  # advances to 0.5 at the fourth
        say("decision", seq=decision.seq, action=decision.action)
    rollout.save({path!r})
    say("saved", periods=[p.to_json() for p in rollout._periods], stage=rollout.stage)
    for decision in feed(rollout, rng, 1):  # logged, never saved
        say("decision", seq=decision.seq, action=decision.action)
    for decision in feed(rollout, rng, 40, delta=25.0):
        say("decision", seq=decision.seq, action=decision.action)
        if decision.action == "rollback":
            break
    rollout.record_moments("control", batch_moments(rng, 100))  # lost with the process
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_process_loses_no_logged_decision(tmp_path):
    path = tmp_path / "rollout.json"
    script = CHILD.format(tests=os.path.dirname(__file__), path=str(path))
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    said = [json.loads(line) for line in child.stdout.splitlines()]
    decisions = [s for s in said if s["kind"] == "decision"]
    saved = next(s for s in said if s["kind"] == "saved")
    assert decisions[-1]["action"] == "rollback"
    assert decisions[-1]["seq"] >= said.index(saved)  # the rollback came after the save
    loaded = Rollout.load(path, clock=Clock())
    frame = loaded.decisions()
    assert list(frame["seq"]) == [d["seq"] for d in decisions]
    assert list(frame["action"]) == [d["action"] for d in decisions]
    # the stage comes from the log (the rollback after the save holds), the data from the save
    assert loaded.finished == "rollback"
    assert loaded.weights == [1.0, 0.0]
    assert {loaded.choose(f"u{i}").arm for i in range(200)} == {"control"}
    restored = [p.to_json() for p in loaded._periods[: len(saved["periods"])]]
    assert restored == saved["periods"]
    assert all(p.units == [0, 0] for p in loaded._periods[len(saved["periods"]) :])
    assert loaded.check().action == "rollback"


# ---------------------------------------------------------------------- (7) bad input


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"stages": (0.05, 0.01, 1.0)}, "stages"),
        ({"stages": (0.0, 0.5)}, "stages"),
        ({"stages": (0.5, 1.5)}, "stages"),
        ({"stages": (0.5, 0.5)}, "stages"),
        ({"stages": ()}, "stages"),
        ({"stages": "0.5"}, "stages"),
        ({"min_units": 0}, "min_units"),
        ({"min_units": 1.5}, "min_units"),
        ({"min_duration": -1}, "min_duration"),
        ({"alpha": 1.5}, "alpha"),
        ({"method": "bayes"}, "method"),
        ({"method": "msprt", "guardrails": ["conversion"]}, "tau2"),
        ({"method": "msprt", "guardrails": ["conversion"], "tau2": {"x": 1.0}}, "tau2"),
        ({"tau2": -1.0, "guardrails": ["conversion"], "method": "msprt"}, "tau2"),
        ({"arms": ("only",)}, "arms"),
        ({"arms": ("a", "a")}, "arms"),
        ({"guardrails": ["x", "x"]}, "guardrails"),
        ({"guardrails": [3]}, "guardrails"),
        ({"n_star": 0}, "n_star"),
        ({"srm_alpha": 0}, "srm_alpha"),
        ({"clock": 3}, "clock"),
    ],
)
def test_bad_construction_names_the_argument(options, argument):
    with pytest.raises(InvalidArgumentError) as caught:
        Rollout(**options)
    assert caught.value.argument == argument


def test_bad_calls_name_the_argument(tmp_path):
    rollout = Rollout(guardrails=GUARDRAILS, salt="bad", clock=Clock())
    cases = [
        (lambda: rollout.record("u", {"revenue": 1.0}), "outcomes"),
        (lambda: rollout.record("u", {"conversion": float("nan")}), "outcomes"),
        (lambda: rollout.record("u", {"conversion": "1"}), "outcomes"),
        (lambda: rollout.record(None, {"conversion": 1.0}), "unit"),
        (lambda: rollout.record("u", [1.0]), "outcomes"),
        (lambda: rollout.record_moments("other", {"conversion": (10, 0.1, 0.09)}), "arm"),
        (lambda: rollout.record_moments("control", {"revenue": (10, 1.0, 1.0)}), "moments"),
        (lambda: rollout.record_moments("control", {"conversion": (10, 0.1)}), "moments"),
        (lambda: rollout.record_moments("control", {"conversion": (-1, 0.1, 0.1)}), "moments"),
        (lambda: rollout.record_moments("control", {"conversion": (10, 0.1, 0.1)}, units=5),
         "units"),
        (lambda: rollout.record_moments("control", {}, period=3), "period"),
        (lambda: rollout.set_stages([0.005, 1.0]), "stages"),
        (lambda: rollout.set_stages([0.5, 0.25]), "stages"),
        (lambda: Guardrail("x", tolerance=-1.0), "tolerance"),
        (lambda: Guardrail(""), "name"),
        (lambda: Rollout.load(tmp_path / "missing.json"), "path"),
    ]  # fmt: skip
    for call, argument in cases:
        with pytest.raises(InvalidArgumentError) as caught:
            call()
        assert caught.value.argument == argument, (argument, caught.value)
    rollout.advance_to(0.25)
    for stage in (0.05, 0.25, 0.3):
        with pytest.raises(InvalidArgumentError) as caught:
            rollout.advance_to(stage)
        assert caught.value.argument == "stage"
    rollout.set_stages([0.4, 1.0])
    assert rollout.stages == [0.01, 0.05, 0.25, 0.4, 1.0]
    rollout.rollback()
    for call, argument in [(lambda: rollout.advance_to(1.0), "stage"),
                           (lambda: rollout.set_stages([1.0]), "stages")]:  # fmt: skip
        with pytest.raises(InvalidArgumentError) as caught:
            call()
        assert caught.value.argument == argument
    (tmp_path / "other.json").write_text('{"kind": "something"}')
    with pytest.raises(InvalidArgumentError, match="not a rollout state"):
        Rollout.load(tmp_path / "other.json")


def test_decision_round_trips_through_its_dict():
    rollout = Rollout(guardrails=GUARDRAILS, salt="dict", clock=Clock())
    decision = rollout.check()
    again = RolloutDecision.from_dict(json.loads(json.dumps(decision.to_dict())))
    assert again.to_dict() == decision.to_dict()
    assert math.isinf(again.guardrails["conversion"]["ci_low"])
    assert math.isnan(again.guardrails["conversion"]["effect"])


# ---------------------------------------------------------------------- heavy version


@pytest.mark.slow
def test_a_harmless_change_is_rarely_rolled_back_heavy():
    runs = 2000
    outcomes = [simulate(seed, batches=12)[0] for seed in range(runs)]
    rate = np.mean([d.action == "rollback" for d in outcomes])
    assert rate <= ALPHA + 0.001 + binomial_slack(ALPHA, runs)


def test_decisions_frame_shows_the_open_end_of_a_one_sided_interval_as_infinite():
    import math

    rollout = Rollout(
        guardrails=[Guardrail("latency_ms", higher_is_better=False)],
        stages=(0.5, 1.0), salt="s", clock=lambda: 0.0,
    )  # fmt: skip
    rollout.record_moments("control", {"latency_ms": Moments(100, 100.0, 400.0)})
    rollout.record_moments("treatment", {"latency_ms": Moments(100, 101.0, 400.0)})
    decision = rollout.check()
    assert decision.guardrails["latency_ms"]["ci_high"] == math.inf
    assert rollout.decisions()["latency_ms.ci_high"][0] == math.inf


def test_guardrail_lower_is_better_is_higher_is_better_false():
    assert Guardrail("latency_ms", lower_is_better=True) == Guardrail(
        "latency_ms", higher_is_better=False
    )
    assert Guardrail("conversion").lower_is_better is False
    with pytest.raises(InvalidArgumentError, match="lower_is_better"):
        Guardrail("latency_ms", higher_is_better=False, lower_is_better=False)

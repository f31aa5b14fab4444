"""`splitlab bench --scenario FILE`: parsing, errors that name the field, and results that
equal an independent computation on the same seeded data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from splitlab.bench import scenario
from splitlab.bench.provenance import PROVENANCE_PREFIXES
from splitlab.cli import main
from splitlab.errors import InvalidArgumentError

# the repository tooling reads the tables back (benchmarks/tooling/)
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tooling.markdown_tables import number, read_tables

ROOT = Path(__file__).resolve().parents[1]
BANDIT = """
kind = "bandit"
horizon = 300
replications = 64
seed = 3

[environment]
kind = "bernoulli"
means = [0.2, 0.5, 0.6]

[[policies]]
kind = "ThompsonSampling"

[[policies]]
kind = "FixedSplit"
weights = [1, 1, 1]
label = "uniform"
"""
VALIDITY = """
kind = "validity"
name = "tiny"
replications = 600
looks = 5
batch = 40
alpha = 0.1
seed = 5
methods = ["fixed", "peeking", "cs"]

[process]
distribution = "normal"
mean = 1.0
sd = 2.0
effects = [0.0, 0.5]
"""


def _write(directory: Path, text: str, name: str = "study.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("splitlab: error: "), captured.err
    return lines[0]


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "scenarios").glob("*.toml")))
def test_shipped_example_scenarios_are_valid(path):
    loaded = scenario.load(path)
    assert loaded.name == path.stem
    assert isinstance(loaded, scenario.BanditScenario | scenario.ValidityScenario)


def test_validity_scenario_equals_scipy_on_the_same_streams(tmp_path, capsys):
    from splitlab.simulate import ab_streams

    path = _write(tmp_path, VALIDITY)
    assert main(["bench", "--scenario", str(path), "--out", str(tmp_path), "--no-progress"]) == 0
    text = (tmp_path / "scenario-tiny.md").read_text()
    assert (tmp_path / "scenario-tiny.png").read_bytes()[:4] == b"\x89PNG"
    for prefix in PROVENANCE_PREFIXES:
        assert prefix in text
    assert f"- command: `splitlab bench --scenario {path} --out {tmp_path}`" in text
    tables = read_tables(text)
    for index, effect in enumerate((0.0, 0.5)):
        streams = ab_streams(600, 5, 40, distribution="normal", mean=1.0, sd=2.0,
                             effect=effect, seed=5 + index)  # fmt: skip
        sd_c = np.sqrt((streams.sum_sq_control - streams.sum_control**2 / streams.n_control)
                       / (streams.n_control - 1))  # fmt: skip
        sd_t = np.sqrt((streams.sum_sq_treatment - streams.sum_treatment**2 / streams.n_treatment)
                       / (streams.n_treatment - 1))  # fmt: skip
        p = stats.ttest_ind_from_stats(
            streams.sum_treatment / streams.n_treatment, sd_t, streams.n_treatment,
            streams.sum_control / streams.n_control, sd_c, streams.n_control, equal_var=False,
        ).pvalue  # fmt: skip
        heading = next(h for h in tables if h.startswith(f"Effect {effect:g}"))
        rows = {row["method"]: row for row in tables[heading][0]}
        fixed = rows["Welch t-test at the horizon only"]["share rejected at some look"]
        peeking = rows["Welch t-test at every look (peeking)"]["share rejected at some look"]
        assert number(fixed) == pytest.approx(np.mean(p[:, -1] < 0.1), abs=5e-5)
        assert number(peeking) == pytest.approx(np.mean(np.any(p < 0.1, axis=1)), abs=5e-5)
        assert set(rows) == {"Welch t-test at the horizon only",
                             "Welch t-test at every look (peeking)",
                             "confidence sequence (running min p)"}  # fmt: skip
    assert "written to" in capsys.readouterr().out


def test_bandit_scenario_equals_a_direct_simulation(tmp_path):
    from splitlab.bandits import ThompsonSampling
    from splitlab.simulate import BernoulliArms, simulate

    path = _write(tmp_path, BANDIT, "buttons.toml")
    assert main(["bench", "--scenario", str(path), "--out", str(tmp_path), "--no-progress"]) == 0
    text = (tmp_path / "scenario-buttons.md").read_text()
    rows = {row["policy"]: row for row in next(iter(read_tables(text).values()))[0]}
    direct = simulate(ThompsonSampling(), BernoulliArms([0.2, 0.5, 0.6]), 300, 64, seed=3)
    thompson = number(rows["ThompsonSampling"]["mean cumulative regret at T"])
    assert thompson == pytest.approx(direct.mean_cumulative_regret[-1], abs=0.005)
    # a uniform split loses (best - average) per step in expectation
    uniform = number(rows["uniform"]["mean cumulative regret at T"])
    band = number(rows["uniform"]["± 1.96 sd/√R"])
    assert abs(uniform - 300 * (0.6 - np.mean([0.2, 0.5, 0.6]))) <= 1.5 * band
    assert "- seed: 3" in text


def test_seed_option_overrides_the_scenario_seed(tmp_path):
    path = _write(tmp_path, BANDIT, "buttons.toml")
    assert main(["bench", "--scenario", str(path), "--out", str(tmp_path), "--seed", "9",
                 "--no-progress"]) == 0  # fmt: skip
    assert "- seed: 9" in (tmp_path / "scenario-buttons.md").read_text()


FIXED_SPLIT = 'kind = "FixedSplit"\nweights = [1, 1, 1]'


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (FIXED_SPLIT, 'kind = "UCB1"\nalpha = -1', "policies[1].alpha"),
        (FIXED_SPLIT, 'kind = "UCB1"\nbeta = 2', "policies[1].beta"),
        ('kind = "ThompsonSampling"', 'kind = "NoSuchPolicy"', "policies[0].kind"),
        ("means = [0.2, 0.5, 0.6]", "", "environment.means"),
        ("means = [0.2, 0.5, 0.6]", "means = [0.2, 1.5]", "environment.means"),
        ('kind = "bernoulli"', 'kind = "poisson"', "environment.kind"),
        ("horizon = 300", "horizon = -3", "horizon"),
    ],
)
def test_invalid_bandit_scenario_names_the_field(tmp_path, capsys, old, new, field):
    assert old in BANDIT
    path = _write(tmp_path, BANDIT.replace(old, new))
    assert main(["bench", "--scenario", str(path), "--out", str(tmp_path)]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"splitlab: error: {field}: "), line
    assert not list(tmp_path.glob("scenario-*"))  # nothing ran, nothing written


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('distribution = "normal"', 'distribution = "poisson"', "process.distribution"),
        ('"peeking"', '"bonferroni"', "methods[1]"),
        ("looks = 5", "looks = 0", "looks"),
        ("alpha = 0.1", "alpha = 1.5", "alpha"),
        ("batch = 40", "batches = 40", "batches"),
        ("sd = 2.0", "sd = -2.0", "process.sd"),
        ("effects = [0.0, 0.5]", 'effects = [0.0, "big"]', "process.effects[1]"),
        ('kind = "validity"', 'kind = "regret"', "kind"),
        ('name = "tiny"', 'name = "../escape"', "name"),
    ],
)
def test_invalid_validity_scenario_names_the_field(tmp_path, old, new, field):
    assert old in VALIDITY
    path = _write(tmp_path, VALIDITY.replace(old, new))
    with pytest.raises(InvalidArgumentError) as caught:
        scenario.load(path)
    assert caught.value.argument == field


def test_bernoulli_effects_must_keep_the_rate_in_the_unit_interval():
    fields = {
        "kind": "validity",
        "replications": 10,
        "looks": 2,
        "batch": 10,
        "process": {"distribution": "bernoulli", "mean": 0.95, "effects": [0.0, 0.1]},
    }
    with pytest.raises(InvalidArgumentError, match=r"process\.effects\[1\]"):
        scenario.parse(fields, name="x")


def test_file_errors_are_clear(tmp_path, capsys):
    assert main(["bench", "--scenario", str(tmp_path / "missing.toml")]) == 2
    assert "--scenario: no such file" in _error_line(capsys)
    broken = _write(tmp_path, "kind = [unclosed", "broken.toml")
    assert main(["bench", "--scenario", str(broken)]) == 2
    assert "is not valid TOML" in _error_line(capsys)
    other = _write(tmp_path, "{}", "study.json")
    assert main(["bench", "--scenario", str(other)]) == 2
    assert "expected a .toml, .yaml or .yml file" in _error_line(capsys)


def test_yaml_scenarios_load_and_need_pyyaml(tmp_path, monkeypatch):
    pytest.importorskip("yaml")
    text = (
        "kind: validity\nreplications: 50\nlooks: 3\nbatch: 10\n"
        "process:\n  distribution: bernoulli\n  mean: 0.2\n"
    )
    path = _write(tmp_path, text, "study.yaml")
    loaded = scenario.load(path)
    assert (loaded.name, loaded.distribution, loaded.mean) == ("study", "bernoulli", 0.2)
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(InvalidArgumentError, match="YAML scenarios need PyYAML"):
        scenario.load(path)

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from scipy import stats

from splitlab.cli import demo_experiment, demo_results, main


def test_demo_prints_a_readout(capsys):
    assert main(["demo"]) == 0
    output = capsys.readouterr().out
    assert "revenue (CUPED)" in output and "clicks per session" in output


def test_demo_json_rows_match_an_independent_welch_test(capsys):
    assert main(["demo", "--format", "json", "--seed", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    data = demo_experiment(seed=3)
    control = data["revenue"][data["variant"] == "control"]
    treatment = data["revenue"][data["variant"] == "treatment"]
    welch = next(r for r in rows if r["metric"] == "revenue (Welch)" and r["scale"] == "absolute")
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    np.testing.assert_allclose(welch["p_value"], reference.pvalue, rtol=1e-9)


def test_demo_results_have_no_errors():
    table = demo_results(demo_experiment(seed=1))
    assert (table["error"] == "").all() and len(table) == 8


def test_bad_alpha_is_reported_without_a_traceback():
    completed = subprocess.run(
        [sys.executable, "-m", "splitlab", "demo", "--alpha", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "alpha" in completed.stderr and "Traceback" not in completed.stderr

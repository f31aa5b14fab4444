"""Peers side by side (`python benchmarks/peers/run.py`, repository tooling): environments,
the splitlab side of each workload, and agreement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from splitlab.bench.provenance import PROVENANCE_PREFIXES

# the repository tooling, not installed (benchmarks/tooling/)
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tooling import peers
from tooling.markdown_tables import number, read_tables

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--comparisons", "40", "--horizon", "60", "--replications", "2",
         "--linear-horizon", "20", "--repeats", "1"]  # fmt: skip


def _venv(root, peer, status, python=None):
    directory = root / peer
    (directory / "bin").mkdir(parents=True)
    (directory / "STATUS").write_text(status + "\n")
    if python is not None:
        (directory / "bin" / "python").symlink_to(python)
    return directory


def test_peer_environment_reports_missing_failed_and_ok(tmp_path):
    assert peers.peer_environment("river", tmp_path) == (
        None, "not set up (run `bash benchmarks/peers/setup.sh`)",
    )  # fmt: skip
    _venv(tmp_path, "obp", "failed while installing scikit-learn==1.0.2: build error")
    assert peers.peer_environment("obp", tmp_path) == (
        None, "failed while installing scikit-learn==1.0.2: build error",
    )  # fmt: skip
    _venv(tmp_path, "gbstats", "ok gbstats 0.8.0 (17 s)", python=sys.executable)
    python, status = peers.peer_environment("gbstats", tmp_path)
    assert python == tmp_path / "gbstats" / "bin" / "python" and status.startswith("ok")


def test_splitlab_side_of_the_statistics_workloads_matches_scipy():
    data = peers.make_stats(200, seed=4)
    ours = peers.splitlab_stats(data, repeats=1)
    columns = {name: np.asarray(values) for name, values in data.items()}
    mean_c, mean_t = columns["sum_c"] / columns["n_c"], columns["sum_t"] / columns["n_t"]
    sd_c = np.sqrt((columns["sum_sq_c"] - columns["n_c"] * mean_c**2) / (columns["n_c"] - 1))
    sd_t = np.sqrt((columns["sum_sq_t"] - columns["n_t"] * mean_t**2) / (columns["n_t"] - 1))
    scipy_p = stats.ttest_ind_from_stats(mean_t, sd_t, columns["n_t"], mean_c, sd_c,
                                         columns["n_c"], equal_var=False).pvalue  # fmt: skip
    np.testing.assert_allclose(ours["welch"]["numbers"]["p_value"], scipy_p, rtol=1e-9)
    np.testing.assert_allclose(ours["welch"]["numbers"]["effect"], mean_t - mean_c, rtol=1e-12)
    # the effects were drawn at 0-3 standard errors: p-values spread over (0, 1)
    assert 0.001 < np.min(scipy_p) and np.max(scipy_p) > 0.5
    rate_c = columns["successes_c"] / columns["n_c"]
    rate_t = columns["successes_t"] / columns["n_t"]
    se = np.sqrt(rate_c * (1 - rate_c) / columns["n_c"] + rate_t * (1 - rate_t) / columns["n_t"])
    z_p = 2 * stats.norm.sf(np.abs(rate_t - rate_c) / se)
    np.testing.assert_allclose(ours["proportions_z"]["numbers"]["p_value"], z_p, rtol=1e-9)


def test_max_relative_difference():
    assert peers.max_relative_difference([1.0, 0.0, -2.0], [1.0, 0.0, -2.0]) == 0.0
    assert peers.max_relative_difference([2.0, 4.0], [2.0, 4.4]) == pytest.approx(0.1)
    # a tail p-value off by 7e-17 (cancellation in 1 - cdf) is not a disagreement
    tail = peers.max_relative_difference([7.2563660e-11], [7.2563733e-11], peers.P_FLOOR)
    assert tail == pytest.approx(7.3e-17 / 1e-6, rel=0.01)


def test_a_peer_that_cannot_run_is_recorded_and_the_rest_still_written(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("gbstats") is not None:
        pytest.skip("gbstats is importable here: the fake environment would work")
    root = tmp_path / "peers"
    _venv(root, "gbstats", "ok gbstats 0.8.0", python=sys.executable)  # no gbstats inside
    _venv(root, "obp", "failed while installing scikit-learn==1.0.2: build error")
    out = tmp_path / "peers.md"
    argv = [*SMALL, "--peers", "gbstats", "obp", "river", "--peers-dir", str(root),
            "--out", str(out)]  # fmt: skip
    assert peers.main(argv, command="test") == 0
    text = out.read_text()
    for prefix in PROVENANCE_PREFIXES:
        assert prefix in text
    status = {row["peer"]: row["status"] for row in read_tables(text)["Peers"][0]}
    assert status["gbstats"].startswith("installed, but its workloads failed: exit 1")
    assert "No module named 'gbstats'" in status["gbstats"]
    assert status["obp"] == "failed while installing scikit-learn==1.0.2: build error"
    assert status["river"].startswith("not set up")
    # splitlab's own bandit rows are still measured
    speed = next(t for h, t in read_tables(text).items() if h.startswith("Bandits: per-call"))
    assert {row["library"] for row in speed[0]} == {"splitlab"}
    capsys.readouterr()


@pytest.mark.skipif(
    peers.peer_environment("gbstats")[0] is None, reason="no gbstats environment (setup.sh)"
)
def test_gbstats_agrees_with_splitlab_where_the_methods_coincide(tmp_path):
    out = tmp_path / "peers.md"
    assert peers.main([*SMALL, "--peers", "gbstats", "--out", str(out)], command="t") == 0
    tables = read_tables(out.read_text())
    agreement = tables["Statistics: agreement where the methods coincide"][0]
    assert len(agreement) == 5
    for row in agreement:
        assert row["verdict"] == "agree", row
        for cell in row["max relative difference per field"].split(", "):
            assert number(cell.split(" ")[1]) <= 1e-6
    speed = next(t for h, t in tables.items() if h.startswith("Statistics: speed"))[0]
    assert all(number(row["peer / splitlab"]) > 0 for row in speed)


def test_the_script_runs_the_quick_sizes_and_records_its_command(tmp_path):
    out = tmp_path / "peers.md"
    arguments = ["--quick", "--peers", "obp", "--peers-dir", str(tmp_path / "none"),
                 "--no-progress", "--out", str(out)]  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "benchmarks/peers/run.py", *arguments],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stderr == ""  # --no-progress
    text = out.read_text()
    assert f"- command: `python benchmarks/peers/run.py {' '.join(arguments)}`" in text
    # --quick gives the smoke sizes
    assert "comparisons=100, horizon=500, replications=3, linear_horizon=100, repeats=1" in text
    status = {row["peer"]: row["status"] for row in read_tables(text)["Peers"][0]}
    assert status == {"obp": "not set up (run `bash benchmarks/peers/setup.sh`)"}

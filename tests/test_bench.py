"""`splitlab bench`: the quick run of every suite, provenance, the registry, the README
generator (repository tooling in benchmarks/tooling/), what the package imports, and the
progress bar."""

from __future__ import annotations

import ast
import io
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from splitlab.bench.markdown import table
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import PROVENANCE_PREFIXES
from splitlab.bench.suites import SUITES, Suite, select
from splitlab.cli import main
from splitlab.errors import UnknownOptionError

# the repository tooling, not installed (benchmarks/tooling/)
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tooling import readme
from tooling.markdown_tables import number, read_tables

ROOT = Path(__file__).resolve().parents[1]
QUICK_FILES = (
    "ab_summary", "analyzer", "analyzer_methods", "bandits_latency", "allocator", "thompson", "ope",
    "bandits_regret", "validity_sequential",
)  # fmt: skip


def _single_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("splitlab: error: ") and "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`splitlab bench all --quick` once, in a fresh interpreter."""
    out = tmp_path_factory.mktemp("results")
    completed = subprocess.run(
        [sys.executable, "-m", "splitlab", "bench", "all", "--quick", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out, completed


def test_quick_run_writes_every_results_file_and_plot(quick_run):
    out, completed = quick_run
    written = sorted(path.name for path in out.iterdir())
    expected = [f"{name}.md" for name in QUICK_FILES] + [
        "bandits_regret.png",
        "validity_sequential.png",
    ]
    assert written == sorted(expected)  # no peers.md: the peers runner is repository tooling
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # the tables are printed too, and the progress bar went to stderr, not stdout
    assert "| method | normal | bernoulli | lognormal |" in completed.stdout
    assert "[validity_sequential] " in completed.stderr and "[ab_summary] " not in completed.stdout


@pytest.mark.parametrize("name", QUICK_FILES)
def test_quick_results_record_their_provenance(quick_run, name):
    out, _ = quick_run
    text = (out / f"{name}.md").read_text()
    lines = text.splitlines()
    for prefix in PROVENANCE_PREFIXES:
        assert sum(line.startswith(prefix) for line in lines) == 1, prefix
    field = {prefix: next(line for line in lines if line.startswith(prefix)) for prefix in
             PROVENANCE_PREFIXES}  # fmt: skip
    assert field["- command:"] == f"- command: `splitlab bench all --quick --out {out}`"
    assert field["- seed:"] == "- seed: 0"
    assert re.search(r"splitlab \d+\.\d+", field["- versions:"])
    assert re.search(r"\d+ cores, .+, \d+ GiB RAM", field["- machine:"])
    loads = re.findall(r"\d+\.\d\d", field["- load average"])
    assert len(loads) == 6  # 1/5/15-minute averages at start and at end
    assert re.match(r"- git commit: ([0-9a-f]{7,}|unknown)", field["- git commit:"])
    assert "=" in field["- parameters:"]


def test_quick_ab_summary_numbers_are_consistent(quick_run):
    out, _ = quick_run
    text = (out / "ab_summary.md").read_text()
    rows = read_tables(text)["A/B summary-statistics t-test throughput"][0]
    n = int(number(text.split("- parameters: n=")[1]))
    assert n == 100_000
    for row in rows:
        rate, milliseconds = number(row["comparisons/s"]), number(row["time"])
        # comparisons/s is n over the unrounded time; the time shown is rounded to 0.1 ms,
        # so their product is off by up to 0.05 ms / time (5% at 1 ms), plus 1% for the rate
        rounding = 0.05 / milliseconds + 0.01
        assert rate * milliseconds / 1e3 == pytest.approx(n, rel=rounding)
    bare = next(r for r in rows if r["workload"].startswith("(a) Welch absolute: bare"))
    ours = next(r for r in rows if r["workload"] == "(a) Welch absolute: splitlab ttest")
    ratio = number(ours["time"]) / number(bare["time"])
    assert number(ours["ratio vs bare formula"]) == pytest.approx(ratio, rel=0.05, abs=0.02)


def test_quick_validity_rates_match_the_binomial_expectation(quick_run):
    out, _ = quick_run
    text = (out / "validity_sequential.md").read_text()
    replications = int(number(text.split("- parameters: replications=")[1]))
    tables = read_tables(text)
    type_one = tables["Type I error under continuous peeking (A/A streams)"][0]
    tolerance = 4 * math.sqrt(0.05 * 0.95 / replications)
    rows = {row["method"]: row for row in type_one}
    for law in ("normal", "bernoulli", "lognormal"):
        fixed = number(rows["Welch t-test at the horizon only"][law])
        assert abs(fixed - 0.05) <= tolerance  # a single test at the horizon: exactly alpha
        peeking = number(rows["Welch t-test at every look (peeking)"][law])
        assert peeking > 0.05 + 3 * tolerance  # 20 looks inflate it (to ~0.25)
        for method in ("confidence sequence (running min p)", "mSPRT (running min p)"):
            assert number(rows[method][law]) <= 0.05 + tolerance
    coverage = tables["Simultaneous coverage of the true effect (normal data)"][0]
    for row in coverage:
        value = number(row["simultaneous coverage (all looks)"])
        assert 0.0 <= value <= 1.0
        if row["method"].startswith("confidence sequence"):
            assert value >= 0.95 - tolerance


def test_quick_regret_table_parses_and_orders_the_policies(quick_run):
    out, _ = quick_run
    text = (out / "bandits_regret.md").read_text()
    regret = read_tables(text)["Final cumulative regret at T = 2,000"][0]
    rows = {row["policy"]: row for row in regret}
    assert set(rows) == {
        "ThompsonSampling", "UCB1", "EpsilonGreedy(0.1)", "FixedSplit (uniform)", "LinUCB",
    }  # fmt: skip
    bernoulli = {label: number(row["bernoulli"]) for label, row in rows.items() if
                 row["bernoulli"] != "—"}  # fmt: skip
    # uniform split: regret = T (max mean - average mean) for the seed-0 testbed
    from splitlab.simulate import BernoulliArms

    means = BernoulliArms.testbed(10, seed=0).means
    expected = 2_000 * (means.max() - means.mean())
    band = number(rows["FixedSplit (uniform)"]["bernoulli"].split("±")[1])
    assert abs(bernoulli["FixedSplit (uniform)"] - expected) <= 2 * band + 1.0
    assert bernoulli["ThompsonSampling"] < bernoulli["FixedSplit (uniform)"] / 5
    assert rows["LinUCB"]["bernoulli"] == "—"  # a contextual policy on a context-free testbed


def test_quick_latency_and_analyzer_rows_parse(quick_run):
    out, _ = quick_run
    latency = (out / "bandits_latency.md").read_text()
    rows = read_tables(latency)["Bandit policies: per-call latency"][0]
    assert {row["library"] for row in rows} == {"splitlab"}  # no peer importable here
    for row in rows:
        assert number(row["per call"]) > 0
        assert row["budget"] in ("PASS", "FAIL", "—")
    analyzer = (out / "analyzer.md").read_text()
    title = "Batch analysis: Analyzer over a Parquet file vs DuckDB and pandas"
    routes = read_tables(analyzer)[title][0]
    duckdb = next(r for r in routes if r["route"].startswith("(a) DuckDB"))
    assert number(duckdb["ratio vs (a)"]) == 1.0
    ours = next(r for r in routes if r["route"].startswith("(1) splitlab"))
    assert number(ours["ratio vs (a)"]) == pytest.approx(
        number(ours["wall time"]) / number(duckdb["wall time"]), rel=0.05, abs=0.02
    )


def test_quick_analyzer_methods_rows_state_their_ratio_and_verdict(quick_run):
    out, _ = quick_run
    tables = read_tables((out / "analyzer_methods.md").read_text())
    sections = {
        "Regression adjustment: 3 metrics x 5 covariates": ("(1) splitlab", "(a) DuckDB"),
        "Quantile metrics: median, p90, p99 of latency": ("(2) splitlab", "(b) DuckDB"),
        'Clustered mean: session rows, cluster="user" (diagnostic, no budget)': (
            "(3) splitlab", "(c) DuckDB",
        ),
        "Ratio CUPED: 3 ratio metrics adjusted by their pre-period ratio": (
            "(4) splitlab", "(d) DuckDB",
        ),
    }  # fmt: skip
    for title, (ours_label, baseline_label) in sections.items():
        rows = tables[title][0]
        baseline = next(r for r in rows if r["route"].startswith(baseline_label))
        assert number(baseline["ratio vs DuckDB"]) == 1.0
        ours = next(r for r in rows if r["route"].startswith(ours_label))
        assert number(ours["ratio vs DuckDB"]) == pytest.approx(
            number(ours["wall time"]) / number(baseline["wall time"]), rel=0.05, abs=0.02
        )
        verdicts = ("—",) if title.startswith("Clustered") else ("PASS", "FAIL")
        assert ours["budget"].split()[0] in verdicts


def test_quick_allocator_rows_lose_no_reward_and_state_their_ratio(quick_run):
    out, _ = quick_run
    tables = read_tables((out / "allocator.md").read_text())
    one_thread = tables["One thread"][0]
    assert len(one_thread) == 8  # 4 workloads x (choose, update)
    for row in one_thread:
        assert number(row["p50"]) <= number(row["p99"])
        ratio = number(row["p50"]) / number(row["policy alone p50"])
        assert number(row["allocator / policy"]) == pytest.approx(ratio, rel=0.02, abs=0.01)
        assert row["p50 vs budget"] in ("PASS", "FAIL")
    threaded = tables["8 threads on one allocator"][0]
    assert [row["lost"] for row in threaded] == ["0"] * 4


def test_readme_sections_are_generated_from_the_quick_results(quick_run, tmp_path):
    out, _ = quick_run
    path = tmp_path / "README.md"
    path.write_text("# project\n\nintro\n\n## Spark\n\ncluster text\n")
    completed = subprocess.run(
        [sys.executable, "benchmarks/update_readme.py", "--out", str(out), "--readme", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    first = path.read_text()
    assert first.startswith("# project\n\nintro\n\n## Spark\n\ncluster text\n\n" + readme.BEGIN)
    assert "`python benchmarks/update_readme.py`" in readme.BEGIN
    assert first.rstrip().endswith(readme.END)
    assert first.count("## Performance") == 1 and first.count("## Validity") == 1
    assert "`splitlab bench validity`" in first
    # the type I error table is the results file's, row for row
    source = read_tables((out / "validity_sequential.md").read_text())
    copied = read_tables(first)["Validity"][0]
    assert copied == source["Type I error under continuous peeking (A/A streams)"][0]
    # regenerating replaces the block in place and leaves the rest alone
    path.write_text(first.replace("cluster text", "cluster text, edited by someone else"))
    assert readme.main(["--out", str(out), "--readme", str(path)]) == 0
    second = path.read_text()
    assert second == first.replace("cluster text", "cluster text, edited by someone else")


def test_readme_block_under_an_earlier_marker_is_replaced_not_appended(tmp_path):
    path = tmp_path / "README.md"
    old_marker = "<!-- generated by `splitlab bench --readme`: edit benchmarks, not this block -->"
    path.write_text(f"# project\n\n{old_marker}\nstale numbers\n{readme.END}\n\n## After\n")
    readme.update(tmp_path / "no-results", readme_path=path)
    text = path.read_text()
    assert old_marker not in text and "stale numbers" not in text
    assert text.count(readme.BEGIN) == 1 and text.endswith(f"{readme.END}\n\n## After\n")


def test_readme_sections_say_when_results_are_missing(tmp_path):
    text = readme.sections(tmp_path)
    assert "no results yet: run `splitlab bench speed`" in text
    assert "No results yet: run `splitlab bench validity`." in text


# ---------------------------------------------------------------------------- registry


def test_registry_groups_cover_every_suite_once():
    assert [suite.name for suite in select("all")] == [suite.name for suite in SUITES]
    by_group = [suite.name for group in ("speed", "regret", "validity")
                for suite in select(group)]  # fmt: skip
    assert sorted(by_group) == sorted(suite.name for suite in SUITES)
    with pytest.raises(UnknownOptionError, match="suite"):
        select("fast")


def test_module_suites_have_quick_options_their_parser_accepts():
    import importlib

    for suite in SUITES:
        module = importlib.import_module(suite.target)
        arguments = module.build_parser().parse_args(
            ["--out", "x.md", "--seed", "3", *suite.quick_options()]
        )
        assert arguments.seed == 3 and str(arguments.out) == "x.md"


def test_a_script_suite_gets_out_seed_and_its_quick_options(tmp_path):
    script = tmp_path / "echo_suite.py"
    script.write_text(
        "import sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "pathlib.Path(args[args.index('--out') + 1]).write_text(' '.join(args))\n"
    )
    suite = Suite("echo_suite", "speed", str(script), quick=("--small",))
    progress = Progress(stream=io.StringIO())
    status = suite.run(tmp_path, quick=True, seed=5, command="c", progress=progress)
    assert status == 0
    written = (tmp_path / "echo_suite.md").read_text()
    assert written == f"--out {tmp_path / 'echo_suite.md'} --seed 5 --small"


def test_bench_rejects_an_unknown_suite_and_a_file_as_out(tmp_path, capsys):
    assert main(["bench", "fastest"]) == 2
    assert "invalid choice: 'fastest'" in _single_error_line(capsys)
    # the peers runner and the README generator are repository tooling, not bench options
    assert main(["bench", "peers"]) == 2
    assert "invalid choice: 'peers'" in _single_error_line(capsys)
    assert main(["bench", "--readme"]) == 2
    assert "--readme" in _single_error_line(capsys)
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["bench", "validity", "--out", str(target)]) == 2
    assert "--out" in _single_error_line(capsys)


def test_the_thin_script_keeps_its_command_line(tmp_path):
    out = tmp_path / "v.md"
    arguments = ["--replications", "300", "--looks", "5", "--batch", "20", "--skip-compile",
                 "--out", str(out)]  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "benchmarks/validity_sequential.py", *arguments],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    command = "python benchmarks/validity_sequential.py " + " ".join(arguments)
    assert f"- command: `{command}`" in out.read_text()
    assert out.with_suffix(".png").exists()


# ---------------------------------------------------------------------------- imports


def _imported_modules(path: Path, package: Path) -> set[str]:
    """Every module a source file imports, relative imports resolved against its package."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*parts[: len(parts) - node.level], *filter(None, [base])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_library_imports_neither_the_cli_nor_the_repository_tooling():
    package = ROOT / "src" / "splitlab"
    # the command line and `python -m splitlab` are the only ways into splitlab.cli
    entry_points = {package / "cli.py", package / "__main__.py"}
    for path in package.rglob("*.py"):
        imported = _imported_modules(path, package)
        if path not in entry_points:
            assert not {"splitlab.cli"} & imported, path
        assert not any(name.split(".")[0] in ("tooling", "benchmarks") for name in imported), path
    moved = {"readme", "peers", "peer_workloads", "markdown_tables"}
    assert not moved & {path.stem for path in (package / "bench").glob("*.py")}


# ---------------------------------------------------------------------------- helpers


def test_progress_writes_lines_off_a_terminal_and_redraws_on_one():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    plain, terminal = io.StringIO(), Terminal()
    for stream in (plain, terminal):
        progress = Progress(stream=stream)
        progress.start("suite", total=4)
        for label in ("a", "b", "c", "d"):
            progress.step(label)
        progress.finish()
    assert plain.getvalue().splitlines() == [f"[suite] {i}/4 {x}" for i, x in
                                             enumerate("abcd", 1)]  # fmt: skip
    assert "\n" not in terminal.getvalue() and "[" + "#" * 24 + "] 4/4" in terminal.getvalue()
    silent = io.StringIO()
    quiet = Progress(stream=silent, enabled=False)
    quiet.start("x", total=1)
    quiet.step("y")
    assert silent.getvalue() == ""


def test_tables_round_trip_and_numbers_parse():
    rows = [["a | b", "1,234.5 ± 2.0 [3.1x]"], ["c", "**0.0610**"]]
    text = table(["name", "value"], [[r[0].replace("|", "\\|"), r[1]] for r in rows], "lr")
    parsed = read_tables("# t\n\n" + text)["t"][0]
    assert [row["name"] for row in parsed] == ["a | b", "c"]
    assert [number(row["value"]) for row in parsed] == [1234.5, 0.061]
    with pytest.raises(ValueError, match="no number"):
        number("—")
    assert np.isclose(number("6.46 s"), 6.46)

"""The documentation site builds from the docstrings with ``mkdocs build --strict`` (a
broken cross-reference, a missing page or a malformed docstring fails) and every API page
documents the names it is for. mkdocs is a test dependency: missing, it fails here."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PAGES = {
    "index.html": ["splitlab demo", "python -m pytest -q", "How to choose a method"],
    "choosing/index.html": [
        "confidence sequence",
        "mSPRT",
        "group-sequential",
        "CUPED",
        "Allocator",
        "Benjamini",
    ],
    "architecture/index.html": ["Stable numbers", "Public API", "Performance budgets"],
    "api/stats/index.html": [
        "Moments.from_sums",
        "Moments.from_samples",
        "Moments.from_proportions",
        "JointMoments.from_sums",
        "EffectResult",
        "ttest",
        "proportions_test",
        "ratio_test",
        "cuped_test",
        "bayes_test",
        "bayes_proportions",
        "prob_best",
        "sample_size",
        "stats.power.power",
        "stats.power.mde",
        "power_now",
        "ratio_cuped_test",
        "adjust_pvalues",
        "srm_test",
    ],
    "api/sequential/index.html": [
        "EDetector",
        "GaussianCUSUM",
        "detect_changes",
        "confidence_sequence",
        "msprt",
        "msprt_tau2",
        "SequentialMonitor",
        "GroupSequentialDesign",
        "sequential_srm",
        "e_bh",
    ],
    "api/bandits/index.html": [
        "Policy",
        "EpsilonGreedy",
        "UCB1",
        "KLUCB",
        "ThompsonSampling",
        "GaussianThompson",
        "EXP3",
        "Softmax",
        "TopTwoThompson",
        "FixedSplit",
        "LinUCB",
        "LinTS",
        "LogisticTS",
        "SquareCB",
    ],
    "api/allocator/index.html": [
        "DriftGuard",
        "Allocator.edit_policy",
        "Allocator.choose",
        "Allocator.update",
        "Allocator.snapshot",
        "Allocator.restore",
        "Allocator.merge",
        "Decision",
        "unit_uniform",
    ],
    "api/rollout/index.html": [
        "Rollout.check",
        "Rollout.save",
        "Rollout.load",
        "Guardrail",
        "RolloutDecision",
        "log_analysis",
        "log_rollout_check",
        "log_benchmark",
    ],
    "api/analyzer/index.html": [
        "Analyzer.quality",
        "quality_checks",
        "quantile_statistics",
        "Analyzer.analyze",
        "Analyzer.srm",
        "Analyzer.timeline",
        "Analyzer.power",
        "Analyzer.report",
        "Metric",
        "open_source",
        "build_query",
    ],
    "api/ope/index.html": ["evaluate", "replay", "arm_values", "arm_contrasts", "BanditLog"],
    "api/simulate/index.html": ["simulate", "ab_streams", "count_streams", "BernoulliArms"],
    "api/bench/index.html": [
        "splitlab.bench.suites",
        "splitlab.bench.command",
        "splitlab.bench.scenario",
    ],
    "api/cli/index.html": [
        "splitlab analyze",
        "splitlab power",
        "splitlab demo",
        "splitlab bench",
        "--baseline",
        "--cuped",
        "--lower-is-better",
        "--bands",
        "exit status",
    ],
    "api/errors/index.html": [
        "SplitlabError",
        "InvalidArgumentError",
        "EngineError",
        "DegenerateDataWarning",
    ],
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr[-6000:]}"
    return out


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_documents_its_names(site: Path, page: str) -> None:
    markup = (site / page).read_text(encoding="utf-8")
    # Names are looked up in the text (highlighted code is split into spans) and in the
    # markup, whose anchors carry full paths such as splitlab.stats.moments.Moments.from_sums.
    text = html.unescape(re.sub(r"<[^>]+>", "", markup))
    missing = [name for name in PAGES[page] if name not in text and name not in markup]
    assert not missing, f"{page} does not mention {missing}"


def test_every_api_page_is_tested(site: Path) -> None:
    built = {str(path.relative_to(site)) for path in (site / "api").glob("*/index.html")}
    assert built == {page for page in PAGES if page.startswith("api/")}

"""``splitlab bench``: the command-line face of the benchmark suites.

``splitlab bench [speed|regret|validity|all] [--quick] [--out DIR] [--seed N]`` runs the
registered suites (:data:`splitlab.bench.suites.SUITES`) into ``--out`` (default
``benchmarks/results/``); ``--scenario FILE`` runs a user scenario instead
(:mod:`splitlab.bench.scenario`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from splitlab.bench.markdown import results_dir
from splitlab.bench.progress import Progress
from splitlab.bench.suites import GROUPS, select
from splitlab.errors import InvalidArgumentError

__all__ = ["add_parser", "run_bench"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    bench = commands.add_parser(
        "bench",
        help="run the benchmark suites or a scenario file; write Markdown tables and plots",
        description="Run benchmark suites (speed, regret, validity, or all) or a "
        "scenario file, print their tables and write Markdown and PNG files to --out, each "
        "with its provenance (version, commit, seed, parameters, machine, command).",
    )
    bench.add_argument("suite", nargs="?", choices=(*GROUPS, "all"), help="default: all")
    bench.add_argument("--quick", action="store_true", help="small sizes (< 2 min in all)")
    bench.add_argument("--out", metavar="DIR", help="results directory (benchmarks/results/)")
    bench.add_argument("--scenario", metavar="FILE", help="a TOML (or YAML) scenario to run")
    bench.add_argument("--seed", type=int, help="override every suite's or scenario's seed")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return bench


def _command(arguments: argparse.Namespace) -> str:
    """The command line that reproduces this run (options in canonical order)."""
    words = ["splitlab", "bench"]
    if arguments.suite:
        words.append(arguments.suite)
    if arguments.scenario:
        words += ["--scenario", arguments.scenario]
    if arguments.quick:
        words.append("--quick")
    if arguments.seed is not None:
        words += ["--seed", str(arguments.seed)]
    if arguments.out:
        words += ["--out", arguments.out]
    return shlex.join(words)


def run_bench(arguments: argparse.Namespace) -> int:
    """Run what the arguments ask for; 0 when every suite succeeded, 1 otherwise."""
    from splitlab.bench import scenario

    if arguments.seed is not None and not 0 <= arguments.seed < 2**32:
        raise InvalidArgumentError("--seed", f"must be in [0, 2**32), got {arguments.seed}")
    out = Path(arguments.out) if arguments.out else results_dir()
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError("--out", f"{out} exists and is not a directory")
    progress = Progress(enabled=not arguments.no_progress)
    command = _command(arguments)
    loaded = scenario.load(arguments.scenario) if arguments.scenario else None

    group = arguments.suite
    if group is None and loaded is None:
        group = "all"
    failures = []
    if group is not None:
        for suite in select(group):
            if not suite.available():
                print(f"{suite.name}: {suite.target} not found; skipped", file=sys.stderr)
                continue
            try:
                status = suite.run(out, quick=arguments.quick, seed=arguments.seed,
                                   command=command, progress=progress)  # fmt: skip
            except SystemExit as exc:  # a suite's own argument parser rejected its options
                status = exc.code if isinstance(exc.code, int) else 2
            if status != 0:
                failures.append(suite.name)
    if loaded is not None:
        scenario.run(loaded, out, command=command, seed=arguments.seed, progress=progress,
                     source=Path(arguments.scenario))  # fmt: skip
    if failures:
        print(f"splitlab: error: suites failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0

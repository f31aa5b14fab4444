"""Cold start: how long a fresh interpreter takes to ``import splitlab`` and run
``splitlab --help`` (issue 13: both under 0.5 s), against the bare interpreter.

Every command runs in a new process (``subprocess``, output discarded), timed from spawn
to exit with ``time.perf_counter``; the rounds are interleaved (one run of every command per
round) so that a burst of load from other processes hits all of them alike, and the best of
``--repeats`` rounds is kept (the median is shown beside it). ``python -c pass``,
``import numpy`` and ``import numba`` are measured in the same rounds for scale, and every
time is also given as a ratio to ``python -c pass``. ``--baseline-src DIR`` times the same
splitlab commands with ``PYTHONPATH=DIR`` too (another checkout's ``src``, such as the
commit before a change: ``git worktree add /tmp/cold-before <commit>``), and lists for both
which heavy libraries each command imports (``python -X importtime``).

    python benchmarks/cold_start.py [--repeats 15] [--baseline-src /tmp/cold-before/src] \
        [--out benchmarks/results/cold_start.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from splitlab.bench.markdown import results_dir, table, write_text
from splitlab.bench.provenance import Provenance, git_commit, load_average, script_command

BUDGET = 0.5  # seconds, issue 13
SOURCE = Path(__file__).resolve().parents[1] / "src"
HEAVY = (
    "numpy",
    "numba",
    "llvmlite",
    "scipy",
    "pandas",
    "statsmodels",
    "pyarrow",
    "duckdb",
    "polars",
    "narwhals",
    "matplotlib",
)


# first accesses after `import splitlab`, each importing what its name needs
FIRST_ACCESS = ("Moments", "ttest", "msprt", "GroupSequentialDesign", "Analyzer", "bandits")


def console_script() -> str:
    """The installed ``splitlab`` entry point beside this interpreter (not a pyenv shim,
    a shell script that would add its own start-up to every run)."""
    beside = Path(sys.executable).with_name("splitlab")
    return str(beside) if beside.exists() else "splitlab"


@dataclass(frozen=True)
class Command:
    label: str
    argv: tuple[str, ...]
    per_tree: bool = True  # run with each source tree; False: a reference, run once
    budget: bool = False


def commands() -> list[Command]:
    def python(code: str, **options: bool) -> Command:
        return Command(f"python -c '{code}'", (sys.executable, "-c", code), **options)

    splitlab = console_script()
    return [
        python("pass", per_tree=False),
        python("import numpy", per_tree=False),
        python("import numba", per_tree=False),
        python("import splitlab", budget=True),
        Command("splitlab --help", (splitlab, "--help"), budget=True),
        Command(
            "python -m splitlab --help", (sys.executable, "-m", "splitlab", "--help"), budget=True
        ),
        Command("splitlab power --help", (splitlab, "power", "--help")),
        *(python(f"import splitlab; splitlab.{name}") for name in FIRST_ACCESS),
    ]


def environment(source: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(source)}


def run_once(argv: tuple[str, ...], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def heavy_imports(argv: tuple[str, ...], env: dict[str, str]) -> list[str]:
    """The heavy top-level packages a command imports (from its ``-X importtime`` lines)."""
    interpreter, *rest = argv
    if interpreter != sys.executable:  # the console script: the same code, run as -m
        rest = ["-m", "splitlab", *rest]
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *rest],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in run.stderr.splitlines()
        if line.startswith("import time:")
    }
    return [name for name in HEAVY if name in names]


def largest_imports(env: dict[str, str], count: int) -> list[tuple[str, float]]:
    """What ``import splitlab`` imports (not the interpreter's own start-up, which ends
    with ``site``), largest cumulative import time first (``python -X importtime``)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import splitlab"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split("|")
        if name.strip() == "site" and not name.startswith("  "):
            rows = []  # everything so far was start-up
            continue
        rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda row: -row[1])[:count]


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="rounds; the best is kept")
    parser.add_argument("--src", type=Path, default=SOURCE, help="the splitlab source measured")
    parser.add_argument(
        "--baseline-src", type=Path, help="another checkout's src/, measured as 'before'"
    )
    parser.add_argument("--out", type=Path, default=results_dir() / "cold_start.md")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be positive")
    provenance = Provenance.start(
        command=script_command(argv, "benchmarks/cold_start.py"),
        seed=None,
        parameters={"repeats": args.repeats, "budget_s": BUDGET},
        libraries=("numpy", "numba", "scipy", "pandas", "pyarrow", "narwhals"),
    )
    trees = {"after": args.src.resolve()}
    if args.baseline_src is not None:
        trees = {"before": args.baseline_src.resolve(), **trees}
    runs = [
        (command, tree)
        for command in commands()
        for tree in (trees if command.per_tree else ["after"])
    ]
    for command, tree in runs:  # a first run of each fills the OS and numba caches
        run_once(command.argv, environment(trees[tree]))

    load = load_average()[0]
    times: dict[tuple[str, str], list[float]] = {(c.label, tree): [] for c, tree in runs}
    for _ in range(args.repeats):
        for command, tree in runs:
            times[command.label, tree].append(run_once(command.argv, environment(trees[tree])))
    bare = min(times["python -c 'pass'", "after"])

    headers = ["command", *(f"{tree}: best" for tree in trees), "after: median"]
    headers += ["after / bare python", "heavy imports (after)"]
    if "before" in trees:
        headers.insert(-1, "heavy imports (before)")
    rows = []
    for command in commands():
        trees_run = list(trees) if command.per_tree else ["after"]
        best = {tree: min(times[command.label, tree]) for tree in trees_run}
        label = f"`{command.label}`" + (f" (budget {BUDGET:g} s)" if command.budget else "")
        verdict = ""
        if command.budget:
            verdict = " PASS" if best["after"] < BUDGET else " FAIL"
        row = [label]
        row += [format_seconds(best[tree]) if tree in best else "—" for tree in trees]
        row[-1] += verdict
        row += [format_seconds(statistics.median(times[command.label, "after"]))]
        row += [f"{best['after'] / bare:.1f}x"]
        for tree in [t for t in ("before", "after") if t in trees]:
            heavy = heavy_imports(command.argv, environment(trees[tree]))
            row += [", ".join(heavy) or "none"] if command.per_tree else ["—"]
        rows.append(row)

    sources = "\n".join(
        f"- {tree}: `PYTHONPATH={path}` (git commit {git_commit(path)})"
        for tree, path in trees.items()
    )
    largest = "\n\n".join(
        f"{tree}:\n\n"
        + table(
            ["module", "cumulative"],
            [[f"`{name}`", format_seconds(s)] for name, s in largest_imports(env, 8)],
            align="lr",
        )
        for tree, env in ((tree, environment(path)) for tree, path in trees.items())
    )
    report = f"""# Cold start: `import splitlab` and `splitlab --help`

Budget (issue 13): a fresh `import splitlab` and `splitlab --help` under {BUDGET:g} s.
Each command is a new process, timed from spawn to exit; best of {args.repeats} interleaved
rounds after one untimed run of each (which fills the OS file cache); 1-minute load average
before timing: {load:.2f} (other processes slow every row: compare the ratios to the bare
interpreter rather than absolute times across runs). "Heavy imports" are the numerical and
data libraries the command imports (`python -X importtime`). `splitlab ...` is the
installed console script, `{console_script()}`.

{provenance.block()}

Source trees measured:

{sources}

{table(headers, rows, align="l" + "r" * (len(trees) + 2) + "l" * len(trees))}

## The largest imports of `import splitlab` (`python -X importtime`, cumulative, one run)

{largest}
"""
    print(report)
    write_text(args.out, report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

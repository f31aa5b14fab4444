"""The registry of benchmark suites that ``splitlab bench`` runs.

A suite is one results file ``<out>/<name>.md`` (plus any PNG beside it) in a group
(``speed``, ``regret``, ``validity``). Its ``target`` is either a module of this
package with ``main(argv, *, command, progress)`` — it is imported and called — or a script
path relative to the repository (``benchmarks/x.py``), run in a subprocess with
``--out FILE [--seed N] [quick options]``. Adding a suite is one line in :data:`SUITES`.

>>> [suite.name for suite in select("validity")]
['validity_sequential']
>>> select("everything")
Traceback (most recent call last):
...
splitlab.errors.UnknownOptionError: suite: unknown value 'everything'; expected one of \
speed, regret, validity, all
"""

from __future__ import annotations

import importlib
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from splitlab.bench.progress import Progress
from splitlab.errors import UnknownOptionError

__all__ = ["GROUPS", "SUITES", "Suite", "select"]

REPOSITORY = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Suite:
    """One results file: ``name``, its ``group``, what runs it, and its ``--quick`` options
    (for a module target, the module's ``QUICK`` when not given here)."""

    name: str
    group: str
    target: str
    quick: tuple[str, ...] | None = None

    @property
    def is_script(self) -> bool:
        return self.target.endswith(".py")

    def quick_options(self) -> tuple[str, ...]:
        if self.quick is not None or self.is_script:
            return self.quick or ()
        return tuple(getattr(importlib.import_module(self.target), "QUICK", ()))

    def available(self) -> bool:
        """A script target exists only in a repository checkout."""
        return not self.is_script or (REPOSITORY / self.target).is_file()

    def run(
        self, out: Path, *, quick: bool, seed: int | None, command: str, progress: Progress
    ) -> int:
        """Write ``out/<name>.md``; returns the suite's exit status."""
        argv = ["--out", str(out / f"{self.name}.md")]
        if seed is not None:
            argv += ["--seed", str(seed)]
        if quick:
            argv += list(self.quick_options())
        if not self.is_script:
            module = importlib.import_module(self.target)
            return module.main(argv, command=command, progress=progress)
        progress.start(self.name, total=1)
        completed = subprocess.run([sys.executable, self.target, *argv], cwd=REPOSITORY)
        progress.step(f"python {self.target} {shlex.join(argv)}")
        progress.finish()
        return completed.returncode


# Order is run order. To add a suite written as a script in benchmarks/ (it must accept
# --out FILE and --seed N), one line: Suite("name", "group", "benchmarks/name.py", (quick,)).
SUITES: tuple[Suite, ...] = (
    Suite("ab_summary", "speed", "splitlab.bench.ab_summary"),
    Suite("analyzer", "speed", "splitlab.bench.analyzer"),
    Suite("analyzer_methods", "speed", "splitlab.bench.analyzer_methods"),
    Suite("bandits_latency", "speed", "splitlab.bench.bandits_latency"),
    Suite("allocator", "speed", "splitlab.bench.allocator"),
    Suite("thompson", "speed", "splitlab.bench.thompson"),
    Suite("ope", "speed", "splitlab.bench.ope"),
    Suite("bandits_regret", "regret", "splitlab.bench.bandits_regret"),
    Suite("validity_sequential", "validity", "splitlab.bench.validity_sequential"),
)
GROUPS = ("speed", "regret", "validity")


def select(group: str) -> list[Suite]:
    """The suites of a group, or every suite for "all"."""
    if group not in (*GROUPS, "all"):
        raise UnknownOptionError("suite", group, (*GROUPS, "all"))
    return [suite for suite in SUITES if group in ("all", suite.group)]

"""What every results file records about where and how it was produced.

A results file must let a reader reproduce a number or compare it with an earlier one, so
each one carries the same block of lines (:meth:`Provenance.lines`): the date, the machine
(usable cores, CPU model, RAM), the 1-, 5- and 15-minute load averages when the run started
and ended, the versions of Python, the libraries and splitlab, the git commit, the seed,
every parameter and the exact command. The line prefixes are fixed (``- seed:``, ``- command:``
...) so that tests and the README generator can find them.

>>> run = Provenance.start(command="splitlab bench validity --quick", seed=3,
...                        parameters={"replications": 1000, "looks": 20})
>>> text = "\\n".join(run.lines())
>>> "- seed: 3" in text and "- parameters: replications=1000, looks=20" in text
True
>>> "- command: `splitlab bench validity --quick`" in text
True
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PROVENANCE_PREFIXES",
    "Provenance",
    "cpu_model",
    "git_commit",
    "load_average",
    "script_command",
    "usable_cores",
]

# The lines every results file carries, in order (tests look for each prefix).
PROVENANCE_PREFIXES = (
    "- date:",
    "- machine:",
    "- load average",
    "- versions:",
    "- git commit:",
    "- seed:",
    "- parameters:",
    "- command:",
)
PACKAGE = Path(__file__).resolve().parent


def git_commit(directory: Path | None = None) -> str:
    """Short commit of the repository holding ``directory`` (default: this package), with a
    note when ``src/`` has uncommitted changes; "unknown" outside a git checkout."""
    where = directory or PACKAGE

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True)

    try:
        head = git("rev-parse", "--short", "HEAD")
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    top = git("rev-parse", "--show-toplevel").stdout.strip()
    dirty = git("status", "--porcelain", "--", f"{top}/src").stdout.strip() if top else ""
    return head.stdout.strip() + (" (src/ has uncommitted changes)" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> tuple[float, float, float]:
    """1-, 5- and 15-minute load averages (NaN where the platform has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def machine() -> str:
    return (
        f"{usable_cores()} cores, {cpu_model()}, {memory_total()}, "
        f"{platform.system()} {platform.machine()}"
    )


def script_command(argv: Sequence[str] | None, script: str | None = None) -> str:
    """The command line that ran a benchmark script: ``python <script> <arguments>``."""
    if argv is None:
        return shlex.join(["python", *sys.argv])
    return shlex.join(["python", script or sys.argv[0], *argv])


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _format_parameter(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format_parameter(item) for item in value) + "]"
    if isinstance(value, Path):
        return str(value)
    return f"{value}"


@dataclass
class Provenance:
    """Started when a run starts (time and load average), rendered when it ends."""

    command: str
    seed: int | None
    parameters: Mapping[str, object]
    libraries: Sequence[str] = ("numpy", "scipy", "numba")
    started: float = field(default_factory=time.perf_counter)
    date: str = field(
        default_factory=lambda: datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    )
    load_start: tuple[float, float, float] = field(default_factory=load_average)

    @classmethod
    def start(
        cls,
        *,
        command: str,
        seed: int | None,
        parameters: Mapping[str, object],
        libraries: Sequence[str] = ("numpy", "scipy", "numba"),
    ) -> Provenance:
        return cls(command=command, seed=seed, parameters=dict(parameters), libraries=libraries)

    def lines(self) -> list[str]:
        """The provenance block, one Markdown list item per line (see the module doc)."""
        load_end = load_average()
        elapsed = time.perf_counter() - self.started
        versions = ", ".join(
            [f"python {platform.python_version()}"]
            + [f"{name} {_version(name)}" for name in self.libraries]
            + [f"splitlab {_version('splitlab')}"]
        )
        parameters = ", ".join(
            f"{name}={_format_parameter(value)}" for name, value in self.parameters.items()
        )
        return [
            f"- date: {self.date}; wall time {elapsed:.1f} s",
            f"- machine: {machine()}",
            "- load average (1/5/15 min): "
            f"{' '.join(f'{v:.2f}' for v in self.load_start)} at start, "
            f"{' '.join(f'{v:.2f}' for v in load_end)} at end",
            f"- versions: {versions}",
            f"- git commit: {git_commit()}",
            f"- seed: {'—' if self.seed is None else self.seed}",
            f"- parameters: {parameters or '—'}",
            f"- command: `{self.command}`",
        ]

    def block(self) -> str:
        return "\n".join(self.lines())

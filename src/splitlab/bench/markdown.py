"""Markdown output of the benchmark suites: tables and atomic writes.

>>> print(table(["policy", "regret"], [["UCB1", "1.5"], ["Thompson", "0.8"]], align="lr"))
| policy | regret |
| --- | ---: |
| UCB1 | 1.5 |
| Thompson | 0.8 |
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["results_dir", "table", "write_text"]

RULE = {"l": "---", "r": "---:", "c": ":---:"}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column (l, r or c; default l)."""
    align = align.ljust(len(headers), "l")
    lines = [
        "| " + " | ".join(map(str, headers)) + " |",
        "| " + " | ".join(RULE[letter] for letter in align[: len(headers)]) + " |",
    ]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def write_text(path: Path, text: str) -> Path:
    """Write through a temporary file and rename, so a results file is never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def results_dir() -> Path:
    """Where results files go by default: ``benchmarks/results/`` of the repository this
    package is checked out in (an editable install), else of the working directory."""
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "benchmarks").is_dir() and (checkout / "src" / "splitlab").is_dir():
        return checkout / "benchmarks" / "results"
    return Path.cwd() / "benchmarks" / "results"

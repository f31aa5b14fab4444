"""Markdown output of the benchmark suites: tables, atomic writes, and reading tables back.

>>> text = table(["policy", "regret"], [["UCB1", "1.5"], ["Thompson", "0.8"]], align="lr")
>>> print(text)
| policy | regret |
| --- | ---: |
| UCB1 | 1.5 |
| Thompson | 0.8 |
>>> read_tables("## Regret\\n\\n" + text)["Regret"][0][1]
{'policy': 'Thompson', 'regret': '0.8'}
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["number", "read_tables", "results_dir", "table", "write_text"]

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


def _cells(line: str) -> list[str]:
    # split on pipes that are not escaped (a "\|" inside a cell stays in the cell)
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def read_tables(text: str) -> dict[str, list[list[dict[str, str]]]]:
    """Every Markdown table of ``text`` as a list of {header: cell} rows, grouped by the
    heading (without its #s) it follows; tables before any heading go under ""."""
    tables: dict[str, list[list[dict[str, str]]]] = {}
    heading = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif (
            line.startswith("|")
            and index + 1 < len(lines)
            and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1].strip())
        ):
            headers = _cells(line)
            rows = []
            index += 2
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(dict(zip(headers, _cells(lines[index]), strict=False)))
                index += 1
            tables.setdefault(heading, []).append(rows)
            continue
        index += 1
    return tables


def number(cell: str) -> float:
    """The first number in a table cell: "1,569,115" -> 1569115.0, "6.46 s" -> 6.46,
    "22.3x" -> 22.3, "0.0528" -> 0.0528; ValueError when there is none.

    >>> number("1,234.5 ± 3.6 [1.8x]"), number("**0.0610**"), number("-3e-05 ms")
    (1234.5, 0.061, -3e-05)
    """
    match = re.search(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?", cell)
    if match is None:
        raise ValueError(f"no number in table cell {cell!r}")
    return float(match.group(0).replace(",", ""))


def results_dir() -> Path:
    """Where results files go by default: ``benchmarks/results/`` of the repository this
    package is checked out in (an editable install), else of the working directory."""
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "benchmarks").is_dir() and (checkout / "src" / "splitlab").is_dir():
        return checkout / "benchmarks" / "results"
    return Path.cwd() / "benchmarks" / "results"

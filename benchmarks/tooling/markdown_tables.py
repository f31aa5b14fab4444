"""Reading the suites' Markdown tables back: for the README generator and the tests.

>>> from splitlab.bench.markdown import table
>>> text = table(["policy", "regret"], [["UCB1", "1.5"], ["Thompson", "0.8"]], align="lr")
>>> read_tables("## Regret\\n\\n" + text)["Regret"][0][1]
{'policy': 'Thompson', 'regret': '0.8'}
"""

from __future__ import annotations

import re

__all__ = ["number", "read_tables"]


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

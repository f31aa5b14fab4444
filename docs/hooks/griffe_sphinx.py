"""A griffe extension: splitlab's docstrings, written with Sphinx roles and doctests, as
Markdown for mkdocstrings.

- ``:func:`ttest``` and ``:class:`~splitlab.stats.moments.Moments``` become autorefs
  cross-references (``[`ttest`][splitlab.stats.frequentist.ttest]``), so a reference to
  an object that no page documents fails ``mkdocs build --strict``. A name is resolved in
  the scope of the docstring's object (its members, its module's imports, its parents).
- A paragraph of doctest lines (``>>>`` and what follows up to a blank line) becomes a
  fenced ``pycon`` block instead of a Markdown block quote.
- A paragraph ending in ``::`` introduces an indented literal block, as in reStructuredText.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _resolve(obj: griffe.Object, dotted: str) -> str:
    """The full path of ``dotted`` as written in ``obj``'s docstring, or ``dotted``."""
    head, _, tail = dotted.partition(".")
    try:
        resolved = obj.resolve(head)
    except griffe.NameResolutionError:
        return dotted
    return f"{resolved}.{tail}" if tail else resolved


def _roles(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        _, short, target = match.groups()
        target = target.strip().removesuffix("()")
        title = target.rsplit(".", 1)[-1] if short else target
        return f"[`{title}`][{_resolve(obj, target)}]"

    return ROLE.sub(link, text)


def _blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(">>>"):
            out.append(f"{indent}```pycon")
            while index < len(lines) and lines[index].strip():
                out.append(lines[index])
                index += 1
            out.append(f"{indent}```")
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            out.append(line[:-1])
            index += 1
            block: list[str] = []
            while index < len(lines) and (
                not lines[index].strip() or lines[index].startswith(indent + " ")
            ):
                block.append(lines[index])
                index += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            margin = min(len(b) - len(b.lstrip()) for b in block if b.strip()) if block else 0
            out += ["", f"{indent}```text"]
            out += [indent + b[margin:] if b.strip() else "" for b in block]
            out += [f"{indent}```", ""]
            continue
        out.append(line)
        index += 1
    return "\n".join(out)


class SphinxToMarkdown(griffe.Extension):
    """Rewrites every loaded docstring once, after its package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _blocks(_roles(obj, obj.docstring.value))

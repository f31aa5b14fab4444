"""A MkDocs hook: ``<!-- cli-help: COMMAND -->`` in a page becomes the ``--help`` text of
``splitlab COMMAND`` (``<!-- cli-help -->`` that of ``splitlab``), taken from the parser
itself so the page cannot drift from the command line."""

from __future__ import annotations

import argparse
import os
import re

MARKER = re.compile(r"<!-- cli-help(?::\s*(?P<command>[a-z-]+))?\s*-->")
WIDTH = "88"


def _help(command: str | None) -> str:
    from splitlab.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps to the terminal; the page is fixed
    try:
        parser = build_parser()
        if command is not None:
            (commands,) = (
                action
                for action in parser._actions
                if isinstance(action, argparse._SubParsersAction)
            )
            if command not in commands.choices:
                raise KeyError(f"cli-help: splitlab has no command {command!r}")
            parser = commands.choices[command]
        return parser.format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def on_page_markdown(markdown: str, **kwargs) -> str:
    def render(match: re.Match[str]) -> str:
        return f"```text\n{_help(match.group('command')).rstrip()}\n```"

    return MARKER.sub(render, markdown)

"""A small progress bar on stderr, without a dependency.

On a terminal the bar redraws one line in place (``\\r``); elsewhere (a pipe, a log file,
pytest's capture) it writes one plain line per finished step, so logs stay readable.
``Progress(enabled=False)`` is silent.

>>> import io
>>> stream = io.StringIO()
>>> progress = Progress(stream=stream)
>>> progress.start("validity", total=2)
>>> progress.step("A/A streams")
>>> progress.step("A/B streams")
>>> progress.finish()
>>> print(stream.getvalue().splitlines()[0])
[validity] 1/2 A/A streams
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

WIDTH = 24


class Progress:
    """Steps of named tasks: ``start(name, total)``, ``step(label)`` after each, ``finish()``."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.name = ""
        self.total: int | None = None
        self.done = 0
        self.started = time.perf_counter()

    def start(self, name: str, total: int | None = None) -> None:
        """Begin a task of ``total`` steps (None: unknown, a counter without a bar)."""
        self.name, self.total, self.done = name, total, 0
        self.started = time.perf_counter()
        if self.enabled and self.interactive:
            self._draw("")

    def _draw(self, label: str) -> None:
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        elapsed = time.perf_counter() - self.started
        bar = ""
        if self.total:
            filled = round(WIDTH * min(self.done, self.total) / self.total)
            bar = "[" + "#" * filled + "." * (WIDTH - filled) + "] "
        line = f"{self.name} {bar}{count} {elapsed:5.1f}s {label}"
        self.stream.write("\r\x1b[K" + line[:120])
        self.stream.flush()

    def step(self, label: str = "") -> None:
        """One step of the current task has finished."""
        self.done += 1
        if not self.enabled:
            return
        if self.interactive:
            self._draw(label)
            return
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        self.stream.write(f"[{self.name}] {count} {label}".rstrip() + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the current task: the bar's line is cleared on a terminal."""
        if self.enabled and self.interactive:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

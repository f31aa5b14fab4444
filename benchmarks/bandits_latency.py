"""Per-call latency of splitlab's bandit policies through the public API.

The suite lives in `splitlab.bench.bandits_latency` (so that the installed `splitlab bench`
command can run it); this script keeps `python benchmarks/bandits_latency.py ...` working with
the same options. `python benchmarks/bandits_latency.py --help` lists them.

`--busy` (this script only) times the suite while a second process keeps one core busy: a
pure-Python spin loop (`python -c "while True: pass"`), started a second before timing and
killed after. Its report is appended to `--out`, after the quiet report already there (a
busy section from an earlier run is replaced), under a heading that says how the load was
made, the share of a core the spinner got and the load average before and after.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from splitlab.bench.bandits_latency import build_parser, main
from splitlab.bench.markdown import write_text
from splitlab.bench.provenance import load_average

SPIN = "while True: pass"
BUSY_HEADING = "## The same run while a second process keeps one core busy"


def run_busy(suite: Callable[..., int], parser: Callable, script: str, argv: list[str]) -> int:
    """Run ``suite(argv)`` beside a spinning process; append its report to ``--out``."""
    target = Path(parser().parse_known_args(argv)[0].out)
    scratch = target.with_name(f".{target.name}.busy.md")
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    started = time.perf_counter()
    time.sleep(1.0)  # the spinner takes its core before timing starts
    before = load_average()
    try:
        status = suite(
            [*argv, "--out", str(scratch)], command=shlex.join(["python", script, "--busy", *argv])
        )
    finally:
        after = load_average()
        spinner.kill()
        _, _, usage = os.wait4(spinner.pid, 0)
        spun = time.perf_counter() - started
    share = (usage.ru_utime + usage.ru_stime) / spun
    report = scratch.read_text(encoding="utf-8").splitlines()
    scratch.unlink()
    body = "\n".join(("#" + line) if line.startswith("## ") else line for line in report[1:])
    section = (
        f"{BUSY_HEADING}\n\n"
        f'Load: `{sys.executable} -c "{SPIN}"` started 1 s before timing and killed after '
        f"({spun:.0f} s); it used {share:.0%} of a core over that time. 1-minute load average "
        f"{before[0]:.2f} when timing started, {after[0]:.2f} at the end (the average lags the "
        "spinner by about a minute). Budget verdicts below are those of this run.\n"
        f"{body}"
    )
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    quiet = existing.split(f"\n{BUSY_HEADING}\n")[0].rstrip("\n")
    write_text(target, (quiet + "\n\n" if quiet else "") + section.rstrip("\n") + "\n")
    print(f"busy-core report appended to {target}")
    return status


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--busy" in arguments:
        arguments.remove("--busy")
        sys.exit(run_busy(main, build_parser, "benchmarks/bandits_latency.py", arguments))
    sys.exit(main())

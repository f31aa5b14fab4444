"""Change detectors side by side: splitlab's e-detector and CUSUM, river's ADWIN and
Page-Hinkley, on the same seeded drifting streams.

    bash benchmarks/peers/setup.sh river          # river in its own venv (once)
    python benchmarks/drift.py [--replications 50] [--out benchmarks/results/drift.md]

Streams (``--replications`` each, seeded): Gaussian N(0, 1) → N(1, 1) and Bernoulli
0.3 → 0.5, abrupt at τ = 1000 or a linear ramp over 500 steps from τ, 3000 steps; and
no-change streams of 10⁴ steps. Every detector sees every value and restarts after each
alarm (river's detectors restart themselves). Reported: the mean delay from τ to the
first alarm at or after τ (over the streams where one came), the share of streams with
such an alarm, and false alarms per 10⁴ steps before τ or on the no-change streams.

splitlab's detectors are calibrated for ARL ≥ 10⁴ (α = 10⁻⁴; CUSUM by Siegmund's
approximation; δ = 1 Gaussian, δ = 0.2 Bernoulli with σ² = 0.21); "known μ0" rows are given
the pre-change mean, the "baseline" row learns
it from the first 200 values of each stream (EDetector.from_baseline, β = 10⁻³), as
ADWIN and Page-Hinkley must. river runs in the venv of ``benchmarks/peers/setup.sh``
(``--river-python``); without it only splitlab's rows are written.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from splitlab.sequential.changepoint import EDetector, GaussianCUSUM, detect_changes

TAU, LENGTH, RAMP, QUIET_LENGTH, BASELINE = 1000, 3000, 500, 10_000, 200
ALPHA = 1e-4
RIVER_PYTHON = "/tmp/splitlab-peers/river/bin/python"

RIVER_SCRIPT = r"""
import json, sys, time
import numpy as np
from river import drift
streams = np.load(sys.argv[1])
out = {}
for name in streams.files:
    for label, make in (("river ADWIN", lambda: drift.ADWIN()),
                        ("river PageHinkley", lambda: drift.PageHinkley())):
        alarms, started = [], time.perf_counter()
        for row in streams[name]:
            detector, found = make(), []
            for i, x in enumerate(row.tolist()):
                detector.update(x)
                if detector.drift_detected:
                    found.append(i)
            alarms.append(found)
        out.setdefault(label, {})[name] = {"alarms": alarms,
                                           "seconds": time.perf_counter() - started}
import river
print(json.dumps({"version": river.__version__, "results": out}))
"""


def make_streams(replications: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.arange(LENGTH)
    abrupt = (steps >= TAU).astype(float)
    gradual = np.clip((steps - TAU) / RAMP, 0.0, 1.0)
    streams = {}
    for shape, profile in (("abrupt", abrupt), ("gradual", gradual)):
        streams[f"gaussian-{shape}"] = rng.normal(profile, 1.0, (replications, LENGTH))
        rates = 0.3 + 0.2 * profile
        streams[f"bernoulli-{shape}"] = (rng.random((replications, LENGTH)) < rates) * 1.0
    streams["gaussian-none"] = rng.normal(0.0, 1.0, (replications, QUIET_LENGTH))
    streams["bernoulli-none"] = (rng.random((replications, QUIET_LENGTH)) < 0.3) * 1.0
    return streams


def splitlab_detectors(family: str, row: np.ndarray) -> dict[str, object]:
    if family == "gaussian":
        return {
            "splitlab EDetector (known μ0)": EDetector(
                0.0, 0.25, sigma=1.0, alpha=ALPHA, alternative="two-sided"
            ),
            "splitlab GaussianCUSUM (known μ0)": GaussianCUSUM(
                0.0, 1.0, arl=1 / ALPHA, alternative="two-sided"
            ),
            "splitlab EDetector (baseline)": EDetector.from_baseline(
                row[:BASELINE], 0.25, sigma=1.0, alpha=ALPHA
            ),
        }
    return {
        "splitlab EDetector (known μ0)": EDetector(
            0.3, 0.05, bounds=(0, 1), alpha=ALPHA, alternative="two-sided"
        ),
        "splitlab GaussianCUSUM (known μ0)": GaussianCUSUM(
            0.3, 0.2, sigma=math.sqrt(0.21), arl=1 / ALPHA, alternative="two-sided"
        ),
        "splitlab EDetector (baseline)": EDetector.from_baseline(
            row[:BASELINE], 0.05, bounds=(0, 1), alpha=ALPHA
        ),
    }


def run_splitlab(streams: dict[str, np.ndarray]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, rows in streams.items():
        family = name.split("-")[0]
        seconds: dict[str, float] = {}
        for row in rows:
            for label, detector in splitlab_detectors(family, row).items():
                started = time.perf_counter()
                alarms = detect_changes(row, detector).tolist()
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - started
                entry = out.setdefault(label, {}).setdefault(name, {"alarms": []})
                entry["alarms"].append(alarms)
        for label, value in seconds.items():
            out[label][name]["seconds"] = value
    return out


def run_river(streams: dict[str, np.ndarray], python: str) -> tuple[str | None, dict, str]:
    if not Path(python).exists():
        return None, {}, f"river not run: {python} missing (bash benchmarks/peers/setup.sh river)"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "streams.npz"
        np.savez(path, **streams)
        done = subprocess.run(
            [python, "-c", RIVER_SCRIPT, str(path)], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        return None, {}, f"river failed: {done.stderr.strip().splitlines()[-1:]}"
    payload = json.loads(done.stdout)
    return payload["version"], payload["results"], ""


def summarize(results: dict[str, dict], streams: dict[str, np.ndarray]) -> list[str]:
    names = [n for n in streams if not n.endswith("none")]
    quiet = [n for n in streams if n.endswith("none")]
    header = ["detector"]
    header += [f"{n}: delay (detected)" for n in names]
    header += [f"{n}: false alarms / 10⁴" for n in quiet]
    header += ["pre-τ false alarms / 10⁴", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, per_stream in results.items():
        cells, pre_alarms, pre_steps, seconds = [label], 0, 0, 0.0
        for name in names:
            delays = []
            for alarms in per_stream[name]["alarms"]:
                after = [a for a in alarms if a >= TAU]
                pre_alarms += sum(a < TAU for a in alarms)
                pre_steps += TAU
                if after:
                    delays.append(after[0] - TAU + 1)
            share = len(delays) / len(per_stream[name]["alarms"])
            mean = f"{np.mean(delays):.0f}" if delays else "–"
            cells.append(f"{mean} ({share:.0%})")
            seconds += per_stream[name].get("seconds", 0.0)
        for name in quiet:
            rows = per_stream[name]["alarms"]
            count = sum(len(alarms) for alarms in rows)
            cells.append(f"{count / (len(rows) * QUIET_LENGTH) * 1e4:.2f}")
            seconds += per_stream[name].get("seconds", 0.0)
        cells.append(f"{pre_alarms / pre_steps * 1e4:.2f}")
        cells.append(f"{seconds:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--river-python", default=RIVER_PYTHON)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    streams = make_streams(args.replications, args.seed)
    detect_changes(np.zeros(3), EDetector(0.0, 1.0, sigma=1.0))  # compile outside the timing
    detect_changes(np.zeros(3), GaussianCUSUM(0.0, 1.0))
    results = run_splitlab(streams)
    version, river_results, note = run_river(streams, args.river_python)
    results.update(river_results)
    command = "python benchmarks/drift.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Change detection: splitlab vs river (ADWIN, Page-Hinkley)",
        "",
        f"Command: `{command.strip()}` — {args.replications} replications per stream, "
        f"seed {args.seed}; river {version or 'not run'}"
        + (f" ({note})" if note else "")
        + ", default settings (ADWIN δ = 0.002; Page-Hinkley threshold 50, δ = 0.005).",
        "",
        *summarize(results, streams),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

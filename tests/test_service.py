"""examples/service.py as a real process: concurrent clients, graceful stop, crash, restart."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SERVICE = Path(__file__).resolve().parents[1] / "examples" / "service.py"
CLIENTS, REQUESTS = 8, 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVICE), "--state-dir", str(self.state_dir),
             "--port", str(self.port), "--arms", "control", "a", "b",
             "--checkpoint-seconds", "0.3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.process.stderr.read().decode())
            try:
                httpx.get(f"{self.url}/stats", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("the service did not come up within 60 s")

    def stop(self, how: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(how)
        self.process.wait(timeout=30)

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/stats", timeout=5).json()


def drive(url: str, client: int, reward_every: int = 1) -> tuple[Counter, Counter, list[dict]]:
    """One client: choose then (mostly) reward; returns served and acknowledged per arm and
    the decisions left without a reward."""
    served, acknowledged, unrewarded = Counter(), Counter(), []
    with httpx.Client(base_url=url, timeout=10) as http:
        for step in range(REQUESTS):
            decision = http.post("/choose", json={"unit": f"c{client}-{step}"}).json()
            served[decision["arm"]] += 1
            if step % reward_every:
                unrewarded.append(decision)
                continue
            answer = http.post("/reward", json={"id": decision["id"], "reward": step % 2})
            if answer.status_code == 200 and answer.json()["accepted"]:
                acknowledged[decision["arm"]] += 1
    return served, acknowledged, unrewarded


def run_clients(url: str, reward_every: int = 1):
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda c: drive(url, c, reward_every), range(CLIENTS)))
    served, acknowledged, unrewarded = Counter(), Counter(), []
    for s, a, u in results:
        served += s
        acknowledged += a
        unrewarded += u
    return served, acknowledged, unrewarded


def per_arm(stats: dict, column: str) -> Counter:
    return Counter({row["arm"]: row[column] for row in stats["arms"] if row[column]})


def test_service_survives_restart_and_crash_without_losing_acknowledged_rewards(tmp_path):
    service = Service(tmp_path)
    service.start()
    try:
        served, acknowledged, unrewarded = run_clients(service.url, reward_every=3)
        service.stop(signal.SIGTERM)  # graceful: flush the log, save the snapshot
        service.start()
        stats = service.stats()
        assert per_arm(stats, "decisions") == served
        assert per_arm(stats, "rewards") == acknowledged
        # decisions pending at the restart still take their (delayed) rewards
        for decision in unrewarded[:20]:
            answer = httpx.post(f"{service.url}/reward", json={"id": decision["id"], "reward": 1})
            assert answer.status_code == 200 and answer.json()["accepted"]
            acknowledged[decision["arm"]] += 1
        duplicate = httpx.post(
            f"{service.url}/reward", json={"id": unrewarded[0]["id"], "reward": 1}
        )
        assert duplicate.json() == {"accepted": False}
        unknown = httpx.post(f"{service.url}/reward", json={"id": "nope-1", "reward": 1})
        assert unknown.status_code == 404 and "unknown decision id" in unknown.text

        more_served, more_acknowledged, _ = run_clients(service.url)
        acknowledged += more_acknowledged
        service.stop(signal.SIGKILL)  # a crash: no shutdown hook runs
        service.start()
        stats = service.stats()
        assert per_arm(stats, "rewards") == acknowledged  # the journal was replayed
        assert sum(per_arm(stats, "decisions").values()) <= sum((served + more_served).values())
        logged = list((tmp_path / "log").glob("*.parquet"))
        assert logged  # checkpoints flushed the decision log
    finally:
        if service.process is not None and service.process.poll() is None:
            service.stop(signal.SIGTERM)

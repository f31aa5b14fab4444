"""SIGKILL at the worst moments: a process killed while it saves an Allocator, and the
example service killed while clients are choosing and rewarding."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from splitlab.allocator import Allocator

ARMS = ["a", "b", "c"]
BATCH = 300  # rewards between two saves

# A single-threaded parent that imports and warms up splitlab once, then forks one saver per
# line read (so that each child starts in milliseconds), reporting its pid and its death.
# Saver: reward j (0-based, over its whole run) is 1 when j % 3 == 0, so a snapshot after s
# batches has exactly s * BATCH rewards, ceil(s * BATCH / 3) of them ones.
ZYGOTE = """
import os, sys
from splitlab.allocator import Allocator
from splitlab.bandits import ThompsonSampling
arms, batch, path = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3]
warm = Allocator(arms, ThompsonSampling(), seed=0)
warm.update(warm.choose(), 1.0)
warm.refresh()
Allocator.restore(warm.snapshot())
print("ready", flush=True)
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            alloc = Allocator(arms, ThompsonSampling(), seed=1, refresh_every=10**6)
            for _ in range(500):
                alloc.choose()
            given = 0
            while True:
                for _ in range(batch):
                    alloc.update(alloc.choose(), float(given % 3 == 0))
                    given += 1
                alloc.save(path)
        finally:
            os._exit(1)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def temporaries(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".splitlab-tmp")]


def test_a_save_killed_at_any_moment_leaves_a_complete_earlier_snapshot(tmp_path):
    path = tmp_path / "alloc.snap"
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, ",".join(ARMS), str(BATCH), str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    rng = random.Random(17)
    kills, mid_write, loads = 24, 0, 0
    try:
        assert zygote.stdout.readline().strip() == "ready"
        for kill in range(kills):
            zygote.stdin.write("fork\n")
            zygote.stdin.flush()
            child = int(zygote.stdout.readline())
            time.sleep(rng.uniform(0.02, 0.3))
            if kill % 2:  # aim: wait until a save is under way
                deadline = time.monotonic() + 5
                while not temporaries(tmp_path) and time.monotonic() < deadline:
                    pass
            os.kill(child, signal.SIGKILL)  # no handler, no cleanup
            status = int(zygote.stdout.readline())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            mid_write += bool(temporaries(tmp_path))
            if not path.exists():
                continue  # killed before its first save ever completed
            alloc = Allocator.load(path)  # a complete snapshot, or this raises
            loads += 1
            stats = alloc.stats()
            rewards = int(stats["rewards"].sum())
            assert rewards > 0 and rewards % BATCH == 0
            assert int(stats["decisions"].sum()) == 500 + rewards
            ones = (rewards + 2) // 3
            alpha, beta = alloc.policy.arrays["alpha"][0], alloc.policy.arrays["beta"][0]
            assert (alpha - 1).sum() == ones and (beta - 1).sum() == rewards - ones
            assert alloc.counters()["pending"] == 500
            assert temporaries(tmp_path) == []  # the load removed the killed save's file
    finally:
        zygote.kill()
        zygote.wait(timeout=30)
    assert loads >= kills - 3
    assert mid_write >= 6  # the kills did land inside saves (half of them aimed there)


# ---------------------------------------------------------------------- the service

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SERVICE = Path(__file__).resolve().parents[2] / "examples" / "service.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(state_dir: Path, port: int, *options: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(SERVICE), "--state-dir", str(state_dir), "--port", str(port),
         "--arms", *ARMS, "--checkpoint-seconds", "0.1", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode())
        try:
            httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("the service did not come up within 60 s")


class Client(threading.Thread):
    """Chooses and rewards until the service dies; counts, per arm, the rewards the service
    acknowledged and those sent without an answer (which may or may not have counted)."""

    def __init__(self, url: str, number: int):
        super().__init__()
        self.url, self.number = url, number
        self.acknowledged, self.unanswered = Counter(), Counter()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            step = 0
            while True:
                step += 1
                try:
                    decision = http.post("/choose", json={"unit": f"{self.number}-{step}"}).json()
                except httpx.HTTPError:
                    return
                try:
                    answer = http.post("/reward", json={"id": decision["id"], "reward": step % 2})
                except httpx.HTTPError:
                    self.unanswered[decision["arm"]] += 1
                    return
                if answer.status_code == 200 and answer.json()["accepted"]:
                    self.acknowledged[decision["arm"]] += 1


def test_a_service_killed_under_load_loses_no_acknowledged_reward_and_refuses_other_salts(
    tmp_path,
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_service(tmp_path, port)
    try:
        clients = [Client(url, k) for k in range(6)]
        for client in clients:
            client.start()
        time.sleep(2.0)  # ~20 checkpoints under load
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        for client in clients:
            client.join(timeout=30)
        acknowledged = sum((c.acknowledged for c in clients), Counter())
        unanswered = sum((c.unanswered for c in clients), Counter())
        assert sum(acknowledged.values()) > 100
        process = start_service(tmp_path, port)
        stats = httpx.get(f"{url}/stats", timeout=5).json()
        counted = {row["arm"]: row["rewards"] for row in stats["arms"]}
        for arm in ARMS:
            assert acknowledged[arm] <= counted[arm] <= acknowledged[arm] + unanswered[arm]
        assert temporaries(tmp_path) == []
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    # the checkpoint it left is of experiment "service": another --salt must not serve it
    refused = subprocess.run(
        [sys.executable, str(SERVICE), "--state-dir", str(tmp_path), "--port", str(port),
         "--arms", *ARMS, "--salt", "pricing-test"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "refusing to start" in refused.stderr and "salt is 'service'" in refused.stderr

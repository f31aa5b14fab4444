"""A small HTTP decision service around :class:`splitlab.Allocator` (FastAPI + uvicorn).

    python -m pip install -e ".[serve]"
    python examples/service.py --state-dir /tmp/alloc --port 8000 --arms control new-ranker

    curl -s -X POST localhost:8000/choose -H 'content-type: application/json' -d '{"unit": "u1"}'
    curl -s -X POST localhost:8000/reward -H 'content-type: application/json' \
         -d '{"id": "<decision id>", "reward": 1}'

Durability: the allocator is restored from ``STATE_DIR/allocator.snap`` on start and saved
there (atomically) on shutdown and every ``--checkpoint-seconds``. Each acknowledged reward is
first appended to a journal (``rewards.jsonl``, one ``write`` per reward, so it survives the
process being killed); a restart replays the journal on top of the snapshot. Replay is
idempotent: a reward whose decision the snapshot already counted is a duplicate the allocator
ignores; one whose decision came after the snapshot is added by arm. The decision log is
flushed to ``STATE_DIR/log/`` at every checkpoint (Parquet parts).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import splitlab as sl
from splitlab.errors import InvalidArgumentError


class ChooseRequest(BaseModel):
    unit: str | None = None
    context: list[float] | None = None
    available: list[str] | None = None


class RewardRequest(BaseModel):
    id: str
    reward: float


class DecisionService:
    """The allocator, its journal of acknowledged rewards, and checkpoints."""

    def __init__(self, state_dir: Path, arms: list[str], policy: str, seed: int, salt: str):
        self.state_dir = state_dir
        self.snapshot_path = state_dir / "allocator.snap"
        self.journal_path = state_dir / "rewards.jsonl"
        self.log_dir = state_dir / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.snapshot_path.exists():
            self.allocator = sl.Allocator.load(self.snapshot_path)
        else:
            policy_class = getattr(sl.bandits, policy)
            self.allocator = sl.Allocator(arms, policy_class(), seed=seed, salt=salt)
        # rewards are journaled and applied under one lock, so that a checkpoint never
        # separates a reward in the snapshot from its journal line
        self.lock = threading.Lock()
        self.replayed = self._replay()
        self._journal = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def _replay(self) -> int:
        applied = 0
        for path in (self.journal_path.with_suffix(".old"), self.journal_path):
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                try:
                    applied += self.allocator.update(entry["id"], entry["reward"])
                except InvalidArgumentError:  # decided after the snapshot: add it by arm
                    self.allocator.update(
                        arm=entry["arm"], reward=entry["reward"], context=entry["context"]
                    )
                    applied += 1
        return applied

    def choose(self, request: ChooseRequest) -> dict[str, Any]:
        decision = self.allocator.choose(request.unit, request.context, request.available)
        return {
            "id": decision.id,
            "arm": decision.arm,
            "propensity": decision.propensity,
            "probabilities": decision.probabilities.tolist(),
            "policy_version": decision.policy_version,
        }

    def reward(self, request: RewardRequest) -> bool:
        with self.lock:
            pending = self.allocator.pending_decision(request.id)
            accepted = self.allocator.update(request.id, request.reward)
            if accepted and pending is not None:
                context = None if pending.context is None else pending.context.tolist()
                line = {"id": request.id, "reward": request.reward, "arm": pending.arm,
                        "context": context}  # fmt: skip
                os.write(self._journal, (json.dumps(line) + "\n").encode())
        return accepted

    def checkpoint(self) -> None:
        """Flush the log, then save the snapshot and start a new journal atomically."""
        self.allocator.flush(self.log_dir)
        with self.lock:
            blob = self.allocator.snapshot()
            os.close(self._journal)
            old = self.journal_path.with_suffix(".old")
            if self.journal_path.exists():
                if old.exists():  # a crash left it: fold it in before it is replaced
                    with open(old, "ab") as handle:
                        handle.write(self.journal_path.read_bytes())
                    self.journal_path.unlink()
                else:
                    self.journal_path.rename(old)
            self._journal = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        temporary = self.snapshot_path.with_suffix(".tmp")
        temporary.write_bytes(blob)
        os.replace(temporary, self.snapshot_path)
        old.unlink(missing_ok=True)

    def close(self) -> None:
        self.checkpoint()
        os.close(self._journal)


def create_app(service: DecisionService, checkpoint_seconds: float | None = None) -> FastAPI:
    stop = threading.Event()

    def checkpoints() -> None:
        while not stop.wait(checkpoint_seconds):
            service.checkpoint()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        worker = None
        if checkpoint_seconds:
            worker = threading.Thread(target=checkpoints, daemon=True)
            worker.start()
        yield
        stop.set()
        if worker is not None:
            worker.join()
        service.close()

    app = FastAPI(title="splitlab decision service", lifespan=lifespan)

    @app.post("/choose")
    def choose(request: ChooseRequest) -> dict[str, Any]:
        try:
            return service.choose(request)
        except InvalidArgumentError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    @app.post("/reward")
    def reward(request: RewardRequest) -> dict[str, Any]:
        try:
            return {"accepted": service.reward(request)}
        except InvalidArgumentError as exc:
            status = 404 if exc.argument == "decision" else 422
            raise HTTPException(status_code=status, detail=str(exc)) from exc

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        table = service.allocator.stats().reset_index()
        return {
            "arms": table.to_dict(orient="records"),
            "counters": service.allocator.counters(),
            "replayed": service.replayed,
        }

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--arms", nargs="+", default=["control", "treatment"])
    parser.add_argument("--policy", default="ThompsonSampling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--salt", default="service")
    parser.add_argument("--checkpoint-seconds", type=float, default=30.0)
    arguments = parser.parse_args(argv)
    service = DecisionService(
        arguments.state_dir, arguments.arms, arguments.policy, arguments.seed, arguments.salt
    )
    app = create_app(service, arguments.checkpoint_seconds)
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_level="warning")


if __name__ == "__main__":
    main()

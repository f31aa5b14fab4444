"""A small HTTP decision service around :class:`splitlab.Allocator` (FastAPI + uvicorn).

    python -m pip install -e ".[serve]"
    python examples/service.py --state-dir /tmp/alloc --port 8000 --arms control new-ranker

    curl -s -X POST localhost:8000/choose -H 'content-type: application/json' -d '{"unit": "u1"}'
    curl -s -X POST localhost:8000/reward -H 'content-type: application/json' \
         -d '{"id": "<decision id>", "reward": 1}'

State (``--state-dir``): checkpoints ``allocator-<n>.snap``, reward journals
``journal-<n>.jsonl`` and the decision log ``log/`` (Parquet parts). A checkpoint (every
``--checkpoint-seconds`` and on shutdown) flushes the log, then, while rewards wait, closes
journal n, opens journal n + 1 and saves the allocator atomically as ``allocator-<n>.snap`` —
which therefore holds every reward of journals <= n; older checkpoints and journals are then
deleted. On start the newest checkpoint is loaded (it must have the ``--arms``, ``--policy``
and ``--salt`` given, or the service refuses to start) and the journals after it are
replayed: a reward whose decision is still pending in the checkpoint is joined by id, any
other is added by arm, so each journaled reward counts exactly once.

What a crash (SIGKILL, power loss) loses, exactly:

- nothing acknowledged: ``/reward`` answers ``accepted: true`` only after the reward is
  written to the journal (one ``write`` per reward; it survives the process being killed,
  and with ``--fsync-journal`` a machine crash too). A reward journaled just before the crash
  but not yet answered is counted as well; the client's retry then gets ``accepted: false``
  or 404 and is not counted twice;
- ``/choose`` is not journaled: the decisions served since the last checkpoint are lost —
  their counts in ``/stats``, their decision-log rows, and their pending state, so a reward
  for one that arrives after the restart is refused with 404 (unknown decision id). Their
  rewards acknowledged before the crash are kept (added by arm), so for those arms
  ``rewards`` can exceed ``decisions`` after a crash;
- deltas merged, and log rows not yet flushed, since the last checkpoint.

A graceful stop (SIGTERM, SIGINT) checkpoints and loses nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import splitlab as sl
from splitlab.errors import InvalidArgumentError

CHECKPOINT = re.compile(r"allocator-(\d{8})\.snap")
JOURNAL = re.compile(r"journal-(\d{8})\.jsonl")


class ChooseRequest(BaseModel):
    unit: str | None = None
    context: list[float] | None = None
    available: list[str] | None = None


class RewardRequest(BaseModel):
    id: str
    reward: float


def numbered(directory: Path, pattern: re.Pattern) -> dict[int, Path]:
    """The files of ``directory`` named like ``pattern``, by their number."""
    found = {}
    for path in directory.iterdir():
        match = pattern.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


class DecisionService:
    """The allocator, its journal of acknowledged rewards, and checkpoints."""

    def __init__(
        self,
        state_dir: Path,
        arms: list[str],
        policy: str,
        seed: int,
        salt: str,
        fsync_journal: bool = False,
    ):
        self.state_dir = state_dir
        self.log_dir = state_dir / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.fsync_journal = fsync_journal
        checkpoints = numbered(state_dir, CHECKPOINT)
        self.checkpointed = max(checkpoints, default=-1)
        if checkpoints:
            path = checkpoints[self.checkpointed]
            try:
                self.allocator = sl.Allocator.load(
                    path, expect={"arms": arms, "policy": policy, "salt": salt}
                )
            except InvalidArgumentError as exc:
                raise SystemExit(
                    f"refusing to start: {path} cannot be served with --arms {' '.join(arms)} "
                    f"--policy {policy} --salt {salt}: {exc}"
                ) from exc
        else:
            if policy not in sl.bandits.__all__ or policy == "Policy":
                raise SystemExit(f"unknown --policy {policy!r}; one of {sl.bandits.__all__}")
            policy_class = getattr(sl.bandits, policy)
            self.allocator = sl.Allocator(arms, policy_class(), seed=seed, salt=salt)
        # rewards are journaled and applied under one lock, so that a checkpoint never
        # separates a reward in the snapshot from its journal
        self.lock = threading.Lock()
        journals = numbered(state_dir, JOURNAL)
        self.replayed = self._replay(
            [journals[n] for n in sorted(journals) if n > self.checkpointed]
        )
        # a fresh journal: never append to one a crash may have left with a torn last line
        self.journal_number = max([self.checkpointed, *journals]) + 1
        self._journal = self._open_journal()

    def _open_journal(self) -> int:
        path = self.state_dir / f"journal-{self.journal_number:08d}.jsonl"
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def _replay(self, journals: list[Path]) -> int:
        """Apply the rewards journaled after the checkpoint, each exactly once."""
        applied = 0
        for path in journals:
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # the torn last line of a crash: never acknowledged
                    continue
                if self.allocator.pending_decision(entry["id"]) is not None:
                    self.allocator.update(entry["id"], entry["reward"])
                else:  # decided after the checkpoint (or expired since): add it by arm
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
                if self.fsync_journal:
                    os.fsync(self._journal)
        return accepted

    def checkpoint(self) -> None:
        """Flush the log; then, rewards waiting, start the next journal and save a
        checkpoint holding every earlier one; then delete what it supersedes."""
        self.allocator.flush(self.log_dir)
        with self.lock:
            number = self.journal_number
            os.close(self._journal)
            self.journal_number += 1
            self._journal = self._open_journal()
            self.allocator.save(self.state_dir / f"allocator-{number:08d}.snap")
            self.checkpointed = number
        for kind in (CHECKPOINT, JOURNAL):
            for n, path in numbered(self.state_dir, kind).items():
                if n < number or (kind is JOURNAL and n == number):
                    path.unlink(missing_ok=True)

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
    parser.add_argument(
        "--fsync-journal", action="store_true", help="fsync each reward (survive machine crashes)"
    )
    arguments = parser.parse_args(argv)
    service = DecisionService(
        arguments.state_dir, arguments.arms, arguments.policy, arguments.seed, arguments.salt,
        arguments.fsync_journal,
    )  # fmt: skip
    app = create_app(service, arguments.checkpoint_seconds)
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_level="warning")


if __name__ == "__main__":
    main()

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


def load_reference(name: str) -> dict:
    path = REFERENCE / name
    if not path.exists():
        pytest.fail(f"reference file {path} is missing: shared/ must lie beside the repository")
    return json.loads(path.read_text())


def gbstats_cases(*kinds: str) -> list[dict]:
    path = REFERENCE / "gbstats.json"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.xfail(reason=f"{path} missing", run=False))]
    cases = json.loads(path.read_text())["cases"]
    return [
        pytest.param(case, id=f"{case['kind']}-{'rel' if case['relative'] else 'abs'}-{i}")
        for i, case in enumerate(cases)
        if case["kind"] in kinds
    ]

"""Golden-file helpers: compare to ``tests/golden/...``; ``RELAYGATE_UPDATE_GOLDEN=1`` rewrites."""

from __future__ import annotations

import dataclasses
import json
import os
from enum import Enum
from pathlib import Path
from typing import Any

from relaygate.canonical import GatewayError

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("RELAYGATE_UPDATE_GOLDEN") == "1"


def plain(obj: Any) -> Any:
    """Canonical objects as plain JSON data (dataclass fields, enum values, errors)."""
    if isinstance(obj, GatewayError):
        return {"error": obj.kind.value, "status": obj.status, "message": obj.message}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "_type": type(obj).__name__,
            **{f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, list | tuple):
        return [plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    return obj


def check_json(path: Path, actual: Any) -> None:
    text = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            raise AssertionError(f"golden file {path} was missing and has been written; re-run")
        return
    assert json.loads(path.read_text()) == actual, f"differs from {path}"


def check_text(path: Path, actual: str) -> None:
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        if not UPDATE:
            raise AssertionError(f"golden file {path} was missing and has been written; re-run")
        return
    assert path.read_text() == actual, f"differs from {path}"

"""Helpers shared by the operations tests (store, limits, admin, metrics, reload)."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest
from tests.conftest import openai_backend

from relaygate.testing import OpenAIEmulator

MASTER = "master-secret-7f3a9c2e1b"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def need_postgres() -> None:
    if not reachable(5432):
        pytest.skip(
            "PostgreSQL is not reachable on 127.0.0.1:5432 — start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )


def need_redis() -> None:
    if not reachable(6379):
        pytest.skip(
            "Redis is not reachable on 127.0.0.1:6379 — start it with "
            '`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`'
        )


def ops_config(
    upstream: OpenAIEmulator, db_url: str, *, auth: bool = True, **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "server": {"auth": {"enabled": auth, "api_key_env": "RG_TEST_MASTER"}},
        "plugins": {"backends": [openai_backend(upstream)]},
        "storage": {"url": db_url, "flush_interval": 0.02},
        "prices": {"models": {"gpt-4o-mini": {"input": 1000.0, "output": 2000.0}}},
    }
    config.update(extra)
    return config


def chat(model: str = "emu/gpt-4o-mini", text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"

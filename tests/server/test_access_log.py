"""The access log: one JSON line per request, and never a secret — whether the client puts a
key in the headers, the query, the path or the request id it sends."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from tests.conftest import openai_backend, serve_gateway

from relaygate.testing import OpenAIEmulator

MASTER = "rg-access-master-key-0123456789"
UPSTREAM_KEY = "sk-test-key-123456"  # openai_backend's provider key
PATH_SECRET = "sk-proj-pathsecret0123456789"
RID_SECRET = "sk-ridsecret0123456789abcdef"


def config(upstream: OpenAIEmulator) -> dict[str, Any]:
    return {
        "server": {"auth": {"enabled": True, "api_key_env": "RG_ACCESS_MASTER"}},
        "plugins": {"backends": [openai_backend(upstream)]},
        "retry": {"attempts": 1},
    }


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "relaygate.access"]


async def test_access_lines_carry_the_request_and_no_secret(
    openai_upstream: OpenAIEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("RG_ACCESS_MASTER", MASTER)
    caplog.set_level("INFO", logger="relaygate.access")
    chat = {"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with serve_gateway(config(openai_upstream)) as gw, aiohttp.ClientSession() as http:
        bearer = {"Authorization": f"Bearer {MASTER}"}
        async with http.post(gw.url + "/v1/chat/completions", json=chat, headers=bearer) as r:
            assert r.status == 200
            rid = r.headers["x-request-id"]
        # A client-chosen request id that looks like a key.
        headers = {**bearer, "X-Request-ID": RID_SECRET}
        async with http.post(gw.url + "/v1/chat/completions", json=chat, headers=headers) as r:
            assert r.status == 200 and r.headers["x-request-id"] == RID_SECRET
        # A key in the path (unknown route) and in the query string.
        async with http.get(f"{gw.url}/v1/nothing/{PATH_SECRET}", headers=bearer) as r:
            assert r.status == 404
        async with http.get(f"{gw.url}/v1/models?key={MASTER}") as r:
            assert r.status == 200
        # A wrong key: refused, and not logged either.
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat, headers={"x-api-key": "sk-wrong-0123456789"}
        ) as r:
            assert r.status == 401
    logged = lines(caplog)
    assert len(logged) == 5
    first = logged[0]
    assert first["request_id"] == rid and len(rid) == 32
    assert first["status"] == 200 and first["path"] == "/v1/chat/completions"
    assert first["backend"] == "emu" and first["attempts"] == 1
    assert first["client_key"] == "master" and first["ms"] >= 0
    assert [entry["status"] for entry in logged] == [200, 200, 404, 200, 401]
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (MASTER, UPSTREAM_KEY, PATH_SECRET, RID_SECRET, "sk-wrong-0123456789"):
        assert secret not in text, f"secret in the log: {secret[:8]}…"

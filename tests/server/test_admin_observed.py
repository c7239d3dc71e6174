"""``POST /api/generate`` and ``POST /api/providers/{name}/test`` go through the observers
(ledger row, limits, metrics); ``/api/keys`` and ``/api/usage/summary`` read the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.conftest import serve_gateway
from tests.opskit import MASTER, auth, ops_config

from relaygate.testing import OpenAIEmulator, Reply


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)


async def call(
    http: aiohttp.ClientSession, method: str, url: str, key: str = MASTER, **kw: Any
) -> tuple[int, Any, Any]:
    async with http.request(method, url, headers=auth(key), **kw) as r:
        return r.status, await r.json(), r.headers


async def ledger_rows(gw: Any) -> list[dict[str, Any]]:
    await gw.app.state["ledger"].flush()
    rows: list[dict[str, Any]] = await gw.app.state["store"].usage_rows(limit=50)
    return rows


async def test_generate_and_test_write_ledger_rows(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'a.db'}")
    openai_upstream.script(
        Reply(text="one", input_tokens=7, output_tokens=3),
        Reply(text="two", input_tokens=11, output_tokens=5),
        Reply(text="three", input_tokens=2, output_tokens=1),
    )
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        api = gw.url + "/api"
        status, body, _ = await call(
            http, "POST", api + "/generate", json={"prompt": "hi", "model": "emu/gpt-4o-mini"}
        )
        assert status == 200 and body["data"]["content"] == "one", body
        async with http.post(
            api + "/generate",
            headers=auth(MASTER),
            json={"prompt": "hi", "model": "emu/gpt-4o-mini", "stream": True},
        ) as r:
            text = await r.text()
        assert '"done":true' in text and '"content":"two"' in text
        status, body, _ = await call(
            http, "POST", api + "/providers/emu/test", json={"model": "gpt-4o-mini"}
        )
        assert status == 200 and body["data"]["success"] is True
        rows = await ledger_rows(gw)
        assert len(rows) == 3
        by_tokens = sorted((r["input_tokens"], r["output_tokens"]) for r in rows)
        assert by_tokens == [(2, 1), (7, 3), (11, 5)]
        for row in rows:
            assert row["dialect"] == "admin"
            assert row["backend"] == "emu" and row["model"] == "emu/gpt-4o-mini"
            assert row["status"] == 200 and row["key_id"] == "master"
            assert row["cost"] is not None and row["cost"] > 0  # priced like client traffic
        assert [r["stream"] for r in sorted(rows, key=lambda r: r["input_tokens"])] == [
            False,
            False,
            True,
        ]
        async with http.get(gw.url + "/metrics", headers=auth(MASTER)) as r:
            metrics = await r.text()
        line = 'relaygate_requests_total{backend="emu",route="emu/gpt-4o-mini",status="200"} 3.0'
        assert line in metrics


async def test_backend_rpm_limits_admin_generation(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(
        openai_upstream,
        f"sqlite:///{tmp_path / 'a.db'}",
        limits={"backends": {"emu": {"rpm": 1}}},
    )
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        payload = {"prompt": "hi", "model": "emu/gpt-4o-mini"}
        status, _, _ = await call(http, "POST", gw.url + "/api/generate", json=payload)
        assert status == 200
        status, body, headers = await call(http, "POST", gw.url + "/api/generate", json=payload)
        assert status == 429, body
        assert body["success"] is False and "Rate limit" in body["error"]["message"]
        assert int(headers["Retry-After"]) >= 1
        # The same count as client traffic: the hot path is now over the limit too.
        async with http.post(
            gw.url + "/v1/chat/completions",
            headers=auth(MASTER),
            json={"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        ) as r:
            assert r.status == 429
        rows = await ledger_rows(gw)
        assert sorted(r["status"] for r in rows) == [200, 429, 429]
        refused = next(r for r in rows if r["dialect"] == "admin" and r["status"] == 429)
        assert refused["attempts"] == 0 and "rate_limit" in refused["error"]


async def test_failed_generation_is_recorded(tmp_path: Path) -> None:
    from relaygate.testing._emulator import Fault

    async with OpenAIEmulator(api_key="sk-test-key-123456") as upstream:
        upstream.script(Fault(status=400, body={"error": {"message": "bad thing"}}))
        config = ops_config(upstream, f"sqlite:///{tmp_path / 'a.db'}")
        async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
            status, body, _ = await call(
                http, "POST", gw.url + "/api/generate", json={"prompt": "x", "model": "emu/m"}
            )
            assert status == 502 and body["error"]["code"] == "GENERATION_ERROR"
            rows = await ledger_rows(gw)
            assert len(rows) == 1 and rows[0]["status"] == 502 and rows[0]["error"]


async def test_keys_and_usage_summary_endpoints(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'a.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        api = gw.url + "/api"
        status, body, _ = await call(
            http, "POST", api + "/keys", json={"name": "team-a", "rpm": 5, "models": ["emu/*"]}
        )
        assert status == 201
        secret, key_id = body["data"]["key"], body["data"]["id"]
        status, body, _ = await call(http, "GET", api + "/keys")
        assert status == 200
        assert [k["name"] for k in body["data"]] == ["team-a"]
        assert body["data"][0]["active"] is True and body["data"][0]["rpm"] == 5
        assert secret not in str(body) and "digest" not in body["data"][0]

        for _ in range(2):
            async with http.post(
                gw.url + "/v1/chat/completions",
                headers=auth(secret),
                json={"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            ) as r:
                assert r.status == 200
        status, body, _ = await call(http, "GET", api + "/usage/summary?by=key_id&hours=1")
        assert status == 200, body
        data = body["data"]
        assert data["by"] == "key_id" and data["totals"]["requests"] == 2
        group = data["groups"][0]
        assert group["group"] == key_id and group["requests"] == 2 and group["cost"] > 0
        assert data["totals"]["cost"] == group["cost"]

        # A virtual key may not read the admin API.
        status, body, _ = await call(http, "GET", api + "/usage/summary", key=secret)
        assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
        for query, field in (("by=colour", "by:"), ("hours=-2", "hours:"), ("hours=x", "hours:")):
            status, body, _ = await call(http, "GET", api + "/usage/summary?" + query)
            assert status == 400 and body["error"]["message"].startswith(field), body
        status, body, _ = await call(http, "POST", api + "/keys", json={"name": ""})
        assert status == 400 and "name" in body["error"]["message"]

        status, body, _ = await call(http, "DELETE", api + f"/keys/{key_id}")
        assert status == 200
        status, body, _ = await call(http, "DELETE", api + f"/keys/{key_id}")
        assert status == 404
        async with http.post(
            gw.url + "/v1/chat/completions",
            headers=auth(secret),
            json={"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        ) as r:
            assert r.status == 401

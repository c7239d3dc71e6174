"""Traffic with known secrets; no log line, response body or header may contain any of them."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet
from tests.conftest import serve_gateway
from tests.opskit import MASTER, auth, chat, ops_config

from relaygate.testing import Fault, OpenAIEmulator

RUNTIME_KEY = "sk-runtime-secret-5566778899"
UPSTREAM_KEY = "sk-test-key-123456"  # the configured provider key (see conftest.openai_backend)


async def test_no_secret_in_any_log_line_or_response(
    openai_upstream: OpenAIEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)
    monkeypatch.setenv("RELAYGATE_VAULT_KEY", Fernet.generate_key().decode())
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def record(r: aiohttp.ClientResponse) -> None:
        seen.append(await r.text())
        seen.append(str(dict(r.headers)))

    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 's.db'}")
    config["server"]["max_body_bytes"] = 4096
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        vkey = (await gw.app.state["store"].create_key("client", rpm=3)).key
        secrets = [MASTER, vkey, RUNTIME_KEY, UPSTREAM_KEY]
        url = gw.url + "/v1/chat/completions"
        requests = [
            ("POST", url, auth(vkey), chat()),
            ("POST", url, auth(vkey), chat(stream=True)),
            ("POST", url, {"x-api-key": vkey}, chat("nope/m")),
            ("POST", url, auth(vkey), chat()),  # over rpm
            ("POST", url, auth(vkey + "x"), chat()),  # wrong key
            ("POST", url + f"?key={MASTER}x", {}, chat()),
            ("POST", url, auth(MASTER), {"model": "emu/x", "messages": "x" * 5000}),  # 413
            ("GET", gw.url + "/api/providers", auth(vkey), None),
            ("GET", gw.url + "/api/providers", auth(MASTER), None),
            (
                "POST",
                gw.url + "/api/providers/register",
                auth(MASTER),
                {
                    "name": "rt",
                    "base_url": openai_upstream.base_url + "/v1",
                    "api_key": RUNTIME_KEY,
                },
            ),
            (
                "POST",
                gw.url + "/api/providers/register",
                auth(MASTER),
                {"name": "bad name", "api_key": RUNTIME_KEY},
            ),
            ("GET", gw.url + "/api/providers/rt", auth(MASTER), None),
            ("GET", gw.url + "/api/providers/emu", auth(MASTER), None),
            ("GET", gw.url + "/api/providers/health", auth(MASTER), None),
            ("GET", gw.url + "/metrics", auth(MASTER), None),
            ("GET", gw.url + "/health", {}, None),
        ]
        openai_upstream.script(Fault(status=401, message=f"bad key {UPSTREAM_KEY}"))
        for method, target, headers, body in requests:
            async with http.request(method, target, headers=headers, json=body) as r:
                await record(r)
        async with http.post(
            gw.url + "/api/generate",
            headers=auth(MASTER),
            json={"prompt": "x", "provider": "rt", "model": "gpt-4o-mini"},
        ) as r:
            await record(r)
            # The emulator expects another key: the upstream 401 comes back without any key.
            assert r.status == 502
        await gw.app.state["ledger"].flush()
        rows = await gw.app.state["store"].usage_rows()
        seen.append(str(rows))
    statuses = [s for s in seen if s.startswith("{")]
    assert statuses  # responses were captured
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "relaygate.access" in {r.name for r in caplog.records}
    for secret in secrets:
        assert secret not in logs, f"secret leaked into logs: {secret[:6]}…"
        for text in seen:
            assert secret not in text, f"secret leaked into a response: {secret[:6]}…"
    stored = (tmp_path / "s.db").read_bytes()
    assert RUNTIME_KEY.encode() not in stored and vkey.encode() not in stored

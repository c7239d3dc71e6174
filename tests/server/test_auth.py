from __future__ import annotations

import sys
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import serve_gateway
from tests.opskit import MASTER, auth, chat, ops_config

from relaygate.testing import OpenAIEmulator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hooks-plugin"


@pytest.fixture(autouse=True)
def _master(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)


async def test_keys_missing_wrong_revoked_public(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'a.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        url = gw.url + "/v1/chat/completions"
        store = gw.app.state["store"]
        key = await store.create_key("client")
        for headers in ({}, auth("rg-wrong"), {"x-api-key": key.key[:-1]}):
            async with http.post(url, json=chat(), headers=headers) as r:
                assert r.status == 401
                body = await r.json()
                assert body["error"]["type"]  # OpenAI's error shape
        for headers in (auth(key.key), {"x-api-key": key.key}, {"x-goog-api-key": key.key}):
            async with http.post(url, json=chat(), headers=headers) as r:
                assert r.status == 200
        async with http.post(url + f"?key={key.key}", json=chat()) as r:
            assert r.status == 200
        assert await store.revoke_key(key.id)
        gw.app.state["key_verifier"].forget(key.id)
        async with http.post(url, json=chat(), headers=auth(key.key)) as r:
            assert r.status == 401
        async with http.get(gw.url + "/health") as r:
            assert r.status == 200  # public path
        async with http.get(gw.url + "/metrics") as r:
            assert r.status == 401
        async with http.get(gw.url + "/health", headers={"X-Request-ID": "abc-123"}) as r:
            assert r.headers["x-request-id"] == "abc-123"


async def test_example_hooks_plugin(openai_upstream: OpenAIEmulator, tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import relaygate_hooks_example as plugin
    finally:
        sys.path.remove(str(EXAMPLES))
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'a.db'}", auth=False)
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        gw.app.pm.register(plugin, name="hooks_example")
        gw.app.hooks_active = True
        url = gw.url + "/v1/chat/completions"
        async with http.post(url, json=chat(text="hello")) as r:
            assert r.status == 200
            rid = r.headers["x-relaygate-request-id"]
        assert openai_upstream.requests[-1].json["user"] == "relaygate-example"
        async with http.post(url, json=chat(text="tell me about forbidden-topic")) as r:
            assert r.status == 403
            assert "not allowed" in (await r.json())["error"]["message"]
        async with http.post(url, json=chat("ghost/m")) as r:
            assert r.status == 404
    assert plugin.ROUTES[rid] == "emu/gpt-4o-mini"
    assert plugin.AUDIT[0]["request_id"] == rid and plugin.AUDIT[0]["tokens"] > 0
    assert [a["status"] for a in plugin.AUDIT] == [200, 403, 404]
    assert plugin.ERRORS == {"permission": 1, "not_found": 1}
    entry = (EXAMPLES / "pyproject.toml").read_text()
    assert 'hooks_example = "relaygate_hooks_example"' in entry

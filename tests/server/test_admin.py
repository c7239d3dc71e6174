from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from tests.conftest import serve_gateway
from tests.opskit import MASTER, auth, ops_config

from relaygate.testing import OpenAIEmulator

PROVIDER_KEY = "sk-runtime-provider-key-998877"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)
    monkeypatch.setenv("RELAYGATE_VAULT_KEY", Fernet.generate_key().decode())


async def call(
    http: aiohttp.ClientSession, method: str, url: str, key: str = MASTER, **kw: Any
) -> tuple[int, Any]:
    async with http.request(method, url, headers=auth(key), **kw) as r:
        return r.status, await r.json()


async def test_admin_api_end_to_end(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    async with (
        OpenAIEmulator(api_key="sk-test-key-123456") as first,
        OpenAIEmulator(api_key=PROVIDER_KEY, models=["m-1", "m-2"]) as second,
    ):
        async with serve_gateway(ops_config(first, db)) as gw, aiohttp.ClientSession() as http:
            api = gw.url + "/api"
            status, body = await call(http, "GET", api + "/providers")
            assert status == 200 and body["success"] is True
            assert [p["name"] for p in body["data"]] == ["emu"]
            assert body["data"][0]["source"] == "config"

            reg = {
                "name": "second",
                "base_url": second.base_url + "/v1",
                "api_key": PROVIDER_KEY,
                "default_model": "m-2",
            }
            status, body = await call(http, "POST", api + "/providers/register", json=reg)
            assert status == 201, body
            assert body["data"]["models"] == ["second/m-1", "second/m-2"]
            assert PROVIDER_KEY not in str(body)

            # Routed by the hot path at once, through the runtime provider's key.
            async with http.post(
                gw.url + "/v1/chat/completions",
                headers=auth(MASTER),
                json={"model": "second/m-1", "messages": [{"role": "user", "content": "yo"}]},
            ) as r:
                assert r.status == 200 and r.headers["x-relaygate-backend"] == "second"

            status, body = await call(http, "GET", api + "/providers/second/health")
            assert status == 200 and body["data"]["status"] == "healthy"
            assert isinstance(body["data"]["latency"], float)
            status, body = await call(http, "GET", api + "/providers/health")
            assert set(body["data"]) == {"emu", "second"}
            status, body = await call(http, "GET", api + "/providers/models")
            assert body["data"]["second"] == ["second/m-1", "second/m-2"]

            status, body = await call(http, "POST", api + "/providers/second/default")
            assert status == 200
            status, body = await call(http, "POST", api + "/generate", json={"prompt": "hello"})
            assert status == 200, body
            assert body["data"]["provider"] == "second" and body["data"]["model"] == "m-2"
            assert body["data"]["content"] == "echo: hello"
            assert body["data"]["usage"]["total_tokens"] > 0

            async with http.post(
                api + "/generate",
                headers=auth(MASTER),
                json={"messages": [{"role": "user", "content": "abc"}], "stream": True},
            ) as r:
                text = await r.text()
            assert '"content"' in text and '"done":true' in text

            status, body = await call(
                http, "POST", api + "/providers/emu/test", json={"model": "gpt-4o-mini"}
            )
            assert status == 200 and body["data"]["content"].startswith("echo:")

            status, body = await call(
                http, "PUT", api + "/providers/second", json={"models": ["m-1"]}
            )
            assert status == 200 and body["data"]["models"] == ["second/m-1"]
            status, body = await call(http, "PUT", api + "/providers/emu", json={"models": []})
            assert status == 400 and "config file" in body["error"]["message"]

            # Bad input, in the envelope.
            status, body = await call(http, "GET", api + "/providers/ghost")
            assert (status, body["error"]["code"]) == (404, "PROVIDER_NOT_FOUND")
            status, body = await call(
                http, "POST", api + "/providers/register", json={"name": "x y", "bogus": 1}
            )
            assert status == 400 and body["error"]["code"] == "INVALID_REQUEST"
            assert "name" in body["error"]["message"] and "bogus" in body["error"]["message"]
            status, body = await call(http, "POST", api + "/providers/register", data=b"{nope")
            assert status == 400 and "JSON" in body["error"]["message"]
            status, body = await call(http, "POST", api + "/generate", json={})
            assert status == 400 and "prompt" in body["error"]["message"]
            status, body = await call(http, "DELETE", api + "/providers")
            assert (status, body["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")
            status, body = await call(http, "GET", api + "/providers", key="wrong-key")
            assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
            vkey = await gw.app.state["store"].create_key("client")
            status, body = await call(http, "GET", api + "/providers", key=vkey.key)
            assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")

            status, body = await call(http, "GET", api + "/openapi.json")
            assert "/api/providers/{name}/health" in body["paths"]
            assert body["components"]["schemas"]["ProviderSpec"]["properties"]["name"]

        # Persisted: a fresh instance on the same store routes to "second" again.
        async with serve_gateway(ops_config(first, db)) as gw, aiohttp.ClientSession() as http:
            status, body = await call(http, "GET", gw.url + "/api/providers/second")
            assert status == 200 and body["data"]["source"] == "runtime"
            assert body["data"]["default"] is True and body["data"]["has_key"] is True
            async with http.post(
                gw.url + "/v1/chat/completions",
                headers=auth(MASTER),
                json={"model": "second/m-1", "messages": [{"role": "user", "content": "yo"}]},
            ) as r:
                assert r.status == 200
            assert second.requests[-1].path.endswith(
                "/chat/completions"
            )  # the emulator checks the key


async def test_register_key_without_vault_is_refused(
    openai_upstream: OpenAIEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAYGATE_VAULT_KEY")
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'a.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        status, body = await call(
            http,
            "POST",
            gw.url + "/api/providers/register",
            json={"name": "p", "base_url": openai_upstream.base_url, "api_key": "sk-abcdefgh1234"},
        )
    assert status == 400 and "RELAYGATE_VAULT_KEY is not set" in body["error"]["message"]
    assert "sk-abcdefgh1234" not in str(body)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest", "metadata"),
        ("http://[fe80::1]/v1", "link-local"),
        ("http://metadata.google.internal/v1", "metadata host"),
        ("ftp://example.com/", "http://"),
        ("http://0.0.0.0:80/v1", "unroutable"),
    ],
)
async def test_ssrf_guard(
    openai_upstream: OpenAIEmulator, tmp_path: Path, url: str, why: str
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'a.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        status, body = await call(
            http, "POST", gw.url + "/api/providers/register", json={"name": "p", "base_url": url}
        )
    assert status == 400 and why in body["error"]["message"]
    assert "base_url" in body["error"]["message"]


async def test_ssrf_allow_hosts(openai_upstream: OpenAIEmulator, tmp_path: Path) -> None:
    from relaygate.netguard import UnsafeURL, check_base_url

    await check_base_url("http://169.254.169.254/", {"allow_hosts": ["169.254.169.254"]})
    with pytest.raises(UnsafeURL, match="private"):
        await check_base_url("http://127.0.0.1:9/", {"allow_private": False})

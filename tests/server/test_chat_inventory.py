"""/v1/models, /health, /status, /version: inventories (inline, file, discovery) and failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from tests.conftest import openai_backend, serve_gateway

from relaygate import __version__
from relaygate.testing import OpenAIEmulator


async def get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url + path, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def test_discovery_with_bearer_auth_under_prefix() -> None:
    async with OpenAIEmulator(api_key="sk-disc-key-000001", models=["m-one", "m-two"]) as up:
        backend = openai_backend(up, "prov")
        backend["config"]["api_key"] = "sk-disc-key-000001"
        async with serve_gateway({"plugins": {"backends": [backend]}}) as gw:
            status, body = await get(gw.url, "/v1/models")
        (listing,) = [r for r in up.requests if r.method == "GET"]
    assert status == 200
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["prov/m-one", "prov/m-two"]
    assert all(m["object"] == "model" and m["owned_by"] for m in body["data"])
    assert listing.path == "/v1/models"
    assert listing.headers["authorization"] == "Bearer sk-disc-key-000001"


async def test_static_inline_and_file_inventories(tmp_path: Path) -> None:
    models_file = tmp_path / "models.yaml"
    models_file.write_text("items:\n  - native_id: from-file\n    display_name: From File\n")
    async with OpenAIEmulator(models=["deepseek-chat", "other", "from-file"]) as up:
        inline = openai_backend(
            up,
            "inl",
            models={
                "source": "inline",
                "items": [
                    {"native_id": "deepseek-chat", "canonical_id": "inl/deepseek-chat"},
                    {"native_id": "other"},
                ],
            },
        )
        from_file = openai_backend(up, "fil", models={"source": "file", "path": str(models_file)})
        cfg = {
            "plugins": {"backends": [inline, from_file]},
            "routes": [{"name": "smart", "targets": ["inl/deepseek-chat", "fil/from-file"]}],
        }
        async with serve_gateway(cfg) as gw:
            status, body = await get(gw.url, "/v1/models")
            # Served by the inventory: a bare native id resolves too.
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    gw.url + "/v1/chat/completions",
                    json={"model": "from-file", "messages": [{"role": "user", "content": "x"}]},
                ) as r,
            ):
                assert r.status == 200
                assert r.headers["x-relaygate-backend"] == "fil"
        assert not [r for r in up.requests if r.method == "GET"]  # no discovery call
    assert status == 200
    ids = [m["id"] for m in body["data"]]
    assert ids == ["inl/deepseek-chat", "inl/other", "fil/from-file", "smart"]


async def test_discovery_failure_is_reported_and_others_go_on() -> None:
    async with (
        OpenAIEmulator(api_key="sk-right-key-12345") as good,
        OpenAIEmulator(api_key="sk-right-key-12345") as bad,
    ):
        ok_backend = openai_backend(good, "good")
        ok_backend["config"]["api_key"] = "sk-right-key-12345"
        bad_backend = openai_backend(bad, "bad")
        bad_backend["config"]["api_key"] = "sk-wrong-key-99999"
        cfg = {"plugins": {"backends": [bad_backend, ok_backend]}}
        async with serve_gateway(cfg) as gw:
            m_status, models = await get(gw.url, "/v1/models")
            h_status, health = await get(gw.url, "/health")
            s_status, status = await get(gw.url, "/status")
    assert m_status == h_status == s_status == 200
    assert [m["id"] for m in models["data"]] == ["good/gpt-4o-mini", "good/gpt-4.1"]
    assert "Incorrect API key" in health["backends"]["bad"]["discovery_error"]
    assert "discovery_error" not in health["backends"]["good"]
    assert "bad" in status["discovery_errors"]
    text = json.dumps([models, health, status])
    assert "sk-wrong-key-99999" not in text and "sk-right-key-12345" not in text


async def test_health_status_version(openai_upstream: OpenAIEmulator) -> None:
    cfg = {
        "plugins": {"backends": [openai_backend(openai_upstream)]},
        "routes": [{"name": "r1", "targets": ["emu/gpt-4o-mini"]}],
    }
    async with serve_gateway(cfg) as gw:
        h = await get(gw.url, "/health")
        s = await get(gw.url, "/status")
        v = await get(gw.url, "/version")
        nf_status, nf = await get(gw.url, "/v1/nothing-here")
        async with aiohttp.ClientSession() as http, http.get(gw.url + "/v1/chat/completions") as r:
            wrong_method = r.status, await r.json(content_type=None)
    assert h[0] == 200 and h[1]["status"] == "ok"
    emu = h[1]["backends"]["emu"]
    assert (emu["kind"], emu["prefix"]) == ("custom-openai-legacy-compatible", "emu")
    assert "discovery_error" not in emu
    assert s[0] == 200
    assert s[1]["backends"] == 1 and s[1]["models"] == 2 and s[1]["routes"] == ["r1"]
    assert s[1]["version"] == __version__
    assert v == (200, {"name": "relaygate", "version": __version__})
    assert nf_status == 404
    assert set(nf["error"]) == {"message", "type", "param", "code"}
    assert wrong_method[0] in (404, 405)
    assert set(wrong_method[1]["error"]) == {"message", "type", "param", "code"}

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from tests.conftest import openai_backend, serve_gateway
from tests.opskit import chat

from relaygate.testing import OpenAIEmulator, Reply


def write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config))


def base(upstream: OpenAIEmulator, tmp_path: Path, routes: list[Any]) -> dict[str, Any]:
    return {
        "plugins": {"backends": [openai_backend(upstream)]},
        "storage": {"url": f"sqlite:///{tmp_path / 'r.db'}"},
        "routes": routes,
    }


async def test_reload_swaps_and_broken_file_keeps_old(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "relaygate.yaml"
    first = base(openai_upstream, tmp_path, [{"name": "smart", "targets": ["emu/gpt-4o-mini"]}])
    write(path, first)
    async with serve_gateway(first) as gw, aiohttp.ClientSession() as http:
        gw.app.state["config_path"] = str(path)
        async with http.post(gw.url + "/v1/chat/completions", json=chat("fast")) as r:
            assert r.status == 404
        write(
            path,
            base(openai_upstream, tmp_path, [{"name": "fast", "targets": ["emu/gpt-4o-mini"]}]),
        )
        async with http.post(gw.url + "/api/config/reload") as r:
            body = await r.json()
            assert r.status == 200 and body["data"]["routes"] == ["fast"]
        async with http.post(gw.url + "/v1/chat/completions", json=chat("fast")) as r:
            assert r.status == 200
        running = gw.app.gateway

        # Broken: a route naming no backend, and invalid YAML. The old config stays.
        write(path, base(openai_upstream, tmp_path, [{"name": "x", "targets": ["ghost/m"]}]))
        async with http.post(gw.url + "/api/config/reload") as r:
            body = await r.json()
        assert r.status == 400 and body["error"]["code"] == "INVALID_REQUEST"
        assert "routes[0] (x).targets[0]" in body["error"]["message"]
        assert "running config stays" in body["error"]["message"]
        path.write_text("plugins: [unclosed")
        async with http.post(gw.url + "/api/config/reload") as r:
            assert r.status == 400 and "invalid YAML" in (await r.json())["error"]["message"]
        write(path, {**base(openai_upstream, tmp_path, []), "limits": {"backends": {"nope": {}}}})
        async with http.post(gw.url + "/api/config/reload") as r:
            assert (
                r.status == 400 and "limits.backends.nope" in (await r.json())["error"]["message"]
            )
        assert gw.app.gateway is running
        async with http.post(gw.url + "/v1/chat/completions", json=chat("fast")) as r:
            assert r.status == 200


async def test_sighup_reloads(openai_upstream: OpenAIEmulator, tmp_path: Path) -> None:
    path = tmp_path / "relaygate.yaml"
    first = base(openai_upstream, tmp_path, [])
    write(path, first)
    async with serve_gateway(first) as gw:
        gw.app.state["config_path"] = str(path)
        write(path, base(openai_upstream, tmp_path, [{"name": "hup", "targets": ["emu/m"]}]))
        reloader = gw.app.state["reloader"]
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if reloader.reloads:
                break
            await asyncio.sleep(0.01)
        assert [r.name for r in gw.app.gateway.config.routes] == ["hup"]


async def test_graceful_shutdown_lets_streams_finish(openai_upstream: OpenAIEmulator) -> None:
    """uvicorn stops accepting, then in-flight streams run to their end before shutdown."""
    config = {
        "plugins": {"backends": [openai_backend(openai_upstream)]},
        "storage": {"url": "sqlite:///:memory:"},
    }
    text = "0123456789" * 4
    openai_upstream.script(Reply(text=text, chunk_size=2, delay=0.02))
    async with aiohttp.ClientSession() as http:
        cm = serve_gateway(config)
        gw = await cm.__aenter__()
        resp = await http.post(gw.url + "/v1/chat/completions", json=chat(stream=True))
        first = await resp.content.readline()
        assert first.startswith(b"data:")
        closing = asyncio.create_task(cm.__aexit__(None, None, None))
        rest = await resp.content.read()
        await closing
    assert rest.rstrip().endswith(b"[DONE]")
    assert openai_upstream.completed_streams == 1
